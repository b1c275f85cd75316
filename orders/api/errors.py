"""The API's error bodies: every error is JSON naming the field(s) and the reason.

Shape::

    {"error": "<code>", "detail": "<one sentence>", "fields": {"<field>": ["<reason>", ...]}, ...extra}

``fields`` appears for input errors (400) and names the fields that differ on 409 idempotency
conflicts; domain errors add their own keys (``operation_id`` and ``order_id`` on those conflicts,
``status`` on 409 cancel refusals, ``strategy_id`` on 403 / 422). Throttled requests (429) carry
``retry_after_secs``.
"""

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.views import exception_handler as drf_exception_handler

from orders.api.authentication import unaccepted_scheme_reason


class ApiError(exceptions.APIException):
    """An API error with a code, a message and extra top-level keys for the body."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "error"

    def __init__(self, detail: str, *, code: str | None = None, status_code: int | None = None, **extra):
        super().__init__(detail=detail, code=code or self.default_code)
        if status_code is not None:
            self.status_code = status_code
        self.code = code or self.default_code
        self.extra = extra


class Conflict(ApiError):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


class Unprocessable(ApiError):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_code = "unprocessable"


class PayloadTooLarge(ApiError):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request_too_large"


class Forbidden(ApiError):
    status_code = status.HTTP_403_FORBIDDEN
    default_code = "permission_denied"


def _code(exc) -> str:
    if isinstance(exc, ApiError):
        return exc.code
    if isinstance(exc, exceptions.ValidationError):
        return "invalid"
    return getattr(exc, "default_code", "error")


def _not_authenticated(exc: exceptions.NotAuthenticated, request) -> exceptions.APIException:
    # No authenticator took the request: an Authorization header of another scheme is a refused
    # credential (authentication_failed, naming the expected scheme), not a missing one.
    reason = unaccepted_scheme_reason(request)
    if reason is None:
        return exc
    refused = exceptions.AuthenticationFailed(reason)
    refused.status_code = exc.status_code  # 401, with the view's WWW-Authenticate challenge
    refused.auth_header = getattr(exc, "auth_header", None)
    return refused


def exception_handler(exc, context):
    """Wrap DRF's handler so every error body is ``{"error", "detail", ["fields"], ...}``."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(*exc.args)
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(*exc.args)
    elif isinstance(exc, exceptions.NotAuthenticated):
        exc = _not_authenticated(exc, context["request"])
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    body: dict
    if isinstance(exc, exceptions.ValidationError) or not (isinstance(data, dict) and set(data) == {"detail"}):
        fields = data if isinstance(data, dict) else {"non_field_errors": data}
        names = ", ".join(sorted(fields)) if isinstance(fields, dict) else ""
        body = {"error": _code(exc), "detail": f"Invalid input: {names}." if names else "Invalid input.",
                "fields": fields}
    else:
        body = {"error": _code(exc), "detail": str(data["detail"])}
    if isinstance(exc, ApiError):
        body.update(exc.extra)
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        body["retry_after_secs"] = int(exc.wait) + (0 if float(exc.wait).is_integer() else 1)
    response.data = body
    return response
