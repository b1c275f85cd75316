"""``/status``: the operator's health page.

Without login it answers only up or down (HTTP 200 / 503, the API health's critical parts:
database, broker, channel layer) — no details, which could help an attacker; the logged-in page's
htmx refresh after its session ended gets ``HX-Refresh`` (the page reloads as the public one). Logged-in users get
:func:`odum_live.health.status_report`: every component green / amber / red with its detail and
check time; the page re-polls itself every few seconds (htmx; ``request.htmx`` selects the
report partial). Risk managers also see the kill-switch controls (``risk/views.py``).
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from django_htmx.http import HttpResponseClientRefresh

from odum_live.health import health_report, status_report

#: Seconds between two refreshes of the report by the page.
REFRESH_SECS = 5


@never_cache
@require_GET
def status_page(request: HttpRequest) -> HttpResponse:
    """``GET /status``: minimal up/down for everyone, the full report for logged-in users."""
    if not request.user.is_authenticated:
        if request.htmx:  # the logged-in page's refresh after its session ended: reload as the public page
            return HttpResponseClientRefresh()
        report = health_report()
        return render(request, "status/public.html", {"up": report.healthy, "ts": report.ts},
                      status=200 if report.healthy else 503)
    context = {"report": status_report(), "refresh_secs": REFRESH_SECS}
    if request.htmx:
        return render(request, "status/_report.html", context)
    from risk.views import kill_switch_context

    if request.user.has_perm("risk.change_tradingstate"):
        context.update(kill_switch_context())
    return render(request, "status/page.html", context)
