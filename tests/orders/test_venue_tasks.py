"""venues.tasks and orders.services.venue_commands: claiming orders for the venue (no node needed).

The hand-off to a real TradingNode is tested in tests/venues/test_node_host.py.
"""

import socket
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from celery_app import app
from orders.models import Order, OrderEvent
from orders.services.venue_commands import (
    order_venue_cancel_claim,
    order_venue_submit_claim,
    order_venue_submit_failed,
)
from risk.models import Scope, TradingState
from tests.orders.factories import OrderFactory, StrategyFactory
from tests.risk.factories import TradingStateFactory
from tests.venues.factories import InstrumentFactory
from venues.tasks import cancel_order, submit_order

pytestmark = pytest.mark.django_db


def test_venue_tasks_are_routed_to_queue_venues_and_ack_late():
    for task in (submit_order, cancel_order):
        route = app.amqp.router.route({}, task.name)
        assert route["queue"].name == "venues"
        assert task.acks_late is True


@pytest.mark.django_db(transaction=True)  # outside a transaction, as in the worker: a close is real
def test_worker_keeps_its_database_connection_across_tasks():
    # Celery's Django fixup closed the connection before and after every task without
    # CELERY_DB_REUSE_MAX: each venue command then opened a new PostgreSQL connection.
    from celery.fixups.django import DjangoWorkerFixup
    from django.db import connection

    fixup = DjangoWorkerFixup(app)
    connection.ensure_connection()
    before = connection.connection
    for _ in range(3):
        fixup.on_task_prerun(sender=submit_order)
        fixup.on_task_postrun(sender=submit_order)
    assert connection.connection is before


def test_submit_claim_moves_routed_to_submitted_and_returns_the_command():
    # Arrange
    listing = InstrumentFactory()
    order = OrderFactory(status="ROUTED", exec_algorithm="TWAP",
                         exec_algorithm_params={"horizon_secs": 60, "interval_secs": 10})
    # Act
    command = order_venue_submit_claim(order_id=str(order.pk), worker="w1")
    # Assert
    order.refresh_from_db()
    assert order.status == "SUBMITTED" and order.submitted_at is not None
    event = OrderEvent.objects.get(order=order)
    assert (event.type, event.status_before, event.status_after, event.actor) == ("SUBMITTED", "ROUTED", "SUBMITTED",
                                                                                 "worker:w1")
    assert event.payload["command"] == "submit"
    assert command.client_order_id == order.client_order_id
    assert command.instrument_key == order.routed_instrument_key == listing.instrument_key
    assert (command.side, command.order_type, command.quantity, command.price) == ("BUY", "LIMIT", Decimal("0.01"),
                                                                                 Decimal("40000"))
    assert (command.exec_algorithm, command.exec_algorithm_params) == ("TWAP", {"horizon_secs": 60, "interval_secs": 10})


@pytest.mark.parametrize(("scope", "scope_key"), [
    (Scope.GLOBAL, ""),
    (Scope.VENUE, "BINANCE-SPOT"),
    (Scope.STRATEGY, "alpha"),
    (Scope.INSTRUMENT, "BINANCE-SPOT:SPOT_PAIR:BTC-USDT"),
    (Scope.INSTRUMENT, "ANY:SPOT_PAIR:BTC-USDT"),
])
def test_submit_claim_in_a_halted_scope_cancels_the_order_naming_the_kill_switch(scope, scope_key):
    # Arrange: HALTED after the halt's cancel sweep read the open orders (the order committed later, or
    # its dispatch failed and the sweeper re-sends it): the claim is what stops it
    order = OrderFactory(status="ROUTED", strategy=StrategyFactory(id="alpha"))
    TradingStateFactory(scope=scope, scope_key=scope_key, state=TradingState.State.HALTED, reason="venue incident",
                        changed_by="rm-anna")

    # Act
    command = order_venue_submit_claim(order_id=str(order.pk), worker="w1")

    # Assert: never sent; canceled through the cancel service, the timeline naming the switch, who and why
    assert command is None
    assert Order.objects.get(pk=order.pk).status == "CANCELED"
    event = OrderEvent.objects.get(order=order)
    assert (event.type, event.status_before, event.actor) == ("CANCELED", "ROUTED", "kill-switch:rm-anna")
    label = f"{scope}:{scope_key}" if scope_key else scope
    assert event.payload["reason"] == f"kill switch {label} HALTED by rm-anna: venue incident"


