"""venues.marketdata: snapshots, the memory and Redis stores, and failure as MarketDataUnavailable."""

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.conf import settings

from venues.marketdata import (
    BookLevel,
    MarketDataUnavailable,
    MarketSnapshot,
    MemoryMarketDataStore,
    RedisMarketDataStore,
    market_data,
    set_market_data_store,
)

KEY = "BINANCE-SPOT:SPOT_PAIR:BTC-USDT"
TS = datetime(2026, 1, 5, 12, 0, 0, 123456, tzinfo=UTC)


def snapshot(**overrides) -> MarketSnapshot:
    fields = {
        "instrument_key": KEY, "ts": TS, "bid": Decimal("39999.99"), "ask": Decimal("40000.01"),
        "bid_size": Decimal("1.5"), "ask_size": Decimal("2.25"), "last": Decimal("40000.00"),
        "bids": (BookLevel(Decimal("39999.99"), Decimal("1.5")), BookLevel(Decimal("39999.98"), Decimal("3"))),
        "asks": (BookLevel(Decimal("40000.01"), Decimal("2.25")),),
    }
    fields.update(overrides)
    return MarketSnapshot(**fields)


@pytest.fixture
def redis_store(redis_client):
    """A Redis store on REDIS_URL under a prefix of its own, deleted afterwards."""
    prefix = f"test:md:{uuid.uuid4().hex}"
    yield RedisMarketDataStore(settings.REDIS_URL, prefix)
    redis_client.delete(prefix)


# --- snapshot ------------------------------------------------------------------------------------
def test_snapshot_json_round_trip_keeps_decimals_exact_and_time_aware():
    # Arrange
    original = snapshot()

    # Act
    restored = MarketSnapshot.from_json(original.to_json())

    # Assert
    assert restored == original
    assert '"40000.01"' in original.to_json()  # decimal strings, never floats


def test_snapshot_mid_is_bid_ask_average_else_last():
    # Act / Assert
    assert snapshot().mid == Decimal("40000.00")
    assert snapshot(ask=None).mid == Decimal("40000.00")
    assert snapshot(ask=None, last=None).mid is None


def test_snapshot_freshness_against_max_age():
    # Act / Assert
    assert snapshot().is_fresh(10, now=TS + timedelta(seconds=10))
    assert not snapshot().is_fresh(10, now=TS + timedelta(seconds=10.001))
    assert snapshot().age_secs(now=TS + timedelta(seconds=2.5)) == 2.5


def test_snapshot_dated_ahead_of_the_clock_by_more_than_max_age_is_not_fresh():
    # A venue or host clock out of step: without the check such a snapshot would count as fresh until
    # its own time plus the maximum age, however long its feed had been silent.
    assert snapshot().is_fresh(10, now=TS - timedelta(seconds=10))
    assert not snapshot().is_fresh(10, now=TS - timedelta(seconds=3600))
    assert "ahead of this host's clock" in snapshot().staleness(10, now=TS - timedelta(seconds=3600))


def test_snapshot_depth_gives_asks_to_buyers_and_bids_to_sellers():
    # Act / Assert
    assert snapshot().depth("BUY") == (BookLevel(Decimal("40000.01"), Decimal("2.25")),)
    assert len(snapshot().depth("SELL")) == 2
    assert snapshot(bids=()).depth("SELL") == (BookLevel(Decimal("39999.99"), Decimal("1.5")),)


_NAIVE_TS = (
    '{"instrument_key": "X", "ts": "2026-01-05T12:00:00", "bid": null, "ask": null, "bid_size": null, '
    '"ask_size": null, "bids": [], "asks": []}'
)
_BAD_DECIMAL = (
    '{"instrument_key": "X", "ts": "2026-01-05T12:00:00+00:00", "bid": "abc", "ask": null, "bid_size": null, '
    '"ask_size": null, "bids": [], "asks": []}'
)


@pytest.mark.parametrize("text", ["not json", '{"instrument_key": "X"}', _NAIVE_TS, _BAD_DECIMAL])
def test_snapshot_from_malformed_json_raises_market_data_unavailable(text):
    # Act / Assert
    with pytest.raises(MarketDataUnavailable, match="malformed market-data snapshot"):
        MarketSnapshot.from_json(text)


# --- memory store ----------------------------------------------------------------------------------
def test_memory_store_round_trip_latest_wins_and_clear():
    # Arrange
    store = MemoryMarketDataStore()

    # Act
    store.publish(snapshot(bid=Decimal("1")))
    store.publish(snapshot())
    got, many, missing = store.get(KEY), store.get_many([KEY, "OKX:SPOT_PAIR:BTC-USDT"]), store.get("nope")
    store.clear()

    # Assert
    assert got == snapshot()
    assert many == {KEY: snapshot()}
    assert missing is None
    assert store.get(KEY) is None


def test_market_data_without_redis_url_is_memory_and_can_be_replaced(settings):
    # Arrange
    settings.REDIS_URL = ""
    previous = set_market_data_store(None)
    try:
        # Act
        built = market_data()
        replacement = MemoryMarketDataStore()
        set_market_data_store(replacement)

        # Assert
        assert isinstance(built, MemoryMarketDataStore)
        assert market_data() is replacement
    finally:
        set_market_data_store(previous)


# --- Redis store ---------------------------------------------------------------------------------
@pytest.mark.redis
def test_redis_store_round_trip_get_many_and_clear(redis_store):
    # Arrange
    other = snapshot(instrument_key="OKX:SPOT_PAIR:BTC-USDT", bids=(), asks=())

    # Act
    redis_store.publish(snapshot())
    redis_store.publish(other)
    got = redis_store.get(KEY)
    many = redis_store.get_many([KEY, "OKX:SPOT_PAIR:BTC-USDT", "NOPE:SPOT_PAIR:BTC-USDT"])
    redis_store.clear()

    # Assert
    assert got == snapshot()
    assert many == {KEY: snapshot(), "OKX:SPOT_PAIR:BTC-USDT": other}
    assert redis_store.get(KEY) is None
    assert redis_store.get_many([]) == {}


@pytest.mark.redis
def test_redis_store_malformed_payload_raises_market_data_unavailable(redis_store, redis_client):
    # Arrange
    redis_client.hset(redis_store._key, KEY, b"{broken")

    # Act / Assert
    with pytest.raises(MarketDataUnavailable, match="malformed"):
        redis_store.get(KEY)


def test_redis_store_unreachable_raises_market_data_unavailable_naming_the_server():
    # Arrange: nothing listens on port 1
    store = RedisMarketDataStore("redis://127.0.0.1:1/3", timeout_secs=0.2)

    # Act / Assert
    for call in (lambda: store.get(KEY), lambda: store.get_many([KEY]), lambda: store.publish(snapshot())):
        with pytest.raises(MarketDataUnavailable, match=r"market data unavailable \(redis 127.0.0.1:1/3\)"):
            call()

