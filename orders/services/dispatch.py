"""Hand-off of venue commands to the trading worker (Celery queue ``venues``); the order row is the outbox.

After the order's transaction commits, :func:`order_dispatch_submit` publishes
``venues.tasks.submit_order(order_id)`` (and :func:`order_dispatch_cancel` ``cancel_order``). A
publish that fails — the broker unreachable, fails within ``CELERY_BROKER_CONNECTION_TIMEOUT``
seconds because publish retries are off — leaves the order as it is (ROUTED / PENDING_CANCEL) with a
DISPATCH_FAILED event; :func:`orders_redispatch_stale` (beat task
``orders.tasks.redispatch_stale_orders``, every 10 s) sends it again — unless the worker has not
received it ``DISPATCH_MAX_AGE_SECS`` after acceptance, when it is REJECTED as never sent
(:func:`orders_reject_undispatched`). The sweeper decides each re-send again at send time, under the
order's row lock: an order that moved on since the sweep selected it is not sent again. Delivery is
still *at least once* (an earlier message may reach the worker after the re-send was decided): the
trading worker must treat a command for an order that has moved on as a no-op
(:mod:`orders.services.venue_commands`).

Once the worker has recorded receipt of a command (a submit's claim: the order SUBMITTED; a cancel's
VENUE_RECEIVED), redelivery is Celery's job
(``acks_late`` + ``task_reject_on_worker_lost``) and the sweeper leaves the order alone — except a
cancel still pending ``DISPATCH_RETRY_AFTER_SECS`` after its receipt, which is sent again. Those
re-sends and their receipts are folded into one timeline entry each per cancel request
(:func:`entry_repeat`, with a count) and logged one by one, so a venue that never answers does not
bury the timeline. Likewise a failed hand-off repeating the one right before it on the timeline (same
command, no entry between: the broker still down at every sweep) is folded into that DISPATCH_FAILED
entry, each failure still logged.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import redis
from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from orders.models import Order, OrderEvent
from orders.state import OrderStatus

logger = logging.getLogger(__name__)

VENUES_QUEUE = "venues"
DISPATCHER = "dispatcher"
SUBMIT = "submit"
CANCEL = "cancel"
INITIAL = "initial"
#: Cache key of the sweeper's run lock: one sweep at a time across beat / workers.
SWEEPER_LOCK_KEY = "odum:orders:redispatch-lock"
SWEEPER_LOCK_SECS = 120


def _task_for(command: str):
    from venues import tasks

    return tasks.submit_order if command == SUBMIT else tasks.cancel_order


class _KeptProducer(threading.local):
    """This thread's broker producer, kept between publishes (one per thread: kombu's are not
    thread-safe), on a broker connection of its own.

    Celery otherwise takes a producer from its pool and gives it back on every publish. Measured
    on this project's submit (thread CPU, 1,000 publishes each): ``apply_async`` 0.89 ms; with the
    kept producer 0.80; with the message's argument text given too (Celery would run ``saferepr``
    over the arguments) 0.70; with the venue tasks' ``typing=False`` 0.61; the queue declared once per
    producer instead of per publish: an order's process CPU 3.67 → 3.62 ms (in one process, 2,000
    orders each, alternating blocks of 100). A new connection pool of
    the app (a changed broker URL, as the tests switch to) gets a new producer, and a failed
    publish drops it, so the next publish connects afresh.
    """

    producer = None
    pool = None

    def get(self, app):
        pool = app.pool
        if self.producer is None or self.pool is not pool:
            self.drop()
            # A connection of its own, not one of the pool's: a thread keeps it, and the pool's
            # limit (``broker_pool_limit``) would otherwise leave threads past it waiting for ever.
            producer = app.amqp.Producer(app.connection_for_write())
            # The queue is declared once per producer here, and its publishes pass ``declare=[]``:
            # kombu otherwise binds a copy of the queue to the channel on every publish only to
            # find it in its declared-entities cache (a fifth of a publish's CPU).
            producer.maybe_declare(app.amqp.queues[VENUES_QUEUE])
            self.producer, self.pool = producer, pool
        return self.producer

    def drop(self) -> None:
        producer, self.producer, self.pool = self.producer, None, None
        if producer is not None:
            try:
                producer.connection.release()
            except Exception:  # noqa: BLE001 - a broken connection is dropped either way
                logger.debug("releasing the broker connection of a dropped producer failed", exc_info=True)


_kept_producer = _KeptProducer()


def _publish(command: str, order_id: str):
    # venues.tasks.<command>(order_id) on queue venues, through this thread's kept producer (not in
    # the eager embedded default, where the task runs here and no broker is involved).
    task = _task_for(command)
    options = {"queue": VENUES_QUEUE, "argsrepr": repr([order_id]), "kwargsrepr": "{}"}
    if task.app.conf.task_always_eager:
        return task.apply_async(args=[order_id], **options)
    try:
        return task.apply_async(args=[order_id], producer=_kept_producer.get(task.app), declare=[], **options)
    except Exception:
        _kept_producer.drop()
        raise


def _dispatch(*, order_id, command: str, attempt: str, status: str) -> bool:
    started_at = timezone.now()
    try:
        result = _publish(command, str(order_id))
    except Exception as exc:  # noqa: BLE001 - any publish failure is recoverable by the sweeper
        error = f"{type(exc).__name__}: {exc}"
        logger.warning("dispatch of %s command for order %s failed (%s attempt): %s; the sweeper retries",
                       command, order_id, attempt, error)
        # A failed submit hand-off clears ``dispatched_at`` (set optimistically by the submit
        # transaction): the row then says plainly that no command is on its way.
        _record(order_id=order_id, status=status, type_=OrderEvent.Type.DISPATCH_FAILED, ts=timezone.now(),
                payload={"command": command, "queue": VENUES_QUEUE, "attempt": attempt,
                         "error": error[:500], "detail": "broker unreachable; order left as is for the sweeper"},
                dispatched_at=None if command == SUBMIT else _KEEP, coalesce=True)
        return False
    if attempt == INITIAL and command == SUBMIT:
        # The first hand-off of a new order is already on record: the order row carries
        # ``dispatched_at`` and its ROUTED event says the command goes to the venues queue on
        # commit; the worker records receipt. Writing a DISPATCHED row here would cost a second
        # transaction on the submission hot path and say nothing the timeline does not.
        return True
    # ts = start of the hand-off: an eager (embedded) task records its own events during the publish.
    _record(order_id=order_id, status=status, type_=OrderEvent.Type.DISPATCHED, ts=started_at,
            payload={"command": command, "queue": VENUES_QUEUE, "attempt": attempt, "task_id": result.id},
            dispatched_at=started_at if command == SUBMIT else _KEEP, coalesce=command == CANCEL and attempt != INITIAL)
    return True


_KEEP = object()  # _record: leave Order.dispatched_at as it is


def cancel_request_entries(order_id, **filters) -> QuerySet:
    """Return the order's timeline entries matching ``filters`` since its latest CANCEL_REQUESTED, newest first.

    The entries one cancel request has produced so far (e.g. ``type=VENUE_RECEIVED,
    payload__command="cancel"``); none when the order has no cancel request on record.
    """
    requested = (OrderEvent.objects.filter(order_id=OuterRef("order_id"), type=OrderEvent.Type.CANCEL_REQUESTED)
                 .order_by("-ts", "-id").values("ts")[:1])
    return OrderEvent.objects.filter(order_id=order_id, ts__gte=Subquery(requested), **filters).order_by("-ts", "-id")


def entry_repeat(entry: OrderEvent, *, ts: datetime, payload: dict) -> int:
    """Fold one more occurrence (at ``ts``, with ``payload``) into the timeline ``entry``; return the count.

    A cancel the venue never answers is re-sent every ``DISPATCH_RETRY_AFTER_SECS`` and received again
    by the trading worker; a command the broker never takes fails again at every sweep: one entry per
    kind then stands for all of them, at the time of the latest, with ``payload["count"]`` occurrences
    since ``payload["first_at"]`` (ISO-8601 UTC). The caller saves ``ts`` and ``payload`` under the
    order's row lock and logs the occurrence.
    """
    count = int(entry.payload.get("count", 1)) + 1
    entry.payload = {**payload, "count": count, "first_at": entry.payload.get("first_at", entry.ts.isoformat())}
    entry.ts = ts
    return count


def _record(*, order_id, status: str, type_: str, ts: datetime, payload: dict, dispatched_at=_KEEP,
            coalesce: bool = False) -> None:
    # ``status`` is the one the command was sent for (ROUTED / PENDING_CANCEL). Under the order's row
    # lock: when the order has moved on meanwhile (the worker claimed it from an earlier message after
    # the sweep read it, or from this one before we got here), the entry says so with the status the
    # order has and the time of recording, after the move, instead of a stale "ROUTED → ROUTED".
    try:
        with transaction.atomic():
            if connection.vendor == "postgresql":
                # This record need not survive a database crash: without it the order merely looks
                # undispatched, the sweeper sends the command again and the worker drops the
                # duplicate. Not waiting for the WAL flush saves one durable commit per order on the
                # submit hot path; the order row itself was committed durably before dispatch.
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL synchronous_commit TO OFF")
            current = Order.objects.select_for_update().filter(pk=order_id).values_list("status", flat=True).first()
            if current is None:
                logger.error("could not record %s: order %s does not exist", type_, order_id)
                return
            if current != status:
                payload = {**payload, "sent_at": ts.isoformat(), "sent_for_status": status,
                           "detail": f"{payload['command']} command handed off for a {status} order that was "
                                     f"{current} by the time the hand-off was recorded (the trading worker acts "
                                     f"only on an order still {status})"}
                status, ts, dispatched_at, coalesce = current, timezone.now(), _KEEP, False
            if dispatched_at is not _KEEP:
                Order.objects.filter(pk=order_id).update(dispatched_at=dispatched_at, updated_at=timezone.now())
            if coalesce and _coalesced(order_id=order_id, type_=type_, ts=ts, payload=payload):
                return
            OrderEvent.objects.create(order_id=order_id, type=type_, status_before=status, status_after=status,
                                      actor=DISPATCHER, ts=ts, payload=payload)
    except Exception:  # noqa: BLE001 - the hand-off already happened (or failed); never raise after commit
        logger.exception("could not record %s for order %s", type_, order_id)


def _coalesced(*, order_id, type_: str, ts: datetime, payload: dict) -> bool:
    # A repeat folds into the entry it repeats (entry_repeat); True when folded. A sweeper re-send of a
    # cancel: into the earlier re-send of the same cancel request (each logged here). A failed hand-off:
    # into the order's latest entry when that is a failed hand-off of the same command (each failure is
    # logged by _dispatch).
    if type_ == OrderEvent.Type.DISPATCH_FAILED:
        earlier = OrderEvent.objects.filter(order_id=order_id).order_by("-ts", "-id").first()
        if earlier is not None and (earlier.type != type_ or earlier.payload.get("command") != payload["command"]):
            earlier = None
    else:
        earlier = cancel_request_entries(order_id, type=type_, payload__command=payload["command"],
                                         payload__attempt=payload["attempt"]).first()
    count = 1
    if earlier is not None:
        count = entry_repeat(earlier, ts=ts, payload=payload)
        earlier.save(update_fields=["ts", "payload"])
    if type_ == OrderEvent.Type.DISPATCHED:
        logger.warning("%s of order %s re-sent by the sweeper (%d since the cancel request): the venue has not "
                       "answered it", payload["command"], order_id, count)
    return earlier is not None


def order_dispatch_submit(*, order_id, attempt: str = INITIAL) -> bool:
    """Publish ``venues.tasks.submit_order(order_id)`` to queue ``venues``; record the outcome.

    Call it after the order's transaction committed (``transaction.on_commit``). It never raises:
    a failure is logged and recorded for the sweeper.

    Parameters
    ----------
    order_id : uuid.UUID | str
        A ROUTED order.
    attempt : str
        ``initial`` or ``sweeper`` (recorded on the event).

    Returns
    -------
    bool
        True when the broker took the message (a sweeper re-send also records a DISPATCHED event
        and moves ``dispatched_at``; the initial hand-off is recorded by the submit transaction),
        False when it did not (DISPATCH_FAILED event, order still ROUTED; a failure right after a
        failure of the same command is folded into that entry: :func:`entry_repeat`). Either event is written
        under the order's row lock: if the order is no longer ROUTED by then (the worker claimed it
        meanwhile), the event carries the order's current status and the time of recording, and
        ``dispatched_at`` is left alone.
    """
    return _dispatch(order_id=order_id, command=SUBMIT, attempt=attempt, status=OrderStatus.ROUTED)


def order_dispatch_cancel(*, order_id, attempt: str = INITIAL) -> bool:
    """Publish ``venues.tasks.cancel_order(order_id)`` to queue ``venues``; record the outcome.

    As :func:`order_dispatch_submit`, for an order in PENDING_CANCEL (``dispatched_at`` is left
    alone: it records the submit hand-off).
    """
    return _dispatch(order_id=order_id, command=CANCEL, attempt=attempt, status=OrderStatus.PENDING_CANCEL)


@dataclass
class RedispatchReport:
    """Outcome of one sweep: order ids re-sent per command, and whether it stopped early.

    ``moved_on``: ids selected as stale that were no longer so at send time (claimed by the worker,
    canceled, or received meanwhile), and therefore not sent again.
    """

    submits: list = field(default_factory=list)
    cancels: list = field(default_factory=list)
    failed: list = field(default_factory=list)
    rejected: list = field(default_factory=list)
    moved_on: list = field(default_factory=list)
    stopped_early: bool = False
    skipped_locked: bool = False


def stale_dispatch_queryset(*, now: datetime | None = None):
    """Return the orders whose last hand-off is older than ``ODUM['DISPATCH_RETRY_AFTER_SECS']``.

    ROUTED orders (not children of an algorithm: the node sends those): no ROUTED / DISPATCHED /
    DISPATCH_FAILED event since the cutoff (the trading worker's claim of a submit moves the order
    to SUBMITTED in the same statement, so a ROUTED order was never received). PENDING_CANCEL orders: no CANCEL_REQUESTED / DISPATCHED / DISPATCH_FAILED event and no
    receipt of a cancel command (VENUE_RECEIVED) since the cutoff — a cancel still pending that
    long after the worker took it is sent again: the worker may have died before handing it to
    the node (the broker redelivers an unacknowledged task only after its visibility timeout), or
    the venue's answer was lost. A repeat is harmless: the worker takes a cancel of a PENDING_CANCEL
    order again, and the bridge does not re-send a cancel the node already has pending. Oldest first.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.ODUM["DISPATCH_RETRY_AFTER_SECS"])
    events = OrderEvent.objects.filter(order=OuterRef("pk"))
    recent_submit_attempt = events.filter(
        ts__gte=cutoff,
        type__in=[OrderEvent.Type.ROUTED, OrderEvent.Type.DISPATCHED, OrderEvent.Type.DISPATCH_FAILED],
    )
    recent_cancel_attempt = events.filter(
        ts__gte=cutoff,
        type__in=[OrderEvent.Type.CANCEL_REQUESTED, OrderEvent.Type.DISPATCHED, OrderEvent.Type.DISPATCH_FAILED],
    )
    recent_cancel_received = events.filter(type=OrderEvent.Type.VENUE_RECEIVED, payload__command=CANCEL,
                                           ts__gte=cutoff)
    return (
        Order.objects.filter(
            # A ROUTED child was created by the node's execution algorithm, which sends it itself:
            # the OMS never dispatches a child's submit.
            Q(status=OrderStatus.ROUTED, created_at__lt=cutoff, parent__isnull=True)
            & ~Q(Exists(recent_submit_attempt))
            | Q(status=OrderStatus.PENDING_CANCEL)
            & ~Q(Exists(recent_cancel_attempt))
            & ~Q(Exists(recent_cancel_received))
        )
        .order_by("created_at", "id")
    )


