from datetime import timedelta

import pytest
from django.utils import timezone

from orders.models import Order, OrderEvent
from orders.services import order_dispatch_submit, order_submit, orders_redispatch_stale
from orders.formatting import order_detail_block
from orders.selectors import order_with_family_fills
from orders.selectors_logs import log_entry
from orders.services.dispatch import stale_dispatch_queryset
from orders.tasks import redispatch_stale_orders
from tests.orders.conftest import redis_configured, typed_request
from tests.orders.factories import OrderEventFactory, OrderFactory

pytestmark = pytest.mark.django_db


class _Broker:
    """Switch the Celery app between a closed port (real publishing, no eager run) and its settings."""

    def __init__(self):
        from celery_app import app

        self.app = app
        self.saved = {k: app.conf[k] for k in ("broker_url", "task_always_eager")}

    def _reset_pools(self):
        self.app._pool = None
        self.app.amqp._producer_pool = None

    def down(self):
        self.app.conf.broker_url = "redis://127.0.0.1:1/0"
        self.app.conf.task_always_eager = False
        self._reset_pools()

    def up(self):
        self.app.conf.broker_url = self.saved["broker_url"]
        self.app.conf.task_always_eager = self.saved["task_always_eager"]
        self._reset_pools()


@pytest.fixture
def broker():
    controller = _Broker()
    yield controller
    controller.up()


@pytest.fixture
def broker_down(broker):
    broker.down()
    return broker


def _types(order):
    return list(OrderEvent.objects.filter(order=order).order_by("ts", "id").values_list("type", flat=True))


@pytest.mark.timeout(60)
def test_dispatch_broker_down_leaves_order_routed_with_dispatch_failed(
    tradable, strategy, broker_down, django_capture_on_commit_callbacks
):
    # Act
    with django_capture_on_commit_callbacks(execute=True):
        result = order_submit(strategy=strategy, actor="alice", data=typed_request())
    # Assert
    order = Order.objects.get(pk=result.order.pk)
    assert order.status == "ROUTED" and order.dispatched_at is None
    failed = OrderEvent.objects.get(order=order, type="DISPATCH_FAILED")
    assert failed.payload["command"] == "submit"
    assert "OperationalError" in failed.payload["error"] and "broker unreachable" in failed.payload["detail"]
    assert not OrderEvent.objects.filter(order=order, type="DISPATCHED").exists()


@pytest.fixture
def silent_broker(broker):
    """A broker that accepts connections and never answers (gone behind a NAT or firewall, failed over)."""
    import socket
    import threading

    from orders.services import dispatch

    server = socket.create_server(("127.0.0.1", 0))
    accepted = []

    def accept():
        while True:
            try:
                accepted.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    broker.app.conf.broker_url = f"redis://127.0.0.1:{server.getsockname()[1]}/0"
    broker.app.conf.task_always_eager = False
    broker._reset_pools()
    dispatch._kept_producer.drop()
    yield broker
    dispatch._kept_producer.drop()
    server.close()
    for conn in accepted:
        conn.close()


@pytest.mark.timeout(60)
def test_dispatch_broker_not_answering_gives_up_within_the_timeout_with_dispatch_failed(silent_broker, settings):
    # Arrange
    import time

    order = OrderFactory(status="ROUTED")
    started = time.monotonic()

    # Act
    ok = order_dispatch_submit(order_id=order.pk, attempt="sweeper")

    # Assert: the publish gave up (the sweeper retries) instead of holding its caller for ever
    elapsed = time.monotonic() - started
    assert ok is False
    assert elapsed < 4 * settings.CELERY_BROKER_CONNECTION_TIMEOUT, elapsed
    assert OrderEvent.objects.filter(order=order, type="DISPATCH_FAILED").exists()


