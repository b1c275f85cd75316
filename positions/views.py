"""The positions page (``/live/positions``) and its live topic ``positions``.

Interfaces only (CONVENTIONS.md): the figures come from :func:`positions.selectors.position_book`
and :func:`positions.selectors.equity_curve`, the chart geometry from :mod:`positions.charts`; the
page, the live fragment (topic ``positions`` on ``/ws/live/``) and the chart's refresh render the
same partials (``positions/_book.html``, ``positions/_chart.html``).

Who sees what: the caller's order scope (:func:`orders.selectors.order_access_for`: every
strategy with ``orders.view_order``, else the strategies they trade). Views depend on the order
app's access rules here, not the other way round: the positions domain itself imports nothing
from ``orders``.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils import timezone
from django.views.decorators.http import require_GET

from odum_live.groups import ORDERS_GROUP, ORDERS_UPDATED, POSITIONS_GROUP, POSITIONS_UPDATED, strategy_group
from positions.charts import equity_chart
from positions.selectors import equity_curve, position_book

#: Chart windows offered on the page: query value → (label, length).
CHART_WINDOWS = {"1h": ("1 hour", timedelta(hours=1)), "6h": ("6 hours", timedelta(hours=6)),
                 "24h": ("24 hours", timedelta(hours=24)), "7d": ("7 days", timedelta(days=7))}
DEFAULT_WINDOW = "24h"


def _visible(user):
    from orders.selectors import order_access_for

    return order_access_for(user=user).visible_strategy_ids


def book_context(user) -> dict:
    """Return the template context of ``positions/_book.html`` for ``user`` (page and live fragment)."""
    return {"book": position_book(strategy_ids=_visible(user)), "as_of": timezone.now()}


def chart_context(user, window: str) -> dict:
    """Return the template context of ``positions/_chart.html``: one chart per PnL currency."""
    window = window if window in CHART_WINDOWS else DEFAULT_WINDOW
    now = timezone.now()
    series = equity_curve(strategy_ids=_visible(user), since=now - CHART_WINDOWS[window][1], until=now)
    charts = [equity_chart(currency=currency, points=points, now=now) for currency, points in series.items()]
    return {"charts": charts, "window": window, "windows": CHART_WINDOWS}


@login_required
@require_GET
def positions_page(request: HttpRequest) -> HttpResponse:
    """``GET /live/positions``: positions by instrument with venue breakdown, totals, equity chart."""
    window = request.GET.get("window", DEFAULT_WINDOW)
    context = {**book_context(request.user), **chart_context(request.user, window)}
    return render(request, "positions/page.html", context)


@login_required
@require_GET
def positions_chart(request: HttpRequest) -> HttpResponse:
    """``GET /live/positions/chart?window=24h``: the chart partial (the page polls it)."""
    return render(request, "positions/_chart.html", chart_context(request.user, request.GET.get("window", "")))


# --- live topic "positions" -------------------------------------------------------------------------

def live_groups(user) -> list[str]:
    """Groups of the ``positions`` topic: marks (``positions``) and the order changes the user sees."""
    visible = _visible(user)
    orders = [ORDERS_GROUP] if visible is None else [strategy_group(s) for s in sorted(visible)]
    return [POSITIONS_GROUP, *orders]


def live_render(message: dict, user) -> str | None:
    """Re-render ``positions/_book.html`` (out-of-band) after a mark or an order change with fills."""
    kind = message.get("type")
    if kind == ORDERS_UPDATED and not message.get("fill_ids"):
        return None  # no fill, no position change
    if kind not in (ORDERS_UPDATED, POSITIONS_UPDATED):
        return None
    return render_to_string("positions/_book.html", {**book_context(user), "oob": True})
