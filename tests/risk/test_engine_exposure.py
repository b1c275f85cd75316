"""PreTradeRiskEngine: position limits and gross exposure (positions + open orders + this order)."""

from decimal import Decimal

import pytest

from risk.models import OpenOrderExposure, RiskLimit, Scope
from tests.orders.factories import StrategyFactory
from tests.positions.factories import PositionFactory
from tests.risk.conftest import BTC_USDT, MID, checks_named, only_check, publish_quote, submit
from tests.risk.factories import OpenOrderExposureFactory, RiskLimitFactory, order_intent
from tests.venues.factories import InstrumentFactory, VenueFactory

K = RiskLimit.Kind
pytestmark = pytest.mark.django_db
OKX_BTC_USDT = "OKX:SPOT_PAIR:BTC-USDT"


def dry(engine, listing, **intent_fields):
    return engine.evaluate(intent=order_intent(**intent_fields), listing=listing, venue=listing.venue, dry_run=True)


@pytest.fixture
def okx_listing(db):
    return InstrumentFactory(venue=VenueFactory(code="OKX", adapter="okx"), instrument_key=OKX_BTC_USDT)


# --- position limits ------------------------------------------------------------------------------
def test_position_limit_projects_position_across_venues_plus_open_orders_plus_order(engine, listing, strategy,
                                                                                      okx_listing):
    # Arrange: long 0.3 here and 0.2 on OKX, a BUY 0.4 working; the order buys 0.2
    RiskLimitFactory(scope=Scope.STRATEGY, scope_key="demo", kind=K.MAX_POSITION_QUANTITY, value=Decimal("1"))
    PositionFactory(strategy=strategy, quantity=Decimal("0.3"))
    PositionFactory(strategy=strategy, venue="OKX", instrument_key=OKX_BTC_USDT, quantity=Decimal("0.2"))
    assert submit(engine, intent=order_intent(instrument=OKX_BTC_USDT, quantity=Decimal("0.4")),
                  listing=okx_listing)[0].passed

    # Act
    within = dry(engine, listing, quantity=Decimal("0.1"))
    over = dry(engine, listing, quantity=Decimal("0.2"))

    # Assert
    assert only_check(within, "position_limit").passed
    check = only_check(over, "position_limit")
    assert not check.passed
    assert (check.limit, check.observed, check.scope) == ("1 BTC (STRATEGY:demo)", "1.1", "STRATEGY:demo")
    assert check.detail == "strategy position 0.5 + open BUY orders 0.4 + this order 0.2 = 1.1 BTC"


def test_position_limit_ignores_open_orders_on_the_other_side(engine, listing, strategy):
    # Arrange
    RiskLimitFactory(scope=Scope.STRATEGY, scope_key="demo", kind=K.MAX_POSITION_QUANTITY, value=Decimal("1"))
    OpenOrderExposureFactory(side="SELL", leaves_quantity=Decimal("5"), priced_value=Decimal("200000"))

    # Act
    check = only_check(dry(engine, listing, quantity=Decimal("1")), "position_limit")

    # Assert
    assert check.passed
    assert check.observed == "1"


def test_position_limit_global_scope_counts_every_strategy(engine, listing, strategy):
    # Arrange
    other = StrategyFactory(id="other")
    RiskLimitFactory(kind=K.MAX_POSITION_QUANTITY, value=Decimal("1"))
    PositionFactory(strategy=other, quantity=Decimal("0.95"))

    # Act
    check = only_check(dry(engine, listing, quantity=Decimal("0.1")), "position_limit")

    # Assert
    assert not check.passed
    assert (check.limit, check.observed) == ("1 BTC (GLOBAL)", "1.05")


