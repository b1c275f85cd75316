"""Reconciliation at node start: the OMS's open orders and positions against the node's view of the venue.

Runs once the bridge strategy is running (:meth:`venues.node.host.TradingNodeHost.start`). By then
NautilusTrader has done its own start-up reconciliation: a live venue's order, fill and position
reports are in the node's cache (``LiveExecEngineConfig(reconciliation=True)``), and with
``NODE_CACHE_REDIS`` the cache also holds what the previous run of this trader id knew. So the
node's cache is "the venue" here. Rules (issue #3 §6):

1. For each order the OMS holds open (SUBMITTED, ACCEPTED, PARTIALLY_FILLED, PENDING_CANCEL) on the
   node's venues, every fill the node's cache has for it is sent to the journal again; fills are
   unique on (venue, listing, trade id, side), so a fill the OMS already has is a no-op and a missing one is
   applied once. An algorithm's parent whose family ended short (its primary filled as the last
   slice, every child ended) is closed CANCELED by the journal on these events — a child's
   resolution, a missing fill, or the replay of the primary's fill when the OMS already had it all
   (``orders.services.venue_events``): the decision stays the journal's.
2. An order the node's cache does not know is not at the venue (it was claimed but the process
   died before the hand-off, or the cache was not persisted): it is resolved REJECTED (never
   accepted) or CANCELED, with a reason starting ``reconciliation:``.
3. An order the cache holds closed (canceled, expired, rejected) gets that status.
4. An order the cache holds open on a **paper** venue is gone: the simulated exchange keeps nothing
   across a restart (NAUTILUS_NOTES.md), and an execution algorithm's schedule (a primary the
   algorithm still held) is lost with the process. Both are resolved CANCELED with the reason.
5. Children of an algorithm's parent are taken from the cache (``orders_for_exec_spawn``), not
   only from the OMS: a child the node created and filled while the journal was behind (its
   CHILD_CREATED lost with the process's in-memory queue) is recorded with its whole history, so
   no fill the venue made is missing from the parent or the position. Then every child the OMS
   holds open (:data:`CHILD_STATUSES`, ROUTED included) that the cache did not list — all of them
   when the cache does not know the parent — is reconciled like an order of its own (rule 2 when
   the cache does not know it either), before the parent is resolved: no child stays open under a
   closed parent. Open children whose parent is already closed are reconciled on their own.
6. Positions: the OMS's net quantity per listing is compared with the node's net position; each
   difference is a :class:`positions.models.ReconciliationFinding` — recorded and shown in health,
   never "fixed" with invented fills. (While the node runs, each fill of an order that is not ours
   becomes an EXTERNAL_FILL finding of its own: :meth:`venues.node.bridge.BridgeStrategy.on_external_fill`.)

The cache is read on the node's loop thread (:func:`reconcile_orders_on_node`,
:func:`net_positions_on_node`); the database is read and written on the caller's thread.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.utils import timezone
from nautilus_trader.model.enums import OrderStatus as NtStatus
from nautilus_trader.model.events import OrderFilled, OrderInitialized
from nautilus_trader.model.identifiers import ClientOrderId, InstrumentId

from venues.events import VenueEvent, VenueEventKind
from venues.node.bridge import net_position, venue_event_from_nautilus

logger = logging.getLogger(__name__)

RECONCILED_STATUSES = ("SUBMITTED", "ACCEPTED", "PARTIALLY_FILLED", "PENDING_CANCEL")
# A child is recorded ROUTED (CHILD_CREATED) before its SUBMITTED arrives: it is reconciled too.
CHILD_STATUSES = ("ROUTED", *RECONCILED_STATUSES)
_TERMINAL = frozenset({"FILLED", "CANCELED", "EXPIRED", "REJECTED", "DENIED"})
_CLOSED = {NtStatus.CANCELED: VenueEventKind.CANCELED, NtStatus.EXPIRED: VenueEventKind.EXPIRED,
           NtStatus.REJECTED: VenueEventKind.REJECTED, NtStatus.DENIED: VenueEventKind.REJECTED}


@dataclass(frozen=True, slots=True)
class OpenOrder:
    """An order the OMS holds open: what reconciliation needs of it (read before going to the loop).

    Attributes
    ----------
    client_order_id, venue, status : str
        The OMS's values.
    paper : bool
        Whether its venue runs in paper mode.
    is_child : bool
        An algorithm's child whose parent is not itself reconciled (its parent is closed).
    children : dict[str, str]
        For a parent: every child the OMS has recorded (client_order_id → status), open or not.
    """

    client_order_id: str
    venue: str
    status: str
    paper: bool
    is_child: bool = False
    children: dict[str, str] = field(default_factory=dict)


def open_orders(*, venues: dict[str, str]) -> list[OpenOrder]:
    """Return the OMS's open orders on ``venues`` (code → mode), oldest first.

    Parents (orders without a parent) in :data:`RECONCILED_STATUSES` come with every child the OMS
    has recorded for them; open children (:data:`CHILD_STATUSES`) of parents that are not in that
    list follow on their own.
    """
    from orders.models import Order

    on_venues = Order.objects.filter(venue__in=list(venues))
    parents = list(on_venues.filter(parent__isnull=True, status__in=RECONCILED_STATUSES)
                   .order_by("created_at").values_list("pk", "client_order_id", "venue", "status"))
    parent_pks = [pk for pk, *_ in parents]
    children: dict = defaultdict(dict)
    for parent_pk, cid, status in (Order.objects.filter(parent_id__in=parent_pks)
                                   .values_list("parent_id", "client_order_id", "status")):
        children[parent_pk][cid] = status
    orphans = (on_venues.filter(parent__isnull=False, status__in=CHILD_STATUSES).exclude(parent_id__in=parent_pks)
               .order_by("created_at").values_list("client_order_id", "venue", "status"))
    return ([OpenOrder(cid, venue, status, venues[venue] == "paper", children=children.get(pk, {}))
             for pk, cid, venue, status in parents]
            + [OpenOrder(cid, venue, status, venues[venue] == "paper", is_child=True)
               for cid, venue, status in orphans])


def _translated(events, *, venue: str, client_order_id: str, is_child: bool) -> list[VenueEvent]:
    # NautilusTrader events → ours; one that cannot be translated is logged, never dropped silently.
    out = []
    for event in events:
        try:
            translated = venue_event_from_nautilus(event, venue=venue, is_child=is_child)
        except ValueError as exc:
            logger.error("reconciliation: %s of %s not journaled (%s): %r", type(event).__name__, client_order_id,
                         exc, event)
            continue
        if translated is not None:
            out.append(translated)
    return out


def _fills(order) -> list:
    return [e for e in order.events if isinstance(e, OrderFilled)]


class _Resolver:
    # Collects the events for one reconciliation pass; all resolutions carry the same time.
    def __init__(self) -> None:
        self.now = timezone.now()
        self.events: list[VenueEvent] = []

    def resolve(self, kind: VenueEventKind, client_order_id: str, venue: str, why: str) -> None:
        self.events.append(VenueEvent(kind=kind, client_order_id=client_order_id, venue=venue, ts_event=self.now,
                                      reason=f"reconciliation: {why}"))

    def order(self, cached, *, client_order_id: str, venue: str, status: str, paper: bool, is_child: bool,
              history: list | None = None) -> None:
        # Fills (or ``history``: the events the OMS never recorded), then the status resolution.
        if cached is None:
            self.resolve(VenueEventKind.REJECTED if status in ("ROUTED", "SUBMITTED") else VenueEventKind.CANCELED,
                         client_order_id, venue, "the venue does not know the order (it never reached the venue, "
                                                 "or the node's record of it was lost)")
            return
        self.events += _translated(_fills(cached) if history is None else history, venue=venue,
                                   client_order_id=client_order_id, is_child=is_child)
        if status in _TERMINAL:
            return  # the OMS already closed it: only fills it lacked
        if cached.status in _CLOSED:
            if history is None:  # a replayed history already carries the closing event
                self.resolve(_CLOSED[cached.status], client_order_id, venue,
                             f"the venue reports the order {cached.status.name}")
        elif cached.is_open and paper:
            self.resolve(VenueEventKind.CANCELED, client_order_id, venue,
                         "the paper venue restarted and no longer holds the order")
        elif cached.status == NtStatus.INITIALIZED and cached.exec_algorithm_id is not None and not is_child:
            self.resolve(VenueEventKind.CANCELED, client_order_id, venue,
                         "the execution algorithm's schedule was lost in the restart; the rest of the parent is "
                         "canceled")


def reconcile_orders_on_node(cache, orders: list[OpenOrder]) -> list[VenueEvent]:
    """Return the events that bring ``orders`` in line with the node's cache (run on the loop thread).

    For an algorithm's parent, its children in the cache (``cache.orders_for_exec_spawn``) come
    first: a child the OMS never recorded (the process died with its CHILD_CREATED still queued for
    the journal) gets its whole history — CHILD_CREATED, SUBMITTED, ACCEPTED, fills, the closing
    event — so its fills reach the parent and the position; a child recorded only as created
    (ROUTED) gets the rest of its history; any other recorded child gets its fills (no-ops when
    stored) and its status resolution. Then each child the OMS holds open (:data:`CHILD_STATUSES`)
    that the cache did not list — every open child when the cache does not know the parent — is
    reconciled on its own: resolved REJECTED (ROUTED, SUBMITTED) or CANCELED with a
    ``reconciliation:`` reason when the cache does not know it either (rule 2; no fill is invented).
    Then the parent's own fills (the primary sent as the last slice) and its resolution.

    Parameters
    ----------
    cache : nautilus_trader.cache.Cache
        The node's cache.
    orders : list[OpenOrder]
        From :func:`open_orders`.

    Returns
    -------
    list[VenueEvent]
        In journal order: per parent, its children's events, then its fills, then its resolution.
    """
    resolver = _Resolver()
    for ours in orders:
        cached = cache.order(ClientOrderId(ours.client_order_id))
        visited: set[str] = {ours.client_order_id}
        if cached is not None and not ours.is_child and cached.exec_algorithm_id is not None:
            for child in cache.orders_for_exec_spawn(cached.client_order_id):
                cid = child.client_order_id.value
                if cid in visited:
                    continue
                visited.add(cid)
                recorded = ours.children.get(cid)
                resolver.order(child, client_order_id=cid, venue=ours.venue, status=recorded or "ROUTED",
                               paper=ours.paper, is_child=True, history=_child_history(child, recorded))
        # Children the OMS holds open that the cache did not list under the parent (all of them when the
        # parent is unknown): each is resolved like an order of its own, before the parent.
        for cid, recorded in ours.children.items():
            if cid in visited or recorded not in CHILD_STATUSES:
                continue
            child = cache.order(ClientOrderId(cid))
            resolver.order(child, client_order_id=cid, venue=ours.venue, status=recorded, paper=ours.paper,
                           is_child=True, history=None if child is None else _child_history(child, recorded))
        resolver.order(cached, client_order_id=ours.client_order_id, venue=ours.venue, status=ours.status,
                       paper=ours.paper, is_child=ours.is_child)
    return resolver.events


def _child_history(child, recorded: str | None) -> list | None:
    # What the OMS lacks of a cached child: everything (never recorded), all but CHILD_CREATED (ROUTED), or
    # None when it was recorded past ROUTED (its fills and its resolution are enough).
    if recorded is None:
        return list(child.events)
    if recorded == "ROUTED":
        return [e for e in child.events if not isinstance(e, OrderInitialized)]
    return None


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
    return {(venue, key): net_position(cache, InstrumentId.from_str(iid)) for iid, (venue, key) in listings.items()}
