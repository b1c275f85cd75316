"""risk.selectors (scope matching, one query) and risk.locks (transaction guard, PostgreSQL locks)."""

import threading
from decimal import Decimal

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from odum_live.instruments import parse_instrument_key
from risk import locks
from risk.engine import PreTradeRiskEngine
from risk.models import RiskLimit, Scope, TradingState
from risk.selectors import instrument_scope_matches, risk_controls_for_order
from tests.risk.factories import RiskLimitFactory, TradingStateFactory, order_intent

K = RiskLimit.Kind
BTC_USDT = "BINANCE-SPOT:SPOT_PAIR:BTC-USDT"


@pytest.mark.parametrize(
    ("scope_key", "matches"),
    [
        (BTC_USDT, True),
        ("ANY:SPOT_PAIR:BTC-USDT", True),
        ("CRYPTO:ANY:SPOT_PAIR:BTC-USDT", True),
        (f"CRYPTO:{BTC_USDT}", True),
        ("OKX:SPOT_PAIR:BTC-USDT", False),
        ("ANY:SPOT_PAIR:ETH-USDT", False),
        ("ANY:PERPETUAL:BTC-USDT@LIN", False),
        ("garbage", False),
    ],
)
def test_instrument_scope_matches_listing_or_any_key_of_the_same_instrument(scope_key, matches):
    # Act / Assert
    assert instrument_scope_matches(scope_key=scope_key, instrument=parse_instrument_key(BTC_USDT)) is matches


@pytest.mark.django_db
def test_risk_controls_for_order_selects_matching_scopes_in_one_query(django_assert_num_queries):
    # Arrange
    matching = [
        RiskLimitFactory(scope=Scope.GLOBAL, scope_key="", kind=K.MAX_ORDER_QUANTITY),
        RiskLimitFactory(scope=Scope.VENUE, scope_key="BINANCE-SPOT", kind=K.MAX_ORDER_QUANTITY),
        RiskLimitFactory(scope=Scope.STRATEGY, scope_key="demo", kind=K.MAX_ORDER_QUANTITY),
        RiskLimitFactory(scope=Scope.INSTRUMENT, scope_key="ANY:SPOT_PAIR:BTC-USDT", kind=K.MAX_ORDER_QUANTITY),
    ]
    RiskLimitFactory(scope=Scope.STRATEGY, scope_key="other", kind=K.MAX_ORDER_QUANTITY)
    RiskLimitFactory(scope=Scope.VENUE, scope_key="OKX", kind=K.MAX_ORDER_QUANTITY)
    RiskLimitFactory(scope=Scope.INSTRUMENT, scope_key="ANY:SPOT_PAIR:ETH-USDT", kind=K.MAX_ORDER_QUANTITY)
    RiskLimitFactory(scope=Scope.INSTRUMENT, scope_key="OKX:SPOT_PAIR:BTC-USDT", kind=K.MAX_ORDER_QUANTITY)
    RiskLimitFactory(scope=Scope.INSTRUMENT, scope_key="BINANCE-SPOT:SPOTXPAIR:BTC-USDT", kind=K.MAX_ORDER_QUANTITY)
    RiskLimitFactory(scope=Scope.GLOBAL, scope_key="", kind=K.MAX_ORDER_NOTIONAL, enabled=False)
    TradingStateFactory(scope=Scope.STRATEGY, scope_key="demo", state=TradingState.State.HALTED, reason="x")
    TradingStateFactory(scope=Scope.GLOBAL, scope_key="", state=TradingState.State.ACTIVE, reason="y")

    # Act
    with django_assert_num_queries(1):
        controls = risk_controls_for_order(strategy_id="demo", venue_code="BINANCE-SPOT",
                                           instrument=parse_instrument_key(BTC_USDT))

    # Assert
    assert {(lim.scope, lim.scope_key) for lim in controls.limits} == {(m.scope, m.scope_key) for m in matching}
    assert all(lim.value == Decimal("10") for lim in controls.limits)
    assert [(s.scope_label, s.state, s.reason) for s in controls.states] == [("STRATEGY:demo", "HALTED", "x")]


