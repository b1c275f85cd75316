"""The API's error bodies: every error is JSON naming the field(s) and the reason."""

from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc, context):
    """Wrap DRF's handler so every error body has ``{"error": code, "detail": ..., "fields": {...}}``."""
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    code = getattr(exc, "default_code", "error")
    if isinstance(data, dict) and set(data) == {"detail"}:
        response.data = {"error": code, "detail": data["detail"]}
    elif isinstance(data, (dict, list)):
        response.data = {"error": code, "detail": "Invalid input.", "fields": data}
    return response
