"""Reconciliation at node start: the OMS's open orders and positions against the node's view of the venue.

Runs once the bridge strategy is running (:meth:`venues.node.host.TradingNodeHost.start`). By then
NautilusTrader has done its own start-up reconciliation: a live venue's order, fill and position
reports are in the node's cache (``LiveExecEngineConfig(reconciliation=True)``), and with
``NODE_CACHE_REDIS`` the cache also holds what the previous run of this trader id knew. So the
node's cache is "the venue" here. Rules (issue #3 §6):

1. For each order the OMS holds open (SUBMITTED, ACCEPTED, PARTIALLY_FILLED, PENDING_CANCEL) on the
   node's venues, every fill the node's cache has for it is sent to the journal again; fills are
   unique on (venue, trade id), so a fill the OMS already has is a no-op and a missing one is
   applied once.
2. An order the node's cache does not know is not at the venue (it was claimed but the process
   died before the hand-off, or the cache was not persisted): it is resolved REJECTED (never
   accepted) or CANCELED, with a reason starting ``reconciliation:``.
3. An order the cache holds closed (canceled, expired, rejected) gets that status.
4. An order the cache holds open on a **paper** venue is gone: the simulated exchange keeps nothing
   across a restart (NAUTILUS_NOTES.md), and an execution algorithm's schedule (a primary the
   algorithm still held) is lost with the process. Both are resolved CANCELED with the reason.
5. Positions: the OMS's net quantity per listing is compared with the node's net position; each
   difference is a :class:`positions.models.ReconciliationFinding` — recorded and shown in health,
   never "fixed" with invented fills.

The cache is read on the node's loop thread (:func:`reconcile_orders_on_node`,
:func:`net_positions_on_node`); the database is read and written on the caller's thread.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal

from django.utils import timezone
from nautilus_trader.model.enums import OrderStatus as NtStatus
from nautilus_trader.model.enums import PositionSide
from nautilus_trader.model.events import OrderFilled
from nautilus_trader.model.identifiers import ClientOrderId, InstrumentId

from venues.events import VenueEvent, VenueEventKind
from venues.node.bridge import venue_event_from_nautilus

logger = logging.getLogger(__name__)

RECONCILED_STATUSES = ("SUBMITTED", "ACCEPTED", "PARTIALLY_FILLED", "PENDING_CANCEL")
_CLOSED = {NtStatus.CANCELED: VenueEventKind.CANCELED, NtStatus.EXPIRED: VenueEventKind.EXPIRED,
           NtStatus.REJECTED: VenueEventKind.REJECTED, NtStatus.DENIED: VenueEventKind.REJECTED}


@dataclass(frozen=True, slots=True)
class OpenOrder:
    """An order the OMS holds open: what reconciliation needs of it (read before going to the loop)."""

    client_order_id: str
    venue: str
    status: str
    paper: bool


def open_orders(*, venues: dict[str, str]) -> list[OpenOrder]:
    """Return the OMS's open orders on ``venues`` (code → mode), oldest first."""
    from orders.models import Order

    rows = (Order.objects.filter(venue__in=list(venues), status__in=RECONCILED_STATUSES)
            .order_by("created_at").values_list("client_order_id", "venue", "status"))
    return [OpenOrder(cid, venue, status, venues[venue] == "paper") for cid, venue, status in rows]


def reconcile_orders_on_node(cache, orders: list[OpenOrder]) -> list[VenueEvent]:
    """Return the events that bring ``orders`` in line with the node's cache (run on the loop thread).

    Parameters
    ----------
    cache : nautilus_trader.cache.Cache
        The node's cache.
    orders : list[OpenOrder]
        From :func:`open_orders`.

    Returns
    -------
    list[VenueEvent]
        Fills first (per order, in the cache's order), then the status resolution.
    """
    now = timezone.now()
    events: list[VenueEvent] = []
    for ours in orders:
        def resolve(kind: VenueEventKind, why: str, ours: OpenOrder = ours) -> None:
            events.append(VenueEvent(kind=kind, client_order_id=ours.client_order_id, venue=ours.venue,
                                     ts_event=now, reason=f"reconciliation: {why}"))

        order = cache.order(ClientOrderId(ours.client_order_id))
        if order is None:
            resolve(VenueEventKind.REJECTED if ours.status == "SUBMITTED" else VenueEventKind.CANCELED,
                    "the venue does not know the order (it never reached the venue, or the node's record of "
                    "it was lost)")
            continue
        for fill in (e for e in order.events if isinstance(e, OrderFilled)):
            try:
                events.append(venue_event_from_nautilus(fill, venue=ours.venue, is_child=False))
            except ValueError as exc:
                logger.error("reconciliation: fill of %s not journaled (%s): %r", ours.client_order_id, exc, fill)
        if order.status in _CLOSED:
            resolve(_CLOSED[order.status], f"the venue reports the order {order.status.name}")
        elif order.is_open and ours.paper:
            resolve(VenueEventKind.CANCELED, "the paper venue restarted and no longer holds the order")
        elif order.status == NtStatus.INITIALIZED and order.exec_algorithm_id is not None:
            resolve(VenueEventKind.CANCELED, "the execution algorithm's schedule was lost in the restart; the rest "
                                             "of the parent is canceled")
    return events


def net_positions_on_node(cache, listings: dict[str, tuple[str, str]]) -> dict[tuple[str, str], Decimal]:
    """Return the node's net position per listing (run on the loop thread).

    Parameters
    ----------
    cache : nautilus_trader.cache.Cache
    listings : dict[str, tuple[str, str]]
        NautilusTrader instrument id → (venue code, instrument key).

    Returns
    -------
    dict[tuple[str, str], Decimal]
        (venue code, instrument key) → signed net quantity, base units (0 when flat).
    """
    out: dict[tuple[str, str], Decimal] = {}
    for iid, (venue, key) in listings.items():
        total = Decimal(0)
        for position in cache.positions_open(instrument_id=InstrumentId.from_str(iid)):
            size = position.quantity.as_decimal()
            total += -size if position.side == PositionSide.SHORT else size
        out[(venue, key)] = total
    return out