@pytest.mark.parametrize(("scope", "scope_key", "state"), [
    (Scope.GLOBAL, "", TradingState.State.REDUCING),
    (Scope.VENUE, "OKX", TradingState.State.HALTED),
    (Scope.STRATEGY, "beta", TradingState.State.HALTED),
    (Scope.INSTRUMENT, "BINANCE-SPOT:SPOT_PAIR:ETH-USDT", TradingState.State.HALTED),
    (Scope.INSTRUMENT, "OKX:SPOT_PAIR:BTC-USDT", TradingState.State.HALTED),
])
def test_submit_claim_with_a_halt_elsewhere_or_reduce_only_claims_the_order(scope, scope_key, state):
    # Arrange
    order = OrderFactory(status="ROUTED", strategy=StrategyFactory(id="alpha"))
    TradingStateFactory(scope=scope, scope_key=scope_key, state=state, reason="elsewhere")

    # Act
    command = order_venue_submit_claim(order_id=str(order.pk), worker="w1")

    # Assert
    assert command is not None and command.order_id == str(order.pk)
    assert Order.objects.get(pk=order.pk).status == "SUBMITTED"


@pytest.mark.parametrize("status", ["SUBMITTED", "CANCELED", "FILLED"])
def test_submit_claim_for_an_order_that_moved_on_is_a_recorded_no_op(status):
    order = OrderFactory(status=status)

    assert order_venue_submit_claim(order_id=str(order.pk), worker="w1") is None

    event = OrderEvent.objects.get(order=order)
    assert event.type == "IGNORED" and status in event.payload["detail"]
    assert Order.objects.get(pk=order.pk).status == status


def test_submit_claim_for_unknown_or_malformed_id_logs_and_records_nothing(caplog):
    missing = uuid.uuid4()
    assert order_venue_submit_claim(order_id=str(missing), worker="w1") is None
    assert order_venue_submit_claim(order_id="not-a-uuid", worker="w1") is None
    assert OrderEvent.objects.count() == 0
    assert f"unknown order {missing}" in caplog.text and "malformed order id" in caplog.text


def test_submit_failed_rejects_the_claimed_order_with_the_reason():
    InstrumentFactory()
    order = OrderFactory(status="ROUTED")
    command = order_venue_submit_claim(order_id=str(order.pk), worker="w1")

    order_venue_submit_failed(command=command, reason="trading node is not ready: still starting")

    order.refresh_from_db()
    assert order.status == "REJECTED"
    assert order.rejection_reason == "not sent to the venue: trading node is not ready: still starting"


def test_submit_failed_after_a_cancel_request_rejects_the_never_sent_order_and_the_cancel_is_a_no_op(
        django_capture_on_commit_callbacks):
    # Arrange: the worker claimed the order and waits for its node; meanwhile the trader cancels it.
    from orders.services import order_cancel

    InstrumentFactory()
    order = OrderFactory(status="ROUTED")
    command = order_venue_submit_claim(order_id=str(order.pk), worker="w1")
    with django_capture_on_commit_callbacks(execute=False):
        order_cancel(order=order, actor="trader")

    # Act: the node never became ready: the submit is refused; then the queued cancel is taken
    order_venue_submit_failed(command=command, reason="trading node is not ready: still starting")
    cancel = order_venue_cancel_claim(order_id=str(order.pk), worker="w1")

    # Assert: never sent anywhere, so closed REJECTED with the reason; the cancel has nothing to do
    order.refresh_from_db()
    assert order.status == "REJECTED" and order.closed_at is not None
    assert order.rejection_reason == "not sent to the venue: trading node is not ready: still starting"
    assert cancel is None


def test_cancel_claim_records_receipt_and_lists_open_children():
    parent = OrderFactory(status="PENDING_CANCEL", exec_algorithm="TWAP")
    open_child = OrderFactory(status="ACCEPTED", parent=parent, strategy=parent.strategy)
    OrderFactory(status="FILLED", parent=parent, strategy=parent.strategy)

    command = order_venue_cancel_claim(order_id=str(parent.pk), worker="w1")

    assert command.client_order_id == parent.client_order_id
    assert command.child_client_order_ids == (open_child.client_order_id,)
    event = OrderEvent.objects.get(order=parent)
    assert (event.type, event.payload["command"]) == ("VENUE_RECEIVED", "cancel")


