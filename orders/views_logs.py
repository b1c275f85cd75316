"""The execution log page (``/live/logs``) and its live topic ``logs``.

Interfaces only: entries come from :mod:`orders.selectors_logs`; the page and the live fragment
render the same row partial (``logs/_rows.html``).

Live updates: the page's first page (no cursor, no ``until``) subscribes to ``logs:<filters>`` on
``/ws/live/``, where ``<filters>`` is the page's kind / venue / instrument / strategy filters as
base64url of their query string (a topic argument may hold only letters, digits, ``-_.:``, and
instrument keys contain ``@``). Each ``orders.updated`` message names the new ``OrderEvent`` ids;
the topic re-reads those through the selector with the same scope and filters and prepends the
matching rows (``hx-swap-oob="afterbegin:#log-rows"``).
"""

from __future__ import annotations

import base64
import binascii
from urllib.parse import parse_qs, urlencode

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET

from odum_live.groups import ORDERS_GROUP, ORDERS_UPDATED, strategy_group
from odum_live.live import LiveTopicRefused
from orders.models import Strategy
from orders.selectors import order_access_for
from orders.selectors_logs import LOG_KINDS, LogFilterError, LogFilters, execution_log, execution_log_events, \
    log_filters_parse
from venues.models import Instrument, Venue

PAGE_SIZE = 50
#: Longest topic argument ``/ws/live/`` accepts (odum_live.live).
MAX_LIVE_ARGUMENT = 128


def live_argument(filters: LogFilters) -> str | None:
    """Return the ``logs`` topic argument for ``filters`` ("all" when none), None when too long to follow."""
    query = urlencode({k: v for k, v in filters.to_query().items() if k in ("kind", "venue", "instrument", "strategy")},
                      doseq=True)
    if not query:
        return "all"
    argument = base64.urlsafe_b64encode(query.encode()).decode().rstrip("=")
    return argument if len(argument) <= MAX_LIVE_ARGUMENT else None


def _filters_of(argument: str) -> LogFilters:
    if argument == "all":
        return LogFilters()
    try:
        query = base64.b64decode(argument + "=" * (-len(argument) % 4), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise LiveTopicRefused("logs: malformed filter argument; reload the page") from None
    params = QueryDict(mutable=True)
    for key, values in parse_qs(query).items():
        params.setlist(key, values)
    try:
        return log_filters_parse(params)
    except LogFilterError as exc:
        raise LiveTopicRefused(f"logs: {exc}") from None


@login_required
@require_GET
def logs_page(request: HttpRequest) -> HttpResponse:
    """``GET /live/logs``: the execution log with filters (kind, venue, instrument, strategy, time) and a cursor."""
    access = order_access_for(user=request.user)
    errors: dict[str, str] = {}
    filters, page = None, None
    try:
        filters = log_filters_parse(request.GET)
        page = execution_log(visible_strategy_ids=access.visible_strategy_ids, filters=filters,
                             cursor=request.GET.get("cursor", ""), page_size=PAGE_SIZE)
    except LogFilterError as exc:
        errors = exc.fields
    cursor = request.GET.get("cursor", "")
    live = live_argument(filters) if not errors and not cursor and filters.until is None else None
    strategies = Strategy.objects.order_by("id").values_list("id", flat=True)
    if access.visible_strategy_ids is not None:
        strategies = strategies.filter(id__in=access.visible_strategy_ids)
    context = {
        "page": page, "errors": errors, "kinds": list(LOG_KINDS), "live_argument": live,
        "cursor": cursor, "query": urlencode(filters.to_query(), doseq=True) if filters else "",
        "venues": Venue.objects.order_by("code").values_list("code", flat=True),
        "instruments": Instrument.objects.order_by("instrument_key").values_list("instrument_key", flat=True),
        "strategies": list(strategies),
        "form": _form_values(request.GET, filters),
    }
    return render(request, "logs/page.html", context, status=400 if errors else 200)


def _form_values(params: QueryDict, filters: LogFilters | None) -> dict:
    # The filter form shows the filters as parsed or, when one is refused, every value as sent: one bad
    # field must not lose the others. Times always as typed.
    if filters is not None:
        values = {"kinds": list(filters.kinds), "venue": filters.venue, "strategy": filters.strategy,
                  "instrument": filters.instrument}
    else:
        values = {"kinds": [k.strip() for raw in params.getlist("kind") for k in raw.split(",") if k.strip()],
                  **{name: params.get(name, "") for name in ("venue", "strategy", "instrument")}}
    return {**values, **{name: params.get(name, "") for name in ("since", "until")}}


# --- live topic "logs" ------------------------------------------------------------------------------

def live_groups(user, *, argument: str) -> list[str]:
    """Groups of ``logs:<filters>``: the order streams the user may see (one strategy when filtered)."""
    filters = _filters_of(argument)
    visible = order_access_for(user=user).visible_strategy_ids
    if filters.strategy:
        if visible is not None and filters.strategy not in visible:
            raise LiveTopicRefused(f"you may not see strategy {filters.strategy!r}")
        return [strategy_group(filters.strategy)]
    return [ORDERS_GROUP] if visible is None else [strategy_group(s) for s in sorted(visible)]


def live_render(message: dict, user, *, argument: str) -> str | None:
    """Prepend the rows of the message's new events that the scope and filters show."""
    if message.get("type") != ORDERS_UPDATED or not message.get("event_ids"):
        return None
    entries = execution_log_events(event_ids=message["event_ids"], filters=_filters_of(argument),
                                   visible_strategy_ids=order_access_for(user=user).visible_strategy_ids)
    if not entries:
        return None
    return render_to_string("logs/_rows.html", {"entries": entries, "oob": True})
