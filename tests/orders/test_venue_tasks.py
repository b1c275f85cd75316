import socket
import uuid

import pytest

from celery_app import app
from orders.models import OrderEvent
from tests.orders.factories import OrderFactory
from venues.tasks import cancel_order, submit_order

pytestmark = pytest.mark.django_db


def test_venue_tasks_are_routed_to_queue_venues_and_ack_late():
    for task in (submit_order, cancel_order):
        route = app.amqp.router.route({}, task.name)
        assert route["queue"].name == "venues"
        assert task.acks_late is True


def test_submit_order_task_for_routed_order_records_receipt_with_hostname():
    # Arrange
    order = OrderFactory(status="ROUTED")
    # Act
    submit_order.apply(args=[str(order.pk)])
    # Assert
    event = OrderEvent.objects.get(order=order)
    assert event.type == "VENUE_RECEIVED"
    host = socket.gethostname()  # Task.apply runs with the local host name, as a worker would
    assert event.payload == {"command": "submit", "worker": host}
    assert event.actor == f"worker:{host}"


def test_submit_order_task_for_terminal_order_is_a_recorded_no_op():
    order = OrderFactory(status="CANCELED")
    submit_order.apply(args=[str(order.pk)])
    event = OrderEvent.objects.get(order=order)
    assert event.type == "IGNORED"
    assert "CANCELED" in event.payload["detail"] and "terminal" in event.payload["detail"]
    order.refresh_from_db()
    assert order.status == "CANCELED"


def test_submit_order_task_duplicate_for_submitted_order_is_a_recorded_no_op():
    order = OrderFactory(status="SUBMITTED")
    submit_order.apply(args=[str(order.pk)])
    assert OrderEvent.objects.get(order=order).type == "IGNORED"


def test_submit_order_task_for_unknown_order_logs_and_records_nothing(caplog):
    missing = uuid.uuid4()
    submit_order.apply(args=[str(missing)])
    assert OrderEvent.objects.count() == 0
    assert f"unknown order {missing}" in caplog.text


def test_submit_order_task_for_malformed_id_logs_and_records_nothing(caplog):
    submit_order.apply(args=["not-a-uuid"])
    assert OrderEvent.objects.count() == 0
    assert "malformed order id" in caplog.text


def test_cancel_order_task_for_pending_cancel_records_receipt():
    order = OrderFactory(status="PENDING_CANCEL")
    cancel_order.apply(args=[str(order.pk)])
    event = OrderEvent.objects.get(order=order)
    assert (event.type, event.payload["command"]) == ("VENUE_RECEIVED", "cancel")


def test_cancel_order_task_for_filled_order_is_a_recorded_no_op():
    order = OrderFactory(status="FILLED")
    cancel_order.apply(args=[str(order.pk)])
    assert OrderEvent.objects.get(order=order).type == "IGNORED"
