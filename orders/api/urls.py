"""Routes of the order API (mounted under ``/api/``; no trailing slashes)."""

from django.urls import path, register_converter

from orders.api import views


class InstrumentKeyConverter:
    """A canonical instrument key in a path segment: anything but ``/`` (``:`` and ``@`` included).

    Deliberately loose: the view parses the key strictly, so a malformed key is a 400 naming the
    offending part rather than a bare 404 from the URL resolver.
    """

    regex = r"[^/]+"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


class OrderIdConverter(InstrumentKeyConverter):
    """An order id in a path segment: anything but ``/``.

    Loose for the same reason: the view parses the UUID, so a malformed id is a 400 JSON error
    naming ``order_id`` rather than the URL resolver's HTML 404 page.
    """


register_converter(InstrumentKeyConverter, "instrument_key")
register_converter(OrderIdConverter, "order_id")

urlpatterns = [
    path("orders", views.OrderCollectionApi.as_view(), name="orders"),
    path("orders/<order_id:order_id>", views.OrderDetailApi.as_view(), name="order-detail"),
    path("orders/<order_id:order_id>/cancel", views.OrderCancelApi.as_view(), name="order-cancel"),
    path("positions", views.PositionListApi.as_view(), name="positions"),
    path("positions/<instrument_key:instrument_key>", views.PositionDetailApi.as_view(), name="position-detail"),
    path("risk/check", views.RiskCheckApi.as_view(), name="risk-check"),
    path("health", views.HealthApi.as_view(), name="health"),
]
