from decimal import Decimal

import pytest

from orders.models import Order, OrderEvent
from orders.services import OrderNotCancelable, order_cancel
from tests.orders.factories import OrderFactory

pytestmark = pytest.mark.django_db


def test_order_cancel_routed_order_is_canceled_at_once(django_capture_on_commit_callbacks):
    # Arrange
    order = OrderFactory(status="ROUTED")
    # Act
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        result = order_cancel(order=order, actor="alice", reason="changed my mind")
    # Assert
    stored = Order.objects.get(pk=order.pk)
    assert result.status == stored.status == "CANCELED"
    assert stored.closed_at is not None
    event = OrderEvent.objects.get(order=order)
    assert (event.type, event.status_before, event.status_after, event.actor) == ("CANCELED", "ROUTED", "CANCELED", "alice")
    assert event.payload["reason"] == "changed my mind"
    assert len(callbacks) == 1  # the publication to the order stream only
    callbacks[0]()
    assert not OrderEvent.objects.filter(order=order, type="DISPATCHED").exists()  # nothing to tell a venue


@pytest.mark.parametrize("status, filled", [("SUBMITTED", "0"), ("ACCEPTED", "0"), ("PARTIALLY_FILLED", "0.004")])
def test_order_cancel_order_at_venue_goes_pending_cancel_and_dispatches_after_commit(
    status, filled, django_capture_on_commit_callbacks
):
    # Arrange
    order = OrderFactory(status=status, filled_quantity=Decimal(filled))
    # Act
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        result = order_cancel(order=order, actor="alice")
    # Assert: recorded, cancel not yet sent
    assert result.status == Order.objects.get(pk=order.pk).status == "PENDING_CANCEL"
    assert OrderEvent.objects.get(order=order).type == "CANCEL_REQUESTED"
    assert len(callbacks) == 2  # the publication to the order stream, then the dispatch
    assert not OrderEvent.objects.filter(order=order, type="DISPATCHED").exists()
    # Act: commit
    for callback in callbacks:
        callback()
    # Assert
    dispatched = OrderEvent.objects.get(order=order, type="DISPATCHED")
    assert dispatched.payload["command"] == "cancel"
    assert Order.objects.get(pk=order.pk).dispatched_at is None  # records the submit hand-off only


@pytest.mark.parametrize("status", ["FILLED", "CANCELED", "DENIED", "REJECTED", "EXPIRED", "PENDING_CANCEL", "PENDING"])
def test_order_cancel_not_cancelable_status_raises_with_the_status(status):
    # Arrange
    order = OrderFactory(status=status)
    # Act / Assert
    with pytest.raises(OrderNotCancelable) as exc:
        order_cancel(order=order, actor="alice")
    assert exc.value.status == status
    assert status in str(exc.value)
    assert Order.objects.get(pk=order.pk).status == status
    assert not OrderEvent.objects.filter(order=order).exists()


def test_order_cancel_uses_the_current_row_not_the_callers_copy():
    # Arrange: the caller holds a stale ROUTED copy; the worker has submitted it meanwhile
    order = OrderFactory(status="ROUTED")
    Order.objects.filter(pk=order.pk).update(status="SUBMITTED")
    # Act
    result = order_cancel(order=order, actor="alice")
    # Assert: not canceled locally — the venue must be told
    assert result.status == "PENDING_CANCEL"