def test_dispatch_initial_success_writes_nothing_more(tradable, strategy, django_capture_on_commit_callbacks):
    # Arrange / Act: the submit transaction already recorded the hand-off (dispatched_at, ROUTED event)
    with django_capture_on_commit_callbacks(execute=True):
        result = order_submit(strategy=strategy, actor="alice", data=typed_request())
    # Assert
    order = Order.objects.get(pk=result.order.pk)
    assert order.status == "ROUTED" and order.dispatched_at is not None
    routed = OrderEvent.objects.get(order=order, type="ROUTED")
    assert "queue venues" in routed.payload["dispatch"]
    assert not OrderEvent.objects.filter(order=order, type__in=["DISPATCHED", "DISPATCH_FAILED"]).exists()


def test_dispatch_sweeper_success_sets_dispatched_at_and_records_the_event(django_capture_on_commit_callbacks):
    # Arrange
    order = OrderFactory(status="ROUTED")
    # Act
    ok = order_dispatch_submit(order_id=order.pk, attempt="sweeper")
    # Assert
    assert ok is True
    order.refresh_from_db()
    assert order.dispatched_at is not None
    event = OrderEvent.objects.get(order=order, type="DISPATCHED")
    assert event.payload["queue"] == "venues" and event.payload["task_id"]
    assert event.ts == order.dispatched_at


@pytest.mark.redis
def test_dispatch_with_redis_broker_puts_the_command_on_queue_venues(venue_queue):
    # Arrange
    order = OrderFactory(status="ROUTED")
    # Act
    assert order_dispatch_submit(order_id=order.pk) is True
    # Assert: the message is in Redis list "venues", for the task, with the order id
    messages = venue_queue()
    assert len(messages) == 1
    assert messages[0]["headers"]["task"] == "venues.tasks.submit_order"
    assert str(order.pk) in messages[0]["headers"]["argsrepr"]


@pytest.mark.redis
def test_kept_producer_declares_the_venues_queue_once_not_per_publish(venue_queue, monkeypatch):
    # Arrange: count the producer's declarations, from a fresh producer
    from kombu import Producer

    from orders.services import dispatch

    dispatch._kept_producer.drop()
    declared = []
    real = Producer.maybe_declare
    monkeypatch.setattr(Producer, "maybe_declare",
                        lambda self, entity, *a, **kw: declared.append(entity.name) or real(self, entity, *a, **kw))
    orders = [OrderFactory(status="ROUTED") for _ in range(3)]
    # Act
    for order in orders:
        assert order_dispatch_submit(order_id=order.pk, attempt="sweeper") is True
    # Assert: one declaration of queue venues for three publishes, and every message on the queue
    assert declared == ["venues"]
    assert sorted(m["headers"]["argsrepr"] for m in venue_queue()) == sorted(repr([str(o.pk)]) for o in orders)


@pytest.mark.redis
@pytest.mark.timeout(60)
def test_dispatch_keeps_one_producer_per_thread_and_drops_it_when_a_publish_fails(venue_queue, broker):
    # Arrange
    from orders.services import dispatch

    first, second, third = (OrderFactory(status="ROUTED") for _ in range(3))
    # Act: two publishes on a healthy broker
    assert order_dispatch_submit(order_id=first.pk, attempt="sweeper") is True
    kept = dispatch._kept_producer.producer
    assert order_dispatch_submit(order_id=second.pk, attempt="sweeper") is True
    # Assert: both messages went out, through the one kept producer
    assert sorted(m["headers"]["argsrepr"] for m in venue_queue()) == sorted([repr([str(first.pk)]),
                                                                              repr([str(second.pk)])])
    assert kept is not None and dispatch._kept_producer.producer is kept
    # Act: the broker goes away (a new connection pool): the kept producer is not used against it
    broker.down()
    assert order_dispatch_submit(order_id=third.pk, attempt="sweeper") is False
    # Assert: the failed publish dropped the producer and recorded the failure
    assert dispatch._kept_producer.producer is None
    assert OrderEvent.objects.filter(order=third, type="DISPATCH_FAILED").exists()
    # Act: the broker is back: a new producer, the message delivered
    broker.up()
    assert order_dispatch_submit(order_id=third.pk, attempt="sweeper") is True
    # Assert
    assert dispatch._kept_producer.producer not in (None, kept)
    assert repr([str(third.pk)]) in [m["headers"]["argsrepr"] for m in venue_queue()]


