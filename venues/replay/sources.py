"""Readers for recorded market-data files, one per format, and the venue-config entry point.

Every reader streams records in time order (non-decreasing ``ts``) and raises
:class:`~venues.replay.errors.ReplayDataError` naming the file, the line/row and the field for
malformed input: a missing column, an empty or non-numeric value, a negative size, time going
backwards. No row is skipped silently; the only rows a reader drops are those a venue's own rule
says to drop (Binance depth events older than the snapshot), and those are counted in a
:class:`SkipReport`.

Formats (``format`` key of a venue config entry → reader, record kind):

==================================  ======================================  ======
format                              reader                                  kind
==================================  ======================================  ======
``binance_quotes_parquet``          :func:`read_binance_quotes_parquet`     quotes
``binance_trades_parquet``          :func:`read_binance_trades_parquet`     trades
``binance_depth_csv``               :func:`read_binance_depth_csv`          book
``tardis_book_snapshot_csv``        :func:`read_tardis_book_snapshot_csv`   book
``tardis_incremental_book_l2_csv``  :func:`read_tardis_incremental_book_l2_csv`  book
``tardis_trades_csv``               :func:`read_tardis_trades_csv`          trades
``bars_csv``                        :func:`read_bars_csv`                   bars
==================================  ======================================  ======

Float sources: the Binance parquet files store prices and sizes as IEEE doubles (pandas
``float64``), so some sizes carry binary noise (``0.00031099999999999997`` for 0.000311). Values
are converted with ``Decimal(str(value))``; give ``price_precision`` / ``size_precision`` (the
instrument's decimals, e.g. 2 and 6 for Binance BTCUSDT per ``binance_spot_btcusdt_instrument.txt``)
to round them back to the instrument's grid. Rounding that would move a value by more than float
noise (1e-9 relative) is refused as a :class:`ReplayDataError`, so a wrong precision cannot
silently truncate real data. CSV sources hold decimal text and are parsed exactly; given
``price_precision`` / ``size_precision``, a CSV value with more significant decimals than that
(``20377.005`` at precision 2) is refused as a :class:`ReplayDataError` naming file, line and
field, never rounded (trailing zeros do not count: ``46319.0`` fits precision 0). The replay data
client passes its instrument's precisions to every source, so a recording finer than the
instrument fails at the row that is too fine rather than deep inside NautilusTrader.

The one deliberate exception is opt-in: a ``bars_csv`` source with ``"price_rounding": "half_even"``
moves each price to the nearest multiple of the instrument's tick (ties to even) and counts every
moved value in its :class:`SkipReport` (``rounded_prices``, ``max_price_adjustment``); see
:func:`read_bars_csv` for why the shared futures bars need it.
"""

from __future__ import annotations

