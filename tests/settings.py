"""Settings for the test suite: the real settings with test-only defaults.

DATABASE_URL / REDIS_URL choose the transports exactly as in production; only what a test run
cannot sensibly take from the environment gets a default here.
"""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-not-for-production-0123456789abcdef")
os.environ.setdefault("DJANGO_SECURE_SSL_REDIRECT", "0")
if os.environ.get("DATABASE_URL") and not os.environ.get("REDIS_URL"):
    # A run on PostgreSQL alone is a test run, not a deployment: its Redis tests skip (tests/conftest.py).
    os.environ.setdefault("ODUM_EMBEDDED_TRANSPORTS", "1")

from odum_live.settings import *  # noqa: E402,F401,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast user factories
REST_FRAMEWORK = {**REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"token": "100000/min"}}  # noqa: F405
# Serve static files from the finders, as in development: a fresh clone has no collected
# STATIC_ROOT, and whitenoise would warn on every request of every test.
WHITENOISE_AUTOREFRESH = True
WHITENOISE_USE_FINDERS = True
# No TradingNode unless a test installs one (tests/venues/test_node_*.py build their own): the rest
# of the suite tests the order pipeline up to the hand-off, where orders stay ROUTED.
ODUM = {**ODUM, "TRADING_NODE": os.environ.get("TRADING_NODE", "off")}  # noqa: F405

if DATABASES["default"]["ENGINE"].endswith("sqlite3"):  # noqa: F405
    # A file, not the shared-cache in-memory database: threads of the trading node (journal writer,
    # market-data publisher) then wait on SQLite's busy timeout instead of failing with "table is
    # locked". One file per test process, so concurrent runs do not share it.
    import tempfile

    DATABASES["default"]["TEST"] = {  # noqa: F405
        "NAME": os.path.join(tempfile.gettempdir(), f"odum-test-{os.getpid()}.sqlite3"),
    }
