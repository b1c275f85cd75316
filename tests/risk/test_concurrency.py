"""Concurrent orders never jointly breach a velocity, position, exposure or repeated-order limit.

Real PostgreSQL, real commits: every thread opens its own connection and transaction, evaluates
(``dry_run=False``) and inserts its order as the submit service does, then commits. Every order
would on its own fit the limit, and each fills it by 1/limit, so exactly ``limit`` orders may pass.
Without the engine's locks these tests fail (checked by disabling ``risk.locks.acquire``).
"""

from decimal import Decimal

import pytest

from orders.models import Order
from risk.models import OpenOrderExposure, RiskLimit, Scope, VelocityBucket
from risk.services import open_exposure_rebuild
from tests.helpers import run_concurrently as run_all_threads
from tests.orders.factories import StrategyFactory
from tests.positions.factories import PositionFactory
from tests.risk.conftest import BTC_USDT, MID, publish_quote, submit
from tests.risk.factories import RiskLimitFactory, order_intent
from tests.venues.factories import InstrumentFactory, VenueFactory

K = RiskLimit.Kind
pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
THREADS = 24
ETH_USDT = "BINANCE-SPOT:SPOT_PAIR:ETH-USDT"


def run_concurrently(count, work):
    """Run ``work(i)`` in ``count`` threads released together; assert none raised; return the results."""
    results, errors = run_all_threads(count, work)
    assert not errors, errors
    return results


@pytest.fixture
def strategies(db):
    return [StrategyFactory(id=sid).id for sid in ("demo", "s1", "s2", "s3")]


def statuses():
    return sorted(Order.objects.values_list("status", flat=True))


def test_velocity_strategy_limit_concurrent_orders_admit_exactly_the_limit(engine, listing):
    # Arrange
    RiskLimitFactory(scope=Scope.STRATEGY, scope_key="demo", kind=K.MAX_ORDERS_PER_SECOND, value=Decimal("5"))

    # Act
    results = run_concurrently(THREADS, lambda i: submit(
        engine, intent=order_intent(quantity=Decimal("0.01") + Decimal(i) / 1000), listing=listing,
        operation_id=f"op-{i}")[0].passed)

    # Assert
    assert results.count(True) == 5
    assert Order.objects.filter(status=Order.Status.ROUTED).count() == 5
    assert VelocityBucket.objects.get().count == 5


def test_velocity_global_limit_concurrent_orders_of_many_strategies_admit_exactly_the_limit(engine, listing,
                                                                                           strategies):
    # Arrange
    RiskLimitFactory(kind=K.MAX_ORDERS_PER_MINUTE, value=Decimal("6"))

    # Act
    results = run_concurrently(THREADS, lambda i: submit(
        engine, intent=order_intent(strategy_id=strategies[i % 4]), listing=listing, operation_id=f"op-{i}")[0].passed)

    # Assert
    assert results.count(True) == 6
    assert Order.objects.filter(status=Order.Status.ROUTED).count() == 6


def test_position_limit_strategy_concurrent_orders_admit_exactly_the_limit(engine, listing):
    # Arrange
    RiskLimitFactory(scope=Scope.STRATEGY, scope_key="demo", kind=K.MAX_POSITION_QUANTITY, value=Decimal("5"))

    # Act
    results = run_concurrently(THREADS, lambda i: submit(
        engine, intent=order_intent(quantity=Decimal("1")), listing=listing, operation_id=f"op-{i}")[0].passed)

    # Assert
    assert results.count(True) == 5
    assert OpenOrderExposure.objects.get().leaves_quantity == Decimal("5")


def test_position_limit_global_concurrent_orders_of_many_strategies_admit_exactly_the_limit(engine, listing,
                                                                                           strategies):
    # Arrange
    RiskLimitFactory(scope=Scope.INSTRUMENT, scope_key="ANY:SPOT_PAIR:BTC-USDT", kind=K.MAX_POSITION_QUANTITY,
                     value=Decimal("5"))

    # Act
    results = run_concurrently(THREADS, lambda i: submit(
        engine, intent=order_intent(strategy_id=strategies[i % 4], quantity=Decimal("1")), listing=listing,
        operation_id=f"op-{i}")[0].passed)

    # Assert
    assert results.count(True) == 5
    assert sum(OpenOrderExposure.objects.values_list("leaves_quantity", flat=True)) == Decimal("5")


