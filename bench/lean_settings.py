"""Benchmark-only settings: production settings with no middleware and no DRF throttle.

Used only by bench/api_ceiling.py (``DJANGO_SETTINGS_MODULE=bench.lean_settings``, served by
gunicorn) to measure the ``floor_lean`` variant: the one-INSERT ``/api/bench/floor`` endpoint with
everything optional stripped from the request path, so that what remains is Django's request
handling, URL resolution, DRF's view dispatch, knox Bearer authentication, the serializer, one ORM
INSERT and JSON rendering. If even that misses issue #2's targets, no trimming of the production
middleware stack can meet them.

What it strips, and why:

- ``MIDDLEWARE = []``: Prometheus before/after, security, WhiteNoise, sessions, common, CSRF,
  authentication, messages, clickjacking, htmx and simple_history middleware, each a per-request
  cost paid by ``POST /api/orders`` in production.
- ``DEFAULT_THROTTLE_CLASSES = []``: the per-token rate throttle, a Redis round trip per request.

Never use it anywhere else: it has no security headers, no CSRF protection and no throttling,
and ``manage.py check`` rejects it (the admin requires the session, authentication and messages
middleware). Everything else (database, cache, authentication classes) is the production
configuration as bench/common.py's ``production_env()`` sets it.
"""

from odum_live.settings import *  # noqa: F403

MIDDLEWARE = []
REST_FRAMEWORK = {**REST_FRAMEWORK, "DEFAULT_THROTTLE_CLASSES": []}  # noqa: F405
