"""PreTradeRiskEngine: velocity (orders per second / minute) and the repeated-order throttle."""

from decimal import Decimal

import pytest
from django.db import transaction

from orders.models import Order
from risk.models import RiskLimit, Scope, VelocityBucket
from tests.orders.factories import OrderFactory, StrategyFactory
from tests.risk.conftest import checks_named, only_check, submit
from tests.risk.factories import RiskLimitFactory, order_intent

K = RiskLimit.Kind
pytestmark = pytest.mark.django_db


def dry(engine, listing, **intent_fields):
    return engine.evaluate(intent=order_intent(**intent_fields), listing=listing, venue=listing.venue, dry_run=True)


def test_velocity_per_second_strategy_limit_denies_the_order_over_it(engine, listing):
    # Arrange
    RiskLimitFactory(scope=Scope.STRATEGY, scope_key="demo", kind=K.MAX_ORDERS_PER_SECOND, value=Decimal("2"))

    # Act
    results = [submit(engine, intent=order_intent(quantity=Decimal(f"0.0{i + 1}")), listing=listing)[0]
               for i in range(3)]

    # Assert
    assert [r.passed for r in results] == [True, True, False]
    check = only_check(results[2], "velocity")
    assert (check.limit, check.observed, check.scope) == ("2 orders/s (STRATEGY:demo)", "3", "STRATEGY:demo")
    assert results[2].reason.startswith("velocity: observed 3 orders, limit 2 orders/s (STRATEGY:demo) — 3 orders including")
    assert VelocityBucket.objects.get().count == 2  # the denied order is not counted


def test_velocity_new_window_admits_again_and_prunes_old_windows(engine, listing, clock):
    # Arrange
    RiskLimitFactory(kind=K.MAX_ORDERS_PER_SECOND, value=Decimal("1"))
    assert submit(engine, intent=order_intent(), listing=listing)[0].passed
    assert not submit(engine, intent=order_intent(quantity=Decimal("0.02")), listing=listing)[0].passed

    # Act
    clock.advance(1)
    result, _ = submit(engine, intent=order_intent(quantity=Decimal("0.03")), listing=listing)

    # Assert
    assert result.passed
    bucket = VelocityBucket.objects.get()  # the finished window's row is gone
    assert (bucket.scope_key, bucket.count, bucket.window_start) == ("GLOBAL::1s", 1, clock.now.replace(microsecond=0))


def test_velocity_per_minute_global_limit_counts_every_strategy(engine, listing):
    # Arrange
    StrategyFactory(id="other")
    RiskLimitFactory(kind=K.MAX_ORDERS_PER_MINUTE, value=Decimal("2"))
    submit(engine, intent=order_intent(strategy_id="demo"), listing=listing)
    submit(engine, intent=order_intent(strategy_id="other"), listing=listing)

    # Act
    result, _ = submit(engine, intent=order_intent(strategy_id="demo", quantity=Decimal("0.02")), listing=listing)

    # Assert
    check = only_check(result, "velocity")
    assert not check.passed
    assert (check.limit, check.observed) == ("2 orders/min (GLOBAL)", "3")


def test_velocity_one_full_window_counts_nothing_in_the_others(engine, listing):
    # Arrange: the minute window has room, the strategy's second window does not
    RiskLimitFactory(kind=K.MAX_ORDERS_PER_MINUTE, value=Decimal("100"))
    RiskLimitFactory(scope=Scope.STRATEGY, scope_key="demo", kind=K.MAX_ORDERS_PER_SECOND, value=Decimal("1"))
    submit(engine, intent=order_intent(), listing=listing)

    # Act
    result, _ = submit(engine, intent=order_intent(quantity=Decimal("0.02")), listing=listing)

    # Assert
    assert [(c.scope, c.passed, c.observed) for c in checks_named(result, "velocity")] == [
        ("GLOBAL", True, "2"), ("STRATEGY:demo", False, "2"),
    ]
    assert dict(VelocityBucket.objects.values_list("scope_key", "count")) == {"GLOBAL::60s": 1, "STRATEGY:demo:1s": 1}


def test_velocity_zero_limit_denies_every_order(engine, listing):
    # Arrange
    RiskLimitFactory(kind=K.MAX_ORDERS_PER_SECOND, value=Decimal("0"))

    # Act
    result, _ = submit(engine, intent=order_intent(), listing=listing)

    # Assert
    assert (only_check(result, "velocity").passed, only_check(result, "velocity").observed) == (False, "1")
    assert not VelocityBucket.objects.exists()


def test_velocity_dry_run_reads_counts_without_counting(engine, listing):
    # Arrange
    RiskLimitFactory(kind=K.MAX_ORDERS_PER_SECOND, value=Decimal("1"))
    submit(engine, intent=order_intent(), listing=listing)

    # Act
    what_if = dry(engine, listing, quantity=Decimal("0.02"))

    # Assert
    assert only_check(what_if, "velocity").observed == "2"
    assert not what_if.passed
    assert VelocityBucket.objects.get().count == 1


def test_velocity_order_denied_by_another_check_is_not_counted(engine, listing):
    # Arrange
    RiskLimitFactory(kind=K.MAX_ORDERS_PER_SECOND, value=Decimal("5"))
    RiskLimitFactory(kind=K.MAX_ORDER_QUANTITY, value=Decimal("1"))

    # Act
    result, _ = submit(engine, intent=order_intent(quantity=Decimal("2")), listing=listing)

    # Assert
    assert only_check(result, "velocity").passed
    assert not result.passed
    assert not VelocityBucket.objects.exists()


