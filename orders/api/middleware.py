"""A path under ``/api/`` that no route matches is answered in the API's JSON error shape."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import is_valid_path
from django.utils.deprecation import MiddlewareMixin

#: The order API's mount point (odum_live/urls.py).
API_PREFIX = "/api/"


class ApiNotFoundMiddleware(MiddlewareMixin):
    """Turn the URL resolver's 404 under ``/api/`` into ``{"error": "not_found", "detail": …}``.

    Django answers a path no route matches with its HTML 404 page — its debug page when DEBUG is on,
    as in the embedded default — which an API client cannot parse. The API's own 404s (``no order
    <id>``) come from a matched view and are JSON already: only a request the resolver matched to no
    view (``request.resolver_match`` is None) is answered here. A wrong method on a known path stays
    DRF's JSON 405; other paths keep the HTML page. Runs inside ``CommonMiddleware``, which still
    redirects ``/api/docs`` to ``/api/docs/`` (APPEND_SLASH). Body shape: :mod:`orders.api.errors`.
    """

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if (response.status_code != 404 or request.resolver_match is not None
                or not (request.path_info + "/").startswith(API_PREFIX)):
            return response
        return JsonResponse({"error": "not_found", "detail": _detail(request)}, status=404)


def _detail(request: HttpRequest) -> str:
    path = request.path
    detail = f"no API operation at {path}: the API's paths are listed at /api/docs/"
    if path.endswith("/") and is_valid_path(request.path_info.rstrip("/"), getattr(request, "urlconf", None)):
        detail += f"; they have no trailing slash: {path.rstrip('/')}"
    return detail
