"""Who may call the order API, and the per-request access scope (see :mod:`orders.selectors`)."""

from __future__ import annotations

from rest_framework.permissions import IsAuthenticated

from orders.selectors import OrderAccess, order_access_for

_ACCESS_ATTR = "_odum_order_access"


def request_access(request) -> OrderAccess:
    """Return the caller's :class:`OrderAccess`, built once per request."""
    access = getattr(request, _ACCESS_ATTR, None)
    if access is None:
        access = order_access_for(user=request.user)
        setattr(request, _ACCESS_ATTR, access)
    return access


class IsApiUser(IsAuthenticated):
    """An authenticated user (strategy service token, personal token or session).

    Object scope is not a permission check here: selectors return only what the caller may see,
    so an order of another strategy is a 404, never a 403 that would confirm it exists.
    """
