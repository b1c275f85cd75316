"""A fill's fee on its way from the journal (``orders.services.venue_events``) into the position: in the
position's PnL currency (quote for linear listings, settlement/base for inverse ones), converted at the
fill price from the other currency of the pair; a fee in a third currency (BNB) is kept apart, in its own
currency, on the position's ``other_fees`` (never converted at a guessed rate)."""

import itertools
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orders.models import Order
from orders.services import order_apply_venue_event
from positions.maths import QUANTUM
from positions.models import Position
from positions.selectors import position_aggregates
from tests.orders.factories import OrderFactory, StrategyFactory
from tests.venues.factories import listing_of
from venues.events import VenueEvent, VenueEventKind

D = Decimal
T0 = timezone.now().replace(microsecond=0) - timedelta(hours=1)
INV = "DERIBIT:PERPETUAL:BTC-USD@INV"
PERP = "BINANCE-FUTURES:PERPETUAL:BTC-USDT@LIN"

pytestmark = pytest.mark.django_db


def _fill(key, *, side="BUY", qty="100", px="40000", fee="0", fee_currency="", trade_id="T1", strategy_id="fees",
          seconds=0):
    # One order of ``strategy_id`` on ``key`` (SUBMITTED) and its whole fill; return the position after it.
    strategy = StrategyFactory(id=strategy_id)
    order = OrderFactory(strategy=strategy, instrument_key=key, routed_instrument_key=key, venue=key.split(":")[0],
                         side=side, quantity=D(qty), price=D(px), status=Order.Status.SUBMITTED)
    result = order_apply_venue_event(event=VenueEvent(
        kind=VenueEventKind.FILLED, client_order_id=order.client_order_id, venue=order.venue,
        ts_event=T0 + timedelta(seconds=seconds), trade_id=trade_id, last_qty=D(qty), last_px=D(px), fee=D(fee),
        fee_currency=fee_currency, liquidity="TAKER"))
    assert result.applied
    return Position.objects.get(strategy=strategy, instrument_key=key)


def test_fill_fee_in_quote_currency_of_an_inverse_listing_is_converted_to_its_base_currency():
    # Arrange: Deribit BTC perpetual, 10 USD a contract, PnL in BTC
    listing_of(INV, contract_multiplier=D("10"))

    # Act: a 2 USD fee at 40000
    position = _fill(INV, fee="2", fee_currency="USD")

    # Assert: 2 / 40000 = 0.00005 BTC
    assert (position.fees, position.realized_pnl) == (D("0.00005"), D("-0.00005"))


def test_fill_fee_in_a_third_currency_is_kept_apart_on_the_position_in_its_currency():
    # Arrange
    listing_of(PERP)

    # Act: Binance's BNB fee discount: the fee is neither USDT nor BTC; then a USDT fee and a second BNB fee
    _fill(PERP, qty="0.5", fee="0.01", fee_currency="BNB", trade_id="T1")
    _fill(PERP, qty="0.5", fee="0.4", fee_currency="USDT", trade_id="T2", seconds=1)
    position = _fill(PERP, qty="0.5", fee="0.0025", fee_currency="BNB", trade_id="T3", seconds=2)

    # Assert: never subtracted from a USDT PnL as if it were USDT, never dropped: kept in BNB, exactly
    assert (position.quantity, position.fees, position.realized_pnl) == (D("1.5"), D("0.4"), D("-0.4"))
    assert position.other_fees == {"BNB": "0.0125"}
    [aggregate] = position_aggregates(strategy_ids=None)
    assert aggregate.other_fees == aggregate.venues[0].other_fees == {"BNB": D("0.0125")}


def test_fill_fee_in_a_third_currency_says_on_the_fill_entry_where_it_went():
    # Arrange
    listing_of(PERP)

    # Act
    position = _fill(PERP, qty="0.5", fee="0.01", fee_currency="BNB")

    # Assert: the order's timeline entry names the fee and where the position keeps it
    entry = Order.objects.get().events.get(type="FILLED")
    assert entry.payload["position_fee"] == "0" and entry.payload["position_other_fees"] == {"BNB": "0.01"}
    assert "fee 0.01 BNB" in entry.payload["detail"] and "other_fees" in entry.payload["detail"]
    assert position.other_fees == {"BNB": "0.01"}


def test_fill_fee_in_usdt_on_an_inverse_btc_usd_listing_is_kept_apart():
    # Arrange: Deribit BTC perpetual (PnL in BTC, quoted in USD): USDT is a third currency there
    listing_of(INV, contract_multiplier=D("10"))

    # Act
    position = _fill(INV, fee="2", fee_currency="USDT")

    # Assert: not divided by the price as if it were USD
    assert (position.fees, position.realized_pnl, position.other_fees) == (D(0), D(0), {"USDT": "2"})


