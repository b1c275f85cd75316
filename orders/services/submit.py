"""Order submission: idempotency, routing, pre-trade risk and the order row, in one transaction.

DESIGN.md, "Order flow" steps 1–2. The hot path of the service: a new order costs the router's and
the risk engine's reads, one INSERT of the order (whose unique index is the idempotency check) and
one bulk INSERT of its events; dispatch to the trading worker follows after commit
(:mod:`orders.services.dispatch`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from django.db import IntegrityError
from django.utils import timezone

from odum_live.sql import in_pipeline, pipeline, pipelined_transaction, send_insert
from orders.models import Order, OrderEvent, Strategy
from orders.services.publish import publish_orders_updated
from orders.services.request import OrderRequest, OrderRequestInvalid
from orders.state import OrderStatus
from risk.engine import PreTradeRiskEngine
from routing.router import RoutingDecision, SmartOrderRouter
from venues.models import Instrument, Venue

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SubmitResult:
    """What :func:`order_submit` did: ``created`` is False when a stored order was returned."""

    order: Order
    created: bool


class IdempotencyConflict(Exception):
    """The operation_id was already used by this strategy for a different request body.

    Attributes
    ----------
    operation_id : str
    order_id : uuid.UUID
        The order stored under that operation_id.
    differences : dict[str, list[str]]
        The fields that differ, each with its reason (:meth:`OrderRequest.differences`); may be
        empty when the fingerprints differ but no field can be told apart.
    """

    def __init__(self, *, operation_id: str, order_id, differences: dict[str, list[str]] | None = None):
        self.operation_id = operation_id
        self.order_id = order_id
        self.differences = differences or {}
        what = f" (differing: {', '.join(self.differences)})" if self.differences else ""
        super().__init__(
            f"operation_id {operation_id!r} was already used for order {order_id} with a different "
            f"request body{what}; use a new operation_id for a new order"
        )


class StrategyDisabled(Exception):
    """The strategy is disabled (``Strategy.enabled`` off): it may not submit new orders."""

    def __init__(self, *, strategy_id: str):
        self.strategy_id = strategy_id
        super().__init__(f"strategy {strategy_id!r} is disabled: new orders are refused")


_components_lock = threading.Lock()
_router: SmartOrderRouter | None = None
_engine: PreTradeRiskEngine | None = None


def order_router() -> SmartOrderRouter:
    """Return the process's router (built once; it is stateless between calls)."""
    global _router
    if _router is None:
        with _components_lock:
            if _router is None:
                _router = SmartOrderRouter()
    return _router


def risk_engine() -> PreTradeRiskEngine:
    """Return the process's pre-trade risk engine (built once)."""
    global _engine
    if _engine is None:
        with _components_lock:
            if _engine is None:
                _engine = PreTradeRiskEngine()
    return _engine


def _stored_order(strategy: Strategy, operation_id: str) -> Order | None:
    return Order.objects.filter(strategy=strategy, operation_id=operation_id).order_by().first()


def _same_body(order: Order, *, data: OrderRequest, fingerprint: str) -> bool:
    # The legacy fingerprint is computed only on a mismatch: an order stored before integral JSON
    # floats were canonicalised (OrderRequest.legacy_fingerprint) still replays.
    return order.request_fingerprint == fingerprint or order.request_fingerprint == data.legacy_fingerprint()


def _replay(order: Order, *, strategy: Strategy, data: OrderRequest, fingerprint: str) -> SubmitResult:
    if not _same_body(order, data=data, fingerprint=fingerprint):
        raise IdempotencyConflict(operation_id=order.operation_id, order_id=order.id,
                                  differences=data.differences(order))
    order.strategy = strategy  # same row: spare the caller a query when it reads order.strategy
    return SubmitResult(order=order, created=False)