def test_position_limit_venue_scope_counts_only_that_venue(engine, listing, strategy, okx_listing):
    # Arrange
    RiskLimitFactory(scope=Scope.VENUE, scope_key="BINANCE-SPOT", kind=K.MAX_POSITION_QUANTITY, value=Decimal("1"))
    PositionFactory(strategy=strategy, venue="OKX", instrument_key=OKX_BTC_USDT, quantity=Decimal("5"))

    # Act
    check = only_check(dry(engine, listing, quantity=Decimal("0.5")), "position_limit")

    # Assert
    assert check.passed
    assert check.observed == "0.5"


def test_position_limit_reducing_order_above_limit_passes(engine, listing, strategy):
    # Arrange: the limit was lowered below the current position
    RiskLimitFactory(scope=Scope.STRATEGY, scope_key="demo", kind=K.MAX_POSITION_QUANTITY, value=Decimal("1"))
    PositionFactory(strategy=strategy, quantity=Decimal("3"))

    # Act
    reduce = only_check(dry(engine, listing, side="SELL", quantity=Decimal("1")), "position_limit")
    flip_bigger = only_check(dry(engine, listing, side="SELL", quantity=Decimal("7")), "position_limit")

    # Assert
    assert reduce.passed
    assert reduce.observed == "2"
    assert reduce.detail.endswith("reduces the absolute position without crossing zero: allowed above the limit")
    assert not flip_bigger.passed
    assert flip_bigger.observed == "4"


def test_position_limit_short_side_is_measured_in_absolute_value(engine, listing, strategy):
    # Arrange
    RiskLimitFactory(scope=Scope.STRATEGY, scope_key="demo", kind=K.MAX_POSITION_QUANTITY, value=Decimal("1"))
    PositionFactory(strategy=strategy, quantity=Decimal("-0.8"))

    # Act
    check = only_check(dry(engine, listing, side="SELL", quantity=Decimal("0.3")), "position_limit")

    # Assert
    assert not check.passed
    assert check.observed == "1.1"


def test_position_notional_limit_values_projected_position_at_the_order_price(engine, listing, strategy):
    # Arrange
    RiskLimitFactory(scope=Scope.STRATEGY, scope_key="demo", kind=K.MAX_POSITION_NOTIONAL, value=Decimal("50000"))
    PositionFactory(strategy=strategy, quantity=Decimal("1"))

    # Act
    check = only_check(dry(engine, listing, quantity=Decimal("0.5"), price=Decimal("40000")), "position_limit")

    # Assert
    assert not check.passed
    assert (check.limit, check.observed) == ("50000 USD (STRATEGY:demo)", "60000")


def test_position_notional_limit_values_a_marketable_sell_limit_at_the_fresh_mid(engine, listing, strategy,
                                                                                 fresh_quote):
    # Arrange: flat; mid 40000
    RiskLimitFactory(scope=Scope.STRATEGY, scope_key="demo", kind=K.MAX_POSITION_NOTIONAL, value=Decimal("1000"))

    # Act: a short of 10 BTC, limited at 0.01
    check = only_check(dry(engine, listing, side="SELL", quantity=Decimal("10"), price=Decimal("0.01")),
                       "position_limit")

    # Assert
    assert not check.passed
    assert check.observed == "400000"
    assert check.detail.endswith("; projected position valued at the fresh mid 40000 USDT, above the limit price 0.01")


def test_position_notional_limit_values_a_passive_buy_limit_position_at_the_fresh_mid(engine, listing, strategy,
                                                                                   fresh_quote):
    # Arrange: long 10 BTC, mid 40000; 100000 USD for the strategy
    RiskLimitFactory(scope=Scope.STRATEGY, scope_key="demo", kind=K.MAX_POSITION_NOTIONAL, value=Decimal("100000"))
    PositionFactory(strategy=strategy, quantity=Decimal("10"))

    # Act: a BUY 1 at the market, and one resting far below it
    at_market = only_check(dry(engine, listing, quantity=Decimal("1"), price=Decimal("40000")), "position_limit")
    far_below = only_check(dry(engine, listing, quantity=Decimal("1"), price=Decimal("1")), "position_limit")

    # Assert: both add to a position worth 440000 at the market; the low bid does not make it 11 USD
    assert (at_market.passed, at_market.observed) == (False, "440000")
    assert not far_below.passed
    assert (far_below.limit, far_below.observed) == ("100000 USD (STRATEGY:demo)", "440000")
    assert far_below.detail == (
        "strategy position 10 + open BUY orders 0 + this order 1 = 11 BTC; projected position valued at the fresh "
        "mid 40000 USDT, above this order's limit price 1 (a position is worth the market, whatever a bid says)")


