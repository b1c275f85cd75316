"""JournalWriter: one thread applying venue events in order, one transaction each, surviving failures.

These tests need real commits seen across threads: ``transaction=True``.
"""

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import OperationalError
from django.utils import timezone

from orders.models import Fill, Order, OrderEvent
from orders.services import order_apply_venue_event
from tests.helpers import eventually
from tests.orders.factories import OrderFactory, StrategyFactory
from tests.venues.factories import InstrumentFactory
from venues.events import VenueEvent, VenueEventKind
from venues.journal import JournalWriter, JournalWriterClosed

K = VenueEventKind
S = Order.Status
T0 = timezone.now().replace(microsecond=0)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def order():
    """LIMIT BUY 0.01 BTC-USDT @ 40000 on BINANCE-SPOT, SUBMITTED, with its listing."""
    InstrumentFactory()
    return OrderFactory(strategy=StrategyFactory(id="alpha"), status=S.SUBMITTED)


@pytest.fixture
def writers():
    """Writers started by a test; any still running at the end are stopped (drained)."""
    started = []

    def make(**kwargs):
        writer = JournalWriter(**kwargs).start()
        started.append(writer)
        return writer

    yield make
    for writer in started:
        writer.stop(drain=False, timeout=10)


def accepted(order, seconds=0):
    return VenueEvent(kind=K.ACCEPTED, client_order_id=order.client_order_id, venue=order.venue,
                      ts_event=T0 + timedelta(seconds=seconds))


def filled(order, trade_id, qty, px="40000", seconds=1):
    return VenueEvent(kind=K.FILLED, client_order_id=order.client_order_id, venue=order.venue,
                      ts_event=T0 + timedelta(seconds=seconds), trade_id=trade_id, last_qty=Decimal(qty),
                      last_px=Decimal(px), fee=Decimal("0.1"), fee_currency="USDT", liquidity="MAKER")


def timeline(order):
    return list(OrderEvent.objects.filter(order=order).order_by("id").values_list("type", "payload__trade_id"))


def gated(gate: threading.Event, *, kinds: tuple[str, ...] | None = None):
    """The journal's apply, held until ``gate`` is set on events of ``kinds`` (every event when None)."""

    def apply(*, event):
        if kinds is None or event.kind in kinds:
            gate.wait(30)
        return order_apply_venue_event(event=event)

    return apply


def test_journal_applies_events_in_arrival_order(order, writers):
    # Arrange
    writer = writers(batch_size=2)
    events = [accepted(order)] + [filled(order, f"T{n}", "0.002", seconds=n) for n in range(1, 6)]

    # Act
    for event in events:
        writer.submit(event)

    # Assert
    eventually(lambda: writer.stats().applied == 6, message="six events applied")
    order.refresh_from_db()
    assert order.status == S.FILLED and order.filled_quantity == Decimal("0.01")
    assert timeline(order) == [("ACCEPTED", None)] + [("PARTIALLY_FILLED", f"T{n}") for n in range(1, 5)] + [
        ("FILLED", "T5")]
    stats = writer.stats()
    assert (stats.ignored, stats.failed, stats.queue_depth) == (0, 0, 0) and stats.last_applied_at is not None


def test_journal_stop_with_drain_applies_everything_queued(order, writers):
    # Arrange: the writer is held on its first event while the rest queue up.
    gate = threading.Event()
    writer = writers(apply=gated(gate))
    writer.submit(accepted(order))
    for n in range(1, 4):
        writer.submit(filled(order, f"T{n}", "0.003", seconds=n))
    queued = eventually(lambda: writer.stats().queue_depth == 3 or None, message="three queued behind the first")

    # Act
    gate.set()
    stopped = writer.stop(drain=True, timeout=30)

    # Assert
    order.refresh_from_db()
    assert queued and stopped and not writer.is_running
    assert writer.stats().applied == 4
    assert order.filled_quantity == Decimal("0.009") and order.status == S.PARTIALLY_FILLED
    with pytest.raises(JournalWriterClosed):
        writer.submit(filled(order, "T9", "0.001"))


def test_journal_stop_without_drain_leaves_the_queue(order, writers):
    # Arrange
    gate = threading.Event()
    writer = writers(apply=gated(gate))
    _queue_accepted_and_three_fills(writer, order)

    # Act
    writer.stop(drain=False, timeout=0)
    gate.set()
    eventually(lambda: not writer.is_running, message="writer thread ended")

    # Assert: the event in hand finished; the queued fills were not written.
    order.refresh_from_db()
    assert writer.stats().applied == 1 and writer.stats().queue_depth == 0
    assert order.status == S.ACCEPTED and not Fill.objects.exists()