def _age_events(order, secs):
    OrderEvent.objects.filter(order=order).update(ts=timezone.now() - timedelta(seconds=secs))
    Order.objects.filter(pk=order.pk).update(created_at=timezone.now() - timedelta(seconds=secs))


@pytest.mark.timeout(60)
def test_sweeper_redispatches_a_routed_order_whose_dispatch_failed(
    tradable, strategy, broker, django_capture_on_commit_callbacks
):
    # Arrange: dispatch failed while the broker was down; 20 s pass; the broker is back
    broker.down()
    with django_capture_on_commit_callbacks(execute=True):
        order = order_submit(strategy=strategy, actor="alice", data=typed_request()).order
    assert _types(order)[-1] == "DISPATCH_FAILED"
    _age_events(order, 20)
    broker.up()
    # Act
    report = orders_redispatch_stale()
    # Assert
    assert report.submits == [order.pk]
    order.refresh_from_db()
    assert order.status == "ROUTED" and order.dispatched_at is not None
    sweep = OrderEvent.objects.get(order=order, type="DISPATCHED")
    assert sweep.payload["attempt"] == "sweeper"


def test_sweeper_leaves_recent_orders_alone():
    # Arrange: routed 5 s ago (retry after 15 s)
    order = OrderFactory(status="ROUTED")
    OrderEventFactory(order=order, type="ROUTED", ts=timezone.now() - timedelta(seconds=5))
    # Act / Assert
    assert order not in stale_dispatch_queryset()
    assert orders_redispatch_stale().submits == []


def test_sweeper_neither_resends_nor_rejects_an_order_the_worker_claimed(tradable, strategy, settings):
    # Arrange: an order dispatched long ago (past the retry and the max age) and claimed by the trading
    # worker: the claim is its receipt, moving it to SUBMITTED in the same statement
    from orders.services.venue_commands import order_venue_submit_claim

    settings.ODUM = {**settings.ODUM, "DISPATCH_MAX_AGE_SECS": 60}
    order = order_submit(strategy=strategy, actor="alice", data=typed_request()).order
    assert order_venue_submit_claim(order_id=str(order.pk), worker="w1", publish=lambda _: None) is not None
    _age_events(order, 600)
    # Act
    report = orders_redispatch_stale()
    # Assert
    order.refresh_from_db()
    assert (report.submits, report.rejected, order.status) == ([], [], "SUBMITTED")


def test_sweeper_redispatches_a_stale_dispatched_order_without_receipt():
    # Arrange: dispatched 60 s ago, never received (message lost / no worker)
    order = OrderFactory(status="ROUTED")
    old = timezone.now() - timedelta(seconds=60)
    OrderEventFactory(order=order, type="ROUTED", ts=old)
    OrderEventFactory(order=order, type="DISPATCHED", ts=old, payload={"command": "submit"})
    Order.objects.filter(pk=order.pk).update(created_at=old)
    # Act
    report = orders_redispatch_stale()
    # Assert
    assert report.submits == [order.pk]


def test_sweeper_resends_a_stale_cancel():
    # Arrange: cancel requested 60 s ago, never received by the worker
    order = OrderFactory(status="PENDING_CANCEL")
    OrderEventFactory(order=order, type="CANCEL_REQUESTED", ts=timezone.now() - timedelta(seconds=60))
    # Act
    report = orders_redispatch_stale()
    # Assert
    assert report.cancels == [order.pk]
    assert OrderEvent.objects.get(order=order, type="DISPATCHED").payload["command"] == "cancel"


def test_sweeper_leaves_a_cancel_the_worker_received_recently_alone():
    order = OrderFactory(status="PENDING_CANCEL")
    OrderEventFactory(order=order, type="CANCEL_REQUESTED", ts=timezone.now() - timedelta(seconds=60))
    OrderEventFactory(order=order, type="VENUE_RECEIVED", ts=timezone.now() - timedelta(seconds=5),
                      payload={"command": "cancel", "worker": "w1"})
    assert orders_redispatch_stale().cancels == []