def _still_stale(*, order_id, status: str, now: datetime) -> bool:
    # The send-time decision of a re-send: the order is still ``status`` and still stale at ``now``.
    # The row lock comes first, in a statement of its own: a worker's claim (ROUTED → SUBMITTED) or
    # cancel receipt in progress commits before the check, which then reads it (READ COMMITTED takes
    # a fresh snapshot per statement; a lock-and-check in one statement would judge the events by the
    # snapshot taken before the wait). The lock is not held over the publish: a claim after this point
    # comes from a message already in flight, which the re-send could not have prevented.
    with transaction.atomic():
        if not Order.objects.select_for_update().filter(pk=order_id, status=status).values_list("pk").exists():
            return False
        return stale_dispatch_queryset(now=now).filter(pk=order_id).exists()


def orders_reject_undispatched(*, now: datetime | None = None, limit: int = 500) -> list:
    """Reject ROUTED orders the trading worker never received within ``DISPATCH_MAX_AGE_SECS``.

    An order accepted while the broker was down must not reach the market minutes later at a price
    nobody chose for that moment. Past ``settings.ODUM["DISPATCH_MAX_AGE_SECS"]`` seconds after
    acceptance still ROUTED (the trading worker's claim moves an order to SUBMITTED in the same
    statement: a ROUTED order was never received), the order moves ROUTED →
    REJECTED under its row lock, with a REJECTED event and a ``rejection_reason`` saying it was
    never sent; its open quantity is released from pre-trade risk's totals. A command for it still
    in the queue is dropped by the worker (terminal order: a recorded no-op).

    Parameters
    ----------
    now : datetime | None
        Reference time (UTC); default now.
    limit : int
        Most orders handled per call (oldest first).

    Returns
    -------
    list
        Ids of the orders rejected.
    """
    from orders.exposure import order_exposure_changed

    now = now or timezone.now()
    max_age = settings.ODUM["DISPATCH_MAX_AGE_SECS"]
    candidates = list(
        Order.objects.filter(status=OrderStatus.ROUTED, created_at__lt=now - timedelta(seconds=max_age),
                             parent__isnull=True)  # children: the node sends them (stale_dispatch_queryset)
        .order_by("created_at", "id")
        .values_list("id", flat=True)[:limit]
    )
    rejected = []
    for order_id in candidates:
        with transaction.atomic():
            order = Order.objects.select_for_update().get(pk=order_id)
            if order.status != OrderStatus.ROUTED:
                continue  # moved on (claimed by the worker, canceled) since the candidate query
            reason = (f"not handed to a venue within {max_age} s of acceptance (broker unreachable): "
                      "never sent, so it cannot reach the market late")
            order.transition_to(OrderStatus.REJECTED)
            order.rejection_reason = reason
            order.closed_at = order.updated_at = now
            order.save(update_fields=["status", "rejection_reason", "closed_at", "updated_at"])
            order_exposure_changed(order=order, previous_status=OrderStatus.ROUTED,
                                   previous_filled_quantity=order.filled_quantity)
            OrderEvent.objects.create(order=order, type=OrderEvent.Type.REJECTED, status_before=OrderStatus.ROUTED,
                                      status_after=OrderStatus.REJECTED, actor=DISPATCHER, ts=now,
                                      payload={"reason": reason, "max_age_secs": max_age})
        rejected.append(order_id)
        logger.warning("order %s rejected: %s", order_id, reason)
    return rejected