def order_submit(*, strategy: Strategy, actor: str, data: OrderRequest) -> SubmitResult:
    """Accept an order: look up its operation_id, route it, check pre-trade risk, record it.

    In one transaction: ``route()``; ``evaluate()`` (which holds the risk engine's serialization lock until commit and records
    velocity usage); the INSERT of the order — ROUTED, or DENIED with ``rejection_reason`` naming
    the check, limit and observed value — and of its events (RECEIVED, then RISK_PASSED + ROUTED,
    or DENIED). The unique index on (strategy, operation_id) is the idempotency check: a replayed
    operation_id fails the INSERT, the transaction rolls back and the stored order is returned (or
    :class:`IdempotencyConflict` raised when its body differs). After commit a ROUTED order is dispatched to the trading worker; a DENIED order is
    recorded and goes nowhere. Never a venue submission without a committed order row. Either way the
    new order is published to the order stream after commit (:mod:`orders.services.publish`).

    Parameters
    ----------
    strategy : Strategy
        The owning strategy (already authorised by the caller).
    actor : str
        Who submits (username or strategy service), recorded on the order and its events.
    data : OrderRequest
        The validated request (:func:`orders.services.request.order_request_build`; a GTD request
        whose ``expire_time`` has passed since is taken too — from
        :class:`~orders.services.request.OrderRequestExpired` — and answered only if it replays a
        stored order).

    Returns
    -------
    SubmitResult
        ``created=True`` for a new order (ROUTED or DENIED); ``created=False`` when the same
        operation_id came again with the same body — the stored order, nothing re-sent.

    Raises
    ------
    IdempotencyConflict
        The operation_id is stored with a different body (fingerprint).
    OrderRequestInvalid
        ``{"expire_time": [...]}``: the GTD ``expire_time`` is not in the future and the request
        is not a replay of a stored order with the same body.
    StrategyDisabled
        The strategy is disabled and the operation_id is new.

    Notes
    -----
    Concurrent duplicates: the unique constraint (strategy, operation_id) decides. A loser's INSERT
    fails with IntegrityError, its whole transaction (or savepoint, when the caller holds one) rolls
    back — including the velocity usage its risk check recorded — and the stored order is read
    and returned as for any replay.
    """
    fingerprint = data.fingerprint()
    expired = data.expiry_errors()
    if expired:
        # The client's retry of a GTD order accepted before its expire_time passed gets the stored
        # order; anything else is a new order that could not live. Looked up only here: a new
        # order's hot path has no query more.
        stored = _stored_order(strategy, data.operation_id)
        if stored is not None and _same_body(stored, data=data, fingerprint=fingerprint):
            return _replay(stored, strategy=strategy, data=data, fingerprint=fingerprint)
        raise OrderRequestInvalid(expired)
    if not strategy.enabled:
        # A disabled strategy may still read back what it submitted before.
        stored = _stored_order(strategy, data.operation_id)
        if stored is not None:
            return _replay(stored, strategy=strategy, data=data, fingerprint=fingerprint)
        raise StrategyDisabled(strategy_id=strategy.id)
    try:
        # No look-up first: the unique index on (strategy, operation_id) is the idempotency check.
        # A replayed operation_id fails the INSERT, the whole transaction (risk usage included)
        # rolls back, and the stored order is read below — one index probe fewer per new order.
        with pipelined_transaction() as after_commit:
            order = _create(strategy=strategy, actor=actor, data=data, fingerprint=fingerprint,
                            after_commit=after_commit)
    except IntegrityError:
        stored = _stored_order(strategy, data.operation_id)
        if stored is None:
            raise
        logger.debug("operation_id %s (strategy %s) is stored as order %s: replay",
                     data.operation_id, strategy.id, stored.id)
        return _replay(stored, strategy=strategy, data=data, fingerprint=fingerprint)
    return SubmitResult(order=order, created=True)


def denial_reason(*, risk, decision) -> str:
    """Return the ``rejection_reason`` of an order that cannot be routed: the risk engine's reason
    (check, limit, observed value), with the router's reason added when routing found no venue."""
    parts = [] if risk.passed else [risk.reason]
    if not _names_venue(decision) and decision.reason:
        routing = f"routing: {decision.reason}"
        if not any(decision.reason in p for p in parts if p):
            parts.append(routing)
    return "; ".join(p for p in parts if p) or "routing: no eligible venue"


def routed_listing(decision: RoutingDecision) -> tuple[Instrument | None, Venue | None]:
    """Return the listing and venue ``decision`` routes the order to; (None, None) when it names no venue.

    Pre-trade risk is given exactly what the order will be routed to, so it never passes (nor, in a
    submit, records velocity usage and open exposure for) an order recorded DENIED for want of a
    venue: a decision that names no venue code is no route, and ``instrument_listed`` denies it (the
    database refuses a venue whose code is ``""`` since ``venues`` 0003; the predicate stays the router's word).
    """
    if _names_venue(decision):
        return decision.listing, decision.venue_obj
    return None, None


def _names_venue(decision: RoutingDecision) -> bool:
    # Whether routing chose a venue the order can be sent to: a venue code, not only a listing.
    return bool(decision.routed and decision.venue)