def test_sweeper_resends_a_cancel_received_long_ago_and_still_pending():
    # Arrange: the worker took the cancel a minute ago and nothing came back (it died before the
    # hand-off; the broker redelivers an unacknowledged task only after its visibility timeout)
    order = OrderFactory(status="PENDING_CANCEL")
    old = timezone.now() - timedelta(seconds=60)
    OrderEventFactory(order=order, type="CANCEL_REQUESTED", ts=old)
    OrderEventFactory(order=order, type="VENUE_RECEIVED", ts=old + timedelta(seconds=1),
                      payload={"command": "cancel", "worker": "w1"})
    # Act
    report = orders_redispatch_stale()
    # Assert
    assert report.cancels == [order.pk]


def test_sweeper_ignores_terminal_and_working_orders():
    old = timezone.now() - timedelta(seconds=60)
    for status in ("FILLED", "CANCELED", "DENIED", "SUBMITTED", "ACCEPTED"):
        order = OrderFactory(status=status)
        OrderEventFactory(order=order, type="ROUTED", ts=old)
    assert list(stale_dispatch_queryset()) == []


@pytest.mark.timeout(60)
def test_sweeper_broker_down_stops_at_the_first_failure(broker_down):
    # Arrange: three stale routed orders
    old = timezone.now() - timedelta(seconds=60)
    orders = []
    for _ in range(3):
        order = OrderFactory(status="ROUTED")
        OrderEventFactory(order=order, type="ROUTED", ts=old)
        Order.objects.filter(pk=order.pk).update(created_at=old)
        orders.append(order)
    # Act
    report = orders_redispatch_stale()
    # Assert: one attempt recorded, the rest left for the next sweep
    assert len(report.failed) == 1 and report.stopped_early is True
    assert OrderEvent.objects.filter(type="DISPATCH_FAILED").count() == 1


def test_sweeper_task_returns_counts():
    order = OrderFactory(status="ROUTED")
    OrderEventFactory(order=order, type="ROUTED", ts=timezone.now() - timedelta(seconds=60))
    Order.objects.filter(pk=order.pk).update(created_at=timezone.now() - timedelta(seconds=60))
    assert redispatch_stale_orders.apply().get() == {
        "submits": 1, "cancels": 0, "failed": 0, "rejected": 0, "moved_on": 0, "stopped_early": False,
        "skipped_locked": False}


def test_sweeper_second_concurrent_run_is_skipped():
    from django.core.cache import cache

    from orders.services.dispatch import SWEEPER_LOCK_KEY

    cache.add(SWEEPER_LOCK_KEY, "1", 60)
    assert orders_redispatch_stale().skipped_locked is True


def test_redis_configured_helper_matches_environment():
    # The dispatch tests above are honest on both transports: eager (no REDIS_URL) and Redis.
    from django.conf import settings

    assert settings.CELERY_TASK_ALWAYS_EAGER is (not redis_configured())


@pytest.mark.timeout(60)
def test_sweeper_rejects_a_routed_order_never_received_past_the_max_age(
    tradable, strategy, broker, django_capture_on_commit_callbacks, settings
):
    # Arrange: accepted while the broker was down, then left unsent past DISPATCH_MAX_AGE_SECS
    from risk.models import OpenOrderExposure, RiskLimit, Scope
    from tests.risk.factories import RiskLimitFactory

    settings.ODUM = {**settings.ODUM, "DISPATCH_MAX_AGE_SECS": 60}
    # an exposure limit makes the risk engine record the order's open quantity
    RiskLimitFactory(scope=Scope.GLOBAL, scope_key="", kind=RiskLimit.Kind.MAX_GROSS_EXPOSURE, value=10**9)
    broker.down()
    with django_capture_on_commit_callbacks(execute=True):
        order = order_submit(strategy=strategy, actor="alice", data=typed_request()).order
    _age_events(order, 61)
    broker.up()
    open_before = sum(OpenOrderExposure.objects.values_list("leaves_quantity", flat=True))
    # Act
    report = orders_redispatch_stale()
    # Assert: rejected, not re-sent, and its open quantity released from pre-trade risk
    order.refresh_from_db()
    assert report.rejected == [order.pk] and report.submits == []
    assert order.status == "REJECTED" and "never sent" in order.rejection_reason and order.closed_at
    assert _types(order)[-1] == "REJECTED"
    assert open_before == order.quantity
    assert sum(OpenOrderExposure.objects.values_list("leaves_quantity", flat=True)) == 0


