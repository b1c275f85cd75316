"""The journal writer: the single writer of venue facts (DESIGN.md, order flow step 4).

Venue event sources (the TradingNode bridge on the node's loop thread, external adapters, the
reconciliation) call :meth:`JournalWriter.submit`, which only enqueues (or
:meth:`JournalWriter.submit_and_wait`, which also lets an idle writer record the event before the
caller goes on: the TradingNode's thread, whose own work would otherwise compete with the write
for the interpreter). One daemon thread takes the
events in arrival order and applies each with
:func:`orders.services.venue_events.order_apply_venue_event` — all of an event's writes or none.
A lone event is one transaction. When several events are queued the thread takes up to
``batch_size`` at once and applies them in order in **one transaction, a savepoint per event**: an
event that fails loses only its own writes (its savepoint is rolled back, the batch goes on), and
the commit — most of the cost of a small write on PostgreSQL — is paid once per batch, so the
writer keeps up with a storm of algorithm slices. The database connection is checked between
batches, at most once a second.

Publishing: the service publishes the changed orders to the order stream after each commit
(orders/services/publish.py). The writer hands that publication to a second thread, its
*publisher*, so a slow channel layer never delays the next write; the publisher takes whatever has
queued up and publishes it in one call, in commit order (a publication carries the new timeline
entries and fills of each order by id, so merging two of them loses nothing). Stopping the writer
drains the publisher after the last write.

Failure policy:

- a transient database error (``django.db.OperationalError`` / ``InterfaceError``: connection lost,
  lock timeout, serialization failure) is retried with exponential backoff, up to
  ``max_attempts`` tries (in a batch it ends the batch's transaction, which is rolled back whole;
  its events are then applied one by one, each with its retries); the event is idempotent (fills are
  unique on venue, listing, trade id and side, a repeated status event is a recorded no-op), so a retry
  after an unknown outcome is safe;
- any other error (or retries exhausted) is logged with its traceback, counted in
  ``stats().failed`` and kept as ``last_error``; the writer goes on with the next event. The
  venue's fill / order reports at reconciliation re-deliver what was lost.
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.db import InterfaceError, OperationalError, close_old_connections, connection, transaction
from django.utils import timezone

from venues.events import VenueEvent

logger = logging.getLogger(__name__)

_STOP = object()  # queue sentinel: everything queued before it is applied first


class JournalWriterClosed(RuntimeError):
    """:meth:`JournalWriter.submit` after :meth:`JournalWriter.stop` (or before ``start``)."""


@dataclass(frozen=True, slots=True)
class JournalStats:
    """A snapshot of the writer's counters.

    Attributes
    ----------
    applied : int
        Events that changed the books (``AppliedEvent.applied``).
    ignored : int
        Events applied as recorded or logged no-ops (unknown order, late / duplicate event,
        replayed fill, over-fill).
    failed : int
        Events given up on (non-transient error, or transient retries exhausted).
    retries : int
        Transient database errors retried.
    queue_depth : int
        Events received and not yet started (queued, or taken in the current batch).
    last_applied_at : datetime | None
        Wall-clock time (UTC) the last event was applied or ignored.
    last_error : str
        ``"<ExceptionType>: <message>"`` of the last failed event ("" when none).
    running : bool
        Whether the thread is alive.
    unpublished : int
        Committed changes whose publication to the order stream is still queued.
    """

    applied: int
    ignored: int
    failed: int
    retries: int
    queue_depth: int
    last_applied_at: datetime | None
    last_error: str
    running: bool
    unpublished: int = 0


class _Publisher:
    # The writer's publishing thread: publications in commit order, merged when several wait.
    def __init__(self, name: str) -> None:
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._connection_check = _ConnectionCheck()
        self.published = 0

    def start(self) -> None:
        self._thread.start()

    def submit(self, orders: dict[uuid.UUID, str], *, hold: float = 0.0) -> None:
        # hold > 0: it may wait that long (seconds) for another publication to go out with.
        self._queue.put_nowait((orders, time.monotonic() + hold if hold > 0 else None))

    def depth(self) -> int:
        return sum(1 for item in list(self._queue.queue) if item is not _STOP)

    def stop(self, timeout: float | None) -> bool:
        self._queue.put_nowait(_STOP)
        if self._thread.ident is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        from orders.services.publish import publish_orders_updated

        try:
            self._loop(publish_orders_updated)
        finally:
            try:
                connection.close()  # publishing reads the new events and fills: its own connection
            except Exception:  # noqa: BLE001
                logger.exception("journal publisher: closing its database connection failed")

    def _loop(self, publish_orders_updated) -> None:
        stopping = False
        while not stopping:
            merged: dict[uuid.UUID, str] = {}
            urgent, earliest = False, None  # a publication that may not wait; the first deadline of those that may
            item = self._queue.get()
            while True:
                if item is _STOP:
                    stopping = True
                else:
                    orders, until = item
                    merged.update(orders)
                    if until is None:
                        urgent = True
                    else:
                        earliest = until if earliest is None else min(earliest, until)
                try:
                    item = self._queue.get_nowait()
                    continue
                except queue.Empty:
                    pass
                wait = 0.0 if urgent or stopping or earliest is None else earliest - time.monotonic()
                if wait <= 0:
                    break
                try:
                    item = self._queue.get(timeout=wait)
                except queue.Empty:
                    break
            if not merged:
                continue
            self._connection_check()
            try:
                publish_orders_updated(merged)
                self.published += 1
            except Exception:  # noqa: BLE001 - the books are committed; subscribers catch up by sequence
                logger.exception("journal publisher: publishing %d order(s) failed", len(merged))


class JournalWriter:
    """One daemon thread applying venue events in arrival order, one transaction per event.

    Parameters
    ----------
    apply : Callable[..., AppliedEvent] | None
        The service applying one event (keyword ``event``); default
        :func:`orders.services.venue_events.order_apply_venue_event` with its publications handed
        to the writer's publisher thread. Tests may wrap it.
    batch_size : int
        Most events taken off the queue at once and written in one transaction (≥ 1); the
        connection is checked between batches. Small on purpose: an event's writes become visible
        only at its batch's commit, so a large batch would trade latency for little (measured on
        PostgreSQL here: the commit is ~3 ms of an event's ~10–20 ms).
    max_attempts : int
        Tries per event on transient database errors (≥ 1).
    retry_backoff : float
        First wait before a retry, seconds; doubled per retry up to ``retry_backoff_max``.
    retry_backoff_max : float
        Longest wait between retries, seconds.
    name : str
        Thread name.

    Raises
    ------
    ValueError
        For a ``batch_size`` or ``max_attempts`` below 1, or a negative backoff.
    """

    def __init__(
        self,
        *,
        apply: Callable | None = None,
        batch_size: int = 10,
        max_attempts: int = 5,
        retry_backoff: float = 0.05,
        retry_backoff_max: float = 2.0,
        name: str = "journal-writer",
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size: must be ≥ 1, got {batch_size}")
        if max_attempts < 1:
            raise ValueError(f"max_attempts: must be ≥ 1, got {max_attempts}")
        if retry_backoff < 0 or retry_backoff_max < 0:
            raise ValueError("retry_backoff, retry_backoff_max: must be ≥ 0 seconds")
        self._publisher = _Publisher(f"{name}-publisher")
        if apply is None:
            from orders.services.venue_events import order_apply_venue_event

            apply = functools.partial(order_apply_venue_event, publish=self._publisher.submit)
        self._apply = apply
        self._batch_size = batch_size
        self._max_attempts = max_attempts
        self._backoff = retry_backoff
        self._backoff_max = retry_backoff_max
        self._queue: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._accepting = False
        self._abort = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._applied = self._ignored = self._failed = self._retries = 0
        self._last_applied_at: datetime | None = None
        self._last_error = ""
        self._in_hand = 0  # events taken off the queue in the current batch, not yet started
        self._connection_check = _ConnectionCheck()
        self._submitted = 0  # events ever queued; applied + ignored + failed catches up with it
        self._handled = threading.Condition(self._lock)  # notified whenever an event is handled

    # --- control ------------------------------------------------------------------------------

    def start(self) -> JournalWriter:
        """Start the thread; return ``self``.

        Raises
        ------
        RuntimeError
            When started twice.
        """
        with self._lock:
            self._thread.start()
            self._publisher.start()
            self._accepting = True
        return self

    def submit(self, event: VenueEvent) -> None:
        """Enqueue ``event`` for the writer thread; never blocks (the queue is unbounded).

        Thread-safe: call it from any thread (the node's loop thread, adapters).

        Raises
        ------
        TypeError
            When ``event`` is not a :class:`venues.events.VenueEvent`.
        JournalWriterClosed
            Before :meth:`start` or after :meth:`stop`: the event would never be written.
        """
        self._enqueue(event)

    def submit_and_wait(self, event: VenueEvent, *, timeout: float) -> bool:
        """Enqueue ``event``; if the writer was idle, wait up to ``timeout`` seconds until it is handled.

        For the TradingNode's loop thread (:class:`venues.node.host.TradingNodeHost`). Right after
        it hands over an event (an order accepted, a fill) the node goes on with its own
        book-keeping (positions, portfolio, its cache) while the writer records the event, and the
        two take turns at the interpreter lock: the write took about twice as long as alone
        (bench/e2e_latency.py, README "Benchmarks"). Waiting here gives the idle writer the
        interpreter; the node resumes once the event is written. A busy writer (events queued or in
        hand) is not waited for: a storm of algorithm slices is written in batches while the node
        goes on, and the node never waits behind a backlog.

        Parameters
        ----------
        event : VenueEvent
            The event, as for :meth:`submit`.
        timeout : float
            Longest wait, seconds (≤ 0: never waits). The event stays queued when it runs out.

        Returns
        -------
        bool
            True when the event was handled (applied, ignored or failed) before this returned;
            False when the writer was busy, or the wait ran out.

        Raises
        ------
        TypeError, JournalWriterClosed
            As :meth:`submit`.
        """
        idle, seq = self._enqueue(event)
        if not idle or timeout <= 0:
            return False
        return self._wait_handled(seq, timeout)

    def wait_handled(self, *, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until every event queued so far has been handled.

        Returns
        -------
        bool
            True when they all were (applied, ignored or failed); False when the wait ran out (or
            the writer stopped without draining them).
        """
        with self._lock:
            target = self._submitted
        return self._wait_handled(target, timeout)

    def _wait_handled(self, count: int, timeout: float) -> bool:
        # Wait until ``count`` events in all have been handled.
        with self._lock:
            return self._handled.wait_for(lambda: self._handled_count() >= count, timeout)

    def _enqueue(self, event: VenueEvent) -> tuple[bool, int]:
        # Queue the event; return whether every event before it was handled, and its number.
        if not isinstance(event, VenueEvent):
            raise TypeError(f"event: expected VenueEvent, got {type(event).__name__}")
        with self._lock:  # no event may slip in behind the stop sentinel
            if not self._accepting:
                raise JournalWriterClosed(f"journal writer is not running: event {event.kind} "
                                          f"{event.client_order_id} not queued")
            idle = self._handled_count() >= self._submitted
            self._queue.put_nowait(event)
            self._submitted += 1
            return idle, self._submitted

    def _handled_count(self) -> int:
        # Under self._lock.
        return self._applied + self._ignored + self._failed

    def publish_later(self, orders: dict[uuid.UUID, str], *, hold: float = 0.0) -> None:
        """Publish ``orders`` (order id → strategy id) on the writer's publisher thread, after what it holds.

        For other writers of the same orders in this process (the trading worker's claim), so their
        publication keeps its place before the venue's events and costs the caller nothing. Once
        the writer is stopped, publishes in the caller's thread instead.

        Parameters
        ----------
        orders : dict[uuid.UUID, str]
            The changed orders.
        hold : float
            Seconds the publication may wait for another one to go out with it (0: at once). The
            claim holds its publication for the venue's first event, which then publishes both
            (venues/tasks.py): one publication per order instead of two, and none competing with
            the journal's write of that event for the interpreter.
        """
        with self._lock:
            if self._accepting:
                self._publisher.submit(orders, hold=hold)
                return
        from orders.services.publish import publish_orders_updated

        publish_orders_updated(orders)

    def stop(self, *, drain: bool = True, timeout: float | None = 30.0) -> bool:
        """Stop taking events and end the thread.

        Parameters
        ----------
        drain : bool
            True: apply every event queued so far first. False: finish the event in hand and
            leave the rest (logged with their count; reconciliation re-delivers them).
        timeout : float | None
            Longest wait for the thread, seconds (None: wait as long as it takes).

        Returns
        -------
        bool
            True when the thread has ended; False when ``timeout`` passed first (it keeps
            draining in the background and ends when done).
        """
        with self._lock:
            self._accepting = False
            if not drain:
                self._abort.set()
            self._queue.put_nowait(_STOP)
        if self._thread.ident is None:  # never started: nothing to wait for
            return True
        self._thread.join(timeout)
        if self._thread.is_alive():
            return False
        return self._publisher.stop(timeout)  # after the last write: its publication goes out too

    def stats(self) -> JournalStats:
        """Return a snapshot of the counters (see :class:`JournalStats`)."""
        with self._lock:
            return JournalStats(
                applied=self._applied, ignored=self._ignored, failed=self._failed, retries=self._retries,
                queue_depth=self._in_hand + sum(1 for item in list(self._queue.queue) if item is not _STOP),
                last_applied_at=self._last_applied_at, last_error=self._last_error,
                running=self._thread.is_alive(), unpublished=self._publisher.depth(),
            )

    @property
    def is_running(self) -> bool:
        """Whether the writer thread is alive."""
        return self._thread.is_alive()

    # --- thread -------------------------------------------------------------------------------

    def _run(self) -> None:
        logger.info("journal writer started")
        try:
            while True:
                batch = [self._queue.get()]
                while len(batch) < self._batch_size:
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                stop_at = next((i for i, item in enumerate(batch) if item is _STOP), None)
                events = batch if stop_at is None else batch[:stop_at]
                with self._lock:
                    self._in_hand = len(events)
                self._connection_check()
                done = self._apply_batch(events) if len(events) > 1 else self._apply_each(events)
                if stop_at is not None or self._abort.is_set():
                    self._finish(events[done:] + batch[len(events):])
                    return
        finally:
            try:
                connection.close()  # the thread's own connection (Django connections are per thread)
            except Exception:  # noqa: BLE001 - closing a dead connection must not hide the stop
                logger.exception("journal writer: closing its database connection failed")
            logger.info("journal writer stopped: %s", self.stats())

    def _apply_each(self, events: list[VenueEvent]) -> int:
        # One transaction per event; return how many were handled (an abort leaves the rest).
        for done, event in enumerate(events):
            if self._abort.is_set():
                return done
            with self._lock:
                self._in_hand -= 1
            self._apply_one(event)
        return len(events)

    def _apply_batch(self, events: list[VenueEvent]) -> int:
        # Several events queued up: one transaction for all, a savepoint per event (the service's
        # own atomic block), so a failing event loses only its own writes and the commit — the
        # costly part of a small write — is paid once. A transient database error ends the batch's
        # transaction: it is rolled back whole and the events are applied one by one instead, each
        # with its retries (they are idempotent). So does any other error of the batch's own
        # transaction (e.g. a deferred foreign key checked at its COMMIT): one by one, only the
        # event at fault fails, and the writer never dies with a batch. Return how many were handled.
        outcomes: list[tuple[VenueEvent, object, BaseException | None]] = []
        try:
            with transaction.atomic():
                for event in events:
                    if self._abort.is_set():
                        break
                    with self._lock:
                        self._in_hand -= 1
                    try:
                        with transaction.atomic():  # the event's savepoint
                            outcomes.append((event, self._apply(event=event), None))
                    except (OperationalError, InterfaceError):
                        raise
                    except Exception as exc:  # noqa: BLE001 - its savepoint is rolled back; the batch goes on
                        outcomes.append((event, None, exc))
        except Exception as exc:  # noqa: BLE001 - the batch is rolled back whole; its events are not lost
            if isinstance(exc, (OperationalError, InterfaceError)):
                logger.warning("journal: transient database error in a batch of %d events, applying them one by "
                               "one: %s", len(events), exc)
            else:
                logger.error("journal: a batch of %d events failed as a whole (%s: %s), applying them one by one",
                             len(events), type(exc).__name__, exc)
            with self._lock:
                self._retries += 1
                self._in_hand = len(events)
            _refresh_connection()
            return self._apply_each(events)
        for event, result, exc in outcomes:
            if exc is not None:
                self._fail(event, exc)
            else:
                self._count(result)
        return len(outcomes)

    def _count(self, result) -> None:
        applied = bool(getattr(result, "applied", False))  # nothing here may end the thread
        with self._lock:
            if applied:
                self._applied += 1
            else:
                self._ignored += 1
            self._last_applied_at = timezone.now()
            self._handled.notify_all()

    def _finish(self, rest: list) -> None:
        left = [item for item in rest if item is not _STOP]
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not _STOP:
                left.append(item)
        with self._lock:
            self._in_hand = 0
        if left:
            logger.error("journal writer stopped without draining: %d venue events not written", len(left))

    def _apply_one(self, event: VenueEvent) -> None:
        delay = self._backoff
        for attempt in range(1, self._max_attempts + 1):
            try:
                result = self._apply(event=event)
            except (OperationalError, InterfaceError) as exc:
                if attempt == self._max_attempts:
                    self._fail(event, exc)
                    return
                with self._lock:
                    self._retries += 1
                logger.warning("journal: transient database error on %s %s (try %d of %d), retrying in %.3fs: %s",
                               event.kind, event.client_order_id, attempt, self._max_attempts, delay, exc)
                _refresh_connection()
                if self._abort.wait(delay):
                    self._fail(event, exc)
                    return
                delay = min(delay * 2, self._backoff_max)
            except Exception as exc:  # noqa: BLE001 - one bad event must not stop the writer
                self._fail(event, exc)
                return
            else:
                self._count(result)
                return

    def _fail(self, event: VenueEvent, exc: BaseException) -> None:
        logger.exception("journal: venue event %s %s (venue %s, trade %s) not written",
                         event.kind, event.client_order_id, event.venue, event.trade_id or "-", exc_info=exc)
        with self._lock:
            self._failed += 1
            self._last_error = f"{type(exc).__name__}: {exc}"
            self._handled.notify_all()


def _refresh_connection() -> None:
    # Drop a connection the server closed or that outlived CONN_MAX_AGE; a database that is down
    # must not end the thread (the next transaction fails, and is retried or counted instead).
    try:
        close_old_connections()
    except Exception:  # noqa: BLE001
        logger.exception("journal writer: closing a stale database connection failed")


class _ConnectionCheck:
    # The routine connection check of a busy thread, at most once per ``every`` seconds: with
    # CONN_HEALTH_CHECKS each check costs a round trip (SELECT 1) before the next query, which per
    # event was a measurable part of the writer's time. A connection that broke in between fails
    # the next transaction, which is retried after a forced refresh (transient error policy).
    def __init__(self, every: float = 1.0) -> None:
        self._every = every
        self._last = float("-inf")

    def __call__(self) -> None:
        now = time.monotonic()
        if now - self._last >= self._every:
            self._last = now
            _refresh_connection()
