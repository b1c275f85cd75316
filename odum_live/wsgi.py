"""WSGI entry point (gunicorn serves the HTTP API in the production layout)."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "odum_live.settings")
application = get_wsgi_application()

from odum_live.heap import freeze_startup_heap  # noqa: E402  (after Django's set-up)

# Long-lived from here on: out of the collector's full walks (odum_live/heap.py).
freeze_startup_heap(warm_urls=True)
