"""Error views of the server-rendered pages (settings: ``CSRF_FAILURE_VIEW``)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """Answer a post refused by CSRF protection: 403 with what to do, as the project's 403 page.

    A page's token goes stale when its person logs in again (in another tab: Django rotates the
    token). Django's own failure page is a whole HTML document, which htmx (it swaps 403 answers,
    templates/base.html) put inside a table row or the ticket; ``403.html`` answers htmx with the
    reason alone. ``reason`` is Django's (e.g. "CSRF token incorrect.").
    """
    message = ("This page is out of date for your session (logged in again elsewhere?): reload the page and "
               f"try again. ({reason or 'CSRF verification failed'})")
    return render(request, "403.html", {"exception": message}, status=403)
