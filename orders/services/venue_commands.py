"""Receipt of venue commands by the trading worker (``venues.tasks``).

For now the trading worker only records that a command arrived (VENUE_RECEIVED, with its host
name); the venue layer that submits and cancels at the venue arrives with the next issue and
replaces the body of :func:`order_venue_command_received` behind the same tasks.
"""

from __future__ import annotations

import logging
import uuid

from django.db import transaction
from django.utils import timezone

from orders.models import Order, OrderEvent
from orders.state import TERMINAL_STATUSES, OrderStatus

logger = logging.getLogger(__name__)

#: The status a command expects to find; anything else makes it a recorded no-op (IGNORED).
_EXPECTED = {"submit": OrderStatus.ROUTED, "cancel": OrderStatus.PENDING_CANCEL}


def order_venue_command_received(*, order_id: str, command: str, worker: str) -> OrderEvent | None:
    """Record that the trading worker received ``command`` for ``order_id``.

    Parameters
    ----------
    order_id : str
        The order's id as sent in the task (UUID text).
    command : str
        ``submit`` or ``cancel``.
    worker : str
        The worker's host name (Celery ``request.hostname``).

    Returns
    -------
    OrderEvent | None
        VENUE_RECEIVED when the order is in the status the command expects (ROUTED for submit,
        PENDING_CANCEL for cancel); IGNORED (a recorded no-op: duplicate delivery, or the order was
        canceled / moved on meanwhile) otherwise; None, with a log line, for an unknown order id.

    Raises
    ------
    ValueError
        For a command other than ``submit`` / ``cancel`` (a programming error).
    """
    if command not in _EXPECTED:
        raise ValueError(f"unknown venue command {command!r}")
    try:
        pk = uuid.UUID(str(order_id))
    except ValueError:
        logger.error("venue %s command for malformed order id %r ignored", command, order_id)
        return None
    with transaction.atomic():
        order = Order.objects.select_for_update().filter(pk=pk).only("id", "status").first()
        if order is None:
            logger.error("venue %s command for unknown order %s ignored (worker %s)", command, pk, worker)
            return None
        payload = {"command": command, "worker": worker}
        if order.status == _EXPECTED[command]:
            event_type = OrderEvent.Type.VENUE_RECEIVED
        else:
            event_type = OrderEvent.Type.IGNORED
            state = "terminal" if order.status in TERMINAL_STATUSES else "no longer awaiting it"
            payload["detail"] = f"{command} command ignored: order is {order.status} ({state})"
            logger.info("venue %s command for order %s ignored: status %s", command, pk, order.status)
        return OrderEvent.objects.create(order_id=pk, type=event_type, status_before=order.status,
                                         status_after=order.status, actor=f"worker:{worker}",
                                         ts=timezone.now(), payload=payload)
