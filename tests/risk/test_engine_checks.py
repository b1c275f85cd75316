"""PreTradeRiskEngine: listing rules, per-order limits, reference price and price collar."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction

from risk.engine import PreTradeRiskEngine
from risk.models import OpenOrderExposure, RiskLimit, Scope, VelocityBucket
from tests.risk.conftest import BTC_USDT, MID, checks_named, only_check, publish_quote
from tests.risk.factories import RiskLimitFactory, order_intent
from tests.venues.factories import InstrumentFactory, VenueFactory
from venues.marketdata import MemoryMarketDataStore, RedisMarketDataStore

K = RiskLimit.Kind
pytestmark = pytest.mark.django_db

WIDE_LIMITS = {
    K.MAX_ORDER_QUANTITY: "100",
    K.MAX_ORDER_NOTIONAL: "10000000",
    K.PRICE_COLLAR_BPS: "500",
    K.MAX_ORDERS_PER_SECOND: "1000",
    K.MAX_ORDERS_PER_MINUTE: "100000",
    K.MAX_POSITION_QUANTITY: "1000",
    K.MAX_POSITION_NOTIONAL: "100000000",
    K.MAX_GROSS_EXPOSURE: "100000000",
    K.REPEATED_ORDER_WINDOW_SECS: "1",
}


def evaluate(engine, listing, **intent_fields):
    with transaction.atomic():
        return engine.evaluate(intent=order_intent(**intent_fields), listing=listing,
                               venue=listing.venue if listing is not None else None)


# --- all checks ------------------------------------------------------------------------------------
def test_evaluate_every_limit_kind_wide_passes_every_check(engine, listing, fresh_quote):
    # Arrange
    for scope, key in ((Scope.GLOBAL, ""), (Scope.STRATEGY, "demo")):
        for kind, value in WIDE_LIMITS.items():
            RiskLimitFactory(scope=scope, scope_key=key, kind=kind, value=Decimal(value))

    # Act
    result = evaluate(engine, listing)

    # Assert
    assert result.passed, result.reason
    assert result.reason == ""
    assert result.recorded is True
    names = {c.check for c in result.checks}
    assert names == {
        "kill_switch", "instrument_listed", "lot_size", "tick_size", "min_quantity", "max_quantity", "min_notional",
        "reference_price", "price_collar", "max_order_quantity", "max_order_notional", "repeated_order", "velocity",
        "position_limit", "gross_exposure",
    }
    assert len(checks_named(result, "velocity")) == 4  # 1 s and 60 s, GLOBAL and STRATEGY


def test_evaluate_several_failures_reports_all_and_reason_names_the_first(engine, listing, fresh_quote):
    # Arrange
    RiskLimitFactory(scope=Scope.STRATEGY, scope_key="demo", kind=K.MAX_ORDER_QUANTITY, value=Decimal("1"))
    RiskLimitFactory(kind=K.PRICE_COLLAR_BPS, value=Decimal("100"))

    # Act: off-lot quantity, too large, and 125 bps from mid
    result = evaluate(engine, listing, quantity=Decimal("2.0000005"), price=Decimal("40500"))

    # Assert
    assert not result.passed
    assert [c.check for c in result.failures] == ["lot_size", "price_collar", "max_order_quantity"]
    assert result.reason == (
        "lot_size: observed 2.0000005 BTC, limit multiple of 0.000001 BTC — quantity must be a whole number of lots "
        "(+2 more failed checks)"
    )
    assert result.recorded is False


def test_evaluate_result_to_json_round_trips_every_field(engine, listing, fresh_quote):
    # Arrange
    RiskLimitFactory(kind=K.MAX_ORDER_QUANTITY, value=Decimal("0.001"))

    # Act
    data = evaluate(engine, listing).to_json()

    # Assert
    assert data["passed"] is False
    assert data["recorded"] is False
    assert data["reason"].startswith("max_order_quantity: observed 0.01 BTC, limit 0.001 BTC (GLOBAL)")
    failed = [c for c in data["checks"] if not c["passed"]]
    assert failed == [{"check": "max_order_quantity", "passed": False, "limit": "0.001 BTC (GLOBAL)",
                       "observed": "0.01", "scope": "GLOBAL", "detail": "", "unit": "BTC"}]


# --- instrument listed -----------------------------------------------------------------------------
def test_instrument_listed_nothing_routed_denies_naming_the_instrument(engine, strategy):
    # Act
    with transaction.atomic():
        result = engine.evaluate(intent=order_intent(instrument="ANY:SPOT_PAIR:BTC-USDT"), listing=None, venue=None)

    # Assert
    check = only_check(result, "instrument_listed")
    assert not check.passed
    assert check.detail == "no listing could be routed for ANY:SPOT_PAIR:BTC-USDT"
    assert result.reason.startswith("instrument_listed: observed n/a, limit listed and enabled")
    assert checks_named(result, "lot_size") == []  # no listing, no listing rules


def test_instrument_listed_disabled_listing_denies(engine, listing, fresh_quote):
    # Arrange
    listing.enabled = False
    listing.save()

    # Act
    check = only_check(evaluate(engine, listing), "instrument_listed")

    # Assert
    assert not check.passed
    assert check.detail == f"listing {BTC_USDT} is disabled"


def test_instrument_listed_disabled_venue_denies(engine, listing, fresh_quote):
    # Arrange
    listing.venue.enabled = False
    listing.venue.save()

    # Act
    check = only_check(evaluate(engine, listing), "instrument_listed")

    # Assert
    assert not check.passed
    assert check.detail == "venue BINANCE-SPOT is disabled"


def test_instrument_listed_listing_of_another_instrument_denies(engine, listing, fresh_quote):
    # Act
    check = only_check(evaluate(engine, listing, instrument="BINANCE-SPOT:SPOT_PAIR:ETH-USDT"), "instrument_listed")

    # Assert
    assert not check.passed
    assert "is not the requested instrument BINANCE-SPOT:SPOT_PAIR:ETH-USDT" in check.detail


def test_instrument_listed_any_key_routed_to_equivalent_listing_passes(engine, listing, fresh_quote):
    # Act
    check = only_check(evaluate(engine, listing, instrument="ANY:SPOT_PAIR:BTC-USDT"), "instrument_listed")

    # Assert
    assert check.passed
    assert check.observed == BTC_USDT


# --- listing rules -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fields", "name", "passed", "limit", "observed"),
    [
        ({"quantity": Decimal("0.000123")}, "lot_size", True, "multiple of 0.000001 BTC", "0.000123"),
        ({"quantity": Decimal("0.0000015")}, "lot_size", False, "multiple of 0.000001 BTC", "0.0000015"),
        ({"price": Decimal("40000.01")}, "tick_size", True, "multiple of 0.01 USDT", "40000.01"),
        ({"price": Decimal("40000.005")}, "tick_size", False, "multiple of 0.01 USDT", "40000.005"),
        ({"quantity": Decimal("0.000001"), "price": Decimal("40000")}, "min_quantity", True, "0.000001 BTC",
         "0.000001"),
        ({"quantity": Decimal("9001")}, "max_quantity", False, "9000 BTC", "9001"),
        ({"quantity": Decimal("0.0002")}, "min_notional", False, "10 USDT", "8"),
        ({"quantity": Decimal("0.00025")}, "min_notional", True, "10 USDT", "10"),
    ],
)
def test_listing_rule_quantity_or_price_gives_check_limit_and_observed(
    engine, listing, fresh_quote, fields, name, passed, limit, observed
):
    # Act
    check = only_check(evaluate(engine, listing, **fields), name)

    # Assert
    assert (check.passed, check.limit, check.observed) == (passed, limit, observed)
    assert check.scope == f"LISTING:{BTC_USDT}"


def test_min_quantity_below_listing_minimum_denies(engine, db, strategy, fresh_quote):
    # Arrange
    listing = InstrumentFactory(min_quantity=Decimal("0.001"), min_notional=None)

    # Act
    check = only_check(evaluate(engine, listing, quantity=Decimal("0.0005")), "min_quantity")

    # Assert
    assert not check.passed
    assert (check.limit, check.observed) == ("0.001 BTC", "0.0005")


# --- per-order limits ------------------------------------------------------------------------------
def test_max_order_quantity_above_strategy_limit_denies_with_limit_and_observed(engine, listing, fresh_quote):
    # Arrange
    RiskLimitFactory(scope=Scope.STRATEGY, scope_key="demo", kind=K.MAX_ORDER_QUANTITY, value=Decimal("1"))

    # Act
    check = only_check(evaluate(engine, listing, quantity=Decimal("2")), "max_order_quantity")

    # Assert
    assert not check.passed
    assert (check.limit, check.observed, check.scope) == ("1 BTC (STRATEGY:demo)", "2", "STRATEGY:demo")


def test_max_order_quantity_at_limit_passes(engine, listing, fresh_quote):
    # Arrange
    RiskLimitFactory(kind=K.MAX_ORDER_QUANTITY, value=Decimal("2"))

    # Act
    check = only_check(evaluate(engine, listing, quantity=Decimal("2")), "max_order_quantity")

    # Assert
    assert check.passed


def test_max_order_notional_above_global_limit_denies_in_usd(engine, listing, fresh_quote):
    # Arrange
    RiskLimitFactory(kind=K.MAX_ORDER_NOTIONAL, value=Decimal("50000"))

    # Act
    check = only_check(evaluate(engine, listing, quantity=Decimal("2")), "max_order_notional")

    # Assert: 2 x 40000 USDT, USDT counted 1:1 as USD
    assert not check.passed
    assert (check.limit, check.observed) == ("50000 USD (GLOBAL)", "80000")


def test_max_order_notional_instrument_scope_is_in_quote_currency(engine, listing, fresh_quote):
    # Arrange
    RiskLimitFactory(scope=Scope.INSTRUMENT, scope_key="ANY:SPOT_PAIR:BTC-USDT", kind=K.MAX_ORDER_NOTIONAL,
                     value=Decimal("100000"))

    # Act
    check = only_check(evaluate(engine, listing, quantity=Decimal("2")), "max_order_notional")

    # Assert
    assert check.passed
    assert (check.limit, check.observed) == ("100000 USDT (INSTRUMENT:ANY:SPOT_PAIR:BTC-USDT)", "80000")


def test_max_order_notional_non_usd_quote_fails_closed(engine, strategy, store, clock):
    # Arrange
    eth_btc = InstrumentFactory(instrument_key="BINANCE-SPOT:SPOT_PAIR:ETH-BTC", base_currency="ETH",
                                quote_currency="BTC", tick_size=Decimal("0.00001"), min_notional=None)
    RiskLimitFactory(kind=K.MAX_ORDER_NOTIONAL, value=Decimal("1000000"))

    # Act
    check = only_check(
        evaluate(engine, eth_btc, instrument=eth_btc.instrument_key, quantity=Decimal("1"), price=Decimal("0.05")),
        "max_order_notional",
    )

    # Assert
    assert not check.passed
    assert check.observed is None
    assert check.detail == ("1 ETH at the limit price 0.05 BTC: no fresh mid (missing: no market data for "
                            "BINANCE-SPOT:SPOT_PAIR:ETH-BTC); quote currency BTC has no USD conversion (only USD and "
                            "USD stablecoins count 1:1)")


def test_max_order_notional_inverse_contract_is_quantity_times_multiplier(engine, strategy, store, clock):
    # Arrange: Deribit BTC perpetual, 1 contract = 10 USD
    venue = VenueFactory(code="DERIBIT", kind="EXTERNAL_SDK", adapter="deribit")
    perp = InstrumentFactory(venue=venue, instrument_key="DERIBIT:PERPETUAL:BTC-USD@INV", base_currency="BTC",
                             quote_currency="USD", settlement_currency="BTC", tick_size=Decimal("0.5"),
                             lot_size=Decimal("1"), min_quantity=Decimal("1"), min_notional=None,
                             contract_multiplier=Decimal("10"), is_inverse=True)
    RiskLimitFactory(kind=K.MAX_ORDER_NOTIONAL, value=Decimal("1000"))

    # Act
    check = only_check(
        evaluate(engine, perp, instrument=perp.instrument_key, quantity=Decimal("150"), price=Decimal("40000.5")),
        "max_order_notional",
    )

    # Assert: 150 contracts x 10 USD, whatever the price
    assert not check.passed
    assert (check.limit, check.observed) == ("1000 USD (GLOBAL)", "1500")


@pytest.mark.parametrize(
    ("side", "price", "observed", "valued_at"),
    [
        ("SELL", "0.01", "400000", "at the fresh mid 40000 USDT, above the limit price 0.01"),
        ("BUY", "39000", "390000", "at the limit price 39000 USDT, which a BUY pays at most (the fresh mid is 40000)"),
        ("BUY", "41000", "410000", "at the limit price 41000 USDT, not below the fresh mid 40000"),
        ("SELL", "41000", "410000", "at the limit price 41000 USDT, not below the fresh mid 40000"),
    ],
)
def test_max_order_notional_limit_order_is_valued_at_what_it_can_trade_at_most(
        engine, listing, fresh_quote, side, price, observed, valued_at):
    # Arrange: no price collar, so the order's own checks need no reference price
    RiskLimitFactory(kind=K.MAX_ORDER_NOTIONAL, value=Decimal("1000"))

    # Act: 10 BTC; a SELL limited at 0.01 trades near the 40000 market, not at 0.1 USDT; a BUY pays at
    # most its limit, below the mid or above it
    check = only_check(evaluate(engine, listing, side=side, quantity=Decimal("10"), price=Decimal(price)),
                       "max_order_notional")

    # Assert
    assert not check.passed
    assert check.observed == observed
    assert check.detail == f"10 BTC {valued_at}"


def test_max_order_notional_limit_order_without_fresh_mid_is_valued_at_its_limit_price(engine, listing):
    # Arrange: no market data
    RiskLimitFactory(kind=K.MAX_ORDER_NOTIONAL, value=Decimal("1000"))

    # Act
    result = evaluate(engine, listing, side="SELL", quantity=Decimal("0.01"), price=Decimal("40000"))

    # Assert: valued at 400 USDT, passes; a missing mid denies nothing by itself
    check = only_check(result, "max_order_notional")
    assert (check.passed, check.observed) == (True, "400")
    assert check.detail == (f"0.01 BTC at the limit price 40000 USDT: no fresh mid (missing: no market data for "
                            f"{BTC_USDT})")
    assert checks_named(result, "reference_price") == []
    assert result.passed, result.reason


class _UnreadableStore:
    """A market-data store that must not be read: the router's snapshots answer."""

    def get(self, instrument_key):
        raise AssertionError(f"market data read again for {instrument_key}")

    def get_many(self, instrument_keys):
        raise AssertionError(f"market data read again for {instrument_keys}")