def test_cancel_claim_lists_every_open_child_oldest_first():
    # Arrange: an ICEBERG parent with two open children (the newer created first in the table) and a canceled one
    parent = OrderFactory(status="PENDING_CANCEL", exec_algorithm="ICEBERG")
    now = timezone.now()
    newer = OrderFactory(status="PARTIALLY_FILLED", parent=parent, strategy=parent.strategy)
    older = OrderFactory(status="SUBMITTED", parent=parent, strategy=parent.strategy)
    OrderFactory(status="CANCELED", parent=parent, strategy=parent.strategy)
    Order.objects.filter(pk=newer.pk).update(created_at=now)
    Order.objects.filter(pk=older.pk).update(created_at=now - timedelta(seconds=1))

    # Act
    command = order_venue_cancel_claim(order_id=str(parent.pk), worker="w1")

    # Assert: both open children, oldest first, in the command and in the receipt's payload
    assert command.child_client_order_ids == (older.client_order_id, newer.client_order_id)
    event = OrderEvent.objects.get(order=parent)
    assert event.payload["children"] == [older.client_order_id, newer.client_order_id]
    assert event.actor == "worker:w1" and event.status_before == event.status_after == "PENDING_CANCEL"


@pytest.mark.parametrize("order_id", [str(uuid.uuid4()), "not-a-uuid"])
def test_cancel_claim_for_an_unknown_or_malformed_order_id_writes_nothing(order_id, caplog):
    assert order_venue_cancel_claim(order_id=order_id, worker="w1") is None
    assert not OrderEvent.objects.exists()
    assert "ignored" in caplog.text and order_id in caplog.text


def test_cancel_claim_for_a_filled_order_is_a_recorded_no_op():
    order = OrderFactory(status="FILLED")
    assert order_venue_cancel_claim(order_id=str(order.pk), worker="w1") is None
    assert OrderEvent.objects.get(order=order).type == "IGNORED"


def test_submit_task_without_a_trading_node_in_the_process_leaves_the_order_routed(caplog):
    # tests/settings.py: TRADING_NODE=off and no host installed
    order = OrderFactory(status="ROUTED")

    submit_order.apply(args=[str(order.pk)])

    assert Order.objects.get(pk=order.pk).status == "ROUTED"
    assert not OrderEvent.objects.filter(order=order).exists()
    assert "no trading node in this process" in caplog.text


def test_submit_task_with_a_node_that_is_not_ready_rejects_with_the_reason(settings,
                                                                         django_capture_on_commit_callbacks):
    from venues.node.host import set_trading_node_host

    published = []

    class _Journal:
        def publish_later(self, orders, hold=0.0):
            published.append(dict(orders))

    class _Stopped:
        stopped, error = True, "bridge strategy not running after 30 s"
        journal = _Journal()

        def is_ready(self):
            return False

    InstrumentFactory()
    order = OrderFactory(status="ROUTED")
    previous = set_trading_node_host(_Stopped())
    try:
        with django_capture_on_commit_callbacks(execute=True):
            submit_order.apply(args=[str(order.pk)])
    finally:
        set_trading_node_host(previous)

    order.refresh_from_db()
    assert order.status == "REJECTED"
    assert "trading node is not ready: bridge strategy not running after 30 s" in order.rejection_reason
    assert OrderEvent.objects.filter(order=order, type="SUBMITTED", actor=f"worker:{socket.gethostname()}").exists()
    # the claim's publication went to the node's journal publisher, not the task's own thread
    assert published == [{order.pk: order.strategy_id}]


def test_submit_task_when_the_embedded_node_cannot_be_built_rejects_each_order_with_the_cause(settings):
    # Arrange: the embedded default builds its node on the first command; its configuration is broken
    from venues.node.host import set_trading_node_host, stop_trading_node

    settings.ODUM = {**settings.ODUM, "TRADING_NODE": "embedded", "NODE_MAX_ORDER_SUBMIT_RATE": "fast"}
    InstrumentFactory()
    first, second = OrderFactory(status="ROUTED"), OrderFactory(status="ROUTED")
    previous = set_trading_node_host(None)
    try:
        # Act: two orders, each claimed (SUBMITTED) before the node is asked for
        submit_order.apply(args=[str(first.pk)])
        submit_order.apply(args=[str(second.pk)])
    finally:
        stop_trading_node()
        set_trading_node_host(previous)

    # Assert: neither is left SUBMITTED (never sent, nobody told); each is rejected naming the cause
    for order in (first, second):
        order.refresh_from_db()
        assert order.status == "REJECTED", order.status
        assert "not sent to the venue: trading node is not ready" in order.rejection_reason
        assert "NODE_MAX_ORDER_SUBMIT_RATE must look like" in order.rejection_reason
