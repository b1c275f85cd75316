"""Apply one venue event to the books: the journal writer's service (DESIGN.md, order flow step 4).

:func:`order_apply_venue_event` is the one place venue facts reach the database. In one
transaction it locks the order, moves its status through the state machine (``Order.transition_to``
— a late or duplicate event never moves an order backwards: it is recorded as an IGNORED
``OrderEvent``), inserts a fill once (unique on venue, listing, trade id and side: ``orders.models.Fill``),
applies the position change (``positions.services.position_apply_fill``), re-computes the parent
of an algorithm's child from its children, keeps pre-trade risk's open-order totals true
(``orders.exposure``), appends the ``OrderEvent`` and, on commit, publishes the changed orders to
the order stream (:func:`orders.services.publish.publish_orders_updated`: numbered per stream,
logged for resumes, sent as ``{"type": "orders.updated", "order_id": …, "seq": …}`` to the groups
of :mod:`odum_live.groups`).

Units: quantities in base units (contracts for derivatives), prices in quote currency, fees in the
fill's fee currency (``Order.fees`` is their plain sum; an algorithm parent's entry for a slice's fill
records ``fee_totals`` per currency beside it). Times are the venue's event times (UTC).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal

from django.db import transaction
from django.db.models import Q

from odum_live.decimals import plain_decimal
from odum_live.instruments import parse_instrument_key
from odum_live.sql import (
    CompiledQuery,
    SentQuery,
    SentRows,
    in_pipeline,
    next_id,
    pipeline,
    pipelined_transaction,
    send_insert,
    send_update,
)
from orders.exposure import order_exposure_changed, orders_for_state_change
from orders.fills import FeeTotal, fee_totals, fill_totals, trade_side
from orders.models import Fill, Order, OrderEvent
from orders.selectors import order_column
from orders.services.one_statement import transition_in_one_statement
from orders.services.publish import publish_orders_updated  # callers also import it from here
from orders.state import PROGRESS_RANK, TERMINAL_STATUSES, IllegalTransition, OrderStatus, check_transition
from positions.maths import fee_in_pnl_currency, pnl_currency
from positions.services import (
    position_apply_fill,
    position_lock_send_of_order,
    reconciliation_record_external_fill,
)
from venues.events import VenueEvent, VenueEventKind
from venues.models import Instrument

logger = logging.getLogger(__name__)

S = OrderStatus
K = VenueEventKind
_ZERO = Decimal("0")

#: Status a non-fill event asks for (CANCEL_REJECTED depends on the fills, see below).
_TARGET = {K.SUBMITTED: S.SUBMITTED, K.ACCEPTED: S.ACCEPTED, K.REJECTED: S.REJECTED, K.CANCELED: S.CANCELED,
           K.EXPIRED: S.EXPIRED}
_EVENT_TYPE = {K.SUBMITTED: OrderEvent.Type.SUBMITTED, K.ACCEPTED: OrderEvent.Type.ACCEPTED,
               K.REJECTED: OrderEvent.Type.REJECTED, K.CANCELED: OrderEvent.Type.CANCELED,
               K.EXPIRED: OrderEvent.Type.EXPIRED, K.CANCEL_REJECTED: OrderEvent.Type.CANCEL_REJECTED}


class VenueEventError(Exception):
    """A venue event that cannot be applied because our own data is wrong (configuration error).

    Raised inside the transaction, so nothing of the event is kept; the journal writer logs it and
    counts it as failed. A replay of the event after the data is fixed applies it (fills are
    idempotent on venue, listing, trade id and side).
    """


@dataclass(frozen=True, slots=True, kw_only=True)
class AppliedEvent:
    """What :func:`order_apply_venue_event` did with one event.

    Attributes
    ----------
    applied : bool
        True when the event changed the books; False for a recorded or logged no-op (unknown
        order, late / duplicate / illegal transition, replayed fill, over-fill).
    reason : str
        Why it was not applied, or a note on how it was ("" when plain).
    kind : str
        The event's kind.
    client_order_id : str
        The event's client_order_id.
    order_id : uuid.UUID | None
        The order concerned (the child for CHILD_CREATED); None when unknown.
    status_before, status_after : str
        The order's status around the event ("" when no order).
    fill_id : int | None
        The new ``Fill`` row's id (FILLED, applied).
    parent_order_id : uuid.UUID | None
        The parent order re-computed from its children, if any.
    """

    applied: bool
    kind: str
    client_order_id: str
    reason: str = ""
    order_id: uuid.UUID | None = None
    status_before: str = ""
    status_after: str = ""
    fill_id: int | None = None
    parent_order_id: uuid.UUID | None = None


@dataclass
class _Touched:
    # Orders whose rows or timeline changed in this transaction: published after commit. And the
    # checks of sent statements' results, run once the pipeline has read them (odum_live.sql).
    orders: dict[uuid.UUID, str] = field(default_factory=dict)
    checks: list[Callable[[], None]] = field(default_factory=list)

    def add(self, order: Order) -> None:
        self.orders[order.pk] = order.strategy_id


#: The journal's read of the order a venue event concerns, locked: compiled once (odum_live/sql.py).
_LOCKED_BY_CLIENT_ORDER_ID = CompiledQuery(
    lambda client_order_id: orders_for_state_change().select_for_update(of=("self",)).order_by().filter(
        client_order_id=client_order_id),
    markers=("<client_order_id marker>",),
)


#: The columns a fill reads of its order and of an algorithm's parent (the rest stay unread: turning
#: ~50 columns into an instance was a fifth of a fill's write in the trading worker).
_FILL_ORDER_FIELDS = ("id", "strategy_id", "client_order_id", "venue", "routed_instrument_key", "status", "side",
                      "quantity", "price", "filled_quantity", "avg_fill_price", "fees", "submitted_at", "closed_at",
                      "venue_order_id", "parent_id", "exec_algorithm")
_LOCKED_FOR_FILL = CompiledQuery(
    lambda client_order_id: orders_for_state_change().only(*_FILL_ORDER_FIELDS).select_for_update(of=("self",))
    .order_by().filter(client_order_id=client_order_id),
    markers=("<client_order_id marker>",),
)
_LOCKED_PARENT_FOR_FILL = CompiledQuery(
    lambda order_id: orders_for_state_change().only(*_FILL_ORDER_FIELDS).select_for_update(of=("self",))
    .order_by().filter(pk=order_id),
    markers=(uuid.UUID(int=3),),
)


#: A fill's reads, once per FILLED event: compiled once (odum_live/sql.py).
# The stored fills of the same (venue, listing, trade id): at most one per side. A fill's identity adds
# the side (orders.models.Fill: Binance and OKX number trades per symbol; a self-trade is one trade id for
# both sides), chosen in Python from the order's side once read (_same_side). The listing is the event's
# order's, through a sub-select on its client_order_id, so that the check goes in the fill's one round trip.
_FILLS_BY_TRADE = CompiledQuery(
    lambda venue, client_order_id, trade_id: Fill.objects.order_by().only(
        "id", "order_id", "side", "quantity", "price").filter(
        venue=venue, instrument_key=order_column(client_order_id=client_order_id, column="routed_instrument_key"),
        venue_trade_id=trade_id),
    markers=("<venue marker>", "<client_order_id marker>", "<trade_id marker>"),
)
# ``order_id IN (the order and its children)``: both sides of the OR are indexed (primary key,
# parent_id), where an OR across the join to orders scanned both tables in full.
_FAMILY_FILLS = CompiledQuery(
    lambda order_id, parent_id: Fill.objects.order_by().only("id", "quantity", "price", "fee", "fee_currency").filter(
        order_id__in=Order.objects.filter(Q(pk=order_id) | Q(parent_id=parent_id)).values("pk")),
    markers=(uuid.UUID(int=1), uuid.UUID(int=2)),
)
# The same, keyed by the client_order_id of the order (sub-selects on its unique index), so that
# they go with the order's locked read in one round trip; own fills and children's fills apart
# (each an indexed join: an OR across them scanned both tables).
_FILLS_OF_ORDER = CompiledQuery(
    lambda client_order_id: Fill.objects.order_by().only("id", "quantity", "price", "fee").filter(
        order__client_order_id=client_order_id),
    markers=("<client_order_id marker>",),
)
_FILLS_OF_CHILDREN = CompiledQuery(
    lambda client_order_id: Fill.objects.order_by().only("id", "quantity", "price", "fee").filter(
        order__parent__client_order_id=client_order_id),
    markers=("<client_order_id marker>",),
)
# What the check of an algorithm's family end reads (_close_short_family): its children's figures and
# the parent's own fills (the primary's), each sent after the writes it must see.
_CHILDREN_OF_PARENT = CompiledQuery(
    lambda parent_id: Order.objects.order_by("created_at", "id").only(
        "id", "client_order_id", "status", "quantity", "filled_quantity", "rejection_reason").filter(
        parent_id=parent_id),
    markers=(uuid.UUID(int=4),),
)
_OWN_FILLS = CompiledQuery(
    lambda order_id: Fill.objects.order_by().only("id", "quantity").filter(order_id=order_id),
    markers=(uuid.UUID(int=5),),
)
_LISTING_TERM_FIELDS = ("contract_multiplier", "is_inverse", "base_currency", "quote_currency", "settlement_currency")
_LISTING_TERMS_OF_ORDER = CompiledQuery(
    lambda client_order_id: Instrument.objects.order_by().only("id", *_LISTING_TERM_FIELDS).filter(
        instrument_key=order_column(client_order_id=client_order_id, column="routed_instrument_key")),
    markers=("<client_order_id marker>",),
)


def order_apply_venue_event(*, event: VenueEvent,
                            publish: Callable[[dict[uuid.UUID, str]], None] | None = None) -> AppliedEvent:
    """Apply one venue event in one transaction; publish the changed orders after commit.

    - **Unknown client_order_id** (or unknown parent of a CHILD_CREATED): nothing of the order is
      written; a log line, ``applied=False``. A fill is a trade the books do not hold: logged at
      ERROR, and when the event carries its listing and side (the node's bridge sends them) it is
      recorded as an EXTERNAL_FILL finding as below, after the event's transaction.
    - **EXTERNAL_FILL** (a fill of an order the OMS did not originate: a venue liquidation / ADL /
      auto-close, an order placed by hand): recorded as a ``ReconciliationFinding`` of kind
      EXTERNAL_FILL, once per (venue, listing, trade id), and logged at ERROR
      (:func:`positions.services.reconciliation_record_external_fill`); no order, fill or position
      changes. ``applied`` is True when the finding is new, False for a re-delivered trade. When the
      OMS does hold an order of that client_order_id on that venue (the node lost its record of one
      of ours, e.g. a restart without a persisted cache, and took the venue's report of it for an
      external order), the event is that order's fill and is applied as a FILLED event.
    - **SUBMITTED / ACCEPTED / REJECTED / CANCELED / EXPIRED**: the status moves through
      ``Order.transition_to``; ``submitted_at`` / ``accepted_at`` / ``closed_at`` take the event
      time, ``venue_order_id`` the venue's id, ``rejection_reason`` the reason. A SUBMITTED or
      ACCEPTED that arrives while a cancel is pending keeps PENDING_CANCEL (only a CANCEL_REJECTED
      returns the order to where it was: PARTIALLY_FILLED with a fill, else ACCEPTED, or SUBMITTED
      when the venue never acknowledged it); a REJECTED while a cancel is pending and nothing filled
      closes the order REJECTED; a CANCEL_REJECTED for an order not pending a cancel is recorded
      with its status unchanged. The first ACCEPTED of a PARTIALLY_FILLED order
      (an algorithm's primary sent as its last slice after its children filled) is recorded too:
      ``accepted_at`` and the venue's order id taken, the status unchanged.
    - **Illegal, late or duplicate transitions** are not applied: an IGNORED ``OrderEvent`` names
      the refusal (``reason``; the venue's reason, if any, in ``venue_reason``); the order never
      moves backwards.
    - **REJECTED after fills** (PARTIALLY_FILLED or PENDING_CANCEL with a filled quantity — e.g. an
      algorithm's primary denied when sent as its last slice): the order becomes CANCELED with the
      venue's reason in ``rejection_reason``; its fills stand.
    - **FILLED**: a fill whose (venue, listing, trade id, side) is already stored is a no-op: silent
      for its own order (a replay), logged as an error for another order of the listing; for its own
      order with another quantity or price (a venue's trade correction) it is not applied either, but
      logged as an error and recorded as IGNORED naming both figures: the stored fill stands. The listing
      is the order's ``routed_instrument_key``: Binance and OKX number trades per symbol, so the
      same trade id on another listing of the venue is another fill (``orders.models.Fill``). The side
      is the order's (``orders.fills.trade_side``): when two of our orders trade with each other (a
      self-trade) the venue reports one trade id to both, the BUY's fill and the SELL's. Otherwise
      the ``Fill`` is inserted, the order's ``filled_quantity`` / ``avg_fill_price``
      (quantity-weighted) / ``fees`` are re-computed from its fills (and its children's), the
      status becomes PARTIALLY_FILLED or FILLED by the leaves (SUBMITTED → FILLED without ACCEPTED
      is legal; a ROUTED order passes through SUBMITTED; a partial fill while PENDING_CANCEL keeps
      the pending cancel; a fill on a CANCELED / EXPIRED / REJECTED order is kept — the trade
      happened — with the status unchanged), and the position takes the fill with the listing's
      multiplier and inverse flag, and its fee in the PnL currency (converted at the fill price from
      the pair's other currency) or, paid in a third currency (BNB), apart in that currency in the
      position's ``other_fees``, the entry's ``detail`` saying so (``positions.maths.fee_in_pnl_currency``).
      A fill that would take the order (or its parent) beyond its quantity is an over-fill: logged as an
      error, recorded as IGNORED, not applied.
    - **Children of algorithms** (CHILD_CREATED): a child ``Order`` (status ROUTED) with
      ``parent`` set, the parent's strategy / listing / venue / side, and the event's
      client_order_id. Each child fill re-computes the parent: filled quantity = Σ fills of the
      parent and its children, weighted average price, status PARTIALLY_FILLED / FILLED.
    - **A family that ends short**: once nothing of an algorithm's family can fill any more — every
      child has ended (FILLED, CANCELED, EXPIRED, REJECTED) and the primary, sent as the last slice,
      has filled the quantity it was sent with (the parent's quantity less its children's:
      NautilusTrader shrinks the primary by each slice spawned from it) — while the parent is short
      of its quantity, the parent becomes CANCELED with its fills standing (FIX: a rest that will
      not be worked is canceled; as for REJECTED after fills), ``rejection_reason`` naming the
      slices that ended short, its rest released from the open-order totals, and a CANCELED
      ``OrderEvent`` saying why. Checked on the event that closes the family: a child's end or last
      fill, or the primary's last fill — or a replay of one of the primary's fills (node-start
      reconciliation replays them), which closes a family left open. (A primary still held, or
      canceled / rejected itself, is closed by its own event, as before.)
    - **An algorithm that stops its parent**: a CANCELED for an algorithm's parent that no cancel
      asked for (not PENDING_CANCEL, no reason on the event) is the algorithm aborting its schedule
      — a slice rejected, denied, canceled or expired at the venue, or VWAP's overtime running out
      (venues/algorithms/base.py, vwap.py) — and NautilusTrader's ``OrderCanceled`` carries no
      reason. The parent's ``rejection_reason`` (and its CANCELED event's ``detail``) then says so:
      the figures, the unsent rest, and each slice that ended short with its status and reason.

    Every changed order gets ``order_exposure_changed`` and one ``OrderEvent`` (actor
    ``venue:<code>``, ``ts`` = event time, figures as strings in the payload).

    Parameters
    ----------
    event : VenueEvent
        The venue's report (validated at construction).
    publish : Callable[[dict[uuid.UUID, str]], None] | None
        Called after commit with the changed orders (order id → strategy id); default
        :func:`orders.services.publish.publish_orders_updated`, in this thread. The journal writer
        passes its publisher thread's ``submit`` so that publishing never delays the next write.

    Returns
    -------
    AppliedEvent
        What was done.

    Raises
    ------
    VenueEventError
        The order's listing (``venues.Instrument`` of ``routed_instrument_key``) is missing when a
        fill needs its multiplier / inverse flag; nothing is written.
    ValueError
        From ``position_apply_fill`` for fill figures the position maths refuses (e.g. more than
        18 decimal places); nothing is written.
    orders.state.IllegalTransition
        A fill for an order the state machine cannot fill (PENDING: not yet routed); nothing is
        written.
    django.db.OperationalError
        Database unavailable or a lock / serialization failure; nothing is written (the caller
        may retry: the event is idempotent).
    """
    if event.kind == K.EXTERNAL_FILL:
        if not Order.objects.filter(client_order_id=event.client_order_id, venue=event.venue).exists():
            return _record_external_fill(event)
        # The node took an order of ours for external (its record lost in a restart, the venue then
        # reporting it): the OMS holds the order, so the trade is its fill.
        logger.warning("order %s: fill %s:%s reported as external (%s); the OMS holds the order: applied as its fill",
                       event.client_order_id, event.venue, event.trade_id, event.reason)
        event = replace(event, kind=K.FILLED, venue_position=None)
    touched = _Touched()
    one_statement = event.kind == K.ACCEPTED  # still to try
    if one_statement and not transaction.get_connection().in_atomic_block:
        one_statement = False
        # The common ACCEPTED (of a SUBMITTED order, PostgreSQL) is one statement, atomic by itself:
        # outside a caller's transaction it commits on its own, one round trip where BEGIN, the
        # statement and COMMIT were three. When it does not apply, the general path below decides.
        result = _accept_in_one_statement(event, touched)
        if result is not None:
            _publish_on_commit(touched, publish)  # committed: runs at once
            return result
    if event.kind == K.CHILD_CREATED:
        with transaction.atomic():
            result = _apply_child_created(event, touched)
            _publish_on_commit(touched, publish)
        return result
    # A fill or a status event. PostgreSQL: a pipeline (odum_live.sql.pipeline) — the reads go in
    # one round trip (a fill of an algorithm's child: two), the writes in one more, where each
    # statement was a round trip of its own; outside a caller's transaction the pipeline encloses
    # it (pipelined_transaction), so the COMMIT travels with the writes. Drift checks of the open
    # exposure (which only log) run once the results are in.
    with pipelined_transaction() as after_commit, pipeline():
        if event.kind == K.FILLED:
            result = _apply_fill_event(event, touched)
        elif one_statement and (accepted := _accept_in_one_statement(event, touched)) is not None:
            result = accepted  # inside a caller's transaction (the one-statement form read its own result)
        else:
            order = _LOCKED_BY_CLIENT_ORDER_ID.one(event.client_order_id)
            result = _misrouted(order, event, touched) or _apply_status(order, event, touched)
        _publish_on_commit(touched, publish, after_commit)
    for check in touched.checks:
        check()
    if event.kind == K.FILLED and result.order_id is None and event.instrument_key and event.side:
        _record_external_fill(event, detail=f"{result.reason}: the OMS holds no record of the order")
    return result


def _publish_on_commit(touched: _Touched, publish: Callable[[dict[uuid.UUID, str]], None] | None,
                       after_commit: Callable[[Callable[[], None]], None] = transaction.on_commit) -> None:
    if touched.orders:
        published, publisher = dict(touched.orders), publish or publish_orders_updated
        after_commit(lambda: publisher(published))


# --- event kinds ------------------------------------------------------------------------------

def _accept_in_one_statement(event: VenueEvent, touched: _Touched) -> AppliedEvent | None:
    # PostgreSQL, the common case: SUBMITTED → ACCEPTED on the event's venue, as _apply_status would
    # write it (accepted_at kept if already set, the venue's order id taken; open exposure does not
    # change: the leaves stay), in one statement (orders/services/one_statement.py). None when the
    # order is not SUBMITTED on that venue (or unknown), or not on PostgreSQL: the general path
    # decides and records why.
    order = transition_in_one_statement(
        where={"client_order_id": event.client_order_id, "venue": event.venue},
        source=S.SUBMITTED, target=S.ACCEPTED,
        set_columns={"accepted_at": "COALESCE(accepted_at, %(ts_event)s)",
                     "venue_order_id": "CASE WHEN %(venue_order_id)s = '' THEN venue_order_id "
                                       "ELSE %(venue_order_id)s END"},
        values={"ts_event": event.ts_event, "venue_order_id": event.venue_order_id},
        event_type=_EVENT_TYPE[K.ACCEPTED], actor=_actor(event), ts=event.ts_event, payload=_base_payload(event),
        returning=("id", "strategy_id", "client_order_id"),
    )
    if order is None:
        return None
    touched.add(order)
    logger.info("order %s: %s %s -> %s", order.client_order_id, event.kind, S.SUBMITTED, S.ACCEPTED)
    return AppliedEvent(applied=True, kind=event.kind, client_order_id=event.client_order_id, order_id=order.pk,
                        status_before=S.SUBMITTED, status_after=S.ACCEPTED)


def _apply_status(order: Order, event: VenueEvent, touched: _Touched) -> AppliedEvent:
    before = order.status
    fields = {"status", "updated_at"}
    detail = ""
    if event.kind == K.CANCEL_REJECTED:
        if before != S.PENDING_CANCEL:
            detail = f"cancel rejected while {before}: status unchanged"
            target = before
        else:
            # Back to where the order was before the cancel request: SUBMITTED when the venue never
            # acknowledged it (a later REJECTED or ACCEPTED still applies), as NautilusTrader does.
            target = S.PARTIALLY_FILLED if order.filled_quantity > 0 else \
                S.ACCEPTED if order.accepted_at is not None else S.SUBMITTED
    elif event.kind == K.SUBMITTED and before == S.PENDING_CANCEL:
        # The venue side's confirmation of an order we asked to cancel meanwhile: the cancel is still
        # pending (the state machine's PENDING_CANCEL → SUBMITTED is a rejected cancel's only).
        if order.submitted_at is not None:
            return _ignore(order, event, touched, reason="late or duplicate event: submitted while a cancel is "
                                                         "pending")
        detail = "submission confirmed while a cancel is pending: status unchanged"
        target = before
    elif event.kind == K.ACCEPTED and before == S.PENDING_CANCEL:
        # The venue acknowledged the order after we asked to cancel it: the cancel is still pending.
        detail = "accepted while a cancel is pending: status unchanged"
        target = before
    elif event.kind == K.ACCEPTED and before == S.PARTIALLY_FILLED and order.accepted_at is None:
        # The venue's first acknowledgement of an order that already has fills: an algorithm's
        # primary sent as its last slice (its children's fills made it PARTIALLY_FILLED), or an
        # acknowledgement that arrived after the order's first fill. It is news (accepted_at, the
        # venue's order id), not a late duplicate; the status stays. A second one is ignored.
        detail = f"accepted with {order.filled_quantity} of {order.quantity} already filled: status unchanged"
        target = before
    elif event.kind == K.REJECTED and order.filled_quantity > 0 and _refuse(order, S.REJECTED) \
            and not _refuse(order, S.CANCELED):
        # The rest of a partly filled order was refused — e.g. an algorithm's primary sent as its
        # last slice and denied by the node: the fills stand, the order cannot become REJECTED,
        # and leaving it PARTIALLY_FILLED would keep it open for ever. The rest is canceled.
        detail = f"rejected with {order.filled_quantity} of {order.quantity} filled: the rest is canceled"
        target = S.CANCELED
    elif event.kind == K.SUBMITTED and before == S.SUBMITTED and order.submitted_at is None:
        # The trading worker marks SUBMITTED before it hands the order over; this is the venue
        # side's confirmation (a second one, with submitted_at set, is a duplicate).
        detail = "submission confirmed"
        target = before
    else:
        target = _TARGET[event.kind]
        refusal = _refuse(order, target)
        if refusal:
            return _ignore(order, event, touched, reason=refusal)
    if target != before:
        order.transition_to(target)
    ts = event.ts_event
    if event.kind == K.SUBMITTED and order.submitted_at is None:
        order.submitted_at = ts
        fields.add("submitted_at")
    if event.kind == K.ACCEPTED and order.accepted_at is None:
        order.accepted_at = ts
        fields.add("accepted_at")
    if order.status in TERMINAL_STATUSES and before not in TERMINAL_STATUSES:
        order.closed_at = ts
        fields.add("closed_at")
    if event.kind == K.REJECTED:
        order.rejection_reason = event.reason
        fields.add("rejection_reason")
    elif event.kind == K.CANCELED and target == S.CANCELED and before != S.PENDING_CANCEL and not event.reason \
            and order.parent_id is None and order.exec_algorithm != Order.ExecAlgorithm.NORMAL:
        # Nobody asked: the algorithm stopped the parent (NautilusTrader's OrderCanceled has no reason).
        detail = order.rejection_reason = _algorithm_stop_reason(order)
        fields.add("rejection_reason")
    if event.venue_order_id and order.venue_order_id != event.venue_order_id:
        order.venue_order_id = event.venue_order_id
        fields.add("venue_order_id")
    send_update(order, sorted(fields))  # locked by the caller's read
    order_exposure_changed(order=order, previous_status=before, previous_filled_quantity=order.filled_quantity,
                           checks=touched.checks)
    payload = _base_payload(event)
    if detail:
        payload["detail"] = detail
    _record(order, event, _EVENT_TYPE[K.CANCELED if target == S.CANCELED else event.kind], before, payload)
    touched.add(order)
    logger.info("order %s: %s %s -> %s", order.client_order_id, event.kind, before, order.status)
    parent_id = None
    if order.parent_id and order.status in TERMINAL_STATUSES and before not in TERMINAL_STATUSES:
        # A child's end may be the last of its family (lock order: the child, then its parent).
        parent = _LOCKED_PARENT_FOR_FILL.one(order.parent_id)
        if parent is not None and _close_short_family(parent, event=event, touched=touched):
            parent_id = parent.pk
    return AppliedEvent(applied=True, kind=event.kind, client_order_id=event.client_order_id, reason=detail,
                        order_id=order.pk, status_before=before, status_after=order.status,
                        parent_order_id=parent_id)


def _misrouted(order: Order | None, event: VenueEvent, touched: _Touched) -> AppliedEvent | None:
    # The outcome for an event that cannot concern ``order`` (unknown, or another venue's); else None.
    if order is None:
        return _unknown(event, event.client_order_id)
    if order.venue != event.venue:
        return _ignore(order, event, touched,
                       reason=f"event from venue {event.venue} for an order routed to {order.venue}")
    return None


@dataclass(frozen=True, slots=True)
class _FillReads:
    # What a fill reads, sent together (odum_live.sql: one round trip in a pipeline).
    order: SentRows
    same_trade: SentRows
    terms: SentRows
    own_fills: SentRows
    children_fills: SentRows
    fill_id: SentQuery | None
    position: SentRows


def _apply_fill_event(event: VenueEvent, touched: _Touched) -> AppliedEvent:
    # One round trip for everything a fill reads, keyed by the event alone (the order's columns
    # come through sub-selects on its client_order_id, each one probe of its unique index): the
    # order's lock first, then — each statement runs after it, so it sees what a writer holding the
    # lock before us committed (every writer of the order's fills holds it) — the duplicate check,
    # the listing's terms, the fills so far of the order and of its children (an algorithm's
    # primary), the fill's id and the position's lock. An algorithm's child then locks its parent
    # and reads the parent's family's fills: lock order order, position, parent (nothing else
    # locks both a position and an order).
    coid = event.client_order_id
    reads = _FillReads(
        order=_LOCKED_FOR_FILL.send(coid), same_trade=_FILLS_BY_TRADE.send(event.venue, coid, event.trade_id),
        terms=_LISTING_TERMS_OF_ORDER.send(coid), own_fills=_FILLS_OF_ORDER.send(coid),
        children_fills=_FILLS_OF_CHILDREN.send(coid), fill_id=next_id(Fill) if in_pipeline() else None,
        position=position_lock_send_of_order(client_order_id=coid),
    )
    order = reads.order.one()
    same_trade = reads.same_trade.all()
    return _misrouted(order, event, touched) or _apply_fill(
        order, event, touched, duplicate=_same_side(order, same_trade), reads=reads)


def _same_side(order: Order, same_trade: list[Fill]) -> Fill | None:
    # The stored fill of the event's trade on the order's side, if any: the other side's is the other
    # order's fill of a self-trade, not a duplicate.
    side = trade_side(order.side)
    return next((f for f in same_trade if f.side == side), None)


def _apply_fill(order: Order, event: VenueEvent, touched: _Touched, *, duplicate: Fill | None,
                reads: _FillReads) -> AppliedEvent:
    if duplicate is not None:
        if duplicate.order_id == order.pk and (duplicate.quantity, duplicate.price) != (event.last_qty, event.last_px):
            return _refigured_fill(order, event, duplicate, touched)
        result = _duplicate_fill(order, event, duplicate.order_id)
        if duplicate.order_id == order.pk and order.parent_id is None \
                and order.exec_algorithm != Order.ExecAlgorithm.NORMAL:
            # A replayed fill of an algorithm's primary (reconciliation at node start replays every fill
            # of an open order): a family that ended short but was left open is closed now.
            before = order.status
            if _close_short_family(order, event=event, touched=touched):
                return AppliedEvent(applied=True, kind=event.kind, client_order_id=event.client_order_id,
                                    reason=f"{result.reason}: no fill added; {order.rejection_reason}",
                                    order_id=order.pk, status_before=before, status_after=order.status)
        return result
    parent = parent_family = None
    if order.parent_id:
        locked_parent = _LOCKED_PARENT_FOR_FILL.send(order.parent_id)
        parent_family = _FAMILY_FILLS.send(order.parent_id, order.parent_id)  # after the parent's lock
        parent = locked_parent.one()
    qty = event.last_qty
    if order.filled_quantity + qty > order.quantity:
        return _over_fill(order, event, touched, order)
    if parent is not None and parent.filled_quantity + qty > parent.quantity:
        return _over_fill(order, event, touched, parent)
    family = _fill_figures(reads.own_fills.all()) + _fill_figures(reads.children_fills.all())
    terms = _position_terms(order, event, reads.terms.one())
    this_fill = [(qty, event.last_px, event.fee)]
    family_fills = family + this_fill
    parent_fills = parent_fees = None
    if parent_family is not None:
        parent_rows = parent_family.all()
        parent_fills = _fill_figures(parent_rows) + this_fill
        parent_fees = fee_totals([(f.fee, f.fee_currency) for f in parent_rows] + [(event.fee, event.fee_currency)])

    before, before_filled = order.status, order.filled_quantity
    fields = {"status", "filled_quantity", "avg_fill_price", "fees", "updated_at"}
    notes = [terms.note] if terms.note else []
    _imply_submitted(order, event=event, fields=fields, notes=notes)
    # No savepoint around the INSERT: every writer of this order's fills holds its row lock (taken
    # above), so the duplicate check made under it cannot be overtaken. A unique violation here is a
    # trade id and side the venue gave to another order of the listing: the event fails whole, logged by the
    # journal.
    # Writes from here on are sent, not read (odum_live.sql): in a pipeline they go with the COMMIT.
    fill = Fill(
        id=reads.fill_id.fetchall()[0][0] if reads.fill_id is not None else None, order=order, venue=event.venue,
        instrument_key=order.routed_instrument_key, venue_trade_id=event.trade_id, side=trade_side(order.side),
        price=event.last_px, quantity=qty,
        fee=event.fee, fee_currency=event.fee_currency, liquidity=event.liquidity, ts_event=event.ts_event,
    )
    read_fill_id = send_insert([fill])
    if read_fill_id is not None:  # no id taken beforehand (not PostgreSQL): read it now
        read_fill_id()

    order.filled_quantity, order.avg_fill_price, order.fees = fill_totals(family_fills)
    _advance_on_fill(order, notes)
    if order.status in TERMINAL_STATUSES and order.closed_at is None:
        order.closed_at = event.ts_event
        fields.add("closed_at")
    if event.venue_order_id and order.venue_order_id != event.venue_order_id:
        order.venue_order_id = event.venue_order_id
        fields.add("venue_order_id")
    send_update(order, sorted(fields))  # locked above
    order_exposure_changed(order=order, previous_status=before, previous_filled_quantity=before_filled,
                           checks=touched.checks)
    position = position_apply_fill(
        strategy_id=order.strategy_id, venue=order.venue, instrument_key=order.routed_instrument_key,
        side=order.side, quantity=qty, price=event.last_px, fee=terms.fee, multiplier=terms.multiplier,
        inverse=terms.inverse, other_fee=terms.other_fee, other_fee_currency=terms.other_fee_currency,
        ts=event.ts_event, locked=reads.position,
    )
    payload = _base_payload(event) | _trade_payload(event) | _fill_payload(order) | {
        "fill_id": fill.pk, "position_quantity": str(position.quantity),
        "position_realized_pnl": str(position.realized_pnl), "position_fee": str(terms.fee),
    }
    if terms.other_fee_currency:
        payload["position_other_fees"] = dict(position.other_fees)
    if notes:
        payload["detail"] = "; ".join(notes)
    _record(order, event, _fill_event_type(order), before, payload)
    touched.add(order)
    if parent is not None:
        _recompute_parent(parent, child=order, event=event, touched=touched, fills=parent_fills, fees=parent_fees)
        if order.status in TERMINAL_STATUSES:  # the child's last fill may close its family
            _close_short_family(parent, event=event, touched=touched)
    elif order.exec_algorithm != Order.ExecAlgorithm.NORMAL:  # an algorithm's primary, sent as the last slice
        _close_short_family(order, event=event, touched=touched)
    logger.info("order %s: fill %s %s@%s -> %s filled %s", order.client_order_id, event.trade_id, qty,
                event.last_px, order.status, order.filled_quantity)
    return AppliedEvent(applied=True, kind=event.kind, client_order_id=event.client_order_id,
                        reason="; ".join(notes), order_id=order.pk, status_before=before,
                        status_after=order.status, fill_id=fill.pk,
                        parent_order_id=parent.pk if parent is not None else None)


def _record_external_fill(event: VenueEvent, *, detail: str = "") -> AppliedEvent:
    finding, created = reconciliation_record_external_fill(
        venue=event.venue, instrument_key=event.instrument_key, side=event.side, quantity=event.last_qty,
        price=event.last_px, trade_id=event.trade_id, client_order_id=event.client_order_id,
        venue_order_id=event.venue_order_id, filled_at=event.ts_event, venue_quantity=event.venue_position,
        detail=detail or event.reason)
    return AppliedEvent(applied=created, kind=event.kind, client_order_id=event.client_order_id,
                        reason=f"recorded as reconciliation finding {finding.pk}" if created
                        else f"already recorded as reconciliation finding {finding.pk}")


def _apply_child_created(event: VenueEvent, touched: _Touched) -> AppliedEvent:
    parent = _LOCKED_BY_CLIENT_ORDER_ID.one(event.parent_client_order_id)
    if parent is None:
        return _unknown(event, event.parent_client_order_id)
    existing = orders_for_state_change().filter(client_order_id=event.client_order_id).first()
    reason = ""
    if existing is not None:
        reason = ("duplicate CHILD_CREATED: child already recorded" if existing.parent_id == parent.pk
                  else f"client_order_id {event.client_order_id} already belongs to order {existing.pk}")
    elif parent.venue != event.venue:
        reason = f"child created on venue {event.venue} for a parent routed to {parent.venue}"
    elif event.side != parent.side:
        reason = f"child side {event.side} differs from the parent's {parent.side}"
    elif len(event.client_order_id) > Order._meta.get_field("client_order_id").max_length:
        reason = f"child client_order_id {event.client_order_id!r} is longer than 36 characters"
    if reason:
        return _ignore(existing if existing is not None and existing.parent_id == parent.pk else parent, event,
                       touched, reason=reason)

    child = Order(
        strategy_id=parent.strategy_id, operation_id=f"child:{event.client_order_id}",
        client_order_id=event.client_order_id, operation=parent.operation, instrument_key=parent.instrument_key,
        venue=parent.venue, routed_instrument_key=parent.routed_instrument_key, venue_type=parent.venue_type,
        status=S.ROUTED, side=event.side, order_type=event.order_type, time_in_force=parent.time_in_force,
        quantity=event.quantity, price=event.price, parent=parent, created_by=_actor(event),
        metadata={"exec_spawn_id": parent.client_order_id},
    )
    child.save()
    payload = _base_payload(event) | {
        "parent_client_order_id": parent.client_order_id, "side": event.side, "quantity": str(event.quantity),
        "order_type": event.order_type, "price": _str(event.price),
    }
    OrderEvent.objects.create(order=child, type=OrderEvent.Type.RECEIVED, status_before="", status_after=child.status,
                              actor=_actor(event), ts=event.ts_event, payload=payload)
    touched.add(child)
    touched.add(parent)
    logger.info("order %s: child %s created (%s %s)", parent.client_order_id, child.client_order_id, event.side,
                event.quantity)
    return AppliedEvent(applied=True, kind=event.kind, client_order_id=event.client_order_id, order_id=child.pk,
                        status_after=child.status, parent_order_id=parent.pk)


# --- helpers ----------------------------------------------------------------------------------

def _refuse(order: Order, target: str) -> str:
    # The reason a status change is refused ("" when allowed); the state machine decides.
    before = order.status
    try:
        if PROGRESS_RANK[S(target)] < PROGRESS_RANK[S(before)]:
            raise IllegalTransition(before, target)
        check_transition(before, target, filled_quantity_positive=order.filled_quantity > 0)
    except IllegalTransition as exc:
        return f"late or duplicate event: {exc}"
    return ""


def _advance_on_fill(order: Order, notes: list[str]) -> None:
    # Status after a fill, by the leaves; a terminal order keeps its status (the fill is still a fact).
    if order.status in TERMINAL_STATUSES:
        notes.append(f"fill on a {order.status} order: status unchanged")
        return
    if order.filled_quantity == order.quantity:
        order.transition_to(S.FILLED)
    elif order.status != S.PENDING_CANCEL:
        order.transition_to(S.PARTIALLY_FILLED)


def _imply_submitted(order: Order, *, event: VenueEvent, fields: set[str], notes: list[str]) -> None:
    # A fill proves the venue has the order: a late or lost SUBMITTED report is implied.
    if order.status == S.ROUTED:
        order.transition_to(S.SUBMITTED)
        notes.append("implied SUBMITTED from ROUTED")
    if order.submitted_at is None:
        order.submitted_at = event.ts_event
        fields.add("submitted_at")


def _recompute_parent(parent: Order, *, child: Order, event: VenueEvent, touched: _Touched,
                      fills: list[tuple[Decimal, Decimal, Decimal]], fees: tuple[FeeTotal, ...]) -> None:
    # ``fills``: (quantity, price, fee) of every fill of the parent and its children, this one included;
    # ``fees``: their fees per currency, recorded beside the plain sum (Order.fees) for the execution log.
    before, before_filled = parent.status, parent.filled_quantity
    parent.filled_quantity, parent.avg_fill_price, parent.fees = fill_totals(fills)
    fields = {"status", "filled_quantity", "avg_fill_price", "fees", "updated_at"}
    notes: list[str] = []
    _imply_submitted(parent, event=event, fields=fields, notes=notes)
    _advance_on_fill(parent, notes)
    if parent.status in TERMINAL_STATUSES and parent.closed_at is None:
        parent.closed_at = event.ts_event
        fields.add("closed_at")
    send_update(parent, sorted(fields))  # locked by the caller
    order_exposure_changed(order=parent, previous_status=before, previous_filled_quantity=before_filled,
                           checks=touched.checks)
    payload = _base_payload(event) | _fill_payload(parent) | {
        "source": "children", "child_client_order_id": child.client_order_id,
        "fee_totals": [{"currency": t.currency, "amount": plain_decimal(t.amount)} for t in fees],
    }
    if notes:
        payload["detail"] = "; ".join(notes)
    _record(parent, event, _fill_event_type(parent), before, payload)
    touched.add(parent)


def _close_short_family(parent: Order, *, event: VenueEvent, touched: _Touched) -> bool:
    # An algorithm's parent (locked by the caller) whose family can fill no more while short of its
    # quantity becomes CANCELED with its fills (see order_apply_venue_event). True when it did.
    if parent.status in TERMINAL_STATUSES or parent.filled_quantity >= parent.quantity:
        return False
    children_sent, own_sent = _CHILDREN_OF_PARENT.send(parent.pk), _OWN_FILLS.send(parent.pk)
    children = children_sent.all()
    own_filled = sum((f.quantity for f in own_sent.all()), _ZERO)
    reason = _short_family_reason(parent, children, own_filled)
    if not reason:
        return False
    before = parent.status
    parent.transition_to(S.CANCELED)
    parent.closed_at = event.ts_event
    parent.rejection_reason = reason
    send_update(parent, ["status", "closed_at", "rejection_reason", "updated_at"])  # locked by the caller
    order_exposure_changed(order=parent, previous_status=before, previous_filled_quantity=parent.filled_quantity,
                           checks=touched.checks)
    payload = {"kind": str(event.kind), "ts_event": event.ts_event.isoformat(), "source": "family",
               "last_event_of": event.client_order_id, "detail": reason} | _fill_payload(parent)
    _record(parent, event, OrderEvent.Type.CANCELED, before, payload)
    touched.add(parent)
    logger.warning("order %s: %s -> CANCELED: %s", parent.client_order_id, before, reason)
    return True


def _short_family_reason(parent: Order, children: list[Order], own_filled: Decimal) -> str:
    # Why nothing of the family can fill any more ("" while something can): every child ended, and the
    # primary filled what it was sent with (the parent's quantity less the slices spawned from it).
    if not children or any(child.status not in TERMINAL_STATUSES for child in children):
        return ""
    primary_quantity = parent.quantity - sum((child.quantity for child in children), _ZERO)
    if own_filled < primary_quantity:
        return ""  # the primary is still held by the algorithm, or working at the venue
    short = "; ".join(f"{child.client_order_id} {child.status} with {plain_decimal(child.filled_quantity)} of "
                      f"{plain_decimal(child.quantity)} filled" for child in children if child.status != S.FILLED)
    return (f"execution algorithm's family ended short: {plain_decimal(parent.filled_quantity)} of "
            f"{plain_decimal(parent.quantity)} filled, the primary filled the {plain_decimal(primary_quantity)} "
            f"it was sent with as the last slice and no slice is left working ({short}); the rest is canceled")


def _algorithm_stop_reason(parent: Order) -> str:
    # Why an algorithm's parent was CANCELED with no cancel requested: the slices that ended short (their
    # end aborted the schedule: venues/algorithms/base.py), else the algorithm's own stop (VWAP's bounded
    # overtime), whose reason only the node's log has.
    children = _CHILDREN_OF_PARENT.send(parent.pk).all()
    primary_quantity = parent.quantity - sum((child.quantity for child in children), _ZERO)
    short = "; ".join(
        f"{child.client_order_id} {child.status} with {plain_decimal(child.filled_quantity)} of "
        f"{plain_decimal(child.quantity)} filled" + (f" ({child.rejection_reason})" if child.rejection_reason else "")
        for child in children if child.status in TERMINAL_STATUSES and child.status != S.FILLED)
    why = f"slices ended short: {short}" if short else \
        "no slice ended short (the algorithm's reason is in the trading node's log)"
    rest = (f"its last slice (the primary, {plain_decimal(primary_quantity)}) was canceled at the venue"
            if parent.accepted_at is not None else f"{plain_decimal(primary_quantity)} unsent")
    return (f"execution algorithm stopped, cancel not requested: {plain_decimal(parent.filled_quantity)} of "
            f"{plain_decimal(parent.quantity)} filled, {rest}; {why}; the rest is canceled")


def _fill_figures(fills: list[Fill]) -> list[tuple[Decimal, Decimal, Decimal]]:
    # (quantity, price, fee) of the fills read by a sent _FAMILY_FILLS (or _FILLS_OF_ORDER / _CHILDREN).
    return [(f.quantity, f.price, f.fee) for f in fills]


@dataclass(frozen=True, slots=True)
class _PositionTerms:
    # What a fill's position change needs of its listing: the contract multiplier, the inverse flag, the
    # fee in the PnL currency (positions.maths.fee_in_pnl_currency), and a fee no rate converts, kept in
    # its own currency (currency "" when none), with the note that says so.
    multiplier: Decimal
    inverse: bool
    fee: Decimal
    other_fee: Decimal = _ZERO
    other_fee_currency: str = ""
    note: str = ""


def _position_terms(order: Order, event: VenueEvent, found: Instrument | None) -> _PositionTerms:
    # ``found``: the order's listing as _LISTING_TERMS_OF_ORDER reads it.
    listing = None if found is None else {name: getattr(found, name) for name in _LISTING_TERM_FIELDS}
    if listing is None:
        raise VenueEventError(
            f"order {order.client_order_id}: no venues.Instrument listing {order.routed_instrument_key!r}; "
            f"its contract multiplier and inverse flag are unknown, so the fill {event.trade_id} cannot be applied"
        )
    inverse = listing["is_inverse"]
    key = parse_instrument_key(order.routed_instrument_key)
    if key.settlement is not None and inverse != (key.settlement == "INV"):
        raise VenueEventError(f"listing {order.routed_instrument_key!r}: is_inverse={inverse} contradicts the key")
    # The listing's currencies, completed from its key where left blank, as positions.selectors reads them.
    base, quote = listing["base_currency"] or key.base or "", listing["quote_currency"] or key.quote or ""
    settlement = listing["settlement_currency"]
    multiplier = listing["contract_multiplier"]
    converted = fee_in_pnl_currency(fee=event.fee, fee_currency=event.fee_currency, price=event.last_px,
                                    inverse=inverse, base=base, quote=quote, settlement=settlement)
    if converted is not None:
        return _PositionTerms(multiplier, inverse, converted)
    currency = pnl_currency(inverse=inverse, base=base, quote=quote, settlement=settlement)
    note = (f"fee {plain_decimal(event.fee)} {event.fee_currency} not convertible to the PnL currency "
            f"{currency or '(unknown)'} (no rate): kept apart in the position's other_fees, not in realized PnL")
    logger.info("order %s fill %s: %s", order.client_order_id, event.trade_id, note)
    return _PositionTerms(multiplier, inverse, _ZERO, event.fee, event.fee_currency, note)


def _duplicate_fill(order: Order, event: VenueEvent, owner_id) -> AppliedEvent:
    listing, side = order.routed_instrument_key, trade_side(order.side)
    if owner_id != order.pk:
        logger.error("fill %s:%s %s on %s replayed for order %s but stored for order %s", event.venue,
                     event.trade_id, side, listing, order.client_order_id, owner_id)
    else:
        logger.info("fill %s:%s %s on %s already stored: replay ignored", event.venue, event.trade_id, side, listing)
    return AppliedEvent(applied=False, kind=event.kind, client_order_id=event.client_order_id,
                        reason=f"duplicate fill {event.venue}:{event.trade_id} {side} on {listing}", order_id=order.pk,
                        status_before=order.status, status_after=order.status)


def _refigured_fill(order: Order, event: VenueEvent, stored: Fill, touched: _Touched) -> AppliedEvent:
    # The order's stored trade again with another quantity or price (a venue's trade correction, or a bad
    # replay): never applied over the stored fill, and never silently: an error on the log and the timeline.
    reason = (f"fill {event.venue}:{event.trade_id} on {order.routed_instrument_key} stored as "
              f"{plain_decimal(stored.quantity)} @ {plain_decimal(stored.price)}; the venue now reports "
              f"{plain_decimal(event.last_qty)} @ {plain_decimal(event.last_px)}: not applied, the stored fill "
              f"stands (check the trade at the venue)")
    logger.error("order %s: %s", order.client_order_id, reason)
    return _ignore(order, event, touched, reason=reason, error=True)


def _over_fill(order: Order, event: VenueEvent, touched: _Touched, limit: Order) -> AppliedEvent:
    reason = (f"over-fill: {event.last_qty} more on {limit.filled_quantity} filled would exceed the quantity "
              f"{limit.quantity} of order {limit.client_order_id}")
    logger.error("order %s fill %s:%s not applied: %s", order.client_order_id, event.venue, event.trade_id, reason)
    return _ignore(order, event, touched, reason=reason, error=True)


def _ignore(order: Order, event: VenueEvent, touched: _Touched, *, reason: str, error: bool = False) -> AppliedEvent:
    payload = _base_payload(event) | {"ignored_kind": str(event.kind), "reason": reason}
    if event.reason:
        payload["venue_reason"] = event.reason  # the venue's own words, beside why we ignored it
    if event.kind == K.FILLED:
        payload |= _trade_payload(event)
    if error:
        payload["error"] = True
    _record(order, event, OrderEvent.Type.IGNORED, order.status, payload)
    touched.add(order)
    if not error:
        logger.info("order %s: %s ignored: %s", order.client_order_id, event.kind, reason)
    return AppliedEvent(applied=False, kind=event.kind, client_order_id=event.client_order_id, reason=reason,
                        order_id=order.pk, status_before=order.status, status_after=order.status)


def _unknown(event: VenueEvent, client_order_id: str) -> AppliedEvent:
    reason = f"unknown client_order_id {client_order_id!r}"
    # A fill of an order the OMS does not hold is a trade its books lack: an error, not a warning.
    log = logger.error if event.kind == K.FILLED else logger.warning
    log("venue event %s from %s ignored: %s%s", event.kind, event.venue, reason,
        f" (trade {event.trade_id}: {event.last_qty} @ {event.last_px})" if event.kind == K.FILLED else "")
    return AppliedEvent(applied=False, kind=event.kind, client_order_id=event.client_order_id, reason=reason)


def _record(order: Order, event: VenueEvent, event_type: str, before: str, payload: dict) -> None:
    # One INSERT, its id never read: it may travel in a pipeline.
    send_insert([OrderEvent(order=order, type=event_type, status_before=before, status_after=order.status,
                            actor=_actor(event), ts=event.ts_event, payload=payload)], read_ids=False)


def _fill_event_type(order: Order) -> str:
    return OrderEvent.Type.FILLED if order.filled_quantity == order.quantity else OrderEvent.Type.PARTIALLY_FILLED


def _base_payload(event: VenueEvent) -> dict:
    payload = {"kind": str(event.kind), "ts_event": event.ts_event.isoformat()}
    if event.venue_order_id:
        payload["venue_order_id"] = event.venue_order_id
    if event.reason:
        payload["reason"] = event.reason
    return payload


def _trade_payload(event: VenueEvent) -> dict:
    return {"trade_id": event.trade_id, "last_qty": str(event.last_qty), "last_px": str(event.last_px),
            "fee": str(event.fee), "fee_currency": event.fee_currency, "liquidity": str(event.liquidity)}


def _fill_payload(order: Order) -> dict:
    leaves = _ZERO if order.status in TERMINAL_STATUSES else order.quantity - order.filled_quantity
    return {"filled_quantity": str(order.filled_quantity), "avg_fill_price": _str(order.avg_fill_price),
            "fees": str(order.fees), "leaves_quantity": str(leaves)}


def _actor(event: VenueEvent) -> str:
    return f"venue:{event.venue}"


def _str(value: Decimal | None) -> str | None:
    return None if value is None else str(value)