def test_max_order_notional_limit_order_takes_the_fresh_mid_from_the_router_snapshots(listing, clock):
    # Arrange: the router already read the listing's book (mid 40000)
    RiskLimitFactory(kind=K.MAX_ORDER_NOTIONAL, value=Decimal("1000"))
    quotes = MemoryMarketDataStore()
    publish_quote(quotes, BTC_USDT, mid=MID, ts=clock.now)
    engine = PreTradeRiskEngine(market_data_store=_UnreadableStore(), clock=clock)

    # Act
    with transaction.atomic():
        result = engine.evaluate(intent=order_intent(side="SELL", quantity=Decimal("10"), price=Decimal("0.01")),
                                 listing=listing, venue=listing.venue, snapshots={BTC_USDT: quotes.get(BTC_USDT)})

    # Assert
    assert only_check(result, "max_order_notional").observed == "400000"


def test_max_order_notional_market_order_at_the_storage_bound_denies_without_any_limit(engine, listing, store,
                                                                                       clock):
    # Arrange: no limit configured; a mid of 1e15 USDT makes 9000 BTC (the listing's maximum) worth 9e18,
    # which NUMERIC(36,18) (at most 18 integer digits) cannot store
    publish_quote(store, BTC_USDT, mid=Decimal("1000000000000000"), ts=clock.now)

    # Act
    with transaction.atomic():
        result = engine.evaluate(intent=order_intent(order_type="MARKET", price=None, quantity=Decimal("9000")),
                                 listing=listing, venue=listing.venue)

    # Assert: denied by the bound (check, bound and observed value), and nothing recorded
    assert not result.passed and not result.recorded
    check = only_check(result, "max_order_notional")
    assert (check.scope, check.observed) == ("SYSTEM", "9000000000000000000")
    assert check.limit == "below 1000000000000000000 USDT (SYSTEM)"
    assert result.reason.startswith("max_order_notional: observed 9000000000000000000 USDT, "
                                    "limit below 1000000000000000000 USDT (SYSTEM)")
    assert not OpenOrderExposure.objects.exists()


