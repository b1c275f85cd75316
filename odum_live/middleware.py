"""Middleware of the server-rendered pages."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.shortcuts import resolve_url
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