def test_lock_key_is_a_stable_signed_32_bit_int():
    # Act
    key = locks.lock_key("STRATEGY:demo")

    # Assert
    assert key == locks.lock_key("STRATEGY:demo") != locks.lock_key("STRATEGY:demo2")
    assert -(2**31) <= key < 2**31


@pytest.mark.django_db(transaction=True)
def test_evaluate_recording_outside_a_transaction_raises(listing):
    # Act / Assert
    with pytest.raises(locks.TransactionRequired):
        PreTradeRiskEngine().evaluate(intent=order_intent(), listing=listing, venue=listing.venue)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_acquire_holds_the_advisory_lock_until_the_transaction_ends():
    # Arrange
    seen = {}

    def try_from_another_connection(name):
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)",
                           [locks.LOCK_NAMESPACE, locks.lock_key("STRATEGY:demo")])
            seen[name] = cursor.fetchone()[0]
        connections.close_all()

    # Act
    with transaction.atomic():
        taken = locks.acquire(resources=["STRATEGY:demo", "GLOBAL", "STRATEGY:demo"])
        thread = threading.Thread(target=try_from_another_connection, args=("inside",))
        thread.start()
        thread.join()
    thread = threading.Thread(target=try_from_another_connection, args=("after",))
    thread.start()
    thread.join()

    # Assert
    assert taken == tuple(sorted({locks.lock_key("STRATEGY:demo"), locks.lock_key("GLOBAL")}))
    assert seen == {"inside": False, "after": True}


@pytest.mark.postgres
@pytest.mark.django_db
def test_evaluate_recording_every_limit_kind_runs_six_queries_on_postgres(engine, listing, fresh_quote):
    # Arrange: the benchmark's configuration, every kind at GLOBAL and STRATEGY
    for scope, key in ((Scope.GLOBAL, ""), (Scope.STRATEGY, "demo")):
        for kind in K.values:
            RiskLimitFactory(scope=scope, scope_key=key, kind=kind, value=Decimal("1000000"))
    with transaction.atomic():  # the first order of a window also prunes finished windows
        engine.evaluate(intent=order_intent(quantity=Decimal("0.02")), listing=listing, venue=listing.venue)

    # Act
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        result = engine.evaluate(intent=order_intent(), listing=listing, venue=listing.venue)

    # Assert: limits+states, locks, positions+open totals, repeat count, velocity upsert, exposure upsert
    assert result.passed, result.reason
    assert len(queries) == 6, [q["sql"][:80] for q in queries]


@pytest.mark.postgres
@pytest.mark.django_db
def test_evaluate_recording_without_limits_runs_two_queries_on_postgres(engine, listing):
    # Act
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        result = engine.evaluate(intent=order_intent(), listing=listing, venue=listing.venue)

    # Assert: limits+states, exposure upsert (no lock, no exposure read without stateful limits)
    assert result.passed
    assert len(queries) == 2, [q["sql"][:80] for q in queries]


@pytest.mark.django_db(transaction=True)
def test_evaluate_dry_run_outside_a_transaction_locks_and_writes_nothing(listing, clock, store):
    # Arrange
    for kind in K.values:
        RiskLimitFactory(kind=kind, value=Decimal("1000000"))
    engine = PreTradeRiskEngine(market_data_store=store, clock=clock)

    # Act
    with CaptureQueriesContext(connection) as queries:
        result = engine.evaluate(intent=order_intent(), listing=listing, venue=listing.venue, dry_run=True)

    # Assert
    assert not result.recorded
    assert [q["sql"].split()[0].upper() for q in queries] == ["SELECT"] * len(queries)
    assert not any("pg_advisory" in q["sql"] for q in queries)