def test_max_order_notional_just_below_the_storage_bound_adds_no_check(engine, listing, store, clock):
    # Arrange: 9000 BTC at 1e14 USDT = 9e17, below 10**18
    publish_quote(store, BTC_USDT, mid=Decimal("100000000000000"), ts=clock.now)

    # Act
    result = evaluate(engine, listing, order_type="MARKET", price=None, quantity=Decimal("9000"))

    # Assert
    assert result.passed, result.reason
    assert checks_named(result, "max_order_notional") == []


def test_disabled_limit_is_not_applied(engine, listing, fresh_quote):
    # Arrange
    RiskLimitFactory(kind=K.MAX_ORDER_QUANTITY, value=Decimal("0.001"), enabled=False)

    # Act
    result = evaluate(engine, listing)

    # Assert
    assert result.passed
    assert checks_named(result, "max_order_quantity") == []


def test_limit_of_another_strategy_is_not_applied(engine, listing, fresh_quote):
    # Arrange
    RiskLimitFactory(scope=Scope.STRATEGY, scope_key="other", kind=K.MAX_ORDER_QUANTITY, value=Decimal("0.001"))

    # Act
    result = evaluate(engine, listing)

    # Assert
    assert result.passed
    assert checks_named(result, "max_order_quantity") == []