def test_sweeper_never_resends_nor_rejects_an_algorithm_child(settings):
    # Arrange: a child recorded ROUTED by the journal (CHILD_CREATED) long ago, its SUBMITTED never
    # seen: the node's execution algorithm sends children, the OMS must not submit it a second time.
    settings.ODUM = {**settings.ODUM, "DISPATCH_MAX_AGE_SECS": 60}
    parent = OrderFactory(status="PARTIALLY_FILLED", exec_algorithm="TWAP")
    child = OrderFactory(status="ROUTED", parent=parent, strategy=parent.strategy)
    _age_events(child, 600)
    # Act
    report = orders_redispatch_stale()
    # Assert
    child.refresh_from_db()
    assert child not in stale_dispatch_queryset()
    assert report.submits == [] and report.rejected == [] and child.status == "ROUTED"


def test_sweeper_lock_expired_and_taken_by_another_sweep_is_left_to_it(monkeypatch):
    # Arrange: during a long sweep its lock expires and another sweeper takes it
    from django.core.cache import cache

    from orders.services import dispatch
    from orders.services.dispatch import SWEEPER_LOCK_KEY

    def expire_and_take_over(**kwargs):
        cache.delete(SWEEPER_LOCK_KEY)  # expired
        assert cache.add(SWEEPER_LOCK_KEY, "other-sweeper", 60)  # the other sweep's lock
        return []

    monkeypatch.setattr(dispatch, "orders_reject_undispatched", expire_and_take_over)
    # Act
    orders_redispatch_stale()
    # Assert: the first sweep did not release the other's lock, so a third sweep is still kept out
    monkeypatch.undo()
    assert orders_redispatch_stale().skipped_locked is True


def _stale_routed_order():
    old = timezone.now() - timedelta(seconds=60)
    order = OrderFactory(status="ROUTED")
    OrderEventFactory(order=order, type="ROUTED", status_before="PENDING", status_after="ROUTED", ts=old)
    Order.objects.filter(pk=order.pk).update(created_at=old)
    return order


def _contradictions(order) -> list:
    # Timeline entries (in display order) whose status_before is not the status the entry before left.
    events = list(OrderEvent.objects.filter(order=order).order_by("ts", "id"))
    return [(e.type, e.status_before, e.status_after, f"after {p.type} → {p.status_after}")
            for p, e in zip(events, events[1:]) if e.status_before != p.status_after]


def test_sweeper_resend_of_an_order_the_worker_claimed_after_the_send_time_check_keeps_the_timeline_true(
    monkeypatch,
):
    # Arrange: the worker takes the first message between the sweep's send-time check and its hand-off
    from orders.services import dispatch
    from orders.services.venue_commands import order_venue_submit_claim

    order = _stale_routed_order()
    resend = dispatch.order_dispatch_submit

    def claimed_first(*, order_id, attempt):
        assert order_venue_submit_claim(order_id=str(order_id), worker="w1") is not None
        return resend(order_id=order_id, attempt=attempt)

    monkeypatch.setattr(dispatch, "order_dispatch_submit", claimed_first)
    # Act
    orders_redispatch_stale()
    # Assert: no ROUTED → ROUTED hand-off after SUBMITTED; the re-send is on record, with the order's status
    assert _contradictions(order) == []
    sweep = OrderEvent.objects.get(order=order, type="DISPATCHED")
    assert (sweep.status_before, sweep.status_after) == ("SUBMITTED", "SUBMITTED")
    assert "SUBMITTED" in sweep.payload["detail"] and sweep.payload["attempt"] == "sweeper"