import csv
import heapq
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from venues.marketdata import BookLevel
from venues.replay.errors import ReplayDataError, ReplayFileNotFound
from venues.replay.records import (
    BarRecord,
    BookDeltaRecord,
    BookRecord,
    QuoteRecord,
    Record,
    TradeRecord,
    aggressor_from_buyer_maker,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FLOAT_NOISE = Decimal("1e-9")


@dataclass
class SkipReport:
    """What a reader dropped or changed on purpose, for the caller to log or expose.

    Attributes
    ----------
    dropped_events : int
        Venue update events dropped (each may span several rows).
    dropped_rows : int
        File rows belonging to those events.
    reasons : list[str]
        One human-readable line per dropped event (file, line, ids, rule).
    rounded_prices : int
        Prices moved onto the instrument's tick (``price_rounding="half_even"``), counted per value
        (a bar's open, high, low and close count separately).
    max_price_adjustment : Decimal
        Largest absolute move of one of those prices, quote currency (at most half a tick).
    """

    dropped_events: int = 0
    dropped_rows: int = 0
    reasons: list[str] = field(default_factory=list)
    rounded_prices: int = 0
    max_price_adjustment: Decimal = Decimal(0)

    def drop(self, rows: int, reason: str) -> None:
        """Count one dropped event of ``rows`` rows for ``reason``."""
        self.dropped_events += 1
        self.dropped_rows += rows
        self.reasons.append(reason)

    def rounded(self, adjustment: Decimal) -> None:
        """Count one price moved by ``adjustment`` (quote currency) onto the tick."""
        self.rounded_prices += 1
        self.max_price_adjustment = max(self.max_price_adjustment, abs(adjustment))


# ---------------------------------------------------------------------------------------------
# value parsing helpers: each raises ReplayDataError naming path, location and field


def _dec_text(text: str | None, *, path: Path, where: str, name: str, places: int | None = None) -> Decimal:
    if text is None or text.strip() == "":
        raise ReplayDataError("empty value", path=path, location=where, field=name)
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ReplayDataError(f"not a decimal number: {text!r}", path=path, location=where, field=name) from None
    if not value.is_finite():
        raise ReplayDataError(f"not a finite number: {text!r}", path=path, location=where, field=name)
    if places is not None and decimals(value) > places:
        raise ReplayDataError(
            f"{text.strip()} has {decimals(value)} decimals, more than the configured precision {places}: "
            "refusing to round recorded data (check the instrument's precision)",
            path=path, location=where, field=name,
        )
    return value


def decimals(value: Decimal) -> int:
    """Return the number of significant decimals of ``value`` (``Decimal("20377.50")`` → 1, ``Decimal("5E+1")`` → 0)."""
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _dec_float(value: Any, *, path: Path, where: str, name: str, places: int | None) -> Decimal:
    if value is None:
        raise ReplayDataError("null value", path=path, location=where, field=name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ReplayDataError(f"not a number: {value!r}", path=path, location=where, field=name)
    if isinstance(value, float) and not math.isfinite(value):
        raise ReplayDataError(f"not a finite number: {value!r}", path=path, location=where, field=name)
    exact = Decimal(str(value))  # the recorded source is a float64: str() gives its shortest repr
    if places is None:
        return exact
    rounded = exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
    if abs(rounded - exact) > _FLOAT_NOISE * max(Decimal(1), abs(exact)):
        raise ReplayDataError(
            f"{exact} is not on a {places}-decimal grid (rounding would give {rounded}): "
            "check the configured precision",
            path=path, location=where, field=name,
        )
    return rounded


PRICE_ROUNDING = ("refuse", "half_even")


def round_to_tick(value: Decimal, tick: Decimal) -> Decimal:
    """Return ``value`` moved to the nearest multiple of ``tick``, ties to the even multiple.

    ``round_to_tick(Decimal("46377.05"), Decimal("0.1"))`` → ``46377.0``; ``46377.15`` → ``46377.2``;
    ``46377.149`` → ``46377.1``. The result carries the tick's exponent (``0.1`` → one decimal).

    Raises
    ------
    ValueError
        ``tick`` is not positive.
    """
    if tick <= 0:
        raise ValueError(f"tick must be > 0, got {tick}")
    steps = (value / tick).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
    return (steps * tick).quantize(tick)


def _int_text(text: str | None, *, path: Path, where: str, name: str) -> int:
    if text is None or not re.fullmatch(r"\s*-?\d+\s*", text):
        raise ReplayDataError(f"not an integer: {text!r}", path=path, location=where, field=name)
    return int(text)


def _epoch(units: int, per_second: int) -> datetime:
    return _EPOCH + timedelta(microseconds=units * (1_000_000 // per_second))


def _check_order(prev: datetime | None, ts: datetime, *, path: Path, where: str, name: str) -> datetime:
    if prev is not None and ts < prev:
        raise ReplayDataError(
            f"time goes backwards: {ts.isoformat()} after {prev.isoformat()}",
            path=path, location=where, field=name,
        )
    return ts


def _record(build: Callable[[], Record], *, path: Path, where: str) -> Record:
    # Records validate themselves (ordering of levels, negative sizes, OHLC consistency).
    try:
        return build()
    except (TypeError, ValueError) as exc:
        raise ReplayDataError(str(exc), path=path, location=where) from None


def _open_csv(path: Path, required: Iterable[str]) -> tuple[Any, csv.DictReader]:
    handle = path.open(newline="", encoding="utf-8")
    reader = csv.DictReader(handle)
    header = reader.fieldnames or []
    missing = [c for c in required if c not in header]
    if missing:
        handle.close()
        raise ReplayDataError(
            f"missing column(s) {missing}; header is {header}", path=path, location="line 1", field=missing[0]
        )
    return handle, reader


def _csv_rows(path: Path, required: Iterable[str]) -> Iterator[tuple[str, dict[str, str]]]:
    handle, reader = _open_csv(path, required)
    with handle:
        for row in reader:
            where = f"line {reader.line_num}"
            if None in row:  # more cells than header columns
                raise ReplayDataError(f"{len(row[None])} cell(s) beyond the header", path=path, location=where)
            if any(v is None for v in row.values()):
                raise ReplayDataError("fewer cells than header columns", path=path, location=where)
            yield where, row


# ---------------------------------------------------------------------------------------------
# Binance parquet (quotes and trades)


def _parquet_rows(path: Path, required: Mapping[str, Callable[[Any], bool]]) -> Iterator[tuple[str, dict]]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid/OSError for a non-parquet file
        raise ReplayDataError(f"not a readable parquet file: {exc}", path=path) from None
    schema = parquet.schema_arrow
    for name, type_ok in required.items():
        if name not in schema.names:
            raise ReplayDataError(f"missing column; schema is {schema.names}", path=path, field=name)
        if not type_ok(schema.field(name).type):
            raise ReplayDataError(f"unexpected type {schema.field(name).type}", path=path, field=name)
    row_no = 0
    for batch in parquet.iter_batches(columns=list(required)):
        for row in batch.to_pylist():
            row_no += 1
            yield f"row {row_no}", row


def _timestamp_type(t) -> bool:
    import pyarrow.types as pat

    return pat.is_timestamp(t)


def _number_type(t) -> bool:
    import pyarrow.types as pat

    return pat.is_floating(t) or pat.is_integer(t)


def _parquet_ts(value: Any, *, path: Path, where: str, name: str) -> datetime:
    if value is None:
        raise ReplayDataError("null timestamp", path=path, location=where, field=name)
    if value.tzinfo is None:
        # A timestamp column without a time zone: refuse rather than guess local time.
        raise ReplayDataError("timestamp has no time zone", path=path, location=where, field=name)
    return value.astimezone(UTC)


def read_binance_quotes_parquet(
    path: Path, *, price_precision: int | None = None, size_precision: int | None = None
) -> Iterator[QuoteRecord]:
    """Stream Binance top-of-book quotes from parquet.

    Schema (as found in ``binance_spot_btcusdt_quotes_2021-01-08.parquet``): ``timestamp``
    (``timestamp[ms, tz=UTC]``), ``symbol`` (string, ``"BTC/USDT"``), ``ask_size``, ``ask``,
    ``bid_size``, ``bid`` (``double``). ``symbol`` is not read: the venue config names the
    instrument.

    Parameters
    ----------
    path : Path
        The parquet file.
    price_precision, size_precision : int, optional
        Decimals to round the float64 prices (quote currency) and sizes (base units) to; see the
        module docstring.

    Yields
    ------
    QuoteRecord
        In file order, which must be non-decreasing in time.

    Raises
    ------
    ReplayDataError
        Unreadable file, missing/mistyped column, null or non-finite value, non-positive price,
        negative size, value off the configured grid, time going backwards.
    """
    cols = {"timestamp": _timestamp_type, "bid": _number_type, "ask": _number_type,
            "bid_size": _number_type, "ask_size": _number_type}
    prev = None
    for where, row in _parquet_rows(path, cols):
        ts = _parquet_ts(row["timestamp"], path=path, where=where, name="timestamp")
        prev = _check_order(prev, ts, path=path, where=where, name="timestamp")
        values = {
            name: _dec_float(row[name], path=path, where=where, name=name,
                             places=price_precision if name in ("bid", "ask") else size_precision)
            for name in ("bid", "ask", "bid_size", "ask_size")
        }
        yield _record(lambda: QuoteRecord(ts=ts, **values), path=path, where=where)


def read_binance_trades_parquet(
    path: Path, *, price_precision: int | None = None, size_precision: int | None = None
) -> Iterator[TradeRecord]:
    """Stream Binance trades from parquet.

    Schema (as found in ``binance_spot_btcusdt_trades_2021-01-08.parquet``): ``timestamp``
    (``timestamp[ms, tz=UTC]``), ``trade_id`` (``int64``), ``price``, ``quantity`` (``double``),
    ``buyer_maker`` (string ``"True"`` / ``"False"``; Binance's ``isBuyerMaker``, mapped to the
    aggressor side by :func:`~venues.replay.records.aggressor_from_buyer_maker`).

    Parameters
    ----------
    path : Path
        The parquet file.
    price_precision, size_precision : int, optional
        Decimals to round the float64 price (quote currency) and quantity (base units) to.

    Yields
    ------
    TradeRecord
        In file order, which must be non-decreasing in time.

    Raises
    ------
    ReplayDataError
        As :func:`read_binance_quotes_parquet`; also a ``buyer_maker`` other than True/False and a
        null ``trade_id``.
    """
    import pyarrow.types as pat

    cols = {"timestamp": _timestamp_type, "trade_id": pat.is_integer, "price": _number_type,
            "quantity": _number_type, "buyer_maker": lambda t: pat.is_string(t) or pat.is_boolean(t)}
    flags = {"true": True, "false": False}
    prev = None
    for where, row in _parquet_rows(path, cols):
        ts = _parquet_ts(row["timestamp"], path=path, where=where, name="timestamp")
        prev = _check_order(prev, ts, path=path, where=where, name="timestamp")
        raw_flag = row["buyer_maker"]
        flag = raw_flag if isinstance(raw_flag, bool) else flags.get(str(raw_flag).strip().lower())
        if flag is None:
            raise ReplayDataError(f"expected True/False, got {raw_flag!r}", path=path, location=where,
                                  field="buyer_maker")
        if row["trade_id"] is None:
            raise ReplayDataError("null trade id", path=path, location=where, field="trade_id")
        price = _dec_float(row["price"], path=path, where=where, name="price", places=price_precision)
        size = _dec_float(row["quantity"], path=path, where=where, name="quantity", places=size_precision)
        yield _record(
            lambda: TradeRecord(ts=ts, price=price, size=size, aggressor_side=aggressor_from_buyer_maker(flag),
                                trade_id=str(row["trade_id"])),
            path=path, where=where,
        )


# ---------------------------------------------------------------------------------------------
# order books


class LocalBook:
    """An L2 order book as price → size maps per side, maintained from snapshots and deltas.

    Prices in quote currency, sizes in base units (contracts for derivatives); a size of 0 removes
    the level. Used by the book readers and by the replay data client (which keeps the replayed
    book so that a late subscriber can be sent a snapshot first).
    """

    def __init__(self) -> None:
        self.bids: dict[Decimal, Decimal] = {}
        self.asks: dict[Decimal, Decimal] = {}

    def clear(self) -> None:
        """Remove every level of both sides."""
        self.bids.clear()
        self.asks.clear()

    def apply(self, side: str, price: Decimal, size: Decimal) -> None:
        """Set the level ``price`` of ``side`` (``"BID"`` / ``"ASK"``) to ``size``; 0 removes it."""
        levels = self.bids if side == "BID" else self.asks
        if size == 0:
            # Binance: "Receiving an event that removes a price level that is not in your local
            # order book can happen and is normal." Same for Tardis deltas.
            levels.pop(price, None)
        else:
            levels[price] = size

    def load(self, record: BookRecord) -> None:
        """Replace the whole book by the snapshot ``record``."""
        self.clear()
        for level in record.bids:
            self.bids[level.price] = level.size
        for level in record.asks:
            self.asks[level.price] = level.size

    def record(self, ts: datetime, depth: int | None = None) -> BookRecord:
        """Return the book as a :class:`BookRecord` stamped ``ts``, best first, at most ``depth`` levels a side."""
        if depth is None:
            bids, asks = sorted(self.bids, reverse=True), sorted(self.asks)
        else:
            bids, asks = heapq.nlargest(depth, self.bids), heapq.nsmallest(depth, self.asks)
        return BookRecord(
            ts=ts,
            bids=tuple(BookLevel(p, self.bids[p]) for p in bids),
            asks=tuple(BookLevel(p, self.asks[p]) for p in asks),
        )


_BINANCE_DEPTH_COLS = ("timestamp", "first_update_id", "last_update_id", "side", "update_type", "price", "qty", "pu")
_BINANCE_SIDES = {"b": "BID", "a": "ASK"}


@dataclass
class _DepthEvent:
    where: str  # location of its first row
    ts: datetime
    first_id: int  # U
    last_id: int  # u
    prev_last_id: int  # pu (-1 when absent: spot stream)
    rows: list[tuple[str, Decimal, Decimal, str]]  # side, price, size, location


def _binance_depth_events(path: Path, update_type: str, places: tuple[int | None, int | None]) -> Iterator[_DepthEvent]:
    event: _DepthEvent | None = None
    prev_ts = None
    for where, row in _csv_rows(path, _BINANCE_DEPTH_COLS):
        ts = _epoch(_int_text(row["timestamp"], path=path, where=where, name="timestamp"), 1000)
        prev_ts = _check_order(prev_ts, ts, path=path, where=where, name="timestamp")
        ids = tuple(_int_text(row[n], path=path, where=where, name=n) for n in ("first_update_id", "last_update_id", "pu"))
        side = _BINANCE_SIDES.get(row["side"].strip())
        if side is None:
            raise ReplayDataError(f"expected 'b' or 'a', got {row['side']!r}", path=path, location=where, field="side")
        if row["update_type"].strip() != update_type:
            raise ReplayDataError(f"expected {update_type!r}, got {row['update_type']!r}", path=path,
                                  location=where, field="update_type")
        price = _dec_text(row["price"], path=path, where=where, name="price", places=places[0])
        size = _dec_text(row["qty"], path=path, where=where, name="qty", places=places[1])
        if price <= 0:
            raise ReplayDataError(f"price must be > 0, got {price}", path=path, location=where, field="price")
        if size < 0:
            raise ReplayDataError(f"qty must be >= 0, got {size}", path=path, location=where, field="qty")
        if event is not None and (event.first_id, event.last_id, event.prev_last_id) == ids:
            if ts != event.ts:
                raise ReplayDataError("rows of one update event carry different timestamps", path=path,
                                      location=where, field="timestamp")
            event.rows.append((side, price, size, where))
            continue
        if event is not None:
            yield event
        if ids[0] > ids[1]:
            raise ReplayDataError(f"first_update_id {ids[0]} > last_update_id {ids[1]}", path=path,
                                  location=where, field="first_update_id")
        event = _DepthEvent(where, ts, ids[0], ids[1], ids[2], [(side, price, size, where)])
    if event is not None:
        yield event


def read_binance_depth_csv(
    snapshot_path: Path,
    updates_path: Path | None = None,
    *,
    emit: str = "books",
    on_gap: str = "raise",
    report: SkipReport | None = None,
    price_precision: int | None = None,
    size_precision: int | None = None,
) -> Iterator[BookRecord | BookDeltaRecord]:
    """Build a Binance order book from a depth snapshot plus diff-depth updates.

    Schema of both files (as found in ``binance_spot_btcusdt_depth_snapshot.csv`` /
    ``_depth_updates.csv``): ``symbol, timestamp`` (epoch milliseconds), ``first_update_id`` (U),
    ``last_update_id`` (u), ``side`` (``b`` / ``a``), ``update_type`` (``snap`` in the snapshot,
    ``set`` in updates), ``price``, ``qty`` (decimal text; ``qty`` is the level's new absolute
    size, 0 = remove), ``pu`` (previous event's u; ``-1`` in the snapshot). Consecutive rows with
    the same (U, u, pu) form one venue event. The snapshot's ``last_update_id`` is the REST
    snapshot's ``lastUpdateId``.

    Sequencing follows Binance's "How to manage a local order book correctly":

    - events carrying ``pu`` (USD-M futures stream; the shared file has it): drop events with
      ``u < lastUpdateId``; the first applied event must have ``U <= lastUpdateId <= u``; each later
      event's ``pu`` must equal the previous event's ``u``
      (https://developers.binance.com/docs/derivatives/usds-margined-futures/websocket-market-streams/How-to-manage-a-local-order-book-correctly);
    - events without ``pu`` (``pu == -1``, spot stream): drop events with ``u <= lastUpdateId``;
      the first applied event must have ``U <= lastUpdateId + 1 <= u``; each later event's ``U``
      must equal the previous ``u + 1``
      (https://developers.binance.com/docs/binance-spot-api-docs/web-socket-streams#how-to-manage-a-local-order-book-correctly).

    Events dropped as older than the snapshot are counted in ``report``. A gap is what Binance says
    to answer by fetching a new snapshot; a recording has none to fetch, so ``on_gap="raise"``
    (default) raises, and ``on_gap="skip"`` drops the remaining events of the file, counting them
    in ``report``.

    Parameters
    ----------
    snapshot_path : Path
        Snapshot CSV (all rows ``update_type == "snap"``, one ``last_update_id``).
    updates_path : Path, optional
        Diff-update CSV; without it only the snapshot is yielded.
    emit : {"books", "deltas"}
        ``"books"``: a :class:`BookRecord` of the snapshot, then one after every applied event.
        ``"deltas"``: the snapshot :class:`BookRecord`, then one :class:`BookDeltaRecord` per row
        (``update_id = u``, ``is_last`` on the event's last row).
    on_gap : {"raise", "skip"}
    report : SkipReport, optional
        Receives the counts of dropped events/rows.
    price_precision, size_precision : int, optional
        Most decimals a price (quote currency) / size (base units) may carry; a finer value raises
        (see the module docstring). None: not checked.

    Yields
    ------
    BookRecord | BookDeltaRecord
        Prices in quote currency, sizes in base units, time = the rows' ``timestamp``.

    Raises
    ------
    ReplayDataError
        Malformed rows (named by file, line, field), a snapshot with several ``lastUpdateId``s,
        time going backwards, or — with ``on_gap="raise"`` — a sequence gap (names the event's
        line and its U/u/pu against the expected id).
    """
    if emit not in ("books", "deltas"):
        raise ValueError(f"emit must be 'books' or 'deltas', got {emit!r}")
    if on_gap not in ("raise", "skip"):
        raise ValueError(f"on_gap must be 'raise' or 'skip', got {on_gap!r}")
    report = report if report is not None else SkipReport()
    book = LocalBook()
    places = (price_precision, size_precision)
    snap_events = list(_binance_depth_events(snapshot_path, "snap", places))
    if not snap_events:
        raise ReplayDataError("snapshot file holds no rows", path=snapshot_path)
    if len(snap_events) > 1:
        raise ReplayDataError(
            f"snapshot rows carry several update ids (second set starts at {snap_events[1].where})",
            path=snapshot_path, location=snap_events[1].where, field="last_update_id",
        )
    snap = snap_events[0]
    for side, price, size, where in snap.rows:
        if size == 0:
            raise ReplayDataError("snapshot level with qty 0", path=snapshot_path, location=where, field="qty")
        book.apply(side, price, size)
    last_update_id = snap.last_id
    yield _record(lambda: book.record(snap.ts), path=snapshot_path, where=snap.where)
    if updates_path is None:
        return

    prev_u: int | None = None  # u of the last applied event
    prev_ts = snap.ts
    gapped = False
    for event in _binance_depth_events(updates_path, "set", places):
        futures = event.prev_last_id != -1
        where = f"{event.where} (U={event.first_id} u={event.last_id} pu={event.prev_last_id})"
        if gapped:
            report.drop(len(event.rows), f"{updates_path}: {where}: after a sequence gap")
            continue
        if prev_u is None:
            stale = event.last_id < last_update_id if futures else event.last_id <= last_update_id
            if stale:
                report.drop(len(event.rows), f"{updates_path}: {where}: older than snapshot lastUpdateId={last_update_id}")
                continue
            target = last_update_id if futures else last_update_id + 1
            ok = event.first_id <= target <= event.last_id
            expected = f"U <= {target} <= u (snapshot lastUpdateId={last_update_id})"
        else:
            ok = event.prev_last_id == prev_u if futures else event.first_id == prev_u + 1
            expected = f"pu == {prev_u}" if futures else f"U == {prev_u + 1}"
        if not ok:
            message = f"sequence gap: expected {expected}, got U={event.first_id} u={event.last_id} pu={event.prev_last_id}"
            if on_gap == "raise":
                raise ReplayDataError(message, path=updates_path, location=event.where, field="first_update_id")
            gapped = True
            report.drop(len(event.rows), f"{updates_path}: {event.where}: {message}")
            continue
        if event.ts < prev_ts:
            raise ReplayDataError(f"event time {event.ts.isoformat()} before the book's {prev_ts.isoformat()}",
                                  path=updates_path, location=event.where, field="timestamp")
        prev_ts = event.ts
        prev_u = event.last_id
        for i, (side, price, size, row_where) in enumerate(event.rows):
            book.apply(side, price, size)
            if emit == "deltas":
                yield _record(
                    lambda: BookDeltaRecord(ts=event.ts, side=side, price=price, size=size,
                                            update_id=event.last_id, is_last=i == len(event.rows) - 1),
                    path=updates_path, where=row_where,
                )
        if emit == "books":
            yield _record(lambda: book.record(event.ts), path=updates_path, where=event.where)


_TARDIS_TS = ("timestamp", "local_timestamp")


def _tardis_ts(row: dict, name: str, *, path: Path, where: str) -> datetime:
    if name not in _TARDIS_TS:
        raise ValueError(f"timestamp_field must be one of {_TARDIS_TS}, got {name!r}")
    return _epoch(_int_text(row[name], path=path, where=where, name=name), 1_000_000)


def read_tardis_book_snapshot_csv(
    path: Path,
    *,
    timestamp_field: str = "timestamp",
    price_precision: int | None = None,
    size_precision: int | None = None,
) -> Iterator[BookRecord]:
    """Stream Tardis ``book_snapshot_N`` rows as full books.

    Schema (as found in ``tardis_binance_futures_btcusdt_book_snapshot_5.csv`` / ``_25.csv``):
    ``exchange, symbol, timestamp, local_timestamp`` (epoch microseconds), then per level i,
    ``asks[i].price, asks[i].amount, bids[i].price, bids[i].amount`` for i = 0..N-1, best first.
    Tardis leaves both cells of a level empty when the book had fewer than N levels; such a level
    is absent, and a level with only one cell filled is an error.
    (https://docs.tardis.dev/downloadable-csv-files#book_snapshot_25)

    Parameters
    ----------
    path : Path
    timestamp_field : {"timestamp", "local_timestamp"}
        ``timestamp`` = exchange time (default), ``local_timestamp`` = Tardis's arrival time.
    price_precision, size_precision : int, optional
        Most decimals a price (quote currency) / size (base units) may carry; a finer value raises
        (see the module docstring). None: not checked.

    Yields
    ------
    BookRecord
        Prices in quote currency, sizes in base units (contracts for derivatives).

    Raises
    ------
    ReplayDataError
        Missing columns, no level columns, malformed numbers, a half-empty level, levels not
        ordered best first, time going backwards.
    """
    handle, reader = _open_csv(path, _TARDIS_TS)
    handle.close()
    header = reader.fieldnames or []
    depth = 0
    while f"asks[{depth}].price" in header or f"bids[{depth}].price" in header:
        depth += 1
    if depth == 0:
        raise ReplayDataError("no 'asks[0].price' / 'bids[0].price' columns", path=path, location="line 1")
    required = [f"{s}[{i}].{c}" for i in range(depth) for s in ("asks", "bids") for c in ("price", "amount")]
    prev = None
    for where, row in _csv_rows(path, [*_TARDIS_TS, *required]):
        ts = _tardis_ts(row, timestamp_field, path=path, where=where)
        prev = _check_order(prev, ts, path=path, where=where, name=timestamp_field)
        sides: dict[str, list[BookLevel]] = {"asks": [], "bids": []}
        for side, levels in sides.items():
            for i in range(depth):
                p_name, a_name = f"{side}[{i}].price", f"{side}[{i}].amount"
                p_text, a_text = row[p_name].strip(), row[a_name].strip()
                if not p_text and not a_text:
                    continue
                price = _dec_text(p_text, path=path, where=where, name=p_name, places=price_precision)
                size = _dec_text(a_text, path=path, where=where, name=a_name, places=size_precision)
                levels.append(BookLevel(price, size))
        yield _record(lambda: BookRecord(ts=ts, bids=tuple(sides["bids"]), asks=tuple(sides["asks"])),
                      path=path, where=where)


def read_tardis_incremental_book_l2_csv(
    path: Path,
    *,
    emit: str = "books",
    timestamp_field: str = "timestamp",
    price_precision: int | None = None,
    size_precision: int | None = None,
) -> Iterator[BookRecord | BookDeltaRecord]:
    """Stream a Tardis ``incremental_book_L2`` file.

    Schema (as found in ``tardis_deribit_btc_perpetual_book_l2.csv``): ``exchange, symbol,
    timestamp, local_timestamp`` (epoch microseconds), ``is_snapshot`` (``true`` / ``false``),
    ``side`` (``bid`` / ``ask``), ``price``, ``amount`` (the level's new absolute size; 0 removes
    it; Deribit perpetual amounts are USD contracts). Per Tardis, a run of ``is_snapshot=true``
    rows after delta rows is a new snapshot that replaces the book
    (https://docs.tardis.dev/downloadable-csv-files#incremental_book_l2). One event = consecutive
    rows with the same ``timestamp_field`` and ``is_snapshot``. The shared Deribit file holds only
    an initial snapshot of 15 ask levels (no bids, no deltas).

    Parameters
    ----------
    path : Path
    emit : {"books", "deltas"}
        ``"books"``: a :class:`BookRecord` after every event. ``"deltas"``: a :class:`BookRecord`
        for each snapshot, a :class:`BookDeltaRecord` per delta row (``is_last`` on the event's
        last row).
    timestamp_field : {"timestamp", "local_timestamp"}
    price_precision, size_precision : int, optional
        Most decimals a price (quote currency) / size (base units) may carry; a finer value raises
        (see the module docstring). None: not checked.

    Raises
    ------
    ReplayDataError
        Malformed rows, a delta before any snapshot, time going backwards.
    """
    if emit not in ("books", "deltas"):
        raise ValueError(f"emit must be 'books' or 'deltas', got {emit!r}")
    sides = {"bid": "BID", "ask": "ASK"}
    flags = {"true": True, "false": False}
    book = LocalBook()
    have_snapshot = False
    pending: list[tuple[str, Decimal, Decimal, str]] = []
    key: tuple[datetime, bool] | None = None
    where0 = ""

    def flush() -> Iterator[BookRecord | BookDeltaRecord]:
        ts, is_snap = key
        if is_snap:
            book.clear()
        for side, price, size, _ in pending:
            book.apply(side, price, size)
        if emit == "books" or is_snap:
            yield _record(lambda: book.record(ts), path=path, where=where0)
        else:
            for i, (side, price, size, where) in enumerate(pending):
                yield _record(lambda: BookDeltaRecord(ts=ts, side=side, price=price, size=size,
                                                      is_last=i == len(pending) - 1), path=path, where=where)

    prev = None
    for where, row in _csv_rows(path, [*_TARDIS_TS, "is_snapshot", "side", "price", "amount"]):
        ts = _tardis_ts(row, timestamp_field, path=path, where=where)
        prev = _check_order(prev, ts, path=path, where=where, name=timestamp_field)
        is_snap = flags.get(row["is_snapshot"].strip().lower())
        if is_snap is None:
            raise ReplayDataError(f"expected true/false, got {row['is_snapshot']!r}", path=path, location=where,
                                  field="is_snapshot")
        side = sides.get(row["side"].strip().lower())
        if side is None:
            raise ReplayDataError(f"expected bid/ask, got {row['side']!r}", path=path, location=where, field="side")
        price = _dec_text(row["price"], path=path, where=where, name="price", places=price_precision)
        size = _dec_text(row["amount"], path=path, where=where, name="amount", places=size_precision)
        if price <= 0 or size < 0:
            name = "price" if price <= 0 else "amount"
            raise ReplayDataError(f"out of range: {row[name]!r}", path=path, location=where, field=name)
        if not is_snap and not have_snapshot:
            raise ReplayDataError("delta before any snapshot", path=path, location=where, field="is_snapshot")
        have_snapshot = True
        if key != (ts, is_snap):
            if key is not None:
                yield from flush()
            key, pending, where0 = (ts, is_snap), [], where
        pending.append((side, price, size, where))
    if key is not None:
        yield from flush()


def read_tardis_trades_csv(
    path: Path,
    *,
    timestamp_field: str = "timestamp",
    price_precision: int | None = None,
    size_precision: int | None = None,
) -> Iterator[TradeRecord]:
    """Stream Tardis ``trades`` rows.

    Schema (as found in ``tardis_bitmex_xbtusd_trades.csv``): ``exchange, symbol, timestamp,
    local_timestamp`` (epoch microseconds), ``id`` (venue trade id, a UUID on BitMEX), ``side``
    (``buy`` / ``sell`` = the liquidity taker's side, or ``unknown``), ``price``, ``amount``
    (base units; USD contracts for XBTUSD) (https://docs.tardis.dev/downloadable-csv-files#trades).

    Parameters
    ----------
    path : Path
    timestamp_field : {"timestamp", "local_timestamp"}
    price_precision, size_precision : int, optional
        Most decimals a price (quote currency) / size (base units) may carry; a finer value raises
        (see the module docstring). None: not checked.

    Raises
    ------
    ReplayDataError
        Malformed rows, empty id, time going backwards.
    """
    sides = {"buy": "BUY", "sell": "SELL", "unknown": None}
    prev = None
    for where, row in _csv_rows(path, [*_TARDIS_TS, "id", "side", "price", "amount"]):
        ts = _tardis_ts(row, timestamp_field, path=path, where=where)
        prev = _check_order(prev, ts, path=path, where=where, name=timestamp_field)
        raw_side = row["side"].strip().lower()
        if raw_side not in sides:
            raise ReplayDataError(f"expected buy/sell/unknown, got {row['side']!r}", path=path, location=where,
                                  field="side")
        trade_id = row["id"].strip()
        if not trade_id:
            raise ReplayDataError("empty trade id", path=path, location=where, field="id")
        price = _dec_text(row["price"], path=path, where=where, name="price", places=price_precision)
        size = _dec_text(row["amount"], path=path, where=where, name="amount", places=size_precision)
        yield _record(lambda: TradeRecord(ts=ts, price=price, size=size, aggressor_side=sides[raw_side],
                                          trade_id=trade_id), path=path, where=where)


_INTERVAL = re.compile(r"^(\d+)([smhd])$")
_INTERVAL_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_interval(text: str) -> timedelta:
    """Parse ``"1m"``, ``"15s"``, ``"4h"``, ``"1d"`` into a positive timedelta.

    Raises
    ------
    ValueError
        For anything else (including ``"0m"``).
    """
    match = _INTERVAL.match(str(text).strip())
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"interval must look like '1m', '15s', '4h' or '1d', got {text!r}")
    return timedelta(**{_INTERVAL_UNITS[match.group(2)]: int(match.group(1))})


def read_bars_csv(
    path: Path,
    *,
    interval: timedelta = timedelta(minutes=1),
    volume_unit: str = "QUOTE",
    bar_timestamp: str = "open",
    price_precision: int | None = None,
    size_precision: int | None = None,
    price_rounding: str = "refuse",
    tick_size: Decimal | None = None,
    report: SkipReport | None = None,
) -> Iterator[BarRecord]:
    """Stream OHLCV bars from CSV.

    Schema (as found in ``btc_perp_1m_bars_2022-01.csv``): ``timestamp`` (``YYYY-MM-DD
    HH:MM:SS.ffffff``, no zone: read as UTC, as exchange data is), ``open, high, low, close``
    (decimal text, quote currency), ``volume`` (quote currency per data/README.md).

    Parameters
    ----------
    path : Path
    interval : timedelta
        Bar length; the shared file's rows are 1 minute apart.
    volume_unit : {"QUOTE", "BASE"}
        Unit of the ``volume`` column (``"QUOTE"`` for the shared file).
    bar_timestamp : {"open", "close"}
        What the file's timestamp labels. The shared file does not say; ``"open"`` (the pandas
        resample / exchange kline convention) is the safe reading for replay, since the record is
        then stamped at open + interval and never published before its minute is over.
    price_precision : int, optional
        Most decimals an open/high/low/close may carry (a finer value raises; None: not checked).
    size_precision : int, optional
        Most decimals of ``volume`` when ``volume_unit == "BASE"``; a quote-currency volume is not
        on the size grid and is not checked against it.
    price_rounding : {"refuse", "half_even"}
        ``"refuse"`` (default): a price finer than ``price_precision`` raises. ``"half_even"``: each
        open / high / low / close is moved to the nearest multiple of ``tick_size``, ties to even
        (:func:`round_to_tick`), and every moved value is counted in ``report``. Use it for a
        recording finer than the listing's real tick: ``btc_perp_1m_bars_2022-01.csv`` holds 26 of
        its 180,124 prices with three decimals (e.g. ``46319.125``) while Binance USD-M BTCUSDT
        trades on a 0.1 tick (``PRICE_FILTER.tickSize``); a move of at most half a tick (0.05 USDT,
        about 1e-6 of the price) keeps the paper venue on the venue's real price grid, which the
        OMS validates limit prices against. Rounding is monotonic, so high >= open, close >= low
        still hold afterwards.
    tick_size : Decimal, optional
        The instrument's tick (quote currency); required with ``price_rounding="half_even"``.
    report : SkipReport, optional
        Receives the count of rounded prices and the largest adjustment.

    Yields
    ------
    BarRecord
        Stamped at the bar's close time.

    Raises
    ------
    ReplayDataError
        Malformed timestamp or number, inconsistent OHLC, time going backwards, a value finer than
        the configured precision (with ``price_rounding="refuse"``).
    ValueError
        An unknown ``bar_timestamp`` or ``price_rounding``, or ``"half_even"`` without a positive
        ``tick_size``.
    """
    if bar_timestamp not in ("open", "close"):
        raise ValueError(f"bar_timestamp must be 'open' or 'close', got {bar_timestamp!r}")
    if price_rounding not in PRICE_ROUNDING:
        raise ValueError(f"price_rounding must be one of {list(PRICE_ROUNDING)}, got {price_rounding!r}")
    rounding = price_rounding == "half_even"
    if rounding and (tick_size is None or tick_size <= 0):
        raise ValueError(f"price_rounding='half_even' needs a positive tick_size, got {tick_size!r}")
    report = report if report is not None else SkipReport()
    shift = interval if bar_timestamp == "open" else timedelta(0)
    prev = None
    for where, row in _csv_rows(path, ("timestamp", "open", "high", "low", "close", "volume")):
        try:
            stamp = datetime.fromisoformat(row["timestamp"].strip())
        except ValueError:
            raise ReplayDataError(f"not an ISO date-time: {row['timestamp']!r}", path=path, location=where,
                                  field="timestamp") from None
        stamp = stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)
        ts = stamp + shift
        prev = _check_order(prev, ts, path=path, where=where, name="timestamp")
        values = {n: _dec_text(row[n], path=path, where=where, name=n, places=None if rounding else price_precision)
                  for n in ("open", "high", "low", "close")}
        if rounding:
            for name, value in values.items():
                on_tick = round_to_tick(value, tick_size)
                if on_tick != value:
                    report.rounded(on_tick - value)
                values[name] = on_tick
        values["volume"] = _dec_text(row["volume"], path=path, where=where, name="volume",
                                     places=size_precision if volume_unit == "BASE" else None)
        yield _record(lambda: BarRecord(ts=ts, interval=interval, volume_unit=volume_unit, **values),
                      path=path, where=where)


# ---------------------------------------------------------------------------------------------
# venue config entry point


@dataclass(frozen=True)
class _Format:
    kind: str
    reader: Callable[..., Iterator[Record]]
    options: frozenset[str]
    paths: frozenset[str] = frozenset()  # option keys that are extra file paths


PRECISION_OPTIONS = frozenset({"price_precision", "size_precision"})
FORMATS: dict[str, _Format] = {
    "binance_quotes_parquet": _Format("quotes", read_binance_quotes_parquet, PRECISION_OPTIONS),
    "binance_trades_parquet": _Format("trades", read_binance_trades_parquet, PRECISION_OPTIONS),
    "binance_depth_csv": _Format("book", read_binance_depth_csv,
                                 frozenset({"updates_path", "emit", "on_gap"}) | PRECISION_OPTIONS,
                                 frozenset({"updates_path"})),
    "tardis_book_snapshot_csv": _Format("book", read_tardis_book_snapshot_csv,
                                        frozenset({"timestamp_field"}) | PRECISION_OPTIONS),
    "tardis_incremental_book_l2_csv": _Format("book", read_tardis_incremental_book_l2_csv,
                                              frozenset({"emit", "timestamp_field"}) | PRECISION_OPTIONS),
    "tardis_trades_csv": _Format("trades", read_tardis_trades_csv,
                                 frozenset({"timestamp_field"}) | PRECISION_OPTIONS),
    "bars_csv": _Format("bars", read_bars_csv,
                        frozenset({"interval", "volume_unit", "bar_timestamp", "price_rounding", "tick_size"})
                        | PRECISION_OPTIONS),
}
KINDS = frozenset(f.kind for f in FORMATS.values())


@dataclass(frozen=True)
class ReplaySource:
    """One recorded file (or snapshot + updates pair) a paper venue replays.

    Iterating a source opens the file afresh each time, so a looping schedule can replay it again.

    Attributes
    ----------
    kind : {"quotes", "trades", "book", "bars"}
    format : str
        A key of :data:`FORMATS`.
    path : Path
        Absolute path of the (first) file.
    options : tuple[tuple[str, Any], ...]
        Reader keyword arguments, paths already resolved.
    report : SkipReport
        Accumulates what the reader dropped on purpose, over every pass.
    """

    kind: str
    format: str
    path: Path
    options: tuple[tuple[str, Any], ...] = ()
    report: SkipReport = field(default_factory=SkipReport, compare=False)

    def __iter__(self) -> Iterator[Record]:
        kwargs = dict(self.options)
        if self.format in ("binance_depth_csv", "bars_csv"):
            kwargs["report"] = self.report
        return FORMATS[self.format].reader(self.path, **kwargs)


def parse_sources(specs: Iterable[Mapping[str, Any]], base_dir: Path) -> list[ReplaySource]:
    """:func:`parse_source` of each entry of one listing, every missing file reported at once.

    Parameters
    ----------
    specs : Iterable[Mapping]
        The listing's source entries, as :func:`parse_source` takes them.
    base_dir : Path
        As :func:`parse_source`.

    Returns
    -------
    list[ReplaySource]
        In the order of ``specs``.

    Raises
    ------
    ReplayDataError
        The first entry that is invalid (as :func:`parse_source`).
    ReplayFileNotFound
        Otherwise, when files are missing: the one missing file's error, or one error naming
        every missing file (an operator then fixes them all in one go, not one per attempt).
    """
    parsed: list[ReplaySource] = []
    missing: list[ReplayFileNotFound] = []
    for spec in specs:
        try:
            parsed.append(parse_source(spec, base_dir))
        except ReplayFileNotFound as exc:
            missing.append(exc)
    if len(missing) == 1:
        raise missing[0]
    if missing:
        raise ReplayFileNotFound(f"{len(missing)} replay files not found: " + "; ".join(str(e) for e in missing))
    return parsed


def parse_source(spec: Mapping[str, Any], base_dir: Path) -> ReplaySource:
    """Validate one venue-config entry and resolve its paths.

    Parameters
    ----------
    spec : Mapping
        ``{"kind": ..., "format": ..., "path": ..., <format options>}``, e.g.
        ``{"kind": "quotes", "format": "binance_quotes_parquet",
        "path": "market/binance_spot_btcusdt_quotes_2021-01-08.parquet", "price_precision": 2,
        "size_precision": 6}``. ``binance_depth_csv`` takes ``path`` (snapshot) and
        ``updates_path``; ``bars_csv`` takes ``interval`` as text (``"1m"``).
    base_dir : Path
        The shared data directory relative paths are resolved against (``../shared/data`` from
        the project root).

    Returns
    -------
    ReplaySource

    Raises
    ------
    ReplayDataError
        Unknown format or kind, a kind that does not match the format, an unknown or invalid
        option; for a missing file its subclass :class:`~venues.replay.errors.ReplayFileNotFound`
        (the message names the configured path and where it looked).
    """
    def fail(message: str, key: str) -> ReplayDataError:
        return ReplayDataError(f"replay source {dict(spec)!r}: {message}", field=key)

    fmt_name = spec.get("format")
    if fmt_name not in FORMATS:
        raise fail(f"unknown format {fmt_name!r}; known: {sorted(FORMATS)}", "format")
    fmt = FORMATS[fmt_name]
    kind = spec.get("kind")
    if kind != fmt.kind:
        raise fail(f"kind {kind!r} does not match format {fmt_name!r} (which yields {fmt.kind!r})", "kind")
    unknown = set(spec) - {"kind", "format", "path"} - fmt.options
    if unknown:
        raise fail(f"unknown option(s) {sorted(unknown)}; {fmt_name} takes {sorted(fmt.options)}", sorted(unknown)[0])

    def resolve(key: str) -> Path:
        raw = spec.get(key)
        if not isinstance(raw, str | Path) or not str(raw):
            raise fail("needs a file path", key)
        candidate = Path(raw)
        resolved = (candidate if candidate.is_absolute() else Path(base_dir) / candidate).resolve()
        if not resolved.is_file():
            raise ReplayFileNotFound(
                f"replay file not found: {key}={str(raw)!r} (looked at {resolved}, base dir {Path(base_dir).resolve()})",
                path=resolved, field=key,
            )
        return resolved

    path = resolve("path")
    options: dict[str, Any] = {}
    for key in sorted(fmt.options & set(spec)):
        value = spec[key]
        if key in fmt.paths:
            value = resolve(key)
        elif key in ("price_precision", "size_precision"):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 18:
                raise fail(f"{key} must be an integer 0..18, got {value!r}", key)
        elif key == "interval":
            try:
                value = parse_interval(value)
            except ValueError as exc:
                raise fail(str(exc), key) from None
        elif key == "tick_size":
            try:
                value = Decimal(str(value))
            except InvalidOperation:
                value = None
            if isinstance(spec[key], bool | float) or value is None or not value.is_finite() or value <= 0:
                raise fail(f"tick_size must be a positive decimal as text (e.g. \"0.1\"), got {spec[key]!r}", key)
        else:
            allowed = {"emit": ("books", "deltas"), "on_gap": ("raise", "skip"),
                       "timestamp_field": _TARDIS_TS, "volume_unit": ("QUOTE", "BASE"),
                       "bar_timestamp": ("open", "close"), "price_rounding": PRICE_ROUNDING}[key]
            if value not in allowed:
                raise fail(f"{key} must be one of {list(allowed)}, got {value!r}", key)
        options[key] = value
    if options.get("price_rounding") == "half_even" and "tick_size" not in options:
        raise fail("price_rounding 'half_even' needs tick_size (the replay data client fills in the "
                   "instrument's tick)", "tick_size")
    return ReplaySource(kind=kind, format=fmt_name, path=path, options=tuple(options.items()))


def load_source(spec: Mapping[str, Any], base_dir: Path) -> Iterator[Record]:
    """Turn one venue-config entry into an iterator of records in time order.

    Shorthand for ``iter(parse_source(spec, base_dir))``; keep the :class:`ReplaySource` from
    :func:`parse_source` instead when the data must be replayed more than once (looping) or its
    :class:`SkipReport` read.

    Raises
    ------
    ReplayDataError
        As :func:`parse_source`; malformed data raises while iterating.
    """
    return iter(parse_source(spec, base_dir))