# --- admin edits apply to the next order -------------------------------------------------------------
def test_limit_edit_applies_to_the_very_next_evaluation(engine, listing, fresh_quote):
    # Arrange
    limit = RiskLimitFactory(scope=Scope.STRATEGY, scope_key="demo", kind=K.MAX_ORDER_QUANTITY, value=Decimal("10"))
    assert evaluate(engine, listing, quantity=Decimal("5")).passed

    # Act: what the admin change form does
    limit.value = Decimal("1")
    limit.save()
    after_edit = evaluate(engine, listing, quantity=Decimal("5"))
    limit.enabled = False
    limit.save()
    after_disable = evaluate(engine, listing, quantity=Decimal("5"))

    # Assert
    assert not after_edit.passed
    assert only_check(after_edit, "max_order_quantity").limit == "1 BTC (STRATEGY:demo)"
    assert after_disable.passed
    assert limit.history.count() == 3


def test_limit_created_applies_to_the_very_next_evaluation(engine, listing, fresh_quote):
    # Arrange
    assert evaluate(engine, listing).passed

    # Act
    RiskLimitFactory(kind=K.MAX_ORDER_NOTIONAL, value=Decimal("100"))
    result = evaluate(engine, listing)

    # Assert
    assert only_check(result, "max_order_notional").observed == "400"
    assert not result.passed


