"""Middleware of the server-rendered pages."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import Http404
from django.shortcuts import render, resolve_url
from django_htmx.http import HttpResponseClientRedirect


class HtmxLoginRedirectMiddleware:
    """Send a page whose session ended to the login page in full, not the login page into a fragment.

    An htmx request without a session (logged out in another tab, or expired) is redirected to
    ``LOGIN_URL`` by ``login_required``; htmx follows the redirect itself and swaps the whole login
    page into its target (a row, the orders table, the ticket) and pushes its URL. This turns such a
    redirect into ``HX-Redirect`` (status 200, empty body): htmx then loads the login page as a page,
    with ``next`` the page the trader was on (``HX-Current-URL``, when on this site; else ``/``), not
    the fragment's URL. Other requests pass unchanged. Sits after ``HtmxMiddleware`` (``request.htmx``).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code != 302 or not getattr(request, "htmx", False):
            return response
        login_url = resolve_url(settings.LOGIN_URL)
        if urlsplit(response["Location"]).path != login_url:
            return response
        page = request.htmx.current_url_abs_path or "/"
        return HttpResponseClientRedirect(redirect_to_login(page, login_url)["Location"])


class HtmxNotFoundMiddleware:
    """Answer an htmx request whose view raised ``Http404`` with the reason alone (``404.html``), DEBUG or not.

    E.g. a Cancel on an order that has left the person's scope (``orders.web.views``: "no order <id>").
    htmx swaps 404 answers in place, as 403 / 409 (templates/base.html); Django's own answer is a
    whole document (its debug page under ``DEBUG``, a bare "Not Found" page otherwise) that would
    land inside a table row or the order detail. Other requests pass unchanged. Sits after
    ``HtmxMiddleware`` (``request.htmx``).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, Http404) or not getattr(request, "htmx", False):
            return None
        return render(request, "404.html", {"exception": str(exception)}, status=404)