def test_velocity_instrument_scope_counts_orders_in_that_instrument(engine, listing):
    # Arrange
    RiskLimitFactory(scope=Scope.INSTRUMENT, scope_key="ANY:SPOT_PAIR:BTC-USDT", kind=K.MAX_ORDERS_PER_SECOND,
                     value=Decimal("1"))
    submit(engine, intent=order_intent(), listing=listing)

    # Act
    result, _ = submit(engine, intent=order_intent(quantity=Decimal("0.02")), listing=listing)

    # Assert
    assert only_check(result, "velocity").limit == "1 orders/s (INSTRUMENT:ANY:SPOT_PAIR:BTC-USDT)"
    assert not result.passed


# --- repeated orders ------------------------------------------------------------------------------
def test_repeated_order_same_strategy_listing_side_quantity_in_window_denies(engine, listing):
    # Arrange
    RiskLimitFactory(scope=Scope.STRATEGY, scope_key="demo", kind=K.REPEATED_ORDER_WINDOW_SECS, value=Decimal("5"))
    first, _ = submit(engine, intent=order_intent(), listing=listing)

    # Act
    repeat, _ = submit(engine, intent=order_intent(price=Decimal("40001")), listing=listing)

    # Assert
    assert first.passed
    check = only_check(repeat, "repeated_order")
    assert not check.passed
    assert (check.limit, check.observed) == ("no identical order within 5 s (STRATEGY:demo)", "1")


@pytest.mark.parametrize(
    "changes",
    [{"quantity": Decimal("0.02")}, {"side": "SELL"}, {"strategy_id": "other"}],
)
def test_repeated_order_differing_in_quantity_side_or_strategy_passes(engine, listing, changes):
    # Arrange
    StrategyFactory(id="other")
    RiskLimitFactory(kind=K.REPEATED_ORDER_WINDOW_SECS, value=Decimal("5"))
    submit(engine, intent=order_intent(), listing=listing)

    # Act
    result, _ = submit(engine, intent=order_intent(**changes), listing=listing)

    # Assert
    assert only_check(result, "repeated_order").passed


def test_repeated_order_denied_orders_do_not_count(engine, listing):
    # Arrange: the first order is denied by a quantity limit that is then lifted
    RiskLimitFactory(kind=K.REPEATED_ORDER_WINDOW_SECS, value=Decimal("5"))
    cap = RiskLimitFactory(kind=K.MAX_ORDER_QUANTITY, value=Decimal("0.001"))
    _, order = submit(engine, intent=order_intent(), listing=listing)
    cap.delete()

    # Act
    result, _ = submit(engine, intent=order_intent(), listing=listing)

    # Assert
    assert order.status == Order.Status.DENIED
    assert only_check(result, "repeated_order").observed == "0"
    assert result.passed


def test_repeated_order_an_algorithm_child_slice_does_not_count(engine, listing):
    # Arrange: the strategy's TWAP BUY 1 has sent a slice of 0.1 (a child the strategy never sent itself)
    RiskLimitFactory(kind=K.REPEATED_ORDER_WINDOW_SECS, value=Decimal("5"))
    _, parent = submit(engine, intent=order_intent(quantity=Decimal("1")), listing=listing)
    OrderFactory(strategy=parent.strategy, parent=parent, operation_id="child:slice-1", quantity=Decimal("0.1"))

    # Act
    result, _ = submit(engine, intent=order_intent(quantity=Decimal("0.1")), listing=listing)

    # Assert
    assert only_check(result, "repeated_order").observed == "0"
    assert result.passed, result.reason


def test_repeated_order_outside_window_passes(engine, listing, clock):
    # Arrange
    RiskLimitFactory(kind=K.REPEATED_ORDER_WINDOW_SECS, value=Decimal("5"))
    submit(engine, intent=order_intent(), listing=listing)

    # Act: the engine's clock is 5 s behind the rows' created_at; 11 s later is past the window
    clock.advance(11)
    result, _ = submit(engine, intent=order_intent(), listing=listing)

    # Assert
    assert only_check(result, "repeated_order").passed


def test_repeated_order_zero_window_turns_throttle_off(engine, listing):
    # Arrange
    RiskLimitFactory(kind=K.REPEATED_ORDER_WINDOW_SECS, value=Decimal("0"))
    submit(engine, intent=order_intent(), listing=listing)

    # Act
    with transaction.atomic():
        result = engine.evaluate(intent=order_intent(), listing=listing, venue=listing.venue)

    # Assert
    assert result.passed
    assert only_check(result, "repeated_order").detail == "window is 0 s: throttle off"


def test_repeated_order_window_longer_than_the_calendar_still_denies_the_repeat(engine, listing):
    # Arrange: a risk manager's "never repeat" window of 10**17 s (NUMERIC(36,18) allows it) reaches
    # before year 1, where datetime cannot go.
    RiskLimitFactory(kind=K.REPEATED_ORDER_WINDOW_SECS, value=Decimal("100000000000000000"))
    first, _ = submit(engine, intent=order_intent(), listing=listing)

    # Act
    with transaction.atomic():
        result = engine.evaluate(intent=order_intent(), listing=listing, venue=listing.venue)

    # Assert
    assert first.passed
    check = only_check(result, "repeated_order")
    assert (check.passed, check.observed) == (False, "1")
    assert check.limit == "no identical order within 100000000000000000 s (GLOBAL)"