def test_position_notional_limit_passive_buy_limit_without_fresh_mid_is_valued_at_its_limit_price(
        engine, listing, strategy):
    # Arrange: long 10 BTC, no market data
    RiskLimitFactory(scope=Scope.STRATEGY, scope_key="demo", kind=K.MAX_POSITION_NOTIONAL, value=Decimal("100000"))
    PositionFactory(strategy=strategy, quantity=Decimal("10"))

    # Act
    check = only_check(dry(engine, listing, quantity=Decimal("1"), price=Decimal("1")), "position_limit")

    # Assert: today's rule, and the detail says which price and why
    assert (check.passed, check.observed) == (True, "11")
    assert check.detail == ("strategy position 10 + open BUY orders 0 + this order 1 = 11 BTC; projected position "
                            f"valued at the limit price 1 USDT: no fresh mid (missing: no market data for {BTC_USDT})")


@pytest.mark.parametrize(
    ("position", "side", "order_type", "price", "observed", "valued_at"),
    [
        # a SELL above the market: at its limit price, as before
        ("-10", "SELL", "LIMIT", "41000", "451000", "at the limit price 41000 USDT, not below the fresh mid 40000"),
        # a MARKET BUY: at the reference mid, as before
        ("10", "BUY", "MARKET", None, "440000", "at the reference mid 40000 USDT"),
        # a BUY above the market: at its limit price, as before
        ("10", "BUY", "LIMIT", "41000", "451000", "at the limit price 41000 USDT, not below the fresh mid 40000"),
    ],
)
def test_position_notional_limit_sell_market_and_marketable_buy_keep_their_valuation(
        engine, listing, strategy, fresh_quote, position, side, order_type, price, observed, valued_at):
    # Arrange
    RiskLimitFactory(scope=Scope.STRATEGY, scope_key="demo", kind=K.MAX_POSITION_NOTIONAL, value=Decimal("100000"))
    PositionFactory(strategy=strategy, quantity=Decimal(position))

    # Act
    check = only_check(dry(engine, listing, side=side, order_type=order_type, quantity=Decimal("1"),
                           price=Decimal(price) if price else None), "position_limit")

    # Assert
    assert (check.passed, check.observed) == (False, observed)
    assert check.detail.endswith(f"; projected position valued {valued_at}")


def test_position_notional_limit_passive_buy_reducing_a_short_above_the_limit_passes(engine, listing, strategy,
                                                                                     fresh_quote):
    # Arrange: short 10 BTC (400000 at the 40000 mid) against a 100000 USD limit
    RiskLimitFactory(scope=Scope.STRATEGY, scope_key="demo", kind=K.MAX_POSITION_NOTIONAL, value=Decimal("100000"))
    PositionFactory(strategy=strategy, quantity=Decimal("-10"))

    # Act: a BUY 1 resting far below the market
    check = only_check(dry(engine, listing, quantity=Decimal("1"), price=Decimal("1")), "position_limit")

    # Assert: the remaining short is worth 360000 at the market, above the limit, yet de-risking passes
    assert check.passed
    assert check.observed == "360000"
    assert check.detail.endswith("reduces the absolute position without crossing zero: allowed above the limit")


