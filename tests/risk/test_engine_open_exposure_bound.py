"""PreTradeRiskEngine: open-order totals that NUMERIC(36,18) cannot store deny the order, naming the check.

Every order below the per-order notional bound (odum_live.fields.NUMERIC_BOUND = 10**18) passes on its own;
the running total of a strategy's open orders in one listing and side (risk.models.OpenOrderExposure) is
NUMERIC(36,18) as well, so the order that would take it to 10**18 or more is DENIED, not a database error
(PostgreSQL: "numeric field overflow", a 500) nor a figure SQLite would store rounded.
"""

from decimal import Decimal

import pytest

from risk.models import OpenOrderExposure, RiskLimit, Scope, VelocityBucket
from tests.risk.conftest import only_check, submit
from tests.risk.factories import RiskLimitFactory, order_intent

pytestmark = pytest.mark.django_db
HUGE_PRICE = Decimal("66666666666666")  # × 9000 (the listing's maximum quantity) ≈ 6 × 10**17 USDT


def huge(**fields):
    return order_intent(quantity=Decimal("9000"), price=HUGE_PRICE, **fields)


def test_open_exposure_total_reaching_the_storage_bound_denies_naming_the_check(engine, listing, strategy):
    # Arrange: one huge order is open
    first, _ = submit(engine, intent=huge(), listing=listing)
    assert first.passed

    # Act: a second one would take Σ quantity × price to 1.2 × 10**18
    result, order = submit(engine, intent=huge(), listing=listing)

    # Assert
    assert not result.passed
    assert order.status == "DENIED"
    check = only_check(result, "open_exposure")
    assert (check.passed, check.scope) == (False, "SYSTEM")
    assert check.observed == "1199999999999988000"
    assert result.reason.startswith("open_exposure: observed 1199999999999988000 USDT, limit below "
                                    "1000000000000000000 USDT (SYSTEM)")
    assert not result.recorded
    row = OpenOrderExposure.objects.get()
    assert (row.leaves_quantity, row.priced_value) == (Decimal("9000"), Decimal("9000") * HUGE_PRICE)


def test_open_exposure_total_of_the_other_side_is_its_own(engine, listing, strategy):
    # Arrange
    assert submit(engine, intent=huge(), listing=listing)[0].passed

    # Act
    result, _ = submit(engine, intent=huge(side="SELL"), listing=listing)

    # Assert
    assert result.passed


def test_open_exposure_what_if_over_the_storage_bound_denies(engine, listing, strategy):
    # Arrange
    assert submit(engine, intent=huge(), listing=listing)[0].passed

    # Act
    result = engine.evaluate(intent=huge(), listing=listing, venue=listing.venue, dry_run=True)

    # Assert
    assert not result.passed
    assert not only_check(result, "open_exposure").passed


def test_open_exposure_denied_order_is_not_counted_in_velocity(engine, listing, strategy):
    # Arrange
    RiskLimitFactory(scope=Scope.STRATEGY, scope_key="demo", kind=RiskLimit.Kind.MAX_ORDERS_PER_SECOND,
                     value=Decimal("10"))
    assert submit(engine, intent=huge(), listing=listing)[0].passed

    # Act
    result, _ = submit(engine, intent=huge(), listing=listing)

    # Assert: only the order that passed uses the window
    assert not only_check(result, "open_exposure").passed
    assert VelocityBucket.objects.get().count == 1


def test_velocity_denied_order_leaves_no_open_exposure(engine, listing, strategy):
    # Arrange
    RiskLimitFactory(scope=Scope.STRATEGY, scope_key="demo", kind=RiskLimit.Kind.MAX_ORDERS_PER_SECOND,
                     value=Decimal("1"))
    assert submit(engine, intent=order_intent(quantity=Decimal("1")), listing=listing)[0].passed

    # Act
    result, _ = submit(engine, intent=order_intent(quantity=Decimal("2")), listing=listing)

    # Assert
    assert not only_check(result, "velocity").passed
    assert not result.recorded
    assert OpenOrderExposure.objects.get().leaves_quantity == Decimal("1")
