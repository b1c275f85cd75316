"""Order cancellation: cancel at once before the venue hand-off, else request it from the venue."""

from __future__ import annotations

import logging
import uuid

from django.utils import timezone

from odum_live.sql import CompiledQuery, pipelined_transaction, send_insert, send_update
from orders.exposure import order_exposure_changed
from orders.models import Order, OrderEvent
from orders.services.publish import publish_orders_updated
from orders.state import OrderStatus, cancel_accepted

logger = logging.getLogger(__name__)

#: Why an execution algorithm's slice still ROUTED cannot be canceled (orders.state.cancel_accepted).
_SLICE_NOT_SUBMITTED = ("an execution algorithm's slice is submitted by its algorithm, not dispatched; cancel it "
                        "once SUBMITTED, or cancel the parent order")


#: The order to cancel, every column, locked.
_LOCKED = CompiledQuery(
    lambda pk: Order.objects.select_for_update().order_by().filter(pk=pk),
    markers=(uuid.UUID("00000000-0000-4000-8000-0000000ca7c1"),),
)


class OrderNotCancelable(Exception):
    """The order's current status admits no cancel (terminal, or a cancel already pending).

    Attributes
    ----------
    order_id : uuid.UUID
    status : str
        The status found under the row lock.
    """

    def __init__(self, *, order_id, status: str, why: str = ""):
        self.order_id = order_id
        self.status = status
        if not why:
            why = "a cancel is already pending" if status == OrderStatus.PENDING_CANCEL else "the order is terminal"
            if status == OrderStatus.PENDING:
                why = "the order is still being accepted"
        super().__init__(f"order {order_id} cannot be canceled in status {status}: {why}")


def order_cancel(*, order: Order, actor: str, reason: str = "") -> Order:
    """Cancel ``order``: at once when not yet handed to a venue, else via the venue.

    Under ``select_for_update`` on the order row:

    - ROUTED (the trading worker has not submitted it) → CANCELED now, ``closed_at`` set, CANCELED
      event, its open quantity released from pre-trade risk's totals (``orders.exposure``). The
      trading worker moves ROUTED → SUBMITTED under the same row lock *before* it sends anything to
      a venue, and drops a submit command for a CANCELED order, so nothing reaches the venue.
    - A ROUTED child of an execution algorithm is refused (:class:`OrderNotCancelable`): the node
      created it and submits it itself, without a claim, so it may already be at the venue;
      canceling it here would hide a live order. It is SUBMITTED within milliseconds, and the
      parent's cancel cancels its open children.
    - SUBMITTED / ACCEPTED / PARTIALLY_FILLED → PENDING_CANCEL, CANCEL_REQUESTED event, and after
      commit ``venues.tasks.cancel_order(order_id)`` on queue ``venues`` (the sweeper re-sends it if
      the broker is down). The venue's answer moves it on (CANCELED, or back on a rejected cancel).

    Either way, after commit, the venue command (if any) is dispatched and then the change is
    published to the order stream (:mod:`orders.services.publish`).

    Parameters
    ----------
    order : Order
        The order to cancel (only its id is used; the row is re-read under the lock).
    actor : str
        Who asks (username or strategy service).
    reason : str
        Optional free text recorded on the event.

    Returns
    -------
    Order
        The locked, updated row.

    Raises
    ------
    OrderNotCancelable
        Terminal, PENDING, already PENDING_CANCEL, or an algorithm's child not yet SUBMITTED: never
        a silent success.
    """
    checks: list = []
    # PostgreSQL: a pipeline encloses the transaction (odum_live.sql.pipelined_transaction) — the
    # locked read is one round trip, the writes go with the COMMIT in one more (besides psycopg's
    # own syncs: the BEGIN, the autocommit switches, the pipeline's end; odum_live.sql.pipeline).
    with pipelined_transaction() as after_commit:
        locked = _LOCKED.one(order.pk)
        if locked is None:
            raise Order.DoesNotExist(f"order {order.pk} does not exist")
        before = locked.status
        now = timezone.now()
        payload = {"reason": reason} if reason else {}
        if not cancel_accepted(before, algorithm_slice=locked.parent_id is not None):
            why = _SLICE_NOT_SUBMITTED if before == OrderStatus.ROUTED else ""
            raise OrderNotCancelable(order_id=locked.id, status=before, why=why)
        if before == OrderStatus.ROUTED:
            locked.transition_to(OrderStatus.CANCELED)
            locked.closed_at = now
            event_type = OrderEvent.Type.CANCELED
            payload["detail"] = "canceled before hand-off to the venue"
        else:  # at the venue: SUBMITTED, ACCEPTED, PARTIALLY_FILLED
            locked.transition_to(OrderStatus.PENDING_CANCEL)
            event_type = OrderEvent.Type.CANCEL_REQUESTED
        locked.updated_at = now
        send_update(locked, ["status", "closed_at", "updated_at"])  # locked above
        # Same transaction: the risk engine's open-order totals shrink with the order (no-op while
        # PENDING_CANCEL, which still counts as open).
        order_exposure_changed(order=locked, previous_status=before,
                               previous_filled_quantity=locked.filled_quantity, checks=checks)
        send_insert([OrderEvent(order=locked, type=event_type, status_before=before, status_after=locked.status,
                                actor=actor, ts=now, payload=payload)], read_ids=False)
        if locked.status == OrderStatus.PENDING_CANCEL:
            from orders.services.dispatch import order_dispatch_cancel

            # Registered first, so it runs first after commit: the cancel goes to the trading worker
            # before the (slower) publication to WebSocket subscribers, as a submit's dispatch does.
            order_id = locked.id
            after_commit(lambda: order_dispatch_cancel(order_id=order_id, attempt="initial"))
        published = {locked.pk: locked.strategy_id}
        after_commit(lambda: publish_orders_updated(published))
    for check in checks:
        check()
    logger.info("order %s: %s -> %s by %s", locked.id, before, locked.status, actor)
    return locked
