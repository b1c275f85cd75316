"""Page route of the execution log, included under ``/live/`` (``odum_live/urls.py``)."""

from django.urls import path

from orders import views_logs

urlpatterns = [path("logs", views_logs.logs_page, name="live-logs")]
