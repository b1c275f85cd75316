"""Fixtures of the status page and ``manage.py status`` tests."""

import pytest
from django.core.cache import cache

from celery_app import app as celery


@pytest.fixture(autouse=True)
def clean_cache():
    """No trading-node heartbeat (or anything else) left in the cache by another test."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def eager():
    """Set the Celery app's ``task_always_eager`` for one test: ``eager(True)``; restored after."""
    before = celery.conf.task_always_eager

    def set_to(value: bool) -> None:
        celery.conf.task_always_eager = value

    yield set_to
    celery.conf.task_always_eager = before
