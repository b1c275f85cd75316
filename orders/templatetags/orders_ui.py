"""Template filters and tags of the order pages: the CLI formats (:mod:`orders.formatting`) and the
order timeline's steps."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django import template

from orders import formatting
from orders.models import OrderEvent
from orders.selectors import order_reason
from orders.selectors_logs import event_detail
from orders.state import TERMINAL_STATUSES, cancel_accepted

register = template.Library()

register.filter("dec", formatting.fmt_decimal)
register.filter("utc", formatting.fmt_time)
register.filter("figure", formatting.fmt_figure)
register.filter("observed", formatting.fmt_observed)
register.filter("candidate_price", formatting.fmt_candidate_price)
register.filter("event_detail", event_detail)
register.filter("status_line", formatting.order_status_line)
register.filter("fees", formatting.fmt_fees)


@register.filter
def percent_of(part, whole) -> str:
    """``filled|percent_of:quantity``: 0–100 with one decimal, for progress bars."""
    try:
        part, whole = Decimal(part or 0), Decimal(whole or 0)
    except (ArithmeticError, TypeError, ValueError):
        return "0"
    if whole <= 0:
        return "0"
    return f"{min(Decimal(100), part * 100 / whole):.1f}"


@dataclass(frozen=True)
class Step:
    """One step of the order timeline: name, when it happened (None: not yet), and how it went."""

    name: str
    ts: datetime | None
    state: str  # "done", "failed", "ended" (canceled / expired), "skipped" (passed over) or "" (not reached)


# Timeline steps (issue 4 §2: received → risk → routed → submitted → accepted → fills → done) and
# the event types that reach each; the first such event's time is the step's time.
_STEPS = (
    ("received", {OrderEvent.Type.RECEIVED}),
    ("risk", {OrderEvent.Type.RISK_PASSED, OrderEvent.Type.DENIED}),
    ("routed", {OrderEvent.Type.ROUTED}),
    ("submitted", {OrderEvent.Type.SUBMITTED}),
    ("accepted", {OrderEvent.Type.ACCEPTED}),
    ("fills", {OrderEvent.Type.PARTIALLY_FILLED, OrderEvent.Type.FILLED}),
)
_FAILED = {OrderEvent.Type.DENIED, OrderEvent.Type.REJECTED}


@register.simple_tag
def order_steps(order) -> list[Step]:
    """Return the order's timeline steps from its ``OrderEvent`` rows (prefetched, oldest first)."""
    events = list(order.events.all())
    steps = []
    for name, types in _STEPS:
        event = next((e for e in events if e.type in types), None)
        if name == "accepted" and event is None and filled_on_submit(order) is not None:
            steps.append(Step("accepted: none, filled on submit", None, "skipped"))
            continue
        if name == "fills" and event is None:
            first_fill = next(iter(order.fills.all()), None)
            ts = first_fill.ts_event if first_fill is not None else None
            steps.append(Step(name, ts, "done" if ts else ""))
            continue
        state = "" if event is None else ("failed" if event.type in _FAILED else "done")
        steps.append(Step(name, event.ts if event else None, state))
    if order.status in TERMINAL_STATUSES:
        state = {"FILLED": "done", "DENIED": "failed", "REJECTED": "failed"}.get(order.status, "ended")
        steps.append(Step(f"done: {order.status}", order.closed_at or order.updated_at, state))
    else:
        steps.append(Step("done", None, ""))
    return steps


@register.filter
def filled_on_submit(order):
    """``order|filled_on_submit``: the order's first fill when it filled with no acceptance reported
    (``accepted_at`` empty: a paper venue's MARKET order goes SUBMITTED → FILLED and never rests,
    NAUTILUS_NOTES.md), else None. Reads ``order.fills`` (prefetched oldest first by ``order_get``)."""
    if order.accepted_at is not None:
        return None
    return next(iter(order.fills.all()), None)


@register.filter
def reason(order) -> str:
    """``order|reason``: why it was DENIED, REJECTED or CANCELED (:func:`orders.selectors.order_reason`)."""
    return order_reason(order=order)


@register.filter
def get_item(mapping, key):
    """``mapping|get_item:key``: a dict value by a computed key ("" when absent)."""
    return (mapping or {}).get(key, "")


@register.filter
def cancelable(order) -> bool:
    """``order|cancelable``: whether a cancel is accepted for it (``orders.state.cancel_accepted``; the
    service re-checks under the row lock)."""
    return cancel_accepted(order.status, algorithm_slice=order.parent_id is not None)
