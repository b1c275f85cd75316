"""Page routes of the positions app, included under ``/live/`` (``odum_live/urls.py``)."""

from django.urls import path

from positions import views

urlpatterns = [
    path("positions", views.positions_page, name="live-positions"),
    path("positions/chart", views.positions_chart, name="live-positions-chart"),
]
