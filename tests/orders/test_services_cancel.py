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
    assert len(callbacks) == 2  # the dispatch, then the publication to the order stream
    assert not OrderEvent.objects.filter(order=order, type="DISPATCHED").exists()
    # Act: commit — the first callback is the dispatch
    callbacks[0]()
    callbacks[1]()
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


def test_order_cancel_routed_algorithm_child_is_refused_and_nothing_changes():
    # Arrange: a TWAP slice the node created (CHILD_CREATED records it ROUTED) and submits itself: no
    # claim guards it, so it may already be at the venue.
    parent = OrderFactory(status="ACCEPTED", exec_algorithm="TWAP")
    child = OrderFactory(status="ROUTED", parent=parent, strategy=parent.strategy)

    # Act / Assert: refused (409 at the API), never canceled locally with a live order at the venue
    with pytest.raises(OrderNotCancelable) as exc:
        order_cancel(order=child, actor="alice")
    assert exc.value.status == "ROUTED" and "cancel the parent order" in str(exc.value)
    assert Order.objects.get(pk=child.pk).status == "ROUTED"
    assert not OrderEvent.objects.filter(order=child).exists()


def test_order_cancel_uses_the_current_row_not_the_callers_copy():
    # Arrange: the caller holds a stale ROUTED copy; the worker has submitted it meanwhile
    order = OrderFactory(status="ROUTED")
    Order.objects.filter(pk=order.pk).update(status="SUBMITTED")
    # Act
    result = order_cancel(order=order, actor="alice")
    # Assert: not canceled locally — the venue must be told
    assert result.status == "PENDING_CANCEL"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)  # outside a transaction, as in a request: the pipelined path
def test_order_cancel_on_postgresql_locks_reads_once_writes_with_the_commit_then_dispatches_before_publishing(
    monkeypatch,
):
    # Arrange: an order at the venue; the after-commit work recorded in its order
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from orders.services import cancel as cancel_service
    from orders.services import dispatch

    order = OrderFactory(status="ACCEPTED")
    after = []
    monkeypatch.setattr(dispatch, "order_dispatch_cancel", lambda **kwargs: after.append(("dispatch", kwargs)))
    monkeypatch.setattr(cancel_service, "publish_orders_updated", lambda orders: after.append(("publish", orders)))
    # Act
    with CaptureQueriesContext(connection) as ctx:
        result = order_cancel(order=order, actor="alice")
    # Assert: one locked read of the order and one UPDATE, one event INSERT, committed
    on_order = [q["sql"].split()[0].upper() for q in ctx.captured_queries if '"orders_order"' in q["sql"]]
    assert on_order == ["SELECT", "UPDATE"]
    assert "FOR UPDATE" in next(q["sql"] for q in ctx.captured_queries if '"orders_order"' in q["sql"])
    stored = Order.objects.get(pk=order.pk)
    assert result.status == stored.status == "PENDING_CANCEL"
    event = OrderEvent.objects.get(order=order)
    assert (event.type, event.status_before, event.status_after, event.actor) == (
        "CANCEL_REQUESTED", "ACCEPTED", "PENDING_CANCEL", "alice")
    # the venue command first, then the order stream
    assert after == [("dispatch", {"order_id": order.pk, "attempt": "initial"}),
                     ("publish", {order.pk: order.strategy_id})]
