"""Reads of the execution log: every order event, risk denial and routing decision, newest first.

The log is the ``OrderEvent`` table (one row per timeline entry: received, risk passed / DENIED
with the reason, ROUTED with the router's venue and reason, dispatch, venue events, fills,
cancels, reconciliation), joined to its order for strategy, instrument, venue, side and quantity.
Scoped like orders (:mod:`orders.selectors`): a caller sees the events of the orders they may see.

Pagination is by keyset on ``(ts, id)`` descending — a cursor, not page numbers, so new events
arriving at the top never shift a page the reader is on (and no ``COUNT(*)`` over the table).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone as dt_timezone
from decimal import Decimal

from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from odum_live.fields import NulCharacterError, refuse_nul
from odum_live.instruments import InstrumentKeyError, parse_instrument_key
from orders.fills import FeeTotal
from orders.formatting import fmt_fees, fmt_figure
from orders.models import OrderEvent

T = OrderEvent.Type
#: Kinds of log entry → the event types they cover (the page's "kind" filter).
LOG_KINDS: dict[str, tuple[str, ...]] = {
    "order": (T.RECEIVED,),
    "risk": (T.RISK_PASSED, T.DENIED),
    "routing": (T.ROUTED,),
    "dispatch": (T.DISPATCHED, T.DISPATCH_FAILED, T.VENUE_RECEIVED),
    "venue": (T.SUBMITTED, T.ACCEPTED, T.REJECTED, T.EXPIRED),
    "fill": (T.PARTIALLY_FILLED, T.FILLED),
    "cancel": (T.CANCEL_REQUESTED, T.CANCEL_REJECTED, T.CANCELED),
    "other": (T.IGNORED, T.RECONCILED),
}
_KIND_OF = {event_type: kind for kind, types in LOG_KINDS.items() for event_type in types}
#: Most entries on one page.
MAX_PAGE_SIZE = 200


class LogFilterError(ValueError):
    """A log filter is malformed; ``fields`` maps each bad field to the reason."""

    def __init__(self, fields: dict[str, str]):
        self.fields = fields
        super().__init__("; ".join(f"{name}: {reason}" for name, reason in fields.items()))


@dataclass(frozen=True)
class LogFilters:
    """What the log shows.

    Attributes
    ----------
    kinds : tuple[str, ...]
        Keys of :data:`LOG_KINDS` (empty: every kind).
    venue : str
        Venue code the order was routed to ("" = any).
    instrument : str
        Canonical key, matched against the requested key and the routed listing ("" = any).
    strategy : str
        Strategy id ("" = any in scope).
    since, until : datetime | None
        Event time window, UTC, inclusive.
    """

    kinds: tuple[str, ...] = ()
    venue: str = ""
    instrument: str = ""
    strategy: str = ""
    since: datetime | None = None
    until: datetime | None = None

    def to_query(self) -> dict[str, list[str] | str]:
        """Return the filters as query parameters (for links and the pager)."""
        out: dict[str, list[str] | str] = {}
        if self.kinds:
            out["kind"] = list(self.kinds)
        for name in ("venue", "instrument", "strategy"):
            if getattr(self, name):
                out[name] = getattr(self, name)
        for name in ("since", "until"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name).isoformat()
        return out


def log_filters_parse(params: Mapping) -> LogFilters:
    """Parse the log filters from query parameters (a ``QueryDict`` or a plain mapping).

    Parameters
    ----------
    params : Mapping
        ``kind`` (repeatable, or comma-separated), ``venue``, ``instrument``, ``strategy``,
        ``since`` / ``until`` (ISO-8601; a time without offset is taken as UTC).

    Returns
    -------
    LogFilters

    Raises
    ------
    LogFilterError
        Naming each malformed field: an unknown kind, a malformed instrument key, an unparsable
        time, ``since`` after ``until``, or a venue / strategy holding a null character.
    """
    errors: dict[str, str] = {}
    raw_kinds = params.getlist("kind") if hasattr(params, "getlist") else params.get("kind") or []
    if isinstance(raw_kinds, str):
        raw_kinds = [raw_kinds]
    kinds = tuple(dict.fromkeys(k.strip() for raw in raw_kinds for k in raw.split(",") if k.strip()))
    unknown = [k for k in kinds if k not in LOG_KINDS]
    if unknown:
        errors["kind"] = f"unknown kind {', '.join(unknown)}; one of {', '.join(LOG_KINDS)}"
    instrument = (params.get("instrument") or "").strip()
    if instrument:
        try:
            instrument = str(parse_instrument_key(instrument))
        except InstrumentKeyError as exc:
            errors["instrument"] = str(exc)
    times = {}
    for name in ("since", "until"):
        text = (params.get(name) or "").strip()
        value = None
        if text:
            try:
                value = parse_datetime(text)
            except ValueError:
                value = None
            if value is None:
                errors[name] = f"not an ISO-8601 date-time: {text!r}"
            elif timezone.is_naive(value):
                value = timezone.make_aware(value, dt_timezone.utc)
        times[name] = value
    if times["since"] and times["until"] and times["since"] > times["until"]:
        errors["until"] = "must not be before since"
    texts = {name: (params.get(name) or "").strip() for name in ("venue", "strategy")}
    for name, text in texts.items():
        try:
            refuse_nul(text, field=name)
        except NulCharacterError as exc:
            errors[name] = exc.reason
    if errors:
        raise LogFilterError(errors)
    return LogFilters(kinds=kinds, venue=texts["venue"], instrument=instrument, strategy=texts["strategy"],
                      since=times["since"], until=times["until"])


@dataclass(frozen=True)
class LogEntry:
    """One line of the log: the event, its order and a one-line ``detail`` of its figures."""

    event: OrderEvent
    kind: str
    detail: str

    @property
    def order(self):
        return self.event.order


@dataclass(frozen=True)
class LogPage:
    """One page of the log, newest first; ``next_cursor`` continues with older entries ("" at the end)."""

    entries: list[LogEntry] = field(default_factory=list)
    next_cursor: str = ""


def _queryset(*, visible_strategy_ids: Iterable[str] | None, filters: LogFilters) -> QuerySet[OrderEvent]:
    qs = OrderEvent.objects.select_related("order")
    if visible_strategy_ids is not None:
        qs = qs.filter(order__strategy_id__in=list(visible_strategy_ids))
    if filters.kinds:
        qs = qs.filter(type__in=[t for kind in filters.kinds for t in LOG_KINDS[kind]])
    if filters.venue:
        qs = qs.filter(order__venue=filters.venue)
    if filters.instrument:
        qs = qs.filter(Q(order__instrument_key=filters.instrument) | Q(order__routed_instrument_key=filters.instrument))
    if filters.strategy:
        qs = qs.filter(order__strategy_id=filters.strategy)
    if filters.since:
        qs = qs.filter(ts__gte=filters.since)
    if filters.until:
        qs = qs.filter(ts__lte=filters.until)
    return qs.order_by("-ts", "-id")


def _cursor(event: OrderEvent) -> str:
    return base64.urlsafe_b64encode(f"{event.ts.isoformat()}|{event.pk}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        ts_text, pk = text.rsplit("|", 1)
        ts = datetime.fromisoformat(ts_text)
        return ts, int(pk)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise LogFilterError({"cursor": "malformed; follow the page's 'older' link"}) from None


def execution_log(*, visible_strategy_ids: Iterable[str] | None, filters: LogFilters, cursor: str = "",
                  page_size: int = 50) -> LogPage:
    """Return one page of the execution log, newest first.

    Parameters
    ----------
    visible_strategy_ids : Iterable[str] | None
        The caller's scope (:class:`orders.selectors.OrderAccess`); None = every strategy.
    filters : LogFilters
    cursor : str
        ``LogPage.next_cursor`` of the previous page ("" = the newest entries).
    page_size : int
        Entries per page, 1 … :data:`MAX_PAGE_SIZE`.

    Returns
    -------
    LogPage

    Raises
    ------
    LogFilterError
        A malformed cursor (field ``cursor``) or a page size out of range (``page_size``).
    """
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise LogFilterError({"page_size": f"must be 1 to {MAX_PAGE_SIZE}, not {page_size}"})
    qs = _queryset(visible_strategy_ids=visible_strategy_ids, filters=filters)
    if cursor:
        ts, pk = _decode_cursor(cursor)
        qs = qs.filter(Q(ts__lt=ts) | Q(ts=ts, id__lt=pk))
    events = list(qs[: page_size + 1])
    more = len(events) > page_size
    events = events[:page_size]
    return LogPage(entries=[log_entry(e) for e in events], next_cursor=_cursor(events[-1]) if more else "")


def execution_log_events(*, event_ids: Iterable[int], visible_strategy_ids: Iterable[str] | None,
                         filters: LogFilters) -> list[LogEntry]:
    """Return the entries of ``event_ids`` that the scope and filters show, newest first (live updates)."""
    ids = list(event_ids)
    if not ids:
        return []
    qs = _queryset(visible_strategy_ids=visible_strategy_ids, filters=filters).filter(pk__in=ids)
    return [log_entry(e) for e in qs]


def log_entry(event: OrderEvent) -> LogEntry:
    """Return the :class:`LogEntry` of ``event`` (its order loaded) with a one-line detail."""
    return LogEntry(event=event, kind=_KIND_OF.get(event.type, "other"), detail=event_detail(event))


def event_detail(event: OrderEvent) -> str:
    """Return one line on what ``event`` says (the log's detail column, the order page's events): the
    order message, a denial's or cancel's reason, the router's choice and costs, a fill's figures …;
    ``""`` when the event carries nothing more than its type. Reads ``event.order`` (load it with the event)."""
    p = event.payload or {}
    order = event.order
    if event.type == T.RECEIVED:
        price = f" @ {order.price.normalize():f}" if order.price is not None else ""
        return (f"{order.side} {order.quantity.normalize():f} {order.instrument_key} {order.order_type}{price} "
                f"{order.time_in_force} {order.exec_algorithm}")
    if event.type == T.DENIED:
        return f"denied: {p.get('reason') or order.rejection_reason}"
    if event.type == T.RISK_PASSED:
        return f"{p.get('checks', '?')} checks passed"
    if event.type == T.ROUTED:
        candidates = (order.routing_decision or {}).get("candidates") or []
        chosen = f"{p.get('venue', order.venue)} {p.get('instrument_key', order.routed_instrument_key)}"
        costs = ", ".join(f"{c.get('venue')} {fmt_figure(c.get('total_bps'))} bps" if c.get("eligible")
                          else f"{c.get('venue')} ineligible" for c in candidates)
        more = f" (candidates: {costs})" if candidates else ""
        return f"routed to {chosen}{more}: {p.get('reason', '')}".rstrip(": ")
    if event.type in (T.PARTIALLY_FILLED, T.FILLED) and "last_qty" in p:
        text = (f"fill {fmt_figure(p['last_qty'])} @ {fmt_figure(p['last_px'])} fee {fmt_figure(p.get('fee', '0'))}"
                f" {p.get('fee_currency', '')} ({p.get('liquidity', '')}); filled "
                f"{fmt_figure(p.get('filled_quantity'))}, leaves {fmt_figure(p.get('leaves_quantity'))}")
        return text.replace("  ", " ")
    if event.type in (T.PARTIALLY_FILLED, T.FILLED) and p.get("source") == "children":
        # An algorithm's parent moved by one of its slices' fills (orders.services.venue_events): its totals.
        # Fees per currency where the journal recorded them (fee_totals); an older entry has their plain sum only.
        totals = p.get("fee_totals")
        fees = fmt_fees(FeeTotal(currency=t.get("currency", ""), amount=Decimal(t["amount"])) for t in totals) \
            if totals else fmt_figure(p.get("fees"))
        return (f"slice {p.get('child_client_order_id') or '?'} filled; filled {fmt_figure(p.get('filled_quantity'))}, "
                f"leaves {fmt_figure(p.get('leaves_quantity'))}, avg price {fmt_figure(p.get('avg_fill_price'))}, "
                f"fees {fees}")
    parts = [str(p[name]) for name in ("reason", "detail", "command", "attempt") if p.get(name) not in (None, "")]
    if int(p.get("count", 1)) > 1:  # repeats folded into one entry (orders.services.dispatch.entry_repeat)
        parts.append(f"{p['count']} times since {p.get('first_at', '?')}")
    return "; ".join(parts)