# --- reference price and price collar ----------------------------------------------------------------
def test_reference_price_market_order_without_market_data_denies_missing(engine, listing):
    # Act
    result = evaluate(engine, listing, order_type="MARKET", price=None)

    # Assert
    check = only_check(result, "reference_price")
    assert not check.passed
    assert check.detail == f"missing: no market data for {BTC_USDT}"
    assert result.reason.startswith("min_notional: observed n/a, limit 10 USDT — notional unknown: no price: missing")


@pytest.fixture
def heartbeat():
    """Record a trading-node heartbeat for the test; removed afterwards (the cache outlives tests)."""
    from odum_live.health import record_trading_node_heartbeat
    from tests.helpers import forget_trading_node_heartbeats

    yield record_trading_node_heartbeat
    forget_trading_node_heartbeats()


def test_reference_price_without_market_data_names_the_venue_problem_the_node_reported(engine, listing, heartbeat):
    # Arrange: the trading node left the venue off (no replay file), and said so in its heartbeat.

    problem = "BINANCE-SPOT:SPOT_PAIR:BTC-USDT: replay file market/missing.parquet not found"
    heartbeat(hostname="w1", status={"venues": {"BINANCE-SPOT": {
        "mode": "paper", "problems": [problem], "notes": []}}})

    # Act
    result = evaluate(engine, listing, order_type="MARKET", price=None)

    # Assert: the denial gives the cause, not only the symptom.
    check = only_check(result, "reference_price")
    assert not check.passed
    assert check.detail == f"missing: no market data for {BTC_USDT} (venue BINANCE-SPOT: {problem})"


