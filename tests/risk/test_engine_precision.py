"""Pre-trade risk arithmetic is exact: products and sums of NUMERIC(36,18) values are not rounded to 28 digits.

Python's default decimal context keeps 28 significant digits, but a quantity and a price of NUMERIC(36,18)
hold up to 36 each: their product needs up to 72. A check compared against the rounded product, or a running
total (risk.models.OpenOrderExposure) fed with it, is off by far more than the column's 10**-18.
"""

from decimal import ROUND_UP, Decimal, localcontext

import pytest
from django.db import connection, transaction

from orders.exposure import order_exposure_changed
from orders.models import Order
from risk.models import OpenOrderExposure, RiskLimit, Scope
from risk.services import open_exposure_rebuild
from tests.risk.conftest import only_check, submit
from tests.risk.factories import RiskLimitFactory, order_intent
from tests.venues.factories import InstrumentFactory

K = RiskLimit.Kind
pytestmark = pytest.mark.django_db

QUANTITY = Decimal("123456789.123456789123456789")
PRICE = Decimal("98765.432109876543210987")
#: QUANTITY × PRICE rounded to the default context's 28 significant digits (the exact product is larger).
PRODUCT_28_DIGITS = Decimal("12193263124676.11633592432086")
EXACT_PRODUCT = Decimal("12193263124676.116335924320864474057751991204540743")

stored_exactly = pytest.mark.skipif(
    connection.vendor == "sqlite",
    reason="SQLite keeps NUMERIC values as doubles (15 digits): nothing is stored exactly",
)


def _exact(value):
    with localcontext() as ctx:
        ctx.prec = 120
        return value()


def _stored(value: Decimal) -> Decimal:
    # The rule the open-order totals store an amount by: 18 places, rounded away from zero.
    return _exact(lambda: value.quantize(Decimal("1e-18"), rounding=ROUND_UP))


@pytest.fixture
def fine_listing(db, strategy):
    # Lot and tick of 10**-18: any NUMERIC(36,18) quantity and price is a whole number of them.
    return InstrumentFactory(lot_size=Decimal("1e-18"), tick_size=Decimal("1e-18"), min_quantity=None,
                             max_quantity=None)


def test_precision_constants_are_what_the_default_context_makes_of_the_product():
    # Arrange / Act / Assert: the premise of the tests below
    assert QUANTITY * PRICE == PRODUCT_28_DIGITS
    assert _exact(lambda: QUANTITY * PRICE) == EXACT_PRODUCT


def test_max_order_notional_a_hair_above_the_limit_denies_though_28_digits_round_it_to_the_limit(engine,
                                                                                                fine_listing):
    # Arrange: the limit is the 28-digit rounding of the order's notional, 4.47 × 10**-15 below the exact one
    RiskLimitFactory(scope=Scope.STRATEGY, scope_key="demo", kind=K.MAX_ORDER_NOTIONAL, value=PRODUCT_28_DIGITS)

    # Act
    with transaction.atomic():
        result = engine.evaluate(intent=order_intent(quantity=QUANTITY, price=PRICE), listing=fine_listing,
                                 venue=fine_listing.venue, dry_run=True)

    # Assert
    check = only_check(result, "max_order_notional")
    assert not check.passed
    assert check.observed == "12193263124676.116335924320864474057751991204540743"


@stored_exactly
def test_open_exposure_total_stores_the_exact_product_rounded_up_to_18_places(engine, fine_listing):
    # Act
    result, _ = submit(engine, intent=order_intent(quantity=QUANTITY, price=PRICE), listing=fine_listing)

    # Assert
    assert result.passed
    total = OpenOrderExposure.objects.get()
    assert total.priced_value == _stored(EXACT_PRODUCT) == Decimal("12193263124676.116335924320864475")


@stored_exactly
def test_open_exposure_partial_fill_leaves_the_remaining_orders_value_and_cancel_leaves_zero(engine,
                                                                                             fine_listing):
    # Arrange
    _, order = submit(engine, intent=order_intent(quantity=QUANTITY, price=PRICE), listing=fine_listing)
    filled = Decimal("23456789.123456789123456789")

    # Act: a fill leaving 100000000 open, then the rest canceled
    order.status, order.filled_quantity = Order.Status.PARTIALLY_FILLED, filled
    order_exposure_changed(order=order, previous_status=Order.Status.ROUTED, previous_filled_quantity=Decimal("0"))
    after_fill = OpenOrderExposure.objects.get()
    order.status = Order.Status.CANCELED
    order_exposure_changed(order=order, previous_status=Order.Status.PARTIALLY_FILLED,
                           previous_filled_quantity=filled)
    after_cancel = OpenOrderExposure.objects.get()

    # Assert: the total is always the open orders' value, whatever the steps
    assert after_fill.leaves_quantity == Decimal("100000000")
    assert after_fill.priced_value == _stored(_exact(lambda: Decimal("100000000") * PRICE))
    assert (after_cancel.leaves_quantity, after_cancel.priced_value) == (0, 0)


@stored_exactly
def test_open_exposure_release_of_a_29_digit_open_quantity_is_exact(engine, strategy, fresh_quote):
    # Arrange: quantity − filled quantity has 29 significant digits
    listing = InstrumentFactory(lot_size=Decimal("1e-18"), tick_size=Decimal("0.01"), min_quantity=None,
                                max_quantity=None, min_notional=None)
    quantity = Decimal("12345678901.123456789012345678")
    _, order = submit(engine, intent=order_intent(quantity=quantity, price=None, order_type="MARKET"),
                      listing=listing)
    filled = Decimal("0.000000000000000001")

    # Act
    order.status, order.filled_quantity = Order.Status.PARTIALLY_FILLED, filled
    order_exposure_changed(order=order, previous_status=Order.Status.ROUTED, previous_filled_quantity=Decimal("0"))

    # Assert
    assert OpenOrderExposure.objects.get().leaves_quantity == Decimal("12345678901.123456789012345677")


@stored_exactly
def test_open_exposure_rebuild_finds_no_drift_in_totals_kept_by_the_storage_rule(engine, fine_listing):
    # Arrange: an order whose value has more than 18 decimal places, partly filled
    _, order = submit(engine, intent=order_intent(quantity=QUANTITY, price=PRICE), listing=fine_listing)
    order.status, order.filled_quantity = Order.Status.PARTIALLY_FILLED, Decimal("0.000000000000000007")
    order.save()
    order_exposure_changed(order=order, previous_status=Order.Status.ROUTED, previous_filled_quantity=Decimal("0"))
    kept = OpenOrderExposure.objects.get().priced_value

    # Act
    drift = open_exposure_rebuild()

    # Assert
    assert drift == ()
    assert OpenOrderExposure.objects.get().priced_value == kept