def test_journal_failing_event_does_not_stop_the_writer(order, writers):
    # Arrange: the second event hits a bug in the applying code.
    def buggy(*, event):
        if event.trade_id == "T-bad":
            raise RuntimeError("boom")
        return order_apply_venue_event(event=event)

    writer = writers(apply=buggy)

    # Act
    writer.submit(accepted(order))
    writer.submit(filled(order, "T-bad", "0.004"))
    writer.submit(filled(order, "T2", "0.004", seconds=2))

    # Assert
    eventually(lambda: writer.stats().applied == 2, message="events after the failure applied")
    stats = writer.stats()
    assert stats.failed == 1 and stats.last_error == "RuntimeError: boom" and writer.is_running
    assert list(Fill.objects.values_list("venue_trade_id", flat=True)) == ["T2"]


def test_journal_event_failing_inside_the_service_is_rolled_back_and_counted(order, writers):
    # Arrange: a fill for an order whose listing is missing fails in the service's transaction.
    eth = "BINANCE-SPOT:SPOT_PAIR:ETH-USDT"
    orphan = OrderFactory(strategy=order.strategy, status=S.SUBMITTED, routed_instrument_key=eth, instrument_key=eth)
    writer = writers()

    # Act
    writer.submit(filled(orphan, "T1", "0.01"))
    writer.submit(filled(order, "T2", "0.01"))

    # Assert
    eventually(lambda: writer.stats().applied == 1, message="the good fill applied")
    orphan.refresh_from_db()
    assert writer.stats().failed == 1 and "VenueEventError" in writer.stats().last_error
    assert orphan.filled_quantity == 0 and not OrderEvent.objects.filter(order=orphan).exists()


def test_journal_transient_database_error_is_retried(order, writers):
    # Arrange: the database drops the first two attempts.
    failures = iter([OperationalError("server closed the connection"), OperationalError("still down")])

    def flaky(*, event):
        failure = next(failures, None)
        if failure is not None:
            raise failure
        return order_apply_venue_event(event=event)

    writer = writers(apply=flaky, retry_backoff=0.001)

    # Act
    writer.submit(accepted(order))

    # Assert
    eventually(lambda: writer.stats().applied == 1, message="applied after retries")
    stats = writer.stats()
    assert (stats.retries, stats.failed) == (2, 0)
    assert Order.objects.get(pk=order.pk).status == S.ACCEPTED


def test_journal_transient_errors_exhausted_count_as_failed(order, writers):
    def down(*, event):
        raise OperationalError("database is down")

    writer = writers(apply=down, max_attempts=3, retry_backoff=0.001)

    writer.submit(accepted(order))

    eventually(lambda: writer.stats().failed == 1, message="given up after three tries")
    assert writer.stats().retries == 2 and writer.is_running


def test_journal_unknown_and_duplicate_events_count_as_ignored(order, writers):
    writer = writers()

    writer.submit(filled(order, "T1", "0.01"))
    writer.submit(filled(order, "T1", "0.01"))  # replay
    writer.submit(VenueEvent(kind=K.ACCEPTED, client_order_id="OLunknown", venue="BINANCE-SPOT", ts_event=T0))

    eventually(lambda: writer.stats().ignored == 2, message="replay and unknown ignored")
    assert writer.stats().applied == 1 and Fill.objects.count() == 1


def test_journal_submit_refuses_non_events_and_unstarted_writer():
    writer = JournalWriter()

    with pytest.raises(JournalWriterClosed):
        writer.submit(VenueEvent(kind=K.ACCEPTED, client_order_id="X", venue="V", ts_event=T0))
    with pytest.raises(TypeError):
        writer.submit({"kind": "ACCEPTED"})
    assert writer.stop() is True


def test_journal_submit_and_wait_returns_once_an_idle_writer_has_written_the_event(order, writers):
    # Arrange
    writer = writers()

    # Act
    handled = writer.submit_and_wait(accepted(order), timeout=30)

    # Assert: written and committed before the caller goes on.
    order.refresh_from_db()
    assert handled is True and order.status == S.ACCEPTED and writer.stats().applied == 1


def test_journal_submit_and_wait_does_not_wait_for_a_busy_writer(order, writers):
    # Arrange: the writer is held on its first event.
    gate = threading.Event()
    writer = writers(apply=gated(gate, kinds=(K.ACCEPTED,)))
    writer.submit(accepted(order))
    eventually(lambda: writer.stats().queue_depth == 1 or None, message="first event in hand")

    # Act: the writer is busy, so this only queues.
    handled = writer.submit_and_wait(filled(order, "T1", "0.004"), timeout=30)
    written_meanwhile = Fill.objects.exists()
    gate.set()

    # Assert: nothing was waited for, nothing is lost, the order of events is kept.
    assert handled is False and not written_meanwhile
    eventually(lambda: writer.stats().applied == 2, message="both events applied")
    assert timeline(order) == [("ACCEPTED", None), ("PARTIALLY_FILLED", "T1")]


