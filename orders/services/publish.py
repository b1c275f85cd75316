"""The order stream: every order change, numbered per stream, for WebSocket subscribers.

Publishing
----------
After a transaction that changed orders commits, the service that changed them calls
:func:`publish_orders_updated` with the orders it touched (CONVENTIONS.md: publish *on commit*).
For each order it

1. **claims** the order's ``OrderEvent`` and ``Fill`` ids that no earlier publication carried
   (a per-order set in Redis, or in process memory): those are the timeline entries and fills of
   this change;
2. **numbers** the change once per stream — ``orders`` (every order) and ``strategy.<id>`` (that
   strategy's orders), the names of :mod:`odum_live.groups` — and appends an entry
   (order id, strategy id, claimed ids) to that stream's bounded **log**;
3. **sends** the entry as a small channel-layer message to the stream's group::

       {"type": "orders.updated", "order_id": "<uuid>", "stream": "strategy.alpha", "seq": 1732260000000042,
        "strategy_id": "alpha", "event_ids": [812, 813], "fill_ids": [97]}

   Consumers re-read the order, its events and fills through the selectors; the message carries
   ids only. A web process takes each message once, through its one member of the group, and
   renders the delta once for all its subscribers (``orders.consumers._StreamHub``).

Why the sequence is assigned here, not taken from row ids
---------------------------------------------------------
PostgreSQL takes an ``id`` from its sequence when a row is *inserted*, not when its transaction
*commits*: under concurrent transactions an event with a smaller id can become visible after one
with a larger id, so "resume after id N" would skip it for good. The sequence number is therefore
taken after commit, in one place per stream: one atomic step (a Lua script in Redis; a lock in
memory) claims the ids, increments the stream's counter (``INCR``) and appends the entry
(``XADD`` with the number as the entry id, ``MAXLEN`` = ``settings.ODUM["ORDER_STREAM_MAXLEN"]``).
Every number up to the counter's value is therefore in the log (or trimmed from its head), and
numbers within a stream are consecutive.

A new counter (first use, Redis lost the key, a restart of the embedded process, or a restart
after a failed publication) starts from the wall clock in microseconds (≈ 1.7e15, exact in a JSON
double) and always above the last number in the log and the old counter, plus one: a counter that
starts over leaves a hole that every reader sees. A reader's number from before a process restart
or a Redis loss is therefore below the new numbers with a hole between (unless the old stream ever
averaged more than one change per microsecond).

Guarantees
----------
- :func:`order_stream_after` returns *all* entries after a number, or None when it cannot: the
  number is ahead of the stream, or an entry after it was trimmed, or the counter started over.
  Callers then take a fresh snapshot; an entry is never skipped silently.
- A channel-layer message that is lost (Redis pub/sub keeps no backlog: a process reconnecting to
  Redis misses what was published meanwhile) shows as a jump in the numbers of the next message;
  the consumer fills the hole from the log.
- A timeline entry or fill written without a publication of its own (a writer that does not
  publish) is carried by the next publication of the same order: claims are by id, not by range.
- A publication that fails (Redis down) is logged and marks its streams: the next publication of
  this process restarts their counters first, so readers are told to take a snapshot.
- Not covered: a process that dies between its commit and its publication, or with a failed
  publication on record. The change is in the database (snapshots show it) and the order's next
  publication carries its timeline entries, but a resume in between does not learn of it.
- A claim set lives ``CLAIM_TTL_SECS`` after the order's last publication (Redis) or among the
  last ``MEMORY_CLAIMS`` orders (memory); an order published again after that repeats its older
  timeline entries (never loses them).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from channels.layers import get_channel_layer
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Prefetch, Q, QuerySet

from odum_live.channel_send import run_on_layer
from odum_live.groups import ORDERS_GROUP, ORDERS_UPDATED, strategy_group
from orders.models import Fill, Order, OrderEvent, Strategy
from orders.selectors import OrderAccess, StrategyNotFound, order_list
from orders.state import OPEN_STATUSES
from positions.selectors import InstrumentPosition, position_aggregates

logger = logging.getLogger(__name__)

#: Seconds a Redis claim set outlives the last publication of its order.
CLAIM_TTL_SECS = 7 * 24 * 3600
#: Orders whose claims the memory backend keeps (least recently published dropped first).
MEMORY_CLAIMS = 100_000
#: Default of ``settings.ODUM["ORDER_STREAM_MAXLEN"]``: entries kept per stream for resumes.
DEFAULT_MAXLEN = 10_000


class StreamUnavailable(Exception):
    """The stream log could not answer (Redis unreachable, timed out, or answered an error)."""


@dataclass(frozen=True, slots=True)
class StreamEntry:
    """One numbered change of one order in one stream.

    Attributes
    ----------
    stream : str
        ``"orders"`` or ``"strategy.<id>"``.
    seq : int
        The change's number in ``stream``: consecutive within a stream, except where the counter
        started over (a hole).
    order_id : str
        The order's UUID as text.
    strategy_id : str
        The order's strategy.
    event_ids, fill_ids : tuple[int, ...]
        ``OrderEvent`` / ``Fill`` ids first published with this change, ascending.
    """

    stream: str
    seq: int
    order_id: str
    strategy_id: str
    event_ids: tuple[int, ...] = ()
    fill_ids: tuple[int, ...] = ()

    def to_message(self) -> dict:
        """Return the channel-layer message (type ``orders.updated``) carrying this entry."""
        return {"type": ORDERS_UPDATED, "order_id": self.order_id, "stream": self.stream, "seq": self.seq,
                "strategy_id": self.strategy_id, "event_ids": list(self.event_ids),
                "fill_ids": list(self.fill_ids)}

    @classmethod
    def from_message(cls, message: Mapping) -> StreamEntry:
        """Return the entry a channel-layer message carries.

        Raises
        ------
        ValueError
            The message lacks a field or holds a value of the wrong type.
        """
        try:
            seq = message["seq"]
            if isinstance(seq, bool) or not isinstance(seq, int):
                raise ValueError(f"seq {seq!r} is not an integer")
            return cls(stream=str(message["stream"]), seq=seq, order_id=str(uuid.UUID(str(message["order_id"]))),
                       strategy_id=str(message["strategy_id"]),
                       event_ids=tuple(int(i) for i in message.get("event_ids") or ()),
                       fill_ids=tuple(int(i) for i in message.get("fill_ids") or ()))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed {ORDERS_UPDATED} message: {exc!r}") from None


class StreamLog(Protocol):
    """Where stream numbers are assigned and entries kept (Redis, or process memory)."""

    def head(self, stream: str) -> int:
        """Return the last number assigned in ``stream`` (creating the stream's counter if new)."""

    def restart(self, streams: Iterable[str]) -> None:
        """Start the counters of ``streams`` over, above their last number plus one (a hole)."""

    def append(self, *, streams: Sequence[str], order_id: str, strategy_id: str, event_ids: Sequence[int],
               fill_ids: Sequence[int], maxlen: int) -> list[StreamEntry]:
        """Claim ids of ``order_id`` not claimed before; number and log one entry per stream."""

    def read_after(self, stream: str, after: int) -> list[StreamEntry]:
        """Return the retained entries of ``stream`` numbered above ``after``, ascending."""


def _start_above(now_us: int, *numbers: int | None) -> int:
    # A (re)started counter: the wall clock in µs, and above the last logged number (and the old
    # counter) plus one, so the first new number leaves a hole after every old one.
    return max([now_us, *(n + 1 for n in numbers if n is not None)])


class MemoryStreamLog:
    """The embedded default's stream log: process memory, one lock (web and node share a process)."""

    def __init__(self, *, claims_capacity: int = MEMORY_CLAIMS) -> None:
        self._lock = threading.Lock()
        self._counters: dict[str, int] = {}
        self._logs: dict[str, deque[StreamEntry]] = {}
        self._claims: OrderedDict[str, set[str]] = OrderedDict()
        self._claims_capacity = claims_capacity

    def _counter(self, stream: str, old: int | None = None) -> int:
        if stream not in self._counters:
            log = self._logs.get(stream)
            self._counters[stream] = _start_above(time.time_ns() // 1000, log[-1].seq if log else None, old)
        return self._counters[stream]

    def head(self, stream: str) -> int:
        with self._lock:
            return self._counter(stream)

    def restart(self, streams: Iterable[str]) -> None:
        with self._lock:
            for stream in streams:
                self._counter(stream, old=self._counters.pop(stream, None))

    def append(self, *, streams, order_id, strategy_id, event_ids, fill_ids, maxlen) -> list[StreamEntry]:
        with self._lock:
            claimed = self._claims.pop(order_id, set())
            new_events = tuple(i for i in event_ids if f"e{i}" not in claimed)
            new_fills = tuple(i for i in fill_ids if f"f{i}" not in claimed)
            claimed.update(f"e{i}" for i in new_events)
            claimed.update(f"f{i}" for i in new_fills)
            self._claims[order_id] = claimed
            while len(self._claims) > self._claims_capacity:
                self._claims.popitem(last=False)
            entries = []
            for stream in streams:
                seq = self._counter(stream) + 1
                self._counters[stream] = seq
                entry = StreamEntry(stream=stream, seq=seq, order_id=order_id, strategy_id=strategy_id,
                                    event_ids=new_events, fill_ids=new_fills)
                log = self._logs.setdefault(stream, deque())
                log.append(entry)
                while len(log) > maxlen:
                    log.popleft()
                entries.append(entry)
            return entries

    def read_after(self, stream: str, after: int) -> list[StreamEntry]:
        with self._lock:
            log = self._logs.get(stream, ())
            return [entry for entry in log if entry.seq > after]


# Creates the counter of a stream when missing: the Redis clock in µs, above the log's last id
# (and the old counter, on a restart) + 1. Numbers up to 2^53 are exact in Lua; they pass through
# string.format('%.0f') because Lua prints large numbers in exponent form.
_LUA_ENSURE = """
local function ensure(seqkey, logkey, old)
  if redis.call('EXISTS', seqkey) == 1 then return end
  local t = redis.call('TIME')
  local base = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local last = redis.call('XREVRANGE', logkey, '+', '-', 'COUNT', 1)
  if #last > 0 then
    local lastseq = tonumber(string.match(last[1][1], '^(%d+)-'))
    if lastseq >= base then base = lastseq + 1 end
  end
  if old and tonumber(old) >= base then base = tonumber(old) + 1 end
  redis.call('SET', seqkey, string.format('%.0f', base))
end
"""
# KEYS: seq, log.  Returns the head as a string (exact).
_LUA_HEAD = _LUA_ENSURE + """
ensure(KEYS[1], KEYS[2], false)
return redis.call('GET', KEYS[1])
"""
# KEYS: (seq, log) pairs.  Deletes each counter and creates it anew (a hole after the last entry).
_LUA_RESTART = _LUA_ENSURE + """
for i = 1, #KEYS, 2 do
  local old = redis.call('GET', KEYS[i])
  redis.call('DEL', KEYS[i])
  ensure(KEYS[i], KEYS[i + 1], old)
end
return 1
"""
# KEYS: claims, then (seq, log) pairs.  ARGV: maxlen, claim ttl, order id, strategy id, number of
# event ids, event ids…, fill ids….  Returns {seqs as strings, new event ids csv, new fill ids csv}.
_LUA_APPEND = _LUA_ENSURE + """
local nevents = tonumber(ARGV[5])
local new_e, new_f = {}, {}
for i = 6, #ARGV do
  local is_event = i < 6 + nevents
  local member = (is_event and 'e' or 'f') .. ARGV[i]
  if redis.call('SADD', KEYS[1], member) == 1 then
    if is_event then table.insert(new_e, ARGV[i]) else table.insert(new_f, ARGV[i]) end
  end
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
local es, fs = table.concat(new_e, ','), table.concat(new_f, ',')
local seqs = {}
for i = 2, #KEYS, 2 do
  ensure(KEYS[i], KEYS[i + 1], false)
  local seq = string.format('%.0f', redis.call('INCR', KEYS[i]))
  redis.call('XADD', KEYS[i + 1], 'MAXLEN', ARGV[1], seq .. '-0', 'o', ARGV[3], 's', ARGV[4], 'e', es, 'f', fs)
  table.insert(seqs, seq)
end
return {seqs, es, fs}
"""


def _ids(csv: bytes | str) -> tuple[int, ...]:
    text = csv.decode() if isinstance(csv, bytes) else csv
    return tuple(int(part) for part in text.split(",") if part)


class RedisStreamLog:
    """The production stream log: Redis streams and counters shared by every process.

    Keys: ``<prefix>:ostream:<stream>`` (a Redis stream whose entry ids are ``<seq>-0``),
    ``<prefix>:ostream:<stream>:seq`` (the counter), ``<prefix>:ostream:claims:<order id>`` (a set).

    Parameters
    ----------
    url : str
        ``redis://host:port/db`` (``settings.REDIS_URL``).
    prefix : str
        Key prefix (the channel layer's, ``CHANNEL_LAYER_PREFIX``).
    timeout_secs : float
        Socket connect and read timeout in seconds: a Redis outage fails a publication fast.

    Raises
    ------
    StreamUnavailable
        From every method when Redis is unreachable, times out or answers an error.
    """

    def __init__(self, url: str, prefix: str, *, timeout_secs: float = 1.0) -> None:
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=timeout_secs, socket_connect_timeout=timeout_secs)
        self._errors = (redis.exceptions.RedisError, OSError)
        self._prefix = f"{prefix}:ostream"
        self._head = self._redis.register_script(_LUA_HEAD)
        self._restart = self._redis.register_script(_LUA_RESTART)
        self._append = self._redis.register_script(_LUA_APPEND)

    def keys(self, stream: str) -> tuple[str, str]:
        """Return the (counter, log) key names of ``stream``."""
        return f"{self._prefix}:{stream}:seq", f"{self._prefix}:{stream}"

    def _call(self, what: str, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except self._errors as exc:
            raise StreamUnavailable(f"order stream {what} failed: {type(exc).__name__}: {exc}") from exc

    def head(self, stream: str) -> int:
        return int(self._call("head", self._head, keys=list(self.keys(stream))))

    def restart(self, streams: Iterable[str]) -> None:
        keys = [key for stream in streams for key in self.keys(stream)]
        if keys:
            self._call("restart", self._restart, keys=keys)

    def append(self, *, streams, order_id, strategy_id, event_ids, fill_ids, maxlen) -> list[StreamEntry]:
        keys = [f"{self._prefix}:claims:{order_id}"] + [key for stream in streams for key in self.keys(stream)]
        args = [maxlen, CLAIM_TTL_SECS, order_id, strategy_id, len(event_ids), *event_ids, *fill_ids]
        seqs, events, fills = self._call("append", self._append, keys=keys, args=args)
        new_events, new_fills = _ids(events), _ids(fills)
        return [StreamEntry(stream=stream, seq=int(seq), order_id=order_id, strategy_id=strategy_id,
                            event_ids=new_events, fill_ids=new_fills) for stream, seq in zip(streams, seqs)]

    def read_after(self, stream: str, after: int) -> list[StreamEntry]:
        raw = self._call("read", self._redis.xrange, self.keys(stream)[1], f"{after + 1}-0", "+")
        entries = []
        for entry_id, fields in raw:
            entries.append(StreamEntry(
                stream=stream, seq=int(entry_id.split(b"-", 1)[0]), order_id=fields[b"o"].decode(),
                strategy_id=fields[b"s"].decode(), event_ids=_ids(fields[b"e"]), fill_ids=_ids(fields[b"f"]),
            ))
        return entries


_log: StreamLog | None = None
_log_lock = threading.Lock()
_failed_streams: set[str] = set()  # publications that failed: restart these counters first


def stream_log() -> StreamLog:
    """Return the process's stream log: Redis when ``settings.REDIS_URL`` is set, else memory.

    Built once per process. The Redis keys take the channel layer's prefix
    (``CHANNEL_LAYER_PREFIX``), so a test run's prefix keeps its streams apart. The memory log
    serves only the embedded default, where publishers and consumers share one process.
    """
    global _log
    if _log is None:
        with _log_lock:
            if _log is None:
                url = settings.REDIS_URL
                if url:
                    prefix = settings.CHANNEL_LAYERS["default"].get("CONFIG", {}).get("prefix", "odum")
                    _log = RedisStreamLog(url, prefix)
                else:
                    _log = MemoryStreamLog()
    return _log


def set_stream_log(log: StreamLog | None) -> StreamLog | None:
    """Replace the process's stream log (None: rebuild from settings on next use); return the old one.

    For tests. Forgets the streams marked by failed publications.
    """
    global _log
    with _log_lock:
        previous, _log = _log, log
        _failed_streams.clear()
    return previous


def order_streams(strategy_id: str) -> tuple[str, str]:
    """Return the streams a change of an order of ``strategy_id`` is numbered in: all, then its strategy's."""
    return ORDERS_GROUP, strategy_group(strategy_id)


def _maxlen() -> int:
    return int(settings.ODUM.get("ORDER_STREAM_MAXLEN", DEFAULT_MAXLEN))


def _rows_of(order_ids: list[str], given: Mapping) -> dict[str, tuple[list[int], list[int]]]:
    rows: dict[str, tuple[list[int], list[int]]] = {pk: ([], []) for pk in order_ids}
    missing = [pk for pk in order_ids if pk not in given]
    for pk in order_ids:
        if pk in given:
            events, fills = given[pk]
            rows[pk] = (sorted(events), sorted(fills))
    if missing:
        for order_id, pk, is_fill in _row_ids_of(missing):
            rows[str(uuid.UUID(str(order_id)))][1 if is_fill else 0].append(pk)
        for events, fills in rows.values():
            events.sort()
            fills.sort()
    return rows


def _row_ids_of(order_ids: list[str]) -> list[tuple]:
    # (order id, row id, is a fill) of every OrderEvent and Fill of the orders, in one statement
    # the ORM need not compile: the trading worker's publisher runs this for each publication,
    # and compiling the two value queries cost it ~1 ms of CPU per order (py-spy, e2e_latency).
    # PostgreSQL takes the ids as one array (the same statement every time, so it is prepared).
    connection = connections[DEFAULT_DB_ALIAS]
    quote, pk = connection.ops.quote_name, Order._meta.pk
    values = [pk.get_db_prep_value(uuid.UUID(str(order_id)), connection) for order_id in order_ids]
    if connection.vendor == "postgresql":
        where, params = "= ANY(%s)", [values]
    else:
        where, params = f"IN ({', '.join(['%s'] * len(values))})", values
    selects = []
    for model, flag in ((OrderEvent, 0), (Fill, 1)):
        order_id = quote(model._meta.get_field("order").column)
        selects.append(f"SELECT {order_id}, {quote(model._meta.pk.column)}, {flag} "
                       f"FROM {quote(model._meta.db_table)} WHERE {order_id} {where}")
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(selects), params * 2)
        return cursor.fetchall()


def publish_orders_updated(orders: Mapping[uuid.UUID, str], *,
                           new_rows: Mapping[uuid.UUID, tuple[Sequence[int], Sequence[int]]] | None = None) -> None:
    """Number, log and send one change per order to the streams ``orders`` and ``strategy.<id>``.

    Call after commit (``transaction.on_commit``). For each order: claim its ``OrderEvent`` and
    ``Fill`` ids not published before, append a :class:`StreamEntry` to both streams (the next
    number of each) and send ``entry.to_message()`` to the stream's channel-layer group.

    Never raises: the data is committed, only the push can be lost. A failed read or append is
    logged and marks the order's streams, whose counters this process restarts before its next
    publication (so resumes across the loss are told to take a snapshot); a failed group send is
    logged only (the entry is in the log, and the next message's number shows the hole to the
    consumer, which reads it from the log).

    Parameters
    ----------
    orders : Mapping[uuid.UUID, str]
        Order id → strategy id of every order the committed transaction changed.
    new_rows : Mapping[uuid.UUID, tuple[Sequence[int], Sequence[int]]] | None
        Order id → (``OrderEvent`` ids, ``Fill`` ids) the caller knows to be the order's only
        unpublished rows (e.g. a new order's events, from ``order_submit``); spares the look-up.
        Orders not named here are looked up (two queries for all of them).
    """
    if not orders:
        return
    ids = {str(pk): strategy_id for pk, strategy_id in orders.items()}
    given = {str(pk): rows for pk, rows in (new_rows or {}).items()}
    try:
        log = stream_log()
        _restart_failed_streams(log)
        rows = _rows_of(list(ids), given)
    except Exception:  # noqa: BLE001 - after commit: log, never raise
        logger.exception("order stream: publication of %s failed before numbering; streams marked for restart",
                         sorted(ids))
        _mark_failed(stream for strategy_id in ids.values() for stream in order_streams(strategy_id))
        return
    maxlen = _maxlen()
    entries: list[StreamEntry] = []
    for order_id, strategy_id in ids.items():
        streams = order_streams(strategy_id)
        events, fills = rows[order_id]
        try:
            entries.extend(log.append(streams=streams, order_id=order_id, strategy_id=strategy_id,
                                      event_ids=events, fill_ids=fills, maxlen=maxlen))
        except Exception:  # noqa: BLE001 - one failed order must not starve the others
            logger.exception("order stream: append of order %s failed; streams %s marked for restart",
                             order_id, streams)
            _mark_failed(streams)
    if entries:
        _send(entries)


def _mark_failed(streams: Iterable[str]) -> None:
    with _log_lock:
        _failed_streams.update(streams)


def _restart_failed_streams(log: StreamLog) -> None:
    with _log_lock:
        failed = set(_failed_streams)
    if not failed:
        return
    log.restart(sorted(failed))  # raises while the log is still down: the marks stay
    with _log_lock:
        _failed_streams.difference_update(failed)
    logger.warning("order stream: counters of %s restarted after a failed publication", sorted(failed))


def _send(entries: list[StreamEntry]) -> None:
    try:
        layer = get_channel_layer()
        if layer is None:
            return

        by_stream: dict[str, list[StreamEntry]] = {}
        for entry in entries:
            by_stream.setdefault(entry.stream, []).append(entry)

        async def send_stream(target, stream_entries: list[StreamEntry]) -> None:
            for entry in stream_entries:  # in number order: a group sees its stream's entries in order
                try:
                    await target.group_send(entry.stream, entry.to_message())
                except Exception:  # noqa: BLE001 - one failed group must not starve the others
                    logger.exception("publish of order %s to group %s failed", entry.order_id, entry.stream)

        async def send_all(target) -> None:
            # The streams' groups at once: an order's change goes to two streams (``orders``,
            # ``strategy.<id>``), so their round trips overlap.
            await asyncio.gather(*(send_stream(target, stream_entries) for stream_entries in by_stream.values()))

        run_on_layer(layer, send_all)
    except Exception:  # noqa: BLE001 - after commit: log, never raise
        logger.exception("publish of orders.updated for %s failed", sorted({e.order_id for e in entries}))


# --- reading the stream -----------------------------------------------------------------------

def order_stream_head(*, stream: str) -> int:
    """Return the last number assigned in ``stream``; a snapshot read after this covers it.

    Raises
    ------
    StreamUnavailable
        The Redis log did not answer.
    """
    return stream_log().head(stream)


def order_stream_after(*, stream: str, after: int) -> list[StreamEntry] | None:
    """Return every entry of ``stream`` numbered above ``after``, or None when that is impossible.

    None when ``after`` is ahead of the stream (another stream's number, or one from before the
    counter started over) or when an entry between ``after`` and the head is missing (trimmed
    from the log, or a hole where the counter started over). The caller then takes a fresh
    snapshot. Entries appended while reading may follow the head; they are returned too.

    Parameters
    ----------
    stream : str
        ``"orders"`` or ``"strategy.<id>"``.
    after : int
        The last number the reader has (≥ 0).

    Raises
    ------
    StreamUnavailable
        The Redis log did not answer.
    """
    log = stream_log()
    head = log.head(stream)  # first: every number up to it is logged (or trimmed) by now
    if after > head:
        return None
    entries = log.read_after(stream, after)
    expected = after + 1
    for entry in entries:  # those appended since the head too: a counter started over meanwhile is a hole
        if entry.seq != expected:
            return None
        expected += 1
    if expected - 1 < head:
        return None
    return entries


# --- subscriptions and the reads behind them --------------------------------------------------

class StreamForbidden(Exception):
    """The caller may not subscribe to what it asked for (WebSocket close code 4403)."""


@dataclass(frozen=True, slots=True)
class Subscription:
    """What one WebSocket subscriber receives.

    Attributes
    ----------
    stream : str
        ``"strategy.<id>"`` when the subscription is to one strategy (a strategy token, or a
        ``strategy`` filter), else ``"orders"``.
    strategy_id, instrument, venue : str | None
        The filters (None: any). ``instrument`` matches the requested key or the routed listing.
    visible_strategy_ids : frozenset[str] | None
        The caller's scope (:class:`orders.selectors.OrderAccess`); None = every strategy.
    """

    stream: str
    strategy_id: str | None = None
    instrument: str | None = None
    venue: str | None = None
    visible_strategy_ids: frozenset[str] | None = None

    def sees(self, strategy_id: str) -> bool:
        """Return whether changes of ``strategy_id``'s orders are in scope and pass the strategy filter."""
        if self.strategy_id is not None and strategy_id != self.strategy_id:
            return False
        return self.visible_strategy_ids is None or strategy_id in self.visible_strategy_ids

    def matches(self, *, venue: str, instrument_key: str, routed_instrument_key: str) -> bool:
        """Return whether an order with these fields passes the instrument and venue filters."""
        if self.venue is not None and venue != self.venue:
            return False
        return self.instrument is None or self.instrument in (instrument_key, routed_instrument_key)

    def filters(self) -> dict:
        """Return the filters as JSON (``{"strategy", "instrument", "venue"}``, null = any)."""
        return {"strategy": self.strategy_id, "instrument": self.instrument, "venue": self.venue}


def order_stream_subscribe(*, access: OrderAccess, strategy_id: str | None = None, instrument: str | None = None,
                           venue: str | None = None) -> Subscription:
    """Resolve what ``access`` may subscribe to with these filters (rules of :mod:`orders.selectors`).

    - A strategy service token gets its own strategy's stream; naming another strategy is forbidden.
    - A person with ``orders.view_order`` may take every order or name any existing strategy.
    - Another person gets the strategies they trade (``Strategy.traders``); naming another
      strategy — or a strategy that does not exist, so ids cannot be probed — is forbidden, and so
      is subscribing with no strategy visible at all.

    Parameters
    ----------
    access : OrderAccess
        The caller's scope (:func:`orders.selectors.order_access_for`).
    strategy_id, instrument, venue : str | None
        Filters, validated by the caller (slug, canonical instrument key, venue code).

    Returns
    -------
    Subscription

    Raises
    ------
    StreamForbidden
        As above.
    orders.selectors.StrategyNotFound
        A person allowed to see every strategy named one that does not exist.
    """
    own = access.service_strategy
    visible = access.visible_strategy_ids
    if own is not None:
        if strategy_id and strategy_id != own.id:
            raise StreamForbidden(f"this token is bound to strategy {own.id!r}; it cannot subscribe to strategy "
                                  f"{strategy_id!r}")
        strategy_id = own.id
    elif strategy_id:
        if visible is None:
            if not Strategy.objects.filter(pk=strategy_id).exists():
                raise StrategyNotFound(strategy_id=strategy_id)
        elif strategy_id not in visible:
            raise StreamForbidden(f"you may not see strategy {strategy_id!r}: you are not one of its traders and "
                                  "lack the permission orders.view_order")
    elif visible is not None and not visible:
        raise StreamForbidden("you may see no strategy: you trade none and lack the permission orders.view_order")
    stream = strategy_group(strategy_id) if strategy_id else ORDERS_GROUP
    return Subscription(stream=stream, strategy_id=strategy_id or None, instrument=instrument or None,
                        venue=venue or None, visible_strategy_ids=visible)


def order_stream_open_orders(*, access: OrderAccess, subscription: Subscription) -> QuerySet[Order]:
    """Return the open orders a subscription shows, for its snapshot.

    Parameters
    ----------
    access : OrderAccess
        The caller's scope (``orders.selectors.order_list`` applies it).
    subscription : Subscription
        Its strategy, instrument (requested key or routed listing, as ``GET /api/orders``) and
        venue filters.

    Returns
    -------
    QuerySet[Order]
        Orders in ``orders.state.OPEN_STATUSES``, newest first, fills prefetched.
    """
    qs = order_list(access=access).filter(status__in=OPEN_STATUSES)
    if subscription.strategy_id:
        qs = qs.filter(strategy_id=subscription.strategy_id)
    if subscription.instrument:
        qs = qs.filter(Q(instrument_key=subscription.instrument) | Q(routed_instrument_key=subscription.instrument))
    if subscription.venue:
        qs = qs.filter(venue=subscription.venue)
    return qs


def order_stream_positions(*, subscription: Subscription) -> list[InstrumentPosition]:
    """Return the positions a subscription shows, for its snapshot.

    Its scope and strategy filter apply; an ``ANY:`` instrument filter takes the instrument across
    venues, another key the one listing. The venue filter applies to orders only (a position is
    shown with its whole venue breakdown).

    Returns
    -------
    list[InstrumentPosition]
        ``positions.selectors.position_aggregates``: signed quantities in base units, prices in quote
        currency, PnL and fees in their ``pnl_currency`` (the settlement coin for inverse contracts); by
        equivalence key.
    """
    equivalence_key = instrument_key = None
    if subscription.instrument:
        if subscription.instrument.startswith("ANY:"):
            equivalence_key = subscription.instrument.removeprefix("ANY:")
        else:
            instrument_key = subscription.instrument
    return position_aggregates(strategy_ids=subscription.visible_strategy_ids, strategy_id=subscription.strategy_id,
                               equivalence_key=equivalence_key, instrument_key=instrument_key)


@dataclass(frozen=True, slots=True)
class OrderChange:
    """The rows behind one :class:`StreamEntry`, read now.

    Attributes
    ----------
    order : Order
        Its current state, fills prefetched (``order.fills.all()``).
    events : list[OrderEvent]
        The entry's timeline entries, by time.
    fills : list[Fill]
        The entry's fills, by time.
    position : InstrumentPosition | None
        With fills: the order's strategy's position in the listing it was routed to, now.
    """

    order: Order
    events: list[OrderEvent]
    fills: list[Fill]
    position: InstrumentPosition | None


_EVERY_STRATEGY = OrderAccess(user=None, service_strategy=None, visible_strategy_ids=None)


def order_stream_change(*, entry: StreamEntry) -> OrderChange | None:
    """Read the order, timeline entries, fills and position of ``entry`` as they are now.

    Not scoped: the caller checks ``Subscription.sees(entry.strategy_id)`` first. Three queries
    (order, its fills, the entry's events) plus the position's when the entry has fills.

    Parameters
    ----------
    entry : StreamEntry
        The change: order id and the ids of its timeline entries and fills.

    Returns
    -------
    OrderChange | None
        None when the order does not exist (any more).
    """
    order = (order_list(access=_EVERY_STRATEGY)
             .prefetch_related(Prefetch("events", queryset=OrderEvent.objects.filter(pk__in=entry.event_ids)
                                        .order_by("ts", "id"), to_attr="stream_events"))
             .filter(pk=entry.order_id).first())
    if order is None:
        return None
    wanted = set(entry.fill_ids)
    fills = [fill for fill in order.fills.all() if fill.pk in wanted]
    position = None
    if fills and order.routed_instrument_key:
        found = position_aggregates(strategy_ids=[order.strategy_id], instrument_key=order.routed_instrument_key)
        position = found[0] if found else None
    return OrderChange(order=order, events=list(order.stream_events), fills=fills, position=position)