def test_sweeper_resend_claimed_by_the_worker_during_the_hand_off_keeps_the_timeline_true(monkeypatch):
    # Arrange: the worker takes the re-sent message at once, before the sweeper records the hand-off
    from orders.services import dispatch
    from orders.services.venue_commands import order_venue_submit_claim

    order = _stale_routed_order()
    publish = dispatch._publish

    def publish_then_claim(command, order_id):
        result = publish(command, order_id)
        assert order_venue_submit_claim(order_id=order_id, worker="w1") is not None
        return result

    monkeypatch.setattr(dispatch, "_publish", publish_then_claim)
    # Act
    orders_redispatch_stale()
    # Assert
    assert _contradictions(order) == []
    assert OrderEvent.objects.get(order=order, type="DISPATCHED").status_after == "SUBMITTED"


def test_sweeper_resending_a_cancel_the_venue_never_answers_keeps_one_entry_per_kind_and_logs_each(
    monkeypatch, caplog
):
    # Arrange: a cancel the worker received a minute ago; it receives every re-send, the venue never answers
    from orders.services import dispatch
    from orders.services.venue_commands import order_venue_cancel_claim

    order = OrderFactory(status="PENDING_CANCEL")
    old = timezone.now() - timedelta(seconds=60)
    OrderEventFactory(order=order, type="CANCEL_REQUESTED", status_before="ACCEPTED", status_after="PENDING_CANCEL",
                      ts=old)
    OrderEventFactory(order=order, type="VENUE_RECEIVED", status_before="PENDING_CANCEL",
                      status_after="PENDING_CANCEL", ts=old, payload={"command": "cancel", "worker": "w1"})
    publish = dispatch._publish

    def publish_and_receive(command, order_id):
        result = publish(command, order_id)
        assert order_venue_cancel_claim(order_id=order_id, worker="w1") is not None
        return result

    monkeypatch.setattr(dispatch, "_publish", publish_and_receive)
    now = timezone.now()
    assert orders_redispatch_stale(now=now).cancels == [order.pk]
    entries_after_first_resend = OrderEvent.objects.filter(order=order).count()
    # Act: three more sweeps, 30 s apart (retry after 15 s)
    for k in (1, 2, 3):
        assert orders_redispatch_stale(now=now + timedelta(seconds=30 * k)).cancels == [order.pk]
    # Assert: the timeline did not grow; its entries count the re-sends and receipts; the log has each re-send
    assert OrderEvent.objects.filter(order=order).count() == entries_after_first_resend
    resent = OrderEvent.objects.get(order=order, type="DISPATCHED", payload__attempt="sweeper")
    received = OrderEvent.objects.get(order=order, type="VENUE_RECEIVED")
    assert (resent.payload["count"], received.payload["count"]) == (4, 5)
    assert f"4 times since {resent.payload['first_at']}" in log_entry(resent).detail
    assert f"(x5 since {received.payload['first_at']})" in order_detail_block(order_with_family_fills(order=order))
    assert resent.payload["first_at"] < resent.ts.isoformat() and received.ts >= resent.ts
    assert _contradictions(order) == []
    logged = [r.getMessage() for r in caplog.records if str(order.pk) in r.getMessage() and "re-sent" in r.getMessage()]
    assert len(logged) == 4, logged


def _stale_pending_cancel_order():
    old = timezone.now() - timedelta(seconds=60)
    order = OrderFactory(status="PENDING_CANCEL")
    OrderEventFactory(order=order, type="CANCEL_REQUESTED", status_before="ACCEPTED", status_after="PENDING_CANCEL",
                      ts=old)
    Order.objects.filter(pk=order.pk).update(created_at=old)
    return order


def _lock_waiters() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                       "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()")
        return cursor.fetchone()[0]


