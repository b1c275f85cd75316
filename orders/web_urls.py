"""The traders' order pages under ``/live/`` (odum_live/urls.py includes this module)."""

from django.urls import path

from orders.web import views

urlpatterns = [
    path("execute", views.execute, name="live-execute"),
    path("execute/what-if", views.execute_what_if, name="live-execute-what-if"),
    path("execute/preview", views.execute_preview, name="live-execute-preview"),
    path("execute/instruments", views.execute_instruments, name="live-execute-instruments"),
    path("orders", views.orders_page, name="live-orders"),
    path("orders/<uuid:order_id>", views.order_detail_page, name="live-order-detail"),
    path("orders/<uuid:order_id>/cancel", views.order_cancel_view, name="live-order-cancel"),
]
