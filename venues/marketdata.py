"""Market-data snapshot service: the latest quote and book per instrument listing.

The venue layer (TradingNode, adapters) publishes; pre-trade risk (price collar, notional), the
router (book walk) and position marks read. Backends: Redis in production (``REDIS_URL`` set, so
every web and worker process sees the same figures) and process memory in the embedded default
(where the node runs inside the web process).

Prices are in quote currency, sizes in base units, times UTC-aware. Values cross Redis as decimal
strings in JSON, never floats.

Failure is explicit: a store that cannot answer (Redis unreachable, a malformed payload) raises
:class:`MarketDataUnavailable`, never returns a made-up snapshot, so a reader can deny with that
reason instead of crashing or silently passing (pre-trade risk does exactly that).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Protocol

from django.conf import settings


class MarketDataError(Exception):
    """Base class of market-data failures."""


class MarketDataUnavailable(MarketDataError):
    """The store could not answer: backend unreachable, timed out, or a stored payload is malformed.

    The message names the backend and the cause, fit for a denial reason.
    """


@dataclass(frozen=True, slots=True)
class BookLevel:
    """One price level: ``price`` in quote currency, ``size`` in base units."""

    price: Decimal
    size: Decimal


@dataclass(frozen=True, slots=True)
class MarketSnapshot:
    """Top of book plus optional depth for one listing (canonical instrument key).

    ``bids`` are best (highest) first, ``asks`` best (lowest) first. When only a quote is known
    the depth tuples hold the single touch level.
    """

    instrument_key: str
    ts: datetime
    bid: Decimal | None = None
    ask: Decimal | None = None
    bid_size: Decimal | None = None
    ask_size: Decimal | None = None
    last: Decimal | None = None
    bids: tuple[BookLevel, ...] = field(default_factory=tuple)
    asks: tuple[BookLevel, ...] = field(default_factory=tuple)

    @property
    def mid(self) -> Decimal | None:
        """Mid price in quote currency, or the last trade when one side is missing."""
        if self.bid is not None and self.ask is not None:
            return (self.bid + self.ask) / 2
        return self.last

    def age_secs(self, now: datetime | None = None) -> float:
        """Seconds since ``ts`` (UTC)."""
        now = now or datetime.now(timezone.utc)
        return (now - self.ts).total_seconds()

    def is_fresh(self, max_age_secs: float, now: datetime | None = None) -> bool:
        """True when the snapshot is at most ``max_age_secs`` old (see :meth:`staleness`)."""
        return self.staleness(max_age_secs, now) is None

    def staleness(self, max_age_secs: float, now: datetime | None = None) -> str | None:
        """Why the snapshot cannot be used at ``now`` with ``max_age_secs`` (None: it is fresh).

        Older than ``max_age_secs``; or stamped more than ``max_age_secs`` *ahead* of this host's clock
        (a venue or host clock out of step): such a snapshot would otherwise count as fresh until its
        own time plus the maximum age, however long its feed had been silent.
        """
        age = self.age_secs(now)
        if age > max_age_secs:
            return f"{age:.3f} s old, max {max_age_secs:g} s"
        if -age > max_age_secs:
            return f"dated {-age:.3f} s ahead of this host's clock (clocks out of step), max {max_age_secs:g} s"
        return None

    def depth(self, side: str) -> tuple[BookLevel, ...]:
        """Levels a taker on ``side`` walks: asks for buy-like sides, bids otherwise."""
        from odum_live.intent import BUY_LIKE_SIDES

        if side in BUY_LIKE_SIDES:
            touch = (BookLevel(self.ask, self.ask_size),) if self.ask is not None and self.ask_size else ()
            levels = self.asks or touch
        else:
            touch = (BookLevel(self.bid, self.bid_size),) if self.bid is not None and self.bid_size else ()
            levels = self.bids or touch
        return levels

    def to_json(self) -> str:
        """Serialise with decimal strings and an ISO-8601 UTC timestamp."""

        def dec(value):
            return None if value is None else str(value)

        return json.dumps(
            {
                "instrument_key": self.instrument_key,
                "ts": self.ts.isoformat(),
                "bid": dec(self.bid),
                "ask": dec(self.ask),
                "bid_size": dec(self.bid_size),
                "ask_size": dec(self.ask_size),
                "last": dec(self.last),
                "bids": [[str(lv.price), str(lv.size)] for lv in self.bids],
                "asks": [[str(lv.price), str(lv.size)] for lv in self.asks],
            }
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> MarketSnapshot:
        """Inverse of :meth:`to_json`.

        Raises
        ------
        MarketDataUnavailable
            When ``text`` is not a snapshot written by :meth:`to_json` (bad JSON, a missing field,
            a number that is not a decimal string, a timestamp without a time zone).
        """
        try:
            return cls._from_dict(json.loads(text))
        except (ValueError, TypeError, KeyError, ArithmeticError) as exc:
            raise MarketDataUnavailable(f"malformed market-data snapshot: {type(exc).__name__}: {exc}") from exc

    @classmethod
    def _from_dict(cls, data: dict) -> MarketSnapshot:
        def dec(value):
            return None if value is None else Decimal(value)

        ts = datetime.fromisoformat(data["ts"])
        if ts.tzinfo is None:
            raise ValueError(f"timestamp {data['ts']!r} has no time zone")
        return cls(
            instrument_key=data["instrument_key"],
            ts=ts,
            bid=dec(data["bid"]),
            ask=dec(data["ask"]),
            bid_size=dec(data["bid_size"]),
            ask_size=dec(data["ask_size"]),
            last=dec(data.get("last")),
            bids=tuple(BookLevel(Decimal(p), Decimal(s)) for p, s in data["bids"]),
            asks=tuple(BookLevel(Decimal(p), Decimal(s)) for p, s in data["asks"]),
        )


class MarketDataStore(Protocol):
    """What publishers and readers of snapshots rely on.

    ``get`` / ``get_many`` return the latest snapshot as published, stale or not: freshness is the
    reader's decision (``snapshot.is_fresh(settings.ODUM["MARKET_DATA_MAX_AGE_SECS"])``). Every
    method raises :class:`MarketDataUnavailable` when the backend cannot answer.
    """

    def publish(self, snapshot: MarketSnapshot) -> None:
        """Store ``snapshot`` as the latest for its instrument key (canonical listing key)."""

    def get(self, instrument_key: str) -> MarketSnapshot | None:
        """Return the latest snapshot, or None when none was ever published."""

    def get_many(self, instrument_keys: list[str]) -> dict[str, MarketSnapshot]:
        """Return the latest snapshot of each key that has one (keys without one are absent)."""

    def clear(self) -> None:
        """Forget every snapshot (tests, replay restarts)."""


class MemoryMarketDataStore:
    """Process-local store for the embedded default."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._data: dict[str, MarketSnapshot] = {}

    def publish(self, snapshot: MarketSnapshot) -> None:
        with self._lock:
            self._data[snapshot.instrument_key] = snapshot

    def get(self, instrument_key: str) -> MarketSnapshot | None:
        return self._data.get(instrument_key)

    def get_many(self, instrument_keys: list[str]) -> dict[str, MarketSnapshot]:
        return {k: self._data[k] for k in instrument_keys if k in self._data}

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


