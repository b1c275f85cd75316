"""PreTradeRiskEngine: cross-venue sums in base units of the underlying, whatever each listing's contract size.

OKX's BTC-USDT-SWAP contract is 0.01 BTC, Binance's BTCUSDT perpetual 1 BTC: a projected position adds
quantity × contract multiplier, never raw contract counts. Inverse contracts (quote-denominated: Binance
COIN-M 100 USD, Deribit 10 USD) are converted at the order's price (see risk/engine.py).
"""

from decimal import Decimal

import pytest
from django.db import transaction

from risk.models import RiskLimit, Scope, TradingState
from tests.positions.factories import PositionFactory
from tests.risk.conftest import only_check, publish_quote
from tests.risk.factories import OpenOrderExposureFactory, RiskLimitFactory, TradingStateFactory, order_intent
from tests.venues.factories import InstrumentFactory, VenueFactory

K = RiskLimit.Kind
pytestmark = pytest.mark.django_db
BINANCE_LIN = "BINANCE-FUTURES:PERPETUAL:BTC-USDT@LIN"
OKX_LIN = "OKX:PERPETUAL:BTC-USDT@LIN"
BINANCE_INV = "BINANCE-FUTURES:PERPETUAL:BTC-USD@INV"
DERIBIT_INV = "DERIBIT:PERPETUAL:BTC-USD@INV"
OPTION = "OPTION:BTC-USD-50000-20241231-C"


def _listing(key: str, multiplier: str, *, inverse: bool = False, lot: str = "0.001"):
    venue = key.split(":")[0]
    return InstrumentFactory(venue=VenueFactory(code=venue, adapter=venue.lower()), instrument_key=key,
                             quote_currency=key.split("-")[-1].split("@")[0], contract_multiplier=Decimal(multiplier),
                             is_inverse=inverse, lot_size=Decimal(lot), min_quantity=None, min_notional=None)


def _position(strategy, key: str, quantity: str, price: str = "40000"):
    return PositionFactory(strategy=strategy, venue=key.split(":")[0], instrument_key=key,
                           equivalence_key=key.split(":", 1)[1], quantity=Decimal(quantity),
                           avg_entry_price=Decimal(price))


def evaluate(engine, listing, *, dry_run=True, **intent_fields):
    intent = order_intent(instrument=listing.instrument_key, **intent_fields)
    with transaction.atomic():
        return engine.evaluate(intent=intent, listing=listing, venue=listing.venue, dry_run=dry_run)


@pytest.fixture
def binance_lin(db):
    return _listing(BINANCE_LIN, "1")


@pytest.fixture
def okx_lin(db):
    return _listing(OKX_LIN, "0.01", lot="1")


@pytest.fixture
def binance_inv(db):
    return _listing(BINANCE_INV, "100", inverse=True, lot="1")


@pytest.fixture
def deribit_inv(db):
    return _listing(DERIBIT_INV, "10", inverse=True, lot="1")


def test_position_limit_okx_contracts_count_as_their_base_units_so_the_order_passes(engine, strategy, binance_lin,
                                                                                   okx_lin):
    # Arrange: 50 OKX contracts = 0.5 BTC; the order buys 0.4 BTC on Binance; limit 1 BTC
    RiskLimitFactory(scope=Scope.STRATEGY, scope_key="demo", kind=K.MAX_POSITION_QUANTITY, value=Decimal("1"))
    _position(strategy, OKX_LIN, "50")

    # Act
    check = only_check(evaluate(engine, binance_lin, quantity=Decimal("0.4")), "position_limit")

    # Assert
    assert check.passed
    assert (check.observed, check.limit) == ("0.9", "1 BTC (STRATEGY:demo)")


def test_position_limit_order_in_okx_contracts_counts_its_base_units_and_denies_over_limit(engine, strategy,
                                                                                          binance_lin, okx_lin):
    # Arrange: long 0.5 BTC on Binance, 30 OKX contracts (0.3 BTC) working; the order buys 30 more (0.3 BTC)
    RiskLimitFactory(scope=Scope.GLOBAL, kind=K.MAX_POSITION_QUANTITY, value=Decimal("1"))
    _position(strategy, BINANCE_LIN, "0.5")
    OpenOrderExposureFactory(instrument_key=OKX_LIN, leaves_quantity=Decimal("30"), priced_value=Decimal("1200000"))

    # Act
    check = only_check(evaluate(engine, okx_lin, quantity=Decimal("30")), "position_limit")

    # Assert
    assert not check.passed
    assert (check.observed, check.limit) == ("1.1", "1 BTC (GLOBAL)")
    assert check.detail == "firm position 0.5 + open BUY orders 0.3 + this order 0.3 = 1.1 BTC"