# --- gross exposure -------------------------------------------------------------------------------
def test_gross_exposure_sums_positions_open_orders_and_order(engine, listing, strategy, okx_listing):
    # Arrange: long 1 BTC marked at 40000 (entry 41000), a BUY 0.5 @ 39000 working on OKX
    RiskLimitFactory(scope=Scope.STRATEGY, scope_key="demo", kind=K.MAX_GROSS_EXPOSURE, value=Decimal("70000"))
    PositionFactory(strategy=strategy, quantity=Decimal("1"), mark_price=Decimal("40000"),
                    avg_entry_price=Decimal("41000"))
    assert submit(engine, intent=order_intent(instrument=OKX_BTC_USDT, quantity=Decimal("0.5"),
                                              price=Decimal("39000")), listing=okx_listing)[0].passed

    # Act
    within = only_check(dry(engine, listing, quantity=Decimal("0.25")), "gross_exposure")
    over = only_check(dry(engine, listing, quantity=Decimal("0.3")), "gross_exposure")

    # Assert: 40000 + 19500 + 10000 (or 12000)
    assert within.passed
    assert (within.limit, within.observed) == ("70000 USD (STRATEGY:demo)", "69500")
    assert not over.passed
    assert over.observed == "71500"
    assert over.detail == ("strategy positions and open orders 59500 + this order 12000 USD (0.3 BTC at the limit "
                           f"price 40000 USDT: no fresh mid (missing: no market data for {BTC_USDT}))")


def test_gross_exposure_values_a_marketable_sell_limit_at_the_fresh_mid_and_open_orders_as_stored(
        engine, listing, strategy, fresh_quote):
    # Arrange: a SELL 10 limited at 0.01 already working, stored at 0.1 USDT; mid 40000
    RiskLimitFactory(scope=Scope.STRATEGY, scope_key="demo", kind=K.MAX_GROSS_EXPOSURE, value=Decimal("1000"))
    OpenOrderExposureFactory(side="SELL", leaves_quantity=Decimal("10"), priced_value=Decimal("0.1"))

    # Act: another SELL 10 at 0.01
    check = only_check(dry(engine, listing, side="SELL", quantity=Decimal("10"), price=Decimal("0.01")),
                       "gross_exposure")

    # Assert
    assert not check.passed
    assert check.observed == "400000.1"
    assert check.detail == ("strategy positions and open orders 0.1 + this order 400000 USD "
                            "(10 BTC at the fresh mid 40000 USDT, above the limit price 0.01)")


def test_gross_exposure_global_over_limit_denies(engine, listing, strategy):
    # Arrange
    other = StrategyFactory(id="other")
    RiskLimitFactory(kind=K.MAX_GROSS_EXPOSURE, value=Decimal("100000"))
    eth = InstrumentFactory(instrument_key="BINANCE-SPOT:SPOT_PAIR:ETH-USDT", base_currency="ETH")
    PositionFactory(strategy=other, instrument_key=eth.instrument_key, equivalence_key="SPOT_PAIR:ETH-USDT",
                    quantity=Decimal("30"), avg_entry_price=Decimal("3000"))

    # Act
    check = only_check(dry(engine, listing, quantity=Decimal("0.3")), "gross_exposure")

    # Assert: 90000 (ETH, at entry price: no mark yet) + 12000
    assert not check.passed
    assert (check.limit, check.observed) == ("100000 USD (GLOBAL)", "102000")
    assert check.detail == ("firm positions and open orders 90000 + this order 12000 USD (0.3 BTC at the limit "
                            f"price 40000 USDT: no fresh mid (missing: no market data for {BTC_USDT}))")


def test_gross_exposure_reducing_order_above_limit_passes(engine, listing, strategy):
    # Arrange
    RiskLimitFactory(scope=Scope.STRATEGY, scope_key="demo", kind=K.MAX_GROSS_EXPOSURE, value=Decimal("10000"))
    PositionFactory(strategy=strategy, quantity=Decimal("1"), mark_price=MID)

    # Act
    check = only_check(dry(engine, listing, side="SELL", quantity=Decimal("0.5")), "gross_exposure")

    # Assert
    assert check.passed
    assert check.observed == "60000"
    assert check.detail.endswith("reduces the strategy's position without crossing zero: allowed above the limit")


