"""orders.exposure: the order-table side of pre-trade risk (repeat look-up, totals, release hook)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from orders.exposure import OrdersOpenOrderSource, order_exposure_changed
from orders.models import Order
from risk.exposure import OpenOrderSource, OpenOrderTotal, default_open_order_source
from risk.models import OpenOrderExposure
from tests.orders.factories import OrderFactory
from tests.risk.conftest import submit
from tests.risk.factories import order_intent

pytestmark = pytest.mark.django_db
BTC_USDT = "BINANCE-SPOT:SPOT_PAIR:BTC-USDT"


def test_default_open_order_source_is_the_order_table_implementation():
    # Act
    source = default_open_order_source()

    # Assert
    assert isinstance(source, OrdersOpenOrderSource)
    assert isinstance(source, OpenOrderSource)


def test_repeat_count_counts_same_strategy_listing_side_quantity_since_excluding_denied_and_children(strategy):
    # Arrange
    since = timezone.now() - timedelta(seconds=1)
    parent = OrderFactory(strategy=strategy, quantity=Decimal("0.01"))
    OrderFactory(strategy=strategy, quantity=Decimal("0.01"), parent=parent)
    OrderFactory(strategy=strategy, quantity=Decimal("0.01"), status=Order.Status.FILLED,
                 filled_quantity=Decimal("0.01"))
    OrderFactory(strategy=strategy, quantity=Decimal("0.01"), status=Order.Status.DENIED)
    OrderFactory(strategy=strategy, quantity=Decimal("0.02"))
    OrderFactory(strategy=strategy, quantity=Decimal("0.01"), side=Order.Side.SELL)
    OrderFactory(strategy=strategy, quantity=Decimal("0.01"), routed_instrument_key="OKX:SPOT_PAIR:BTC-USDT")

    # Act
    count = OrdersOpenOrderSource().repeat_count(strategy_id="demo", instrument_key=BTC_USDT, side="BUY",
                                                 quantity=Decimal("0.01"), since=since)
    later = OrdersOpenOrderSource().repeat_count(strategy_id="demo", instrument_key=BTC_USDT, side="BUY",
                                                 quantity=Decimal("0.01"), since=timezone.now() + timedelta(seconds=1))

    # Assert
    assert (count, later) == (2, 0)


def test_open_order_totals_sum_recorded_open_orders_by_strategy_listing_side(strategy):
    # Arrange
    recorded = {"recorded": True}
    OrderFactory(strategy=strategy, quantity=Decimal("1"), price=Decimal("40000"), risk_result=recorded)
    OrderFactory(strategy=strategy, quantity=Decimal("3"), price=Decimal("41000"), filled_quantity=Decimal("1"),
                 status=Order.Status.PARTIALLY_FILLED, risk_result=recorded)
    OrderFactory(strategy=strategy, quantity=Decimal("2"), price=None, order_type="MARKET", risk_result=recorded)
    OrderFactory(strategy=strategy, quantity=Decimal("4"), status=Order.Status.CANCELED, risk_result=recorded)
    OrderFactory(strategy=strategy, quantity=Decimal("8"), risk_result={"recorded": False})

    # Act
    totals = OrdersOpenOrderSource().open_order_totals()

    # Assert
    assert totals == [OpenOrderTotal(strategy_id="demo", instrument_key=BTC_USDT, side="BUY",
                                     leaves_quantity=Decimal("5"), priced_quantity=Decimal("3"),
                                     priced_value=Decimal("122000"))]


def test_order_exposure_changed_partial_fill_then_cancel_releases_everything(engine, listing):
    # Arrange
    _, order = submit(engine, intent=order_intent(quantity=Decimal("1"), price=Decimal("40000")), listing=listing)
    total = OpenOrderExposure.objects.get()
    assert total.leaves_quantity == Decimal("1")

    # Act: a fill of 0.4, then the rest canceled
    order.status, order.filled_quantity = Order.Status.PARTIALLY_FILLED, Decimal("0.4")
    order_exposure_changed(order=order, previous_status=Order.Status.ROUTED, previous_filled_quantity=Decimal("0"))
    total.refresh_from_db()
    after_fill = (total.leaves_quantity, total.priced_quantity, total.priced_value)
    order.status = Order.Status.CANCELED
    order_exposure_changed(order=order, previous_status=Order.Status.PARTIALLY_FILLED,
                           previous_filled_quantity=Decimal("0.4"))
    total.refresh_from_db()

    # Assert
    assert after_fill == (Decimal("0.6"), Decimal("0.6"), Decimal("24000"))
    assert (total.leaves_quantity, total.priced_quantity, total.priced_value) == (0, 0, 0)


def test_order_exposure_changed_market_order_fill_releases_unpriced_quantity(engine, listing, fresh_quote):
    # Arrange
    _, order = submit(engine, intent=order_intent(order_type="MARKET", price=None, quantity=Decimal("2")),
                      listing=listing)

    # Act
    order.status, order.filled_quantity = Order.Status.FILLED, Decimal("2")
    order_exposure_changed(order=order, previous_status=Order.Status.SUBMITTED, previous_filled_quantity=Decimal("0"))

    # Assert
    total = OpenOrderExposure.objects.get()
    assert (total.leaves_quantity, total.priced_quantity, total.priced_value) == (0, 0, 0)


def test_order_exposure_changed_unrecorded_order_is_ignored(strategy):
    # Arrange
    order = OrderFactory(strategy=strategy, quantity=Decimal("1"), risk_result={"recorded": False})

    # Act
    order.status = Order.Status.CANCELED
    order_exposure_changed(order=order, previous_status=Order.Status.ROUTED, previous_filled_quantity=Decimal("0"))

    # Assert
    assert not OpenOrderExposure.objects.exists()


def test_order_exposure_changed_open_quantity_growing_raises(strategy):
    # Arrange
    order = OrderFactory(strategy=strategy, quantity=Decimal("1"), risk_result={"recorded": True})

    # Act / Assert
    with pytest.raises(ValueError, match="open quantity grew"):
        order_exposure_changed(order=order, previous_status=Order.Status.CANCELED,
                               previous_filled_quantity=Decimal("0"))