def test_reference_price_market_order_with_a_quote_dated_in_the_future_denies_naming_the_clocks(
        engine, listing, store, clock):
    # Arrange: the venue's clock (or ours) is an hour out of step
    publish_quote(store, BTC_USDT, mid=MID, ts=clock.now + timedelta(hours=1))

    # Act
    check = only_check(evaluate(engine, listing, order_type="MARKET", price=None), "reference_price")

    # Assert
    assert not check.passed
    assert check.detail == (f"stale: {BTC_USDT} snapshot is dated 3600.000 s ahead of this host's clock "
                            "(clocks out of step), max 10 s")


def test_reference_price_market_order_with_stale_quote_denies_naming_the_age(engine, listing, store, clock):
    # Arrange
    publish_quote(store, BTC_USDT, mid=MID, ts=clock.now - timedelta(seconds=30))

    # Act
    check = only_check(evaluate(engine, listing, order_type="MARKET", price=None), "reference_price")

    # Assert
    assert not check.passed
    assert check.detail == f"stale: {BTC_USDT} snapshot is 30.000 s old, max 10 s"
    assert check.limit == "fresh mid within 10 s"


def test_reference_price_market_order_with_fresh_quote_passes_and_prices_notional_at_mid(engine, listing, fresh_quote):
    # Arrange
    RiskLimitFactory(kind=K.MAX_ORDER_NOTIONAL, value=Decimal("1000000"))

    # Act
    result = evaluate(engine, listing, order_type="MARKET", price=None, quantity=Decimal("2"))

    # Assert
    assert result.passed, result.reason
    assert only_check(result, "reference_price").observed == "40000"
    assert only_check(result, "max_order_notional").observed == "80000"
    assert checks_named(result, "tick_size") == []


def test_reference_price_redis_unreachable_denies_with_that_reason(listing, clock):
    # Arrange: nothing listens on port 1
    engine = PreTradeRiskEngine(market_data_store=RedisMarketDataStore("redis://127.0.0.1:1/0", timeout_secs=0.2),
                                clock=clock)

    # Act
    check = only_check(evaluate(engine, listing, order_type="MARKET", price=None), "reference_price")

    # Assert
    assert not check.passed
    assert check.detail.startswith(
        f"market data unavailable for {BTC_USDT}: market data unavailable (redis 127.0.0.1:1/0)")