def test_position_notional_limit_values_base_units_once(engine, strategy, binance_lin, okx_lin):
    # Arrange: 100 OKX contracts = 1 BTC; the order buys 0.5 BTC at 40000: 60000 USDT
    RiskLimitFactory(scope=Scope.STRATEGY, scope_key="demo", kind=K.MAX_POSITION_NOTIONAL, value=Decimal("70000"))
    _position(strategy, OKX_LIN, "100")

    # Act
    check = only_check(evaluate(engine, binance_lin, quantity=Decimal("0.5")), "position_limit")

    # Assert
    assert check.passed
    assert check.observed == "60000"


def test_reducing_sell_in_big_contracts_against_many_small_ones_that_flips_denies(engine, strategy, binance_lin,
                                                                                 okx_lin):
    # Arrange: long 100 OKX contracts = 1 BTC; reduce-only; the order sells 2 BTC on Binance
    TradingStateFactory(scope=Scope.GLOBAL, state=TradingState.State.REDUCING, reason="drawdown")
    _position(strategy, OKX_LIN, "100")

    # Act
    flips = evaluate(engine, binance_lin, side="SELL", quantity=Decimal("2"))
    reduces = evaluate(engine, binance_lin, side="SELL", quantity=Decimal("0.6"))

    # Assert
    assert not only_check(flips, "kill_switch").passed
    assert only_check(flips, "kill_switch").observed == "-1"
    assert only_check(reduces, "kill_switch").passed


def test_position_limit_inverse_contracts_convert_at_the_order_price_across_face_values(engine, strategy, store,
                                                                                       clock, binance_inv,
                                                                                       deribit_inv):
    # Arrange: 1000 Deribit contracts × 10 USD; the order buys 100 × 100 USD; mid 40000: 20000 USD = 0.5 BTC
    RiskLimitFactory(scope=Scope.STRATEGY, scope_key="demo", kind=K.MAX_POSITION_QUANTITY, value=Decimal("1"))
    _position(strategy, DERIBIT_INV, "1000")
    publish_quote(store, BINANCE_INV, mid=Decimal("40000"), ts=clock.now)

    # Act
    check = only_check(evaluate(engine, binance_inv, quantity=Decimal("100"), price=Decimal("40000")),
                       "position_limit")

    # Assert
    assert check.passed
    assert (check.observed, check.limit) == ("0.5", "1 BTC (STRATEGY:demo)")
    assert "inverse contracts 20000 USD at 40000 USD" in check.detail


def test_position_limit_inverse_sell_above_the_mid_converts_at_the_lower_mid(engine, strategy, store, clock,
                                                                            binance_inv):
    # Arrange: a SELL of 200 × 100 USD limited at 80000 while the mid is 40000
    RiskLimitFactory(scope=Scope.STRATEGY, scope_key="demo", kind=K.MAX_POSITION_QUANTITY, value=Decimal("0.4"))
    publish_quote(store, BINANCE_INV, mid=Decimal("40000"), ts=clock.now)

    # Act
    check = only_check(evaluate(engine, binance_inv, side="SELL", quantity=Decimal("200"), price=Decimal("80000")),
                       "position_limit")

    # Assert: 20000 USD / 40000 = 0.5 BTC, not 20000 / 80000 = 0.25
    assert not check.passed
    assert check.observed == "0.5"


def test_position_limit_inverse_order_without_fresh_mid_denies(engine, strategy, binance_inv):
    # Arrange
    RiskLimitFactory(scope=Scope.STRATEGY, scope_key="demo", kind=K.MAX_POSITION_QUANTITY, value=Decimal("1"))

    # Act
    result = evaluate(engine, binance_inv, quantity=Decimal("1"), price=Decimal("40000"))

    # Assert
    assert not result.passed
    check = only_check(result, "position_limit")
    assert not check.passed
    assert check.observed is None
    assert "no price to convert inverse contracts to base units" in check.detail


def test_position_limit_linear_order_with_inverse_positions_in_its_class_denies(engine, strategy, store, clock):
    # Arrange: an option class shared by an inverse (Deribit) and a linear (OKX) listing
    deribit = _listing(f"DERIBIT:{OPTION}", "1", inverse=True, lot="0.1")
    okx = _listing(f"OKX:{OPTION}", "1", lot="0.1")
    RiskLimitFactory(scope=Scope.STRATEGY, scope_key="demo", kind=K.MAX_POSITION_QUANTITY, value=Decimal("100"))
    _position(strategy, deribit.instrument_key, "1", price="0.05")

    # Act
    check = only_check(evaluate(engine, okx, quantity=Decimal("1"), price=Decimal("1000")), "position_limit")

    # Assert: never a sum that leaves the inverse contracts out
    assert not check.passed
    assert check.observed is None
    assert "inverse contracts" in check.detail