def test_position_limit_concurrent_orders_in_contracts_of_different_sizes_admit_exactly_the_limit(strategies,
                                                                                                  engine):
    # Arrange: one BTC perpetual on two venues, 1 BTC per Binance contract, 0.01 BTC per OKX contract; the firm
    # holds 200 OKX contracts (2 BTC) and may hold 5 BTC; every order is 1 BTC (1 or 100 contracts)
    listings = [
        InstrumentFactory(venue=VenueFactory(code=code, adapter=code.lower()),
                          instrument_key=f"{code}:PERPETUAL:BTC-USDT@LIN", contract_multiplier=Decimal(multiplier),
                          lot_size=Decimal("1"), min_notional=None)
        for code, multiplier in (("BINANCE-FUTURES", "1"), ("OKX", "0.01"))
    ]
    RiskLimitFactory(scope=Scope.INSTRUMENT, scope_key="ANY:PERPETUAL:BTC-USDT@LIN", kind=K.MAX_POSITION_QUANTITY,
                     value=Decimal("5"))
    PositionFactory(strategy_id=strategies[1], venue="OKX", instrument_key="OKX:PERPETUAL:BTC-USDT@LIN",
                    equivalence_key="PERPETUAL:BTC-USDT@LIN", quantity=Decimal("200"), avg_entry_price=MID)

    def work(i):
        listing = listings[i % 2]
        quantity = Decimal("1") / listing.contract_multiplier
        intent = order_intent(strategy_id=strategies[i % 4], instrument=listing.instrument_key, quantity=quantity)
        return submit(engine, intent=intent, listing=listing, operation_id=f"op-{i}")[0].passed

    # Act
    results = run_concurrently(THREADS, work)

    # Assert
    assert results.count(True) == 3
    assert open_exposure_rebuild() == ()


def test_gross_exposure_global_concurrent_orders_in_two_instruments_admit_exactly_the_limit(engine, listing,
                                                                                           strategies):
    # Arrange: every order is 400 USDT of notional (0.01 BTC @ 40000, 0.2 ETH @ 2000)
    eth = InstrumentFactory(instrument_key=ETH_USDT, base_currency="ETH")
    RiskLimitFactory(kind=K.MAX_GROSS_EXPOSURE, value=Decimal("2000"))

    def work(i):
        if i % 2:
            intent = order_intent(strategy_id=strategies[i % 4], instrument=ETH_USDT, quantity=Decimal("0.2"),
                                  price=Decimal("2000"))
            return submit(engine, intent=intent, listing=eth, operation_id=f"op-{i}")[0].passed
        intent = order_intent(strategy_id=strategies[i % 4], quantity=Decimal("0.01"), price=MID)
        return submit(engine, intent=intent, listing=listing, operation_id=f"op-{i}")[0].passed

    # Act
    results = run_concurrently(THREADS, work)

    # Assert
    assert results.count(True) == 5
    assert sum(OpenOrderExposure.objects.values_list("priced_value", flat=True)) == Decimal("2000")


def test_repeated_order_concurrent_identical_orders_admit_exactly_one(engine, listing):
    # Arrange
    RiskLimitFactory(scope=Scope.STRATEGY, scope_key="demo", kind=K.REPEATED_ORDER_WINDOW_SECS, value=Decimal("60"))

    # Act
    results = run_concurrently(16, lambda i: submit(
        engine, intent=order_intent(), listing=listing, operation_id=f"op-{i}")[0].passed)

    # Assert
    assert results.count(True) == 1


def test_every_limit_kind_concurrent_mixed_orders_finish_and_keep_totals_exact(engine, listing, strategies, store,
                                                                               clock):
    # Arrange: every stateful limit at GLOBAL and STRATEGY (different lock sets per order), both sides
    publish_quote(store, BTC_USDT, mid=MID, ts=clock.now)
    for scope, key in [(Scope.GLOBAL, "")] + [(Scope.STRATEGY, s) for s in strategies]:
        for kind, value in ((K.MAX_ORDERS_PER_SECOND, "1000"), (K.MAX_POSITION_QUANTITY, "3"),
                            (K.MAX_GROSS_EXPOSURE, "1000000"), (K.REPEATED_ORDER_WINDOW_SECS, "60"),
                            (K.PRICE_COLLAR_BPS, "100")):
            RiskLimitFactory(scope=scope, scope_key=key, kind=kind, value=Decimal(value))

    def work(i):
        intent = order_intent(strategy_id=strategies[i % 4], side="BUY" if i % 3 else "SELL",
                              quantity=Decimal("0.5") + Decimal(i) / 100)
        return submit(engine, intent=intent, listing=listing, operation_id=f"op-{i}")[0].passed

    # Act
    results = run_concurrently(32, work)

    # Assert: the running totals equal the sums over the order table
    assert results.count(True) > 0
    assert open_exposure_rebuild() == ()