def test_reference_price_limit_order_without_collar_needs_no_market_data(engine, listing):
    # Act
    result = evaluate(engine, listing)

    # Assert
    assert result.passed
    assert checks_named(result, "reference_price") == []


def test_price_collar_within_bps_passes_with_deviation_observed(engine, listing, fresh_quote):
    # Arrange
    RiskLimitFactory(kind=K.PRICE_COLLAR_BPS, value=Decimal("100"))

    # Act
    check = only_check(evaluate(engine, listing, price=Decimal("39800")), "price_collar")

    # Assert: |39800 - 40000| / 40000 = 50 bps
    assert check.passed
    assert (check.limit, check.observed) == ("100 bps from mid (GLOBAL)", "50")


def test_price_collar_outside_bps_denies(engine, listing, fresh_quote):
    # Arrange
    RiskLimitFactory(scope=Scope.INSTRUMENT, scope_key=BTC_USDT, kind=K.PRICE_COLLAR_BPS, value=Decimal("100"))

    # Act
    result = evaluate(engine, listing, price=Decimal("40500"))

    # Assert
    check = only_check(result, "price_collar")
    assert not check.passed
    assert (check.limit, check.observed, check.unit) == (f"100 bps from mid (INSTRUMENT:{BTC_USDT})", "125", "bps")
    assert check.detail == "limit price 40500 vs mid 40000 USDT"
    assert result.reason.startswith(f"price_collar: observed 125 bps, limit 100 bps from mid (INSTRUMENT:{BTC_USDT})")


def test_price_collar_fat_finger_price_far_from_a_tiny_mid_denies_instead_of_raising(engine, store, clock, strategy):
    # Arrange: a low-priced coin (mid 0.00001 USDT) and a limit price 10**16 USDT: 10**25 bps away,
    # more digits than Decimal's default 28-digit context can quantize to 4 places.
    pepe = "BINANCE-SPOT:SPOT_PAIR:PEPE-USDT"
    listing = InstrumentFactory(instrument_key=pepe, base_currency="PEPE", tick_size=Decimal("0.00000001"),
                                lot_size=Decimal("1"), min_quantity=None, max_quantity=None, min_notional=None)
    publish_quote(store, pepe, mid=Decimal("0.00001"), ts=clock.now, half_spread=Decimal("0.00000001"))
    RiskLimitFactory(kind=K.PRICE_COLLAR_BPS, value=Decimal("100"))

    # Act
    result = evaluate(engine, listing, instrument=pepe, quantity=Decimal("1"), price=Decimal("10") ** 16)

    # Assert
    check = only_check(result, "price_collar")
    assert not check.passed
    assert check.observed == "9999999999999999999990000"
    assert [c.check for c in result.failures] == ["price_collar"]


def test_price_collar_without_reference_fails_closed(engine, listing):
    # Arrange
    RiskLimitFactory(kind=K.PRICE_COLLAR_BPS, value=Decimal("100"))

    # Act
    result = evaluate(engine, listing)

    # Assert
    assert [c.check for c in result.failures] == ["reference_price", "price_collar"]
    assert only_check(result, "price_collar").detail == f"no reference mid: missing: no market data for {BTC_USDT}"


# --- dry run ----------------------------------------------------------------------------------------
def test_dry_run_records_nothing(engine, listing, fresh_quote):
    # Arrange
    for kind, value in WIDE_LIMITS.items():
        RiskLimitFactory(kind=kind, value=Decimal(value))

    # Act
    result = engine.evaluate(intent=order_intent(), listing=listing, venue=listing.venue, dry_run=True)

    # Assert
    assert result.passed
    assert result.recorded is False
    assert VelocityBucket.objects.count() == 0
    assert OpenOrderExposure.objects.count() == 0
