"""Fixtures for router and circuit tests: isolated circuit state, books, listings, intents."""

import os
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from venues.circuit import reset_circuit_breakers
from venues.marketdata import BookLevel, MarketSnapshot, market_data


@pytest.fixture(autouse=True)
def circuit_prefix(settings):
    """Give each test its own circuit namespace (Redis keys) and a fresh breaker registry."""
    prefix = f"odum:test:circuit:{uuid.uuid4().hex}"
    settings.ODUM = {**settings.ODUM, "CIRCUIT_PREFIX": prefix, "CIRCUIT_FAIL_MAX": 3}
    yield prefix
    reset_circuit_breakers()
    url = os.environ.get("REDIS_URL")
    if url:
        import redis

        client = redis.Redis.from_url(url)
        keys = list(client.scan_iter(match=f"{prefix}:*"))
        if keys:
            client.delete(*keys)
        client.close()


@pytest.fixture
def books():
    """Publish book snapshots to the process's market-data store; cleared before and after."""
    store = market_data()
    store.clear()

    def publish(instrument_key, *, bids=(), asks=(), age_secs=0):
        bid_levels = tuple(BookLevel(Decimal(str(p)), Decimal(str(s))) for p, s in bids)
        ask_levels = tuple(BookLevel(Decimal(str(p)), Decimal(str(s))) for p, s in asks)
        snapshot = MarketSnapshot(
            instrument_key=instrument_key,
            ts=timezone.now() - timedelta(seconds=age_secs),
            bid=bid_levels[0].price if bid_levels else None,
            ask=ask_levels[0].price if ask_levels else None,
            bid_size=bid_levels[0].size if bid_levels else None,
            ask_size=ask_levels[0].size if ask_levels else None,
            bids=bid_levels,
            asks=ask_levels,
        )
        store.publish(snapshot)
        return snapshot

    yield publish
    store.clear()
