"""``manage.py positions``: the positions page's figures and totals as a table."""

import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from django.utils import timezone

from positions.selectors import position_book
from positions.services import position_apply_fill, position_mark
from positions.templatetags.positions_ui import money
from tests.orders.factories import StrategyFactory
from tests.positions.factories import option_positions_settling_in_two_currencies
from tests.venues.factories import InstrumentFactory, VenueFactory

pytestmark = pytest.mark.django_db
D = Decimal
SPOT = "BINANCE-SPOT:SPOT_PAIR:BTC-USDT"
FUT = "BINANCE-FUTURES:PERPETUAL:BTC-USDT@LIN"
T0 = timezone.now() - timedelta(minutes=5)


def positions(*args) -> str:
    out = io.StringIO()
    call_command("positions", *args, stdout=out)
    return out.getvalue()


def fill(strategy_id, key, side, quantity, price):
    with transaction.atomic():
        position_apply_fill(strategy_id=strategy_id, venue=key.split(":")[0], instrument_key=key, side=side,
                            quantity=D(quantity), price=D(price), fee=D("1.25"), ts=T0)


@pytest.fixture
def book(db):
    """alpha long 2 BTC-USDT spot @ 40000 marked at 41000; beta short 1 on futures @ 40500."""
    InstrumentFactory()
    InstrumentFactory(venue=VenueFactory(code="BINANCE-FUTURES", adapter="binance_futures"), instrument_key=FUT)
    fill(StrategyFactory(id="alpha").id, SPOT, "BUY", "2", "40000")
    fill(StrategyFactory(id="beta").id, FUT, "SELL", "1", "40500")
    position_mark(instrument_key=SPOT, venue="BINANCE-SPOT", mark_price=D(41000), ts=T0 + timedelta(seconds=1))


def test_positions_prints_instruments_listings_and_totals(book):
    text = positions()

    lines = text.splitlines()
    assert lines[0].split()[:3] == ["instrument", "/", "listing"]
    spot_line = next(line for line in lines if line.strip().startswith(SPOT))
    assert spot_line.split() == [SPOT, "2", "40000", "41000", "2,000.00", "-1.25", "1.25", "82,000.00", "alpha"]
    assert any(line.startswith("ANY:PERPETUAL:BTC-USDT@LIN") for line in lines)
    total = next(line for line in lines if line.startswith("TOTAL USDT"))
    assert total.split() == ["TOTAL", "USDT", "2,000.00", "-2.50", "2.50", "122,500.00", "equity", "1,997.50"]


def test_positions_totals_match_the_page_selector(book):
    # The page renders position_book; the command must print the same totals.
    usdt = next(t for t in position_book(strategy_ids=None).totals if t.currency == "USDT")

    total = next(line for line in positions().splitlines() if line.startswith("TOTAL USDT"))

    assert total.split()[2:6] == [money(usdt.unrealized_pnl), money(usdt.realized_pnl), money(usdt.fees),
                                  money(usdt.notional)]


def test_positions_strategy_and_venue_filters(book):
    only_beta = positions("--strategy", "beta")
    only_spot = positions("--venue", "BINANCE-SPOT")

    assert FUT in only_beta and SPOT not in only_beta
    assert SPOT in only_spot and FUT not in only_spot


def test_positions_unknown_strategy_is_an_error_naming_the_option(db):
    with pytest.raises(CommandError, match="--strategy"):
        positions("--strategy", "ghost")


def test_positions_fees_in_a_third_currency_follow_the_fees_and_are_totalled_apart(book):
    # Arrange: alpha's spot fills also paid 0.0125 BNB (a BNB fee discount)
    with transaction.atomic():
        position_apply_fill(strategy_id="alpha", venue="BINANCE-SPOT", instrument_key=SPOT, side="BUY",
                            quantity=D(1), price=D(40000), fee=D(0), other_fee=D("0.0125"), other_fee_currency="BNB",
                            ts=T0)

    # Act
    lines = positions().splitlines()

    # Assert: the USDT fees unchanged, the BNB named beside them and on a line of its own
    spot_line = next(line for line in lines if line.strip().startswith(SPOT))
    assert spot_line.split()[6:9] == ["1.25", "+", "0.0125"] and "BNB" in spot_line
    total = next(line for line in lines if line.startswith("TOTAL USDT"))
    assert total.split()[4] == "2.50"
    assert lines[-1] == "fees in other currencies, in no PnL (no rate converts them): 0.0125 BNB"


def test_positions_empty_says_so(db):
    assert "no positions" in positions()


def test_positions_pnl_of_listings_settling_in_different_currencies_has_no_total_and_says_why(db):
    # Arrange: one option on Deribit (inverse, BTC-settled) and OKX (linear, USD-settled)
    strategy = StrategyFactory(id="alpha")
    eq = option_positions_settling_in_two_currencies(strategy)

    # Act
    text = positions()

    # Assert
    assert "100.01" not in text
    assert f"no PnL total for ANY:{eq}: its listings settle in BTC and USD" in text


def test_positions_linear_contracts_without_listing_show_no_instrument_quantity_and_say_why(db):
    # Arrange: 1 Binance contract of 1 BTC; 100 OKX contracts whose listing (0.01 BTC each) was removed
    from tests.positions.factories import PositionFactory

    strategy = StrategyFactory(id="alpha")
    InstrumentFactory(venue=VenueFactory(code="BINANCE-FUTURES", adapter="binance_futures"), instrument_key=FUT)
    for key, quantity in ((FUT, "1"), ("OKX:PERPETUAL:BTC-USDT@LIN", "100")):
        PositionFactory(strategy=strategy, venue=key.split(":")[0], instrument_key=key,
                        equivalence_key="PERPETUAL:BTC-USDT@LIN", quantity=D(quantity), avg_entry_price=D("40000"))

    # Act
    lines = positions().splitlines()

    # Assert: a dash, not 101 BTC; the listing line keeps its contracts; a note names the listing
    instrument = next(line for line in lines if line.startswith("ANY:PERPETUAL:BTC-USDT@LIN"))
    assert instrument.split()[1] == "—"
    okx = next(line for line in lines if line.strip().startswith("OKX:"))
    assert okx.split()[1] == "100"
    assert ("quantity unknown for ANY:PERPETUAL:BTC-USDT@LIN: OKX:PERPETUAL:BTC-USDT@LIN: its listing no longer "
            "exists (no venues.Instrument), so its contract size is unknown") in lines