def test_fill_fee_of_a_listing_without_quote_currency_is_in_the_pnl_currency_its_key_names():
    # Arrange: a listing whose quote_currency was left blank; its key names USDT, and the positions'
    # reads say its PnL is in USDT
    listing_of(PERP, quote_currency="", settlement_currency="")

    # Act: a 0.4 USDT fee
    position = _fill(PERP, qty="0.01", fee="0.4", fee_currency="USDT")

    # Assert: the fee is in the position's PnL currency, so it is subtracted as it is
    [aggregate] = position_aggregates(strategy_ids=None)
    assert aggregate.pnl_currency == "USDT"
    assert (position.fees, position.realized_pnl) == (D("0.4"), D("-0.4"))


def test_fill_fee_in_base_currency_of_a_listing_without_base_currency_is_converted_at_the_fill_price():
    # Arrange: blank currencies; the key names BTC and USDT
    listing_of(PERP, base_currency="", quote_currency="", settlement_currency="")

    # Act: 0.00001 BTC at 40000
    position = _fill(PERP, qty="0.01", fee="0.00001", fee_currency="BTC")

    # Assert: 0.4 USDT
    assert (position.fees, position.realized_pnl) == (D("0.4"), D("-0.4"))


# --- property: a round trip through the journal books the cash flows less the fees ----------------

HALF_ULP = QUANTUM / 2  # largest error of one ROUND_HALF_EVEN quantization to 18 places
SWAP = "OKX:PERPETUAL:BTC-USDT@LIN"  # 0.01 BTC a contract
_examples = itertools.count()
_contracts = st.integers(1, 5000).map(D)
_prices = st.integers(1_000_000, 9_000_000).map(lambda n: D(n).scaleb(-2))  # 10000.00 … 90000.00
_fees = st.tuples(st.integers(0, 10_000).map(lambda n: D(n).scaleb(-4)), st.booleans())  # (amount, in base currency)
_fill_lists = st.lists(st.tuples(st.sampled_from(["BUY", "SELL"]), _contracts, _prices, _fees), min_size=1,
                       max_size=8)


@pytest.mark.postgres  # exact to the 18th place on PostgreSQL only (SQLite keeps 15 digits: positions.maths)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sequence=_fill_lists, close_price=_prices, inverse=st.booleans())
def test_fills_through_the_journal_ending_flat_realize_the_cash_flows_less_the_fees(sequence, close_price, inverse):
    # Arrange: an OKX linear swap (0.01 BTC a contract, PnL in USDT) or a Deribit inverse perpetual
    # (10 USD a contract, PnL in BTC); each fill's fee in either currency of the pair; a last fill
    # closes what is left
    key, multiplier = (INV, D(10)) if inverse else (SWAP, D("0.01"))
    listing_of(key, contract_multiplier=multiplier)
    base, quote = ("BTC", "USD") if inverse else ("BTC", "USDT")
    held = sum(q if side == "BUY" else -q for side, q, _, _ in sequence)
    if held:
        sequence = [*sequence, ("SELL" if held > 0 else "BUY", abs(held), close_price, (D(0), False))]
    example = next(_examples)

    # Act
    bound = D(0)
    for n, (side, q, price, (fee, in_base)) in enumerate(sequence):
        position = _fill(key, side=side, qty=q, px=price, fee=fee, fee_currency=base if in_base else quote,
                         trade_id=f"P{example}-{n}", strategy_id=f"prop-{example}", seconds=n)
        # Error budget of this step: one quantization of the realized amount and one of a converted fee,
        # plus re-pricing the open position at an average quantized to 18 places — |quantity| × multiplier ×
        # 0.5E-18 (linear), or the same over avg² (≤ 1E-8 here: prices ≥ 10000) for the inverse coin value.
        scale = abs(position.quantity) * multiplier * (D("1E-8") if inverse else 1)
        bound += HALF_ULP * (scale + 2)

    # Assert: linear, PnL in USDT = −Σ signed contracts × price × multiplier − fees (a BTC fee × its
    # fill price); inverse, PnL in BTC = Σ signed contracts × face value ÷ price − fees (a USD fee ÷ price)
    def signed(side, q):
        return q if side == "BUY" else -q

    if inverse:
        flows = sum(signed(s, q) * multiplier / p for s, q, p, _ in sequence)
        fees = sum(f if in_base else (f / p).quantize(QUANTUM) for _, _, p, (f, in_base) in sequence)
    else:
        flows = -sum(signed(s, q) * p * multiplier for s, q, p, _ in sequence)
        fees = sum(f * p if in_base else f for _, _, p, (f, in_base) in sequence)
    assert position.quantity == 0 and position.avg_entry_price is None
    assert position.fees == fees
    assert abs(position.realized_pnl - (flows - fees)) <= bound