@pytest.mark.postgres
@pytest.mark.timeout(60)
@pytest.mark.django_db(transaction=True)  # the worker and the sweep commit in threads of their own
@pytest.mark.parametrize("command", ["submit", "cancel"])
def test_sweeper_does_not_resend_to_an_order_that_moved_on_after_the_selection(command, request):
    # Arrange: a stale order; the trading worker takes an earlier message of it (submit: claims it,
    # ROUTED → SUBMITTED; cancel: records receipt) in a transaction still open when the sweep selects it
    import threading

    from django.db import connections, transaction

    from orders.services.venue_commands import order_venue_cancel_claim, order_venue_submit_claim
    from tests.helpers import eventually

    order = _stale_routed_order() if command == "submit" else _stale_pending_cancel_order()
    claim = order_venue_submit_claim if command == "submit" else order_venue_cancel_claim
    claimed, release, reports, errors = threading.Event(), threading.Event(), [], []

    def worker():
        try:
            with transaction.atomic():
                assert claim(order_id=str(order.pk), worker="w1") is not None
                claimed.set()
                release.wait(30)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
            claimed.set()
        finally:
            connections.close_all()

    def sweep():
        try:
            reports.append(orders_redispatch_stale())
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, daemon=True)]
    threads[0].start()
    assert claimed.wait(30) and not errors
    threads.append(threading.Thread(target=sweep, daemon=True))
    threads[1].start()
    # Act: the sweep has selected the order and waits for its row; the worker commits
    try:
        eventually(lambda: _lock_waiters() > 0, timeout=30, message="the sweep waiting for the order's row lock")
    finally:
        release.set()
    for thread in threads:
        thread.join(30)
    # Assert: nothing re-sent, so nothing for the worker to ignore and no hand-off on the timeline
    assert not errors and len(reports) == 1
    assert reports[0].submits == reports[0].cancels == reports[0].failed == []
    assert reports[0].moved_on == [order.pk]
    assert not OrderEvent.objects.filter(order=order, type__in=["DISPATCHED", "DISPATCH_FAILED", "IGNORED"]).exists()
    if redis_configured():
        assert request.getfixturevalue("venue_queue")() == []


@pytest.mark.timeout(60)
@pytest.mark.parametrize("command", ["submit", "cancel"])
def test_sweeper_with_the_broker_down_folds_repeated_dispatch_failures_into_one_entry_and_logs_each(
    command, broker_down, caplog
):
    # Arrange: a stale order whose command cannot be handed off (the broker stays down)
    order = _stale_routed_order() if command == "submit" else _stale_pending_cancel_order()
    entries_before = OrderEvent.objects.filter(order=order).count()
    now = timezone.now()
    # Act: three sweeps, 20 s apart (retry after 15 s)
    for k in range(3):
        assert orders_redispatch_stale(now=now + timedelta(seconds=20 * k)).failed == [order.pk]
    # Assert: one DISPATCH_FAILED entry counting the three, at the latest; each failure logged
    failed = OrderEvent.objects.get(order=order, type="DISPATCH_FAILED")
    assert OrderEvent.objects.filter(order=order).count() == entries_before + 1
    assert failed.payload["count"] == 3 and failed.payload["command"] == command
    assert failed.payload["first_at"] < failed.ts.isoformat()
    assert "OperationalError" in failed.payload["error"]
    assert f"3 times since {failed.payload['first_at']}" in log_entry(failed).detail
    assert _contradictions(order) == []
    logged = [r.getMessage() for r in caplog.records
              if str(order.pk) in r.getMessage() and f"dispatch of {command} command" in r.getMessage()]
    assert len(logged) == 3, logged


@pytest.mark.timeout(60)
def test_dispatch_failure_after_another_entry_starts_a_new_entry(broker):
    # Arrange: a failed hand-off, then one that went through (never received), then the broker down again
    order = _stale_routed_order()
    now = timezone.now()
    broker.down()
    assert orders_redispatch_stale(now=now).failed == [order.pk]
    broker.up()
    assert orders_redispatch_stale(now=now + timedelta(seconds=20)).submits == [order.pk]
    broker.down()
    # Act
    assert orders_redispatch_stale(now=now + timedelta(seconds=40)).failed == [order.pk]
    # Assert: the failures on either side of the hand-off are entries of their own
    assert _types(order) == ["ROUTED", "DISPATCH_FAILED", "DISPATCHED", "DISPATCH_FAILED"]
    assert [e.payload.get("count", 1) for e in OrderEvent.objects.filter(order=order, type="DISPATCH_FAILED")] == [1, 1]