@contextmanager
def _sweeper_lock() -> Iterator[bool]:
    """Hold the sweeper's run lock for the block; yield False when another sweep holds it.

    Released only by its holder: a sweep outliving ``SWEEPER_LOCK_SECS`` must not delete the lock a
    later sweep took after it expired. On Redis that is redis-py's ``Lock`` (a random token, released
    by a script that deletes the key only while it holds that token), on the cache's key
    (``cache.make_key(SWEEPER_LOCK_KEY)``); on the embedded default's process-local cache, the same
    token compared before the delete.
    """
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        key = backend.make_key(SWEEPER_LOCK_KEY)
        lock = backend._cache.get_client(key, write=True).lock(key, timeout=SWEEPER_LOCK_SECS, blocking=False)
        acquired = lock.acquire()

        def release() -> bool:
            try:
                lock.release()
            except redis.exceptions.LockError:  # expired, and perhaps taken by another sweep
                return False
            return True
    else:
        token = uuid.uuid4().hex
        acquired = cache.add(SWEEPER_LOCK_KEY, token, timeout=SWEEPER_LOCK_SECS)

        def release() -> bool:
            if cache.get(SWEEPER_LOCK_KEY) != token:
                return False
            cache.delete(SWEEPER_LOCK_KEY)
            return True
    if not acquired:
        yield False
        return
    try:
        yield True
    finally:
        if not release():
            logger.warning("redispatch sweep outlived its %d s lock, which another sweep may hold now: left to it",
                           SWEEPER_LOCK_SECS)