def test_gross_exposure_open_market_orders_are_valued_at_their_fresh_mid(engine, listing, strategy, store, clock,
                                                                         okx_listing):
    # Arrange: a MARKET BUY 2 is working on OKX; OKX mid 39000
    RiskLimitFactory(scope=Scope.STRATEGY, scope_key="demo", kind=K.MAX_GROSS_EXPOSURE, value=Decimal("1000000"))
    OpenOrderExposureFactory(instrument_key=OKX_BTC_USDT, leaves_quantity=Decimal("2"), priced_quantity=Decimal("0"))
    publish_quote(store, OKX_BTC_USDT, mid=Decimal("39000"), ts=clock.now)

    # Act
    check = only_check(dry(engine, listing, quantity=Decimal("0.1")), "gross_exposure")

    # Assert
    assert check.passed
    assert check.observed == "82000"


def test_gross_exposure_open_market_orders_without_market_data_fail_closed(engine, listing, strategy, okx_listing):
    # Arrange
    RiskLimitFactory(scope=Scope.STRATEGY, scope_key="demo", kind=K.MAX_GROSS_EXPOSURE, value=Decimal("1000000"))
    OpenOrderExposureFactory(instrument_key=OKX_BTC_USDT, leaves_quantity=Decimal("2"), priced_quantity=Decimal("0"))

    # Act
    check = only_check(dry(engine, listing, quantity=Decimal("0.1")), "gross_exposure")

    # Assert
    assert not check.passed
    assert check.observed is None
    assert f"open {OKX_BTC_USDT} quantity 2 has no price: missing: no market data for {OKX_BTC_USDT}" in check.detail


def test_gross_exposure_position_in_non_usd_quote_fails_closed(engine, listing, strategy):
    # Arrange
    RiskLimitFactory(kind=K.MAX_GROSS_EXPOSURE, value=Decimal("1000000"))
    eth_btc = InstrumentFactory(instrument_key="BINANCE-SPOT:SPOT_PAIR:ETH-BTC", base_currency="ETH",
                                quote_currency="BTC")
    PositionFactory(strategy=strategy, instrument_key=eth_btc.instrument_key, equivalence_key="SPOT_PAIR:ETH-BTC",
                    quantity=Decimal("10"), mark_price=Decimal("0.05"))

    # Act
    check = only_check(dry(engine, listing), "gross_exposure")

    # Assert
    assert not check.passed
    assert "in quote currency BTC has no USD conversion" in check.detail


def test_gross_exposure_instrument_scope_counts_only_that_instrument(engine, listing, strategy):
    # Arrange
    RiskLimitFactory(scope=Scope.INSTRUMENT, scope_key="ANY:SPOT_PAIR:BTC-USDT", kind=K.MAX_GROSS_EXPOSURE,
                     value=Decimal("50000"))
    PositionFactory(strategy=strategy, quantity=Decimal("1"), mark_price=MID)
    eth = InstrumentFactory(instrument_key="BINANCE-SPOT:SPOT_PAIR:ETH-USDT", base_currency="ETH")
    PositionFactory(strategy=strategy, instrument_key=eth.instrument_key, equivalence_key="SPOT_PAIR:ETH-USDT",
                    quantity=Decimal("100"), mark_price=Decimal("3000"))

    # Act
    check = only_check(dry(engine, listing, quantity=Decimal("0.1")), "gross_exposure")

    # Assert
    assert check.passed
    assert (check.limit, check.observed) == ("50000 USDT (INSTRUMENT:ANY:SPOT_PAIR:BTC-USDT)", "44000")