def test_reducing_inverse_order_compares_face_values_without_market_data(engine, strategy, binance_inv,
                                                                         deribit_inv):
    # Arrange: long 1000 Deribit contracts × 10 USD = 10000 USD; reduce-only; no quote published
    TradingStateFactory(scope=Scope.GLOBAL, state=TradingState.State.REDUCING, reason="drawdown")
    _position(strategy, DERIBIT_INV, "1000")

    # Act: sell 50 × 100 USD, then 150 × 100 USD
    reduces = only_check(evaluate(engine, binance_inv, side="SELL", quantity=Decimal("50"),
                                  price=Decimal("40000")), "kill_switch")
    flips = only_check(evaluate(engine, binance_inv, side="SELL", quantity=Decimal("150"),
                                price=Decimal("40000")), "kill_switch")

    # Assert
    assert (reduces.passed, reduces.observed) == (True, "5000")
    assert reduces.detail.startswith("position 10000 USD face value, open SELL orders 0, this order -5000")
    assert (flips.passed, flips.observed) == (False, "-5000")


# --- positions and open orders whose listing no longer exists ------------------------------------------


def test_position_limit_position_without_its_listing_denies_naming_the_position_and_listing(engine, strategy,
                                                                                            binance_lin, okx_lin):
    # Arrange: 100 OKX contracts (1 BTC at 0.01 BTC each), then the OKX listing is removed
    RiskLimitFactory(scope=Scope.STRATEGY, scope_key="demo", kind=K.MAX_POSITION_QUANTITY, value=Decimal("200"))
    _position(strategy, OKX_LIN, "100")
    okx_lin.delete()

    # Act
    result = evaluate(engine, binance_lin, quantity=Decimal("0.5"))

    # Assert: the contract size is unknown, so the projected position is unknown: fail closed
    assert not result.passed
    check = only_check(result, "position_limit")
    assert (check.passed, check.observed) == (False, None)
    assert f"position of demo in {OKX_LIN}: its listing {OKX_LIN} no longer exists" in check.detail
    assert result.reason.startswith("position_limit: observed n/a, limit 200 BTC (STRATEGY:demo)")


def test_position_notional_limit_position_without_its_listing_denies(engine, strategy, binance_lin, okx_lin):
    # Arrange
    RiskLimitFactory(scope=Scope.GLOBAL, kind=K.MAX_POSITION_NOTIONAL, value=Decimal("100000000"))
    _position(strategy, OKX_LIN, "100")
    okx_lin.delete()

    # Act
    check = only_check(evaluate(engine, binance_lin, quantity=Decimal("0.5")), "position_limit")

    # Assert
    assert (check.passed, check.observed) == (False, None)
    assert f"its listing {OKX_LIN} no longer exists" in check.detail


def test_position_limit_open_orders_without_their_listing_deny_naming_them(engine, strategy, binance_lin):
    # Arrange: 30 contracts working on an OKX listing that is not (or no longer) known
    RiskLimitFactory(scope=Scope.GLOBAL, kind=K.MAX_POSITION_QUANTITY, value=Decimal("1000"))
    OpenOrderExposureFactory(instrument_key=OKX_LIN, leaves_quantity=Decimal("30"), priced_value=Decimal("1200000"))

    # Act
    check = only_check(evaluate(engine, binance_lin, quantity=Decimal("0.5")), "position_limit")

    # Assert
    assert (check.passed, check.observed) == (False, None)
    assert f"open BUY orders of demo in {OKX_LIN}: its listing {OKX_LIN} no longer exists" in check.detail


def test_gross_exposure_in_quote_currency_position_without_its_listing_denies(engine, strategy, binance_lin,
                                                                              okx_lin):
    # Arrange: an INSTRUMENT-scope limit is in USDT, which an unlisted row would otherwise pass as
    RiskLimitFactory(scope=Scope.INSTRUMENT, scope_key="ANY:PERPETUAL:BTC-USDT@LIN", kind=K.MAX_GROSS_EXPOSURE,
                     value=Decimal("100000000"))
    _position(strategy, OKX_LIN, "100")
    okx_lin.delete()

    # Act
    check = only_check(evaluate(engine, binance_lin, quantity=Decimal("0.5")), "gross_exposure")

    # Assert
    assert (check.passed, check.observed) == (False, None)
    assert f"position of demo in {OKX_LIN}: its listing {OKX_LIN} no longer exists" in check.detail


def test_reducing_position_without_its_listing_cannot_tell_and_denies(engine, strategy, binance_lin, okx_lin):
    # Arrange: long 100 OKX contracts (1 BTC); reduce-only; the order sells 2 BTC, which flips the real position
    TradingStateFactory(scope=Scope.GLOBAL, state=TradingState.State.REDUCING, reason="drawdown")
    _position(strategy, OKX_LIN, "100")
    okx_lin.delete()

    # Act
    check = only_check(evaluate(engine, binance_lin, side="SELL", quantity=Decimal("2")), "kill_switch")

    # Assert
    assert (check.passed, check.observed) == (False, None)
    assert f"position of demo in {OKX_LIN}: its listing {OKX_LIN} no longer exists" in check.detail