def orders_redispatch_stale(*, now: datetime | None = None, limit: int = 500) -> RedispatchReport:
    """Send again the venue commands of orders whose hand-off is stale (the outbox sweeper).

    Parameters
    ----------
    now : datetime | None
        Reference time (UTC); default now.
    limit : int
        Most orders handled per sweep (oldest first); the next sweep takes the rest.

    Returns
    -------
    RedispatchReport
        Each selected order is sent again only if, at send time and under its row lock, it is still
        in the status and the staleness that selected it (``moved_on`` otherwise: the worker would
        only record the command as IGNORED). The sweep stops at the first failed publish: with the
        broker down every further publish would wait out the connection timeout too.
    """
    report = RedispatchReport()
    now = now or timezone.now()
    with _sweeper_lock() as held:
        if not held:
            report.skipped_locked = True
            return report
        # Too old to send: rejected rather than re-sent (orders_reject_undispatched).
        report.rejected = orders_reject_undispatched(now=now, limit=limit)
        rows = list(stale_dispatch_queryset(now=now).values_list("id", "status")[:limit])
        for index, (order_id, status) in enumerate(rows):
            if not _still_stale(order_id=order_id, status=status, now=now):
                logger.info("order %s moved on since the sweep selected it as %s: not sent again", order_id, status)
                report.moved_on.append(order_id)
                continue
            if status == OrderStatus.ROUTED:
                ok = order_dispatch_submit(order_id=order_id, attempt="sweeper")
                (report.submits if ok else report.failed).append(order_id)
            else:
                ok = order_dispatch_cancel(order_id=order_id, attempt="sweeper")
                (report.cancels if ok else report.failed).append(order_id)
            if not ok:
                report.stopped_early = index + 1 < len(rows)
                break
    if report.submits or report.cancels or report.failed or report.rejected or report.moved_on:
        logger.info("redispatch sweep: %d submits, %d cancels re-sent, %d failed, %d moved on%s",
                    len(report.submits), len(report.cancels), len(report.failed), len(report.moved_on),
                    " (stopped early)" if report.stopped_early else "")
    return report
