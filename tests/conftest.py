"""Fixtures and markers shared by the whole suite.

``@pytest.mark.postgres`` tests skip with a reason on SQLite; ``@pytest.mark.redis`` tests skip
with a reason when REDIS_URL is unset. A URL that is set but unreachable is an error, not a skip:
CI sets both and must never pass by skipping.
"""

import os

import pytest
from django.conf import settings
from hypothesis import settings as hypothesis_settings

# Tests assert behaviour, never time: no per-example deadline (a loaded CI machine is slow, not wrong).
hypothesis_settings.register_profile("odum", deadline=None)
hypothesis_settings.load_profile("odum")


def pytest_collection_modifyitems(config, items):
    on_postgres = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
    redis_url = os.environ.get("REDIS_URL", "")
    skip_pg = pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL=postgres://… to run")
    skip_redis = pytest.mark.skip(reason="needs Redis: set REDIS_URL=redis://… to run")
    for item in items:
        if "postgres" in item.keywords and not on_postgres:
            item.add_marker(skip_pg)
        if "redis" in item.keywords and not redis_url:
            item.add_marker(skip_redis)


def pytest_report_header(config):
    db = settings.DATABASES["default"]
    return (
        f"odum-live: database={db['ENGINE'].rsplit('.', 1)[-1]} "
        f"redis={'yes' if os.environ.get('REDIS_URL') else 'no'} "
        f"celery_eager={settings.CELERY_TASK_ALWAYS_EAGER}"
    )


@pytest.fixture(scope="session")
def redis_client():
    """A client for REDIS_URL (tests using it are marked ``redis``)."""
    import redis

    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    client.ping()  # an unreachable Redis fails the test loudly
    return client


@pytest.fixture
def at_latest():
    """Put every app back on its latest migration after the test, whatever happened (a migration test that
    takes one app back also unapplies the other apps' migrations that depend on it)."""
    yield
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