def test_journal_submit_and_wait_gives_up_after_its_timeout_and_the_event_is_still_written(order, writers):
    # Arrange: the writer is idle, but writing this event takes longer than the caller waits.
    gate = threading.Event()
    writer = writers(apply=gated(gate))

    # Act
    handled = writer.submit_and_wait(accepted(order), timeout=0.05)
    written_meanwhile = Order.objects.filter(pk=order.pk, status=S.ACCEPTED).exists()
    gate.set()

    # Assert
    assert handled is False and not written_meanwhile
    eventually(lambda: writer.stats().applied == 1, message="the event written after the wait ran out")
    order.refresh_from_db()
    assert order.status == S.ACCEPTED


def test_journal_wait_handled_returns_once_everything_queued_so_far_is_handled(order, writers):
    # Arrange: the writer is held on its first event, a second queued behind it.
    gate = threading.Event()
    writer = writers(apply=gated(gate))
    writer.submit(accepted(order))
    writer.submit(filled(order, "T1", "0.004"))

    # Act
    while_held = writer.wait_handled(timeout=0.05)
    gate.set()
    after_release = writer.wait_handled(timeout=30)

    # Assert
    assert while_held is False and after_release is True
    assert writer.stats().applied == 2 and timeline(order) == [("ACCEPTED", None), ("PARTIALLY_FILLED", "T1")]


def test_journal_submit_and_wait_refuses_as_submit_does():
    writer = JournalWriter()

    with pytest.raises(JournalWriterClosed):
        writer.submit_and_wait(VenueEvent(kind=K.ACCEPTED, client_order_id="X", venue="V", ts_event=T0), timeout=1)
    with pytest.raises(TypeError):
        writer.submit_and_wait({"kind": "ACCEPTED"}, timeout=1)
    assert writer.stop() is True


def test_journal_publishes_on_its_publisher_thread_in_commit_order_and_drains_on_stop(order, writers, monkeypatch):
    # Arrange: the publisher is held on its first publication while the writer goes on writing.
    import orders.services.publish as publish

    gate, calls = threading.Event(), []

    def held_publish(orders, **kwargs):
        calls.append((threading.current_thread().name, list(orders), Order.objects.get(pk=order.pk).status))
        gate.wait(10)

    monkeypatch.setattr(publish, "publish_orders_updated", held_publish)
    writer = writers()

    # Act: three events; the first publication blocks, the writer does not.
    writer.submit(accepted(order))
    eventually(lambda: len(calls) == 1, message="first publication started")
    writer.submit(filled(order, "T1", "0.004"))
    writer.submit(filled(order, "T2", "0.006", seconds=2))
    eventually(lambda: writer.stats().applied == 3, message="writes not held up by the publisher")
    unpublished = writer.stats().unpublished
    gate.set()
    stopped = writer.stop(timeout=10)

    # Assert: the two publications queued behind the first went out merged, after the writes.
    assert stopped and unpublished == 2
    assert [name for name, _, _ in calls] == ["journal-writer-publisher"] * 2
    assert [ids for _, ids, _ in calls] == [[order.pk], [order.pk]]
    assert calls[1][2] == S.FILLED


def test_journal_held_publication_goes_out_with_the_next_one_or_after_its_hold(order, writers, monkeypatch):
    # Arrange: publications recorded; a second order to publish alongside.
    import orders.services.publish as publish

    calls = []
    monkeypatch.setattr(publish, "publish_orders_updated", lambda orders, **kwargs: calls.append(sorted(orders)))
    other = OrderFactory(strategy=order.strategy)
    writer = writers()

    # Act 1: a publication held for 30 s, then the venue's event: both go out at once, together.
    writer.publish_later({other.pk: other.strategy_id}, hold=30.0)
    writer.submit(accepted(order))
    eventually(lambda: len(calls) == 1, timeout=5, message="held publication merged with the event's")

    # Act 2: a publication held briefly with nothing to wait for goes out alone once its hold ends.
    writer.publish_later({other.pk: other.strategy_id}, hold=0.05)
    eventually(lambda: len(calls) == 2, timeout=5, message="held publication sent after its hold")
    assert writer.stop(timeout=10)

    # Assert
    assert calls == [sorted([order.pk, other.pk]), [other.pk]]


