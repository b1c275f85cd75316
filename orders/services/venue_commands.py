"""The trading worker's side of venue commands (``venues.tasks``): claim the order, build the command.

A submit is **at most once** at the venue: under the order's row lock the worker moves it
ROUTED → SUBMITTED (``submitted_at`` = now, a SUBMITTED event naming the worker) and only *after*
that commits hands the command to the venue layer. A redelivered task (Celery's ``acks_late``
redelivery, or the sweeper) then finds SUBMITTED and is a recorded no-op, so an order is never sent
twice. If the process dies between the commit and the hand-off, the order is SUBMITTED but unknown
to the venue: start-up reconciliation resolves it (:mod:`venues.node.reconcile`).

No order is claimed in a HALTED scope (the kill switch: ``risk.services.trading_state_set``). The
claim checks the kill switches in the same statement, so the check costs no round trip: a claim
that finds a HALTED kill switch covering the order (:func:`risk.selectors.halted_scopes_of`, the
engine's scope matching) cancels it instead, through :func:`orders.services.order_cancel`, naming
the switch, who set it and why. With that, nothing in a halted scope reaches a venue through a
claim that starts after the halt commits: an order risk-checked just before the halt and committed
after the halt's cancel sweep read the open orders, a ROUTED order the sweep has not reached yet,
and the sweeper's re-sends alike. (A claim already running when the halt commits took its decision
before it; the sweep, reading after the halt commits, waits for its row lock and cancels the order at
the venue.)

A cancel is at least once: the worker records receipt (VENUE_RECEIVED, which stops the sweeper)
and sends the cancel; the venue answers CANCELED or CANCEL_REJECTED.

A command for an unknown order, or for one that has moved on (terminal, canceled meanwhile,
already submitted), is a recorded no-op (IGNORED) or, for an unknown id, a log line.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
import uuid

from django.db import transaction
from django.utils import timezone

from odum_live.sql import CompiledQuery, pipelined_transaction, send_insert, send_update
from orders.models import Order, OrderEvent
from orders.services.dispatch import cancel_request_entries, entry_repeat
from orders.services.venue_events import order_apply_venue_event, publish_orders_updated
from orders.services.cancel import order_cancel
from orders.services.kill_switch import kill_switch_actor, kill_switch_reason
from orders.services.one_statement import transition_in_one_statement
from orders.state import OPEN_STATUSES, TERMINAL_STATUSES, OrderStatus
from risk.models import Scope, TradingState
from risk.selectors import halted_scopes_of, scope_label_of
from venues.commands import CancelOrderCommand, SubmitOrderCommand
from venues.events import VenueEvent, VenueEventKind

logger = logging.getLogger(__name__)

SUBMIT = "submit"
CANCEL = "cancel"
#: The status a command expects to find; anything else makes it a recorded no-op (IGNORED).
_EXPECTED = {SUBMIT: OrderStatus.ROUTED, CANCEL: OrderStatus.PENDING_CANCEL}
#: The columns a command needs. The order's JSON documents (risk result, routing decision …) stay
#: unread: decoding them was a third of the claim's time in the trading worker (bench/e2e_latency.py).
_COMMAND_FIELDS = ("id", "strategy_id", "client_order_id", "venue", "routed_instrument_key", "status", "side",
                   "order_type", "quantity", "price", "filled_quantity", "time_in_force", "expire_time",
                   "exec_algorithm", "exec_algorithm_params", "submitted_at", "parent_id")


#: The order a command is for, locked, with the columns of :data:`_COMMAND_FIELDS`.
_LOCKED_FOR_COMMAND = CompiledQuery(
    lambda pk: Order.objects.select_for_update().only(*_COMMAND_FIELDS).order_by().filter(pk=pk),
    markers=(uuid.UUID("00000000-0000-4000-8000-00000000c0de"),),
)
#: An algorithm parent's open children, oldest first (their client_order_ids go with its cancel).
_OPEN_CHILDREN = CompiledQuery(
    lambda parent_id: Order.objects.only("client_order_id").filter(parent_id=parent_id, status__in=OPEN_STATUSES)
    .order_by("created_at"),
    markers=(uuid.UUID("00000000-0000-4000-8000-0000000c41d5"),),
)

#: The worker's receipt of the order's current cancel request, if one is on record already (a re-send).
_CANCEL_RECEIPT = CompiledQuery(
    lambda pk: cancel_request_entries(pk, type=OrderEvent.Type.VENUE_RECEIVED, payload__command=CANCEL)[:1],
    markers=(uuid.UUID("00000000-0000-4000-8000-0000000ca4ce"),),
)


def _order_pk(order_id: str, command: str) -> uuid.UUID | None:
    # The order id of a task as a UUID; None (with a log line) when it is malformed.
    try:
        return uuid.UUID(str(order_id))
    except ValueError:
        logger.error("venue %s command for malformed order id %r ignored", command, order_id)
        return None


def _awaiting(order: Order | None, pk: uuid.UUID, command: str, worker: str) -> Order | None:
    # The locked ``order`` when it awaits ``command``; else a log line (unknown id) or IGNORED, and None.
    if order is None:
        logger.error("venue %s command for unknown order %s ignored (worker %s)", command, pk, worker)
        return None
    if order.status != _EXPECTED[command]:
        _ignore(order, command, worker)
        return None
    return order


def _claimable(order_id: str, command: str, worker: str) -> Order | None:
    # The locked order when it awaits ``command`` (read now); else None, as _awaiting says why.
    pk = _order_pk(order_id, command)
    return None if pk is None else _awaiting(_LOCKED_FOR_COMMAND.one(pk), pk, command, worker)


def _ignore(order: Order, command: str, worker: str) -> None:
    state = "terminal" if order.status in TERMINAL_STATUSES else "no longer awaiting it"
    logger.info("venue %s command for order %s ignored: status %s", command, order.pk, order.status)
    send_insert([OrderEvent(order=order, type=OrderEvent.Type.IGNORED, status_before=order.status,
                            status_after=order.status, actor=f"worker:{worker}", ts=timezone.now(),
                            payload={"command": command, "worker": worker,
                                     "detail": f"{command} command ignored: order is {order.status} ({state})"})],
                read_ids=False)


def order_venue_submit_claim(*, order_id: str, worker: str,
                             publish: Callable[[dict], None] | None = None) -> SubmitOrderCommand | None:
    """Claim a ROUTED order for submission (→ SUBMITTED) and return the command to send.

    Parameters
    ----------
    order_id : str
        The order's id as sent in the task (UUID text).
    worker : str
        The worker's host name (Celery ``request.hostname``), recorded as the actor.
    publish : Callable[[dict], None] | None
        Called after commit with the claimed order (order id → strategy id); default
        :func:`orders.services.publish.publish_orders_updated` in this thread. The trading worker
        passes its journal writer's publisher, so the order reaches the venue without waiting for
        the channel layer (venues/tasks.py).

    Returns
    -------
    SubmitOrderCommand | None
        The command, once the SUBMITTED status has committed; None when the order is unknown (a
        log line), not ROUTED (an IGNORED event: duplicate delivery, canceled meanwhile), or in a
        HALTED scope (canceled, never sent: see the module's docstring).

    Raises
    ------
    django.db.OperationalError
        Database unavailable; nothing is written and the task is redelivered.
    """
    publisher = publish or publish_orders_updated
    order = _claim_in_one_statement(order_id, worker)
    if order is None:
        # Not claimable in one statement (unknown, or no longer ROUTED), or not PostgreSQL: the
        # locked read decides, and records why an order is not sent (IGNORED).
        with transaction.atomic():
            order = _claimable(order_id, SUBMIT, worker)
            if order is None:
                return None
            halts = halted_scopes_of(strategy_id=order.strategy_id, venue_code=order.venue,
                                     instrument_key=order.routed_instrument_key)
            if halts:
                _cancel_halted(order, halts[0], worker)
                return None
            now = timezone.now()
            before = order.status
            order.transition_to(OrderStatus.SUBMITTED)
            order.submitted_at = now
            order.save(update_fields=["status", "submitted_at", "updated_at"])
            OrderEvent.objects.create(order=order, type=OrderEvent.Type.SUBMITTED, status_before=before,
                                      status_after=order.status, actor=f"worker:{worker}", ts=now,
                                      payload=_submitted_payload(worker))
    published = {order.pk: order.strategy_id}
    transaction.on_commit(lambda: publisher(published))
    return SubmitOrderCommand(
        order_id=str(order.pk), client_order_id=order.client_order_id, venue=order.venue,
        instrument_key=order.routed_instrument_key,
        side=order.side, order_type=order.order_type, quantity=order.quantity, price=order.price,
        time_in_force=order.time_in_force, expire_time=order.expire_time,
        exec_algorithm=order.exec_algorithm, exec_algorithm_params=dict(order.exec_algorithm_params or {}),
    )


def _cancel_halted(order: Order, halt: TradingState, worker: str) -> None:
    # A claimed order in a HALTED scope is canceled (ROUTED → CANCELED) instead, in the claim's
    # transaction, under its row lock.
    label = scope_label_of(halt.scope, halt.scope_key)
    logger.warning("order %s not sent by worker %s: kill switch %s is HALTED", order.pk, worker, label)
    order_cancel(order=order, actor=kill_switch_actor(halt.changed_by),
                 reason=kill_switch_reason(scope_label=label, set_by=halt.changed_by, reason=halt.reason))


def _submitted_payload(worker: str) -> dict:
    return {"command": SUBMIT, "worker": worker, "detail": "claimed by the trading worker; handed to the venue layer"}


def _claim_in_one_statement(order_id: str, worker: str) -> Order | None:
    # PostgreSQL: ROUTED → SUBMITTED and its SUBMITTED event in one statement (committed on its own
    # in the worker, which runs no transaction around it): the UPDATE's row lock and ``status =
    # ROUTED`` re-checked under it are the claim, exactly as the fallback's locked read. One round
    # trip instead of six ORM statements, most of the worker's claim (bench/e2e_latency.py). None
    # when no row was claimed (the fallback then finds out why); a malformed id falls back too.
    try:
        pk = uuid.UUID(str(order_id))
    except ValueError:
        return None
    now = timezone.now()
    return transition_in_one_statement(
        where={"id": pk}, source=OrderStatus.ROUTED, target=OrderStatus.SUBMITTED,
        set_columns={"submitted_at": "%(submitted_at)s"},
        values={"submitted_at": now, **_NOT_HALTED_VALUES},
        event_type=OrderEvent.Type.SUBMITTED, actor=f"worker:{worker}", ts=now, payload=_submitted_payload(worker),
        returning=_COMMAND_FIELDS, conditions=(_NOT_HALTED,),
    )


#: The one-statement claim's kill-switch check: no HALTED switch that may cover the order — GLOBAL, its
#: venue's, its strategy's, or any INSTRUMENT one (matched on parsed keys, so left to the general path,
#: which decides with :func:`risk.selectors.halted_scopes_of`). The table holds a row per scope ever
#: switched, a handful: the check adds no round trip, and while nothing covering is halted, no statement.
_NOT_HALTED = (
    f"NOT EXISTS (SELECT 1 FROM {TradingState._meta.db_table} ks WHERE ks.state = %(_ks_halted)s"
    f" AND (ks.scope IN (%(_ks_global)s, %(_ks_instrument)s)"
    f" OR ks.scope = %(_ks_venue)s AND ks.scope_key = {Order._meta.db_table}.venue"
    f" OR ks.scope = %(_ks_strategy)s AND ks.scope_key = {Order._meta.db_table}.strategy_id))"
)
_NOT_HALTED_VALUES = {"_ks_halted": TradingState.State.HALTED.value, "_ks_global": Scope.GLOBAL.value,
                      "_ks_instrument": Scope.INSTRUMENT.value, "_ks_venue": Scope.VENUE.value,
                      "_ks_strategy": Scope.STRATEGY.value}


def order_venue_cancel_claim(*, order_id: str, worker: str) -> CancelOrderCommand | None:
    """Record receipt of a cancel for a PENDING_CANCEL order and return the command to send.

    Parameters
    ----------
    order_id : str
        The order's id (UUID text).
    worker : str
        The worker's host name.

    Returns
    -------
    CancelOrderCommand | None
        With the client_order_ids of the order's open children (an algorithm's parent cancels
        them too); None when the order is unknown (log line) or not PENDING_CANCEL (IGNORED).

    Raises
    ------
    django.db.OperationalError
        Database unavailable; nothing is written and the task is redelivered.
    """
    pk = _order_pk(order_id, CANCEL)
    if pk is None:
        return None
    # PostgreSQL: a pipeline enclosing the transaction (odum_live.sql.pipelined_transaction) — the
    # locked read and the open children go in one round trip, the receipt and the COMMIT in one more.
    with pipelined_transaction():
        locked = _LOCKED_FOR_COMMAND.send(pk)
        open_children = _OPEN_CHILDREN.send(pk)
        earlier_receipt = _CANCEL_RECEIPT.send(pk)
        order = _awaiting(locked.one(), pk, CANCEL, worker)
        if order is None:
            return None
        children = tuple(child.client_order_id for child in open_children.all())
        now = timezone.now()
        payload = {"command": CANCEL, "worker": worker, "children": list(children)}
        receipt = earlier_receipt.one()
        if receipt is None:
            send_insert([OrderEvent(order=order, type=OrderEvent.Type.VENUE_RECEIVED, status_before=order.status,
                                    status_after=order.status, actor=f"worker:{worker}", ts=now, payload=payload)],
                        read_ids=False)
        else:
            # A re-sent cancel (the venue has not answered): one receipt entry counts them all.
            count = entry_repeat(receipt, ts=now, payload=payload)
            receipt.actor = f"worker:{worker}"
            send_update(receipt, ["ts", "payload", "actor"])
            logger.info("cancel of order %s received again by worker %s (%d since the cancel request)",
                        pk, worker, count)
    return CancelOrderCommand(order_id=str(order.pk), client_order_id=order.client_order_id, venue=order.venue,
                              child_client_order_ids=children)


def order_venue_submit_failed(*, command: SubmitOrderCommand, reason: str) -> None:
    """Reject a claimed order that the venue layer could not take (never sent, so never at the venue).

    Applied as a REJECTED venue event through the journal's service, so exposure is released and
    the timeline says why.

    Parameters
    ----------
    command : SubmitOrderCommand
        The command that failed.
    reason : str
        Why, e.g. ``"trading node not ready: …"``; becomes ``rejection_reason``.
    """
    logger.error("order %s (%s) not sent to %s: %s", command.order_id, command.client_order_id,
                 command.venue, reason)
    order_apply_venue_event(event=VenueEvent(
        kind=VenueEventKind.REJECTED, client_order_id=command.client_order_id, venue=command.venue,
        ts_event=timezone.now(), reason=f"not sent to the venue: {reason}",
    ))


def order_venue_cancel_failed(*, command: CancelOrderCommand, reason: str) -> None:
    """Record that a cancel could not be sent: the cancel is rejected, the order keeps working.

    Parameters
    ----------
    command : CancelOrderCommand
        The command that failed.
    reason : str
        Why; recorded on the CANCEL_REJECTED event.
    """
    logger.error("cancel of order %s (%s) not sent to %s: %s", command.order_id, command.client_order_id,
                 command.venue, reason)
    order_apply_venue_event(event=VenueEvent(
        kind=VenueEventKind.CANCEL_REJECTED, client_order_id=command.client_order_id, venue=command.venue,
        ts_event=timezone.now(), reason=f"cancel not sent to the venue: {reason}",
    ))
