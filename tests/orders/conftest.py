"""Fixtures for order services and the order API: a tradable listing with a fresh book, strategies,
API clients with knox tokens, and per-test isolation of cache, market data and the venue queue."""

import os
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.utils import timezone
from rest_framework.test import APIClient

from orders.services.request import order_request_build
from tests.orders.factories import StrategyFactory, UserFactory, make_token
from tests.venues.factories import InstrumentFactory
from venues.marketdata import BookLevel, MarketSnapshot, market_data

SPOT_KEY = "BINANCE-SPOT:SPOT_PAIR:BTC-USDT"


@pytest.fixture(autouse=True)
def _isolated_cache_and_market_data():
    """Empty cache (throttle buckets, heartbeat, sweeper lock), market data and — with REDIS_URL —
    this run's own Redis database (queue ``venues`` included) before and after every test."""
    cache.clear()
    market_data().clear()
    yield
    cache.clear()
    market_data().clear()


@pytest.fixture
def listing(db):
    """Binance spot BTC-USDT, paper mode, enabled (tests/venues/factories.py)."""
    return InstrumentFactory()


def publish_book(instrument_key=SPOT_KEY, *, bid="40000", ask="40001", size="5", age_secs=0):
    """Publish a fresh two-level book for ``instrument_key`` (prices quote currency, sizes base units)."""
    bid_d, ask_d, size_d = Decimal(bid), Decimal(ask), Decimal(size)
    snapshot = MarketSnapshot(
        instrument_key=instrument_key,
        ts=timezone.now() - timedelta(seconds=age_secs),
        bid=bid_d, ask=ask_d, bid_size=size_d, ask_size=size_d, last=bid_d,
        bids=(BookLevel(bid_d, size_d), BookLevel(bid_d - 1, size_d * 2)),
        asks=(BookLevel(ask_d, size_d), BookLevel(ask_d + 1, size_d * 2)),
    )
    market_data().publish(snapshot)
    return snapshot


@pytest.fixture
def tradable(listing):
    """A listing with a fresh book: an order for it routes and passes risk with no limits set."""
    publish_book()
    return listing


@pytest.fixture
def strategy(db):
    return StrategyFactory(id="alpha")


@pytest.fixture
def other_strategy(db):
    return StrategyFactory(id="beta")


def client_for(user) -> APIClient:
    """An APIClient authenticated with a fresh knox token of ``user`` (``Authorization: Bearer``)."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(user)}")
    return client


@pytest.fixture
def svc_client(strategy):
    """The strategy service of ``alpha``, with its own token."""
    return client_for(strategy.service_account)


@pytest.fixture
def other_svc_client(other_strategy):
    return client_for(other_strategy.service_account)


@pytest.fixture
def person(db):
    return UserFactory(username=f"person-{uuid.uuid4().hex[:8]}")


def typed_request(**overrides):
    """An :class:`OrderRequest` for a LIMIT BUY 0.01 BTC-USDT @ 40000 on Binance spot, with overrides."""
    data = {
        "operation_id": f"op-{uuid.uuid4().hex}",
        "instrument_key": SPOT_KEY,
        "side": "BUY",
        "order_type": "LIMIT",
        "quantity": Decimal("0.01"),
        "price": Decimal("40000"),
    }
    data.update(overrides)
    return order_request_build(**data)


@pytest.fixture
def venue_queue(redis_client):
    """Read the Celery queue ``venues`` in this run's Redis database (REDIS_URL): a list of messages."""
    import json

    def messages():
        return [json.loads(raw) for raw in redis_client.lrange("venues", 0, -1)]

    return messages


def redis_configured() -> bool:
    return bool(os.environ.get("REDIS_URL"))