def _held_then(gate, behaviour):
    # The first event waits for ``gate`` (so the rest queue up and form one batch), then ``behaviour``.
    first = threading.Event()

    def apply(*, event):
        if not first.is_set():
            first.set()
            gate.wait(10)
        return behaviour(event)

    return apply


def _queue_accepted_and_three_fills(writer, order):
    # ACCEPTED (held by _held_then until its gate opens), then fills T1..T3 queued behind it: one batch.
    writer.submit(accepted(order))
    for n in range(1, 4):
        writer.submit(filled(order, f"T{n}", "0.003", seconds=n))
    eventually(lambda: writer.stats().queue_depth == 3, message="three queued behind the first")


def test_journal_batch_failing_event_loses_only_its_own_writes(order, writers):
    # Arrange: fills T1..T3 queue behind a held ACCEPTED and are applied as one batch; T2's
    # application writes, then fails.
    gate = threading.Event()

    def behaviour(event):
        result = order_apply_venue_event(event=event)
        if event.trade_id == "T2":
            raise RuntimeError("bug after writing")
        return result

    writer = writers(apply=_held_then(gate, behaviour), batch_size=10)
    _queue_accepted_and_three_fills(writer, order)

    # Act
    gate.set()
    eventually(lambda: writer.stats().applied + writer.stats().failed == 4, message="batch handled")

    # Assert: T1 and T3 committed together; T2's fill, timeline entry and position change rolled back.
    order.refresh_from_db()
    stats = writer.stats()
    assert (stats.applied, stats.failed) == (3, 1) and "bug after writing" in stats.last_error
    assert sorted(Fill.objects.values_list("venue_trade_id", flat=True)) == ["T1", "T3"]
    assert order.filled_quantity == Decimal("0.006")
    assert [t for _, t in timeline(order)] == [None, "T1", "T3"]


def test_journal_batch_transient_error_falls_back_to_one_by_one(order, writers):
    # Arrange: the batch's second event hits a lost connection once.
    gate, failures = threading.Event(), []

    def behaviour(event):
        if event.trade_id == "T2" and not failures:
            failures.append(event)
            raise OperationalError("server closed the connection unexpectedly")
        return order_apply_venue_event(event=event)

    writer = writers(apply=_held_then(gate, behaviour), batch_size=10, retry_backoff=0.001)
    _queue_accepted_and_three_fills(writer, order)

    # Act
    gate.set()
    eventually(lambda: writer.stats().applied == 4, message="all applied")

    # Assert: every fill exactly once (T1's batch write was rolled back and re-applied).
    order.refresh_from_db()
    assert writer.stats().failed == 0 and writer.stats().retries >= 1
    assert sorted(Fill.objects.values_list("venue_trade_id", flat=True)) == ["T1", "T2", "T3"]
    assert order.filled_quantity == Decimal("0.009")


def test_journal_batch_failing_at_its_commit_falls_back_to_one_by_one_and_the_writer_lives_on(order, writers):
    # Arrange: T2's application also writes a row whose foreign key is checked only at COMMIT (Django's
    # foreign keys are DEFERRABLE INITIALLY DEFERRED): the batch's savepoints pass, its COMMIT fails
    # with a non-transient IntegrityError.
    import uuid as uuid_module

    from django.db import connection

    gate = threading.Event()

    def behaviour(event):
        if event.trade_id == "T2":
            with connection.cursor() as cursor:
                cursor.execute("INSERT INTO orders_orderevent (order_id, type, status_before, status_after, payload, "
                               "actor, ts) VALUES (%s, 'IGNORED', '', '', '{}', 'test', %s)",
                               [uuid_module.uuid4().hex, timezone.now()])
        return order_apply_venue_event(event=event)

    writer = writers(apply=_held_then(gate, behaviour), batch_size=10, retry_backoff=0.001)
    _queue_accepted_and_three_fills(writer, order)

    # Act
    gate.set()
    eventually(lambda: writer.stats().applied + writer.stats().failed == 4, message="batch handled")
    writer.submit(filled(order, "T4", "0.001", seconds=4))
    eventually(lambda: writer.stats().applied + writer.stats().failed == 5, message="a later event handled")

    # Assert: the batch was rolled back whole and re-applied one by one: only T2 failed, and the
    # writer did not die with the batch.
    stats = writer.stats()
    assert writer.is_running and (stats.applied, stats.failed) == (4, 1) and "IntegrityError" in stats.last_error
    assert sorted(Fill.objects.values_list("venue_trade_id", flat=True)) == ["T1", "T3", "T4"]