class RedisMarketDataStore:
    """Redis-backed store: one hash ``<prefix>`` mapping instrument key → snapshot JSON.

    Parameters
    ----------
    url : str
        ``redis://host:port/db``.
    prefix : str
        Name of the Redis hash (``settings.ODUM["MARKET_DATA_PREFIX"]``).
    timeout_secs : float
        Socket connect and read timeout in seconds: an unreachable Redis fails fast instead of
        stalling an order submission.

    Raises
    ------
    MarketDataUnavailable
        From every method when Redis is unreachable, times out or answers with an error, or a
        stored payload is malformed; the message names the URL's host and the cause.
    """

    def __init__(self, url: str, prefix: str = "odum:md", *, timeout_secs: float = 1.0) -> None:
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=timeout_secs, socket_connect_timeout=timeout_secs)
        self._errors = (redis.exceptions.RedisError, OSError)
        self._key = prefix
        kwargs = self._redis.connection_pool.connection_kwargs
        self._where = f"redis {kwargs.get('host', '?')}:{kwargs.get('port', '?')}/{kwargs.get('db', 0)}"

    def _call(self, method: str, *args):
        try:
            return getattr(self._redis, method)(*args)
        except self._errors as exc:
            raise MarketDataUnavailable(
                f"market data unavailable ({self._where}): {type(exc).__name__}: {exc}"
            ) from exc

    def publish(self, snapshot: MarketSnapshot) -> None:
        self._call("hset", self._key, snapshot.instrument_key, snapshot.to_json())

    def get(self, instrument_key: str) -> MarketSnapshot | None:
        raw = self._call("hget", self._key, instrument_key)
        return MarketSnapshot.from_json(raw) if raw else None

    def get_many(self, instrument_keys: list[str]) -> dict[str, MarketSnapshot]:
        if not instrument_keys:
            return {}
        raws = self._call("hmget", self._key, list(instrument_keys))
        return {k: MarketSnapshot.from_json(r) for k, r in zip(instrument_keys, raws) if r}

    def clear(self) -> None:
        self._call("delete", self._key)


_store: MarketDataStore | None = None
_store_lock = threading.Lock()


def market_data() -> MarketDataStore:
    """Return the process's market-data store (Redis when ``REDIS_URL`` is set, else memory).

    Built once per process from ``settings.REDIS_URL`` and ``settings.ODUM["MARKET_DATA_PREFIX"]``;
    :func:`set_market_data_store` replaces it.
    """
    global _store
    if _store is None:
        with _store_lock:
            if _store is None:
                url = settings.REDIS_URL
                prefix = settings.ODUM.get("MARKET_DATA_PREFIX", "odum:md")
                _store = RedisMarketDataStore(url, prefix) if url else MemoryMarketDataStore()
    return _store


def set_market_data_store(store: MarketDataStore | None) -> MarketDataStore | None:
    """Replace the process's store (None: rebuild from settings on next use); return the previous one.

    For tests and for hosts that feed a store of their own (the replay data client).
    """
    global _store
    with _store_lock:
        previous, _store = _store, store
    return previous