def _create(*, strategy: Strategy, actor: str, data: OrderRequest, fingerprint: str,
            after_commit: Callable[[Callable[[], None]], None]) -> Order:
    # PostgreSQL: psycopg pipeline mode (odum_live.sql.pipeline). A statement whose result is not
    # read at once (the risk engine's lock, the order INSERT) travels with the next one that is
    # read: the submit transaction costs six round trips (BEGIN, which psycopg syncs on its own;
    # limits + listings; lock + repeated-order count + exposure; velocity; open exposure + order +
    # events; COMMIT) instead of eleven, besides psycopg's own syncs of the autocommit switches and
    # the pipeline's end (odum_live.sql.pipeline). Each statement still runs after the one before it, with
    # its own snapshot (READ COMMITTED): a read sent with a lock sees what the lock waited for.
    # Errors come up at the next read, or when the pipeline ends (a duplicate operation_id: the
    # IntegrityError in order_submit), as Django's exceptions.
    with pipeline():
        order, events = _create_rows(strategy=strategy, actor=actor, data=data, fingerprint=fingerprint)
        order.set_client_order_id()
        send_insert([order], read_ids=False)  # its id is ours: nothing to read back
        # The event ids are read after the pipeline ends: the open exposure, order and events then
        # go in the round trip of its final sync — with the COMMIT when the pipeline encloses the
        # transaction (pipelined_transaction), whose ids are then read after commit.
        read_event_ids = send_insert(events)
    if not in_pipeline():
        read_event_ids()
        read_event_ids = None
    if order.status == OrderStatus.ROUTED:
        from orders.services.dispatch import order_dispatch_submit

        # Registered first, so it runs first after commit: the order goes to the trading worker
        # before the (slower) publication to WebSocket subscribers, not after it.
        order_id = order.id
        after_commit(lambda: order_dispatch_submit(order_id=order_id, attempt="initial"))

    def publish() -> None:
        # Subscribers see the new order (ROUTED or DENIED) after commit, before the hand-off's own
        # changes. Its events are its only rows, so their ids spare the publisher a look-up.
        if read_event_ids is not None:
            read_event_ids()
        event_ids = [event.pk for event in events]
        new_rows = {order.id: (event_ids, [])} if None not in event_ids else None
        publish_orders_updated({order.id: strategy.id}, new_rows=new_rows)

    after_commit(publish)
    return order


def _create_rows(
    *, strategy: Strategy, actor: str, data: OrderRequest, fingerprint: str
) -> tuple[Order, list[OrderEvent]]:
    # Route, check risk (its rows are written here), and build the order and its events unsaved.
    received_at = timezone.now()
    intent = data.to_intent(strategy_id=strategy.id)
    engine = risk_engine()
    controls = engine.start(intent=intent)  # read with the router's query: one round trip for both
    decision = order_router().route(intent=intent)
    listing, venue = routed_listing(decision)
    risk = engine.evaluate(intent=intent, listing=listing, venue=venue, controls=controls,
                           snapshots=decision.snapshots)
    decided_at = timezone.now()

    order = Order(
        strategy=strategy,
        created_by=actor,
        request_fingerprint=fingerprint,
        risk_result=risk.to_json(),
        routing_decision=decision.to_json(),
        **data.model_fields(),
    )
    if decision.venue:
        order.venue = decision.venue
        order.routed_instrument_key = decision.instrument_key or ""
        order.venue_type = decision.venue_type or ""
    events = [
        OrderEvent(order=order, type=OrderEvent.Type.RECEIVED, status_before="", status_after=OrderStatus.PENDING,
                   actor=actor, ts=received_at, payload={"operation_id": data.operation_id})
    ]
    routable = listing is not None
    if risk.passed and routable:
        order.transition_to(OrderStatus.ROUTED)
        # The hand-off to the venues queue follows the commit at once; a failed publish is recorded
        # as DISPATCH_FAILED and the sweeper sends again (orders.services.dispatch).
        order.dispatched_at = decided_at
        events.append(OrderEvent(order=order, type=OrderEvent.Type.RISK_PASSED, status_before=OrderStatus.PENDING,
                                 status_after=OrderStatus.PENDING, actor="risk", ts=decided_at,
                                 payload={"checks": len(risk.checks)}))
        events.append(OrderEvent(order=order, type=OrderEvent.Type.ROUTED, status_before=OrderStatus.PENDING,
                                 status_after=OrderStatus.ROUTED, actor="router", ts=decided_at,
                                 payload={"venue": order.venue, "instrument_key": order.routed_instrument_key,
                                          "reason": decision.reason,
                                          "dispatch": "venues.tasks.submit_order on queue venues, after commit"}))
    else:
        if risk.passed:
            # The engine, given no listing when nothing is routable (routed_listing), fails
            # instrument_listed; never send an order without a venue even if it does not.
            logger.warning("risk passed but routing found no venue for %s: %s", data.instrument_key, decision.reason)
        reason = denial_reason(risk=risk, decision=decision)
        order.transition_to(OrderStatus.DENIED)
        order.rejection_reason = reason
        order.closed_at = decided_at
        events.append(OrderEvent(order=order, type=OrderEvent.Type.DENIED, status_before=OrderStatus.PENDING,
                                 status_after=OrderStatus.DENIED, actor="risk", ts=decided_at,
                                 payload={"reason": reason}))
    return order, events
