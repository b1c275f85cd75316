"""odum-live: a live order execution service (OMS/EMS)."""

# Load the Celery app with Django so tasks bind to the configured app (the Celery docs' pattern).
from celery_app import app as celery_app

__all__ = ["celery_app"]