# --- recording ----------------------------------------------------------------------------------------
def test_passing_order_records_its_open_exposure(engine, listing, strategy, store, clock):
    # Arrange
    publish_quote(store, BTC_USDT, mid=MID, ts=clock.now)

    # Act
    submit(engine, intent=order_intent(quantity=Decimal("0.5"), price=Decimal("39000")), listing=listing)
    submit(engine, intent=order_intent(quantity=Decimal("0.2"), order_type="MARKET", price=None), listing=listing)
    submit(engine, intent=order_intent(quantity=Decimal("0.1"), side="SELL"), listing=listing)

    # Assert
    rows = {r.side: r for r in OpenOrderExposure.objects.all()}
    assert (rows["BUY"].leaves_quantity, rows["BUY"].priced_quantity, rows["BUY"].priced_value) == (
        Decimal("0.7"), Decimal("0.5"), Decimal("19500"))
    assert (rows["BUY"].venue, rows["BUY"].equivalence_key) == ("BINANCE-SPOT", "SPOT_PAIR:BTC-USDT")
    assert rows["SELL"].leaves_quantity == Decimal("0.1")


def test_denied_order_records_no_exposure(engine, listing, strategy):
    # Arrange
    RiskLimitFactory(kind=K.MAX_ORDER_QUANTITY, value=Decimal("0.001"))

    # Act
    result, _ = submit(engine, intent=order_intent(), listing=listing)

    # Assert
    assert not result.passed
    assert not OpenOrderExposure.objects.exists()
    assert checks_named(result, "gross_exposure") == []


# --- the de-risking exemption stops at zero -----------------------------------------------------------
def test_position_limit_order_crossing_zero_is_held_to_the_limit(engine, listing, strategy):
    # Arrange: long 10 with a limit of 5 (lowered below the position)
    RiskLimitFactory(scope=Scope.STRATEGY, scope_key="demo", kind=K.MAX_POSITION_QUANTITY, value=Decimal("5"))
    PositionFactory(strategy=strategy, quantity=Decimal("10"))

    # Act
    flip_over = only_check(dry(engine, listing, side="SELL", quantity=Decimal("18")), "position_limit")
    flip_within = only_check(dry(engine, listing, side="SELL", quantity=Decimal("12")), "position_limit")
    flat = only_check(dry(engine, listing, side="SELL", quantity=Decimal("10")), "position_limit")

    # Assert: a short of 8 is over the limit although |−8| < |10|
    assert not flip_over.passed
    assert flip_over.observed == "8"
    assert "allowed above the limit" not in flip_over.detail
    assert flip_within.passed
    assert flip_within.observed == "2"
    assert flat.passed
    assert flat.observed == "0"


def test_position_limit_order_crossing_zero_counts_open_orders_on_its_side(engine, listing, strategy):
    # Arrange: long 10 and a SELL 2 working (8 once it fills); a SELL 14 would leave a short of 6, limit 5
    RiskLimitFactory(scope=Scope.STRATEGY, scope_key="demo", kind=K.MAX_POSITION_QUANTITY, value=Decimal("5"))
    PositionFactory(strategy=strategy, quantity=Decimal("10"))
    OpenOrderExposureFactory(side="SELL", leaves_quantity=Decimal("2"), priced_value=Decimal("80000"))

    # Act
    check = only_check(dry(engine, listing, side="SELL", quantity=Decimal("14")), "position_limit")

    # Assert
    assert not check.passed
    assert check.observed == "6"


def test_gross_exposure_order_crossing_zero_is_held_to_the_limit(engine, listing, strategy):
    # Arrange: long 1 at 40000 with a gross limit of 10000
    RiskLimitFactory(scope=Scope.STRATEGY, scope_key="demo", kind=K.MAX_GROSS_EXPOSURE, value=Decimal("10000"))
    PositionFactory(strategy=strategy, quantity=Decimal("1"), mark_price=MID)

    # Act: a SELL 1.5 leaves a short of 0.5 (|−0.5| < |1|, but across zero)
    check = only_check(dry(engine, listing, side="SELL", quantity=Decimal("1.5")), "gross_exposure")

    # Assert
    assert not check.passed
    assert check.observed == "100000"
    assert "allowed above the limit" not in check.detail
