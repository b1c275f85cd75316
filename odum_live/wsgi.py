"""WSGI entry point (gunicorn serves the HTTP API in the production layout)."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "odum_live.settings")
application = get_wsgi_application()
