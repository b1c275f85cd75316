"""NautilusTrader live data client that replays recorded market data as if it were a live feed.

The node boundary of the replay layer: :mod:`venues.replay.sources` reads the recorded files,
:class:`~venues.replay.clock.ReplaySchedule` merges them by time and maps recorded time onto
wall-clock time, and :class:`ReplayDataClient` sleeps until each record is due, converts it to
NautilusTrader data re-stamped to *now* (``ts_event == ts_init`` = the client clock at
publication, in ns) and hands it to the data engine.

What is published for each record kind (only while subscribed, see below):

==============================  =================================================================
record                          NautilusTrader data
==============================  =================================================================
:class:`QuoteRecord`            ``QuoteTick``
:class:`TradeRecord`            ``TradeTick``
:class:`BookRecord` (snapshot)  ``OrderBookDeltas``: ``CLEAR`` then one ``ADD`` per level (bids
                                best first, then asks best first), every delta flagged
                                ``F_SNAPSHOT``, the last also ``F_LAST``; and/or
                                ``OrderBookDepth10`` (top 10 levels a side)
:class:`BookDeltaRecord` s of   ``OrderBookDeltas``: one batch per venue event, ``UPDATE`` (size
one venue event                 > 0: the level's new absolute size) or ``DELETE`` (size 0), the
                                event's last delta flagged ``F_LAST``; ``sequence`` = the venue's
                                update id (0 when unknown); and/or ``OrderBookDepth10`` of the
                                book after the event
:class:`BarRecord`              ``Bar`` of type ``<symbol>.<venue>-<step>-<unit>-LAST-EXTERNAL``
                                (e.g. ``BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL``); for a
                                **bars-only** recording (no quotes, no book source) also a
                                ``QuoteTick`` at the bar's close (:func:`quote_tick_from_bar`)
==============================  =================================================================

Bars-only recordings (``btc_perp_1m_bars_2022-01.csv``, the paper BINANCE-FUTURES venue): the bar is
the only price there is, so the client serves quote-tick subscriptions from it — one ``QuoteTick``
per bar, bid = ask = close, published right after the bar — and publishes the ``Bar`` itself while
quotes *or* bars are subscribed, so the node's bar cache (VWAP profiles) and the paper venue's bar
execution see every bar. The OMS (risk collar, router, marks) gets its top of book from these quotes.

``OrderBookDeltas`` is what ``Strategy.subscribe_order_book_deltas`` (and
``subscribe_order_book_at_interval``, which NautilusTrader 1.221 serves from the same delta feed)
receives and what the sandbox matching engine applies (``OrderMatchingEngine
.process_order_book_deltas`` → ``OrderBook.apply_deltas``); the data engine's managed book is
built from it too. ``OrderBookDepth10`` is served for ``Strategy.subscribe_order_book_depth``:
NautilusTrader 1.221's ``LiveMarketDataClient`` has no ``subscribe_order_book_depth`` (the
Cython base raises ``NotImplementedError``) and its data engine files depth subscriptions under
the client's *snapshot* subscriptions (``subscribed_order_book_snapshots``), so this client maps
``subscribe_order_book_depth`` onto ``subscribe_order_book_snapshots`` /
``_subscribe_order_book_snapshots`` (source: ``nautilus_trader/data/engine.pyx``
``_handle_subscribe_order_book``). Both go to every book on the venue's topics: the data engine's
managed book (``managed=True``) and the sandbox execution client's matching engine (which listens
to ``data.*.<venue>.*``) apply deltas *and* depth, so with both subscribed such a book is cut to
10 levels a side at every depth message. Subscribe depth with ``managed=False``, and never on a
sandbox venue whose fills should walk the full recorded book. The sandbox must run an
``L2_MBP`` book to use deltas (an ``L1_MBP`` book keeps the *last* level applied per side, not
the best). Bars do not reach NautilusTrader's own sandbox in 1.221: their topic ``data.bars.<bar
type>`` does not match its ``data.*.<venue>.*`` pattern (and ``process_bar`` only acts on an
``L1_MBP`` book); the paper execution client (:mod:`venues.node.paper`) subscribes to them itself.

Semantics (those of a live feed):

- On connect the client publishes its instrument (the data engine adds it to the cache): the
  node's own definition when the cache already holds one (paper venues add theirs, e.g. a
  ``CryptoPerpetual``, from the ``Instrument`` table before start), else the configured
  ``CurrencyPair``.
- The replay starts at the **first** market-data subscription (quotes, trades, book deltas or
  depth, bars), so a strategy that subscribes on start sees the recording from its first record.
  Records that come due while their kind is not subscribed are dropped, never buffered.
- The client keeps the replayed order book even while nobody subscribes to it. A book-delta
  subscriber's first publication is always a snapshot of that book (as a live adapter fetches a
  snapshot on subscription), so a late subscriber's book is never built from deltas alone.
- Several sources are merged in recorded-time order (or aligned, see ``align_sources``) and
  streamed lazily: a month of 1-minute bars is read row by row as it comes due.
- A malformed recording (a value finer than the instrument's precision, time going backwards …)
  ends the replay with an error log naming file, line and field, kept in
  :attr:`ReplayDataClient.failure`; the node keeps running.
- Disconnect cancels the stream task and waits for it.

Conversion lives in small pure functions (:func:`build_currency_pair`, :func:`quote_tick_from_record`,
:func:`trade_tick_from_record`, :func:`book_snapshot_deltas`, :func:`book_update_deltas`,
:func:`book_depth10`, :func:`bar_type_for`, :func:`bar_from_record`, :func:`to_price`,
:func:`to_quantity`) testable without a node.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

from nautilus_trader.cache.cache import Cache
from nautilus_trader.common.component import LiveClock, MessageBus
from nautilus_trader.common.providers import InstrumentProvider
from nautilus_trader.config import NautilusConfig
from nautilus_trader.core.data import Data
from nautilus_trader.data.messages import (
    SubscribeBars,
    SubscribeInstrument,
    SubscribeInstruments,
    SubscribeOrderBook,
    SubscribeQuoteTicks,
    SubscribeTradeTicks,
    UnsubscribeBars,
    UnsubscribeInstrument,
    UnsubscribeInstruments,
    UnsubscribeOrderBook,
    UnsubscribeQuoteTicks,
    UnsubscribeTradeTicks,
)
from nautilus_trader.live.config import LiveDataClientConfig
from nautilus_trader.live.data_client import LiveMarketDataClient
from nautilus_trader.live.factories import LiveDataClientFactory
from nautilus_trader.model.data import (
    NULL_ORDER,
    Bar,
    BarSpecification,
    BarType,
    BookOrder,
    OrderBookDelta,
    OrderBookDeltas,
    OrderBookDepth10,
    QuoteTick,
    TradeTick,
)
from nautilus_trader.model.enums import (
    AggregationSource,
    AggressorSide,
    BarAggregation,
    BookAction,
    BookType,
    OrderSide,
    PriceType,
    RecordFlag,
)
from nautilus_trader.model.identifiers import ClientId, InstrumentId, Symbol, TradeId, Venue
from nautilus_trader.model.instruments import CurrencyPair
from nautilus_trader.model.objects import Currency, Price, Quantity

from venues.replay.clock import ReplaySchedule
from venues.replay.errors import ReplayDataError
from venues.replay.records import BarRecord, BookDeltaRecord, BookRecord, QuoteRecord, TradeRecord
from venues.replay.sources import KINDS, PRECISION_OPTIONS, LocalBook, ReplaySource, parse_sources

SUPPORTED_KINDS = KINDS  # quotes, trades, book, bars
_AGGRESSOR = {"BUY": AggressorSide.BUYER, "SELL": AggressorSide.SELLER, None: AggressorSide.NO_AGGRESSOR}
_BOOK_SIDE = {"BID": OrderSide.BUY, "ASK": OrderSide.SELL}
_YIELD_EVERY = 100  # records published back to back (replay behind schedule) before yielding the loop
_DEPTH10 = 10
# NautilusTrader's record flags (nautilus_trader/model/enums.py RecordFlag, Databento's convention).
_F_LAST = int(RecordFlag.F_LAST)
_F_SNAPSHOT = int(RecordFlag.F_SNAPSHOT)
_BAR_UNITS = (  # largest whole unit first: 60 s is 1-MINUTE, not 60-SECOND
    (86_400, BarAggregation.DAY),
    (3_600, BarAggregation.HOUR),
    (60, BarAggregation.MINUTE),
    (1, BarAggregation.SECOND),
)


# ---------------------------------------------------------------------------------------------
# configuration


class ReplayInstrumentConfig(NautilusConfig, frozen=True, kw_only=True):
    """The spot ``CurrencyPair`` a replay venue trades.

    Parameters
    ----------
    symbol : str
        Venue symbol, e.g. ``"BTCUSDT"``; the instrument id is ``<symbol>.<venue>``.
    base_currency, quote_currency : str
        Currency codes, e.g. ``"BTC"``, ``"USDT"`` (unknown codes become 8-decimal crypto).
    price_precision, size_precision : int
        Decimals of prices (quote currency) and sizes (base units), e.g. 2 and 6 for Binance
        BTCUSDT (``binance_spot_btcusdt_instrument.txt``).
    price_increment, size_increment : str
        Tick and lot as decimal text, e.g. ``"0.01"`` and ``"0.000001"``.
    maker_fee, taker_fee : str
        Fee rates as decimal text (``"0.001"`` = 10 bp).
    """

    symbol: str
    base_currency: str
    quote_currency: str
    price_precision: int
    size_precision: int
    price_increment: str
    size_increment: str
    maker_fee: str = "0"
    taker_fee: str = "0"


class ReplayDataClientConfig(LiveDataClientConfig, frozen=True, kw_only=True):
    """Configuration of a :class:`ReplayDataClient`.

    Parameters
    ----------
    venue : str
        Venue name, e.g. ``"BINANCE"``.
    instrument : ReplayInstrumentConfig
        The instrument every source of this client belongs to.
    sources : tuple[dict[str, Any], ...]
        Venue-config source entries for :func:`venues.replay.sources.parse_source` (kinds
        ``quotes``, ``trades``, ``book``, ``bars``). The instrument's ``price_precision`` /
        ``size_precision`` are filled in when absent, so every reader refuses a value finer than
        the instrument (see :func:`resolve_sources`). At most one ``book`` source, and at most one
        ``bars`` source per interval.
    data_dir : str
        Base directory relative source paths resolve against (the shared ``data`` directory).
    speed : float
        Replay speed factor (> 0): 1 = real time, 600 = ten 1-minute bars per second.
    loop : bool
        Replay the recording forever.
    loop_gap_secs : float
        Wall-clock pause between two passes when looping (>= 0).
    align_sources : bool
        Start every source at the same instant instead of merging on recorded time (for
        recordings of different dates; see :class:`~venues.replay.clock.ReplaySchedule`).
    """

    venue: str
    instrument: ReplayInstrumentConfig
    sources: tuple[dict[str, Any], ...]
    data_dir: str
    speed: float = 1.0
    loop: bool = False
    loop_gap_secs: float = 1.0
    align_sources: bool = False


# Keys of a paper venue's ``config["replay"]`` block: the ReplayDataClientConfig fields its listings
# share, plus ``instruments`` (instrument key → that listing's ``sources``); ``venue`` and
# ``instrument`` come from the Venue and Instrument rows.
VENUE_REPLAY_KEYS = frozenset({"data_dir", "speed", "loop", "loop_gap_secs", "align_sources", "instruments"})


# ---------------------------------------------------------------------------------------------
# pure conversion


def _fixed(value: Decimal, precision: int, name: str) -> str:
    if not isinstance(value, Decimal):
        raise TypeError(f"{name} must be Decimal, got {type(value).__name__} {value!r}")
    quantized = value.quantize(Decimal(1).scaleb(-precision))
    if quantized != value:
        raise ValueError(f"{name} {value} is not representable with precision {precision}")
    return format(quantized, "f")


def to_price(value: Decimal, precision: int) -> Price:
    """Return ``value`` as a ``Price`` of exactly ``precision`` decimals.

    Raises
    ------
    TypeError
        ``value`` is not a ``Decimal``.
    ValueError
        ``value`` has more significant decimals than ``precision`` (never rounded silently).
    """
    return Price.from_str(_fixed(value, precision, "price"))


def to_quantity(value: Decimal, precision: int) -> Quantity:
    """Return ``value`` as a ``Quantity`` of exactly ``precision`` decimals (errors as :func:`to_price`)."""
    return Quantity.from_str(_fixed(value, precision, "size"))


def build_currency_pair(venue: str, spec: ReplayInstrumentConfig, ts_ns: int) -> CurrencyPair:
    """Build the ``CurrencyPair`` ``<spec.symbol>.<venue>`` stamped ``ts_ns`` (event and init)."""
    return CurrencyPair(
        instrument_id=InstrumentId(Symbol(spec.symbol), Venue(venue)),
        raw_symbol=Symbol(spec.symbol),
        base_currency=Currency.from_str(spec.base_currency),
        quote_currency=Currency.from_str(spec.quote_currency),
        price_precision=spec.price_precision,
        size_precision=spec.size_precision,
        price_increment=to_price(Decimal(spec.price_increment), spec.price_precision),
        size_increment=to_quantity(Decimal(spec.size_increment), spec.size_precision),
        ts_event=ts_ns,
        ts_init=ts_ns,
        maker_fee=Decimal(spec.maker_fee),
        taker_fee=Decimal(spec.taker_fee),
    )


def quote_tick_from_record(
    record: QuoteRecord, instrument_id: InstrumentId, price_precision: int, size_precision: int, ts_ns: int
) -> QuoteTick:
    """Convert a :class:`QuoteRecord` to a ``QuoteTick`` with ``ts_event == ts_init == ts_ns``.

    The record's own ``ts`` is ignored: the tick is stamped at publication time.
    """
    return QuoteTick(
        instrument_id=instrument_id,
        bid_price=to_price(record.bid, price_precision),
        ask_price=to_price(record.ask, price_precision),
        bid_size=to_quantity(record.bid_size, size_precision),
        ask_size=to_quantity(record.ask_size, size_precision),
        ts_event=ts_ns,
        ts_init=ts_ns,
    )


def trade_tick_from_record(
    record: TradeRecord, instrument_id: InstrumentId, price_precision: int, size_precision: int, ts_ns: int
) -> TradeTick:
    """Convert a :class:`TradeRecord` to a ``TradeTick`` with ``ts_event == ts_init == ts_ns``.

    Aggressor ``BUY`` → ``BUYER``, ``SELL`` → ``SELLER``, unknown (None) → ``NO_AGGRESSOR``.
    """
    return TradeTick(
        instrument_id=instrument_id,
        price=to_price(record.price, price_precision),
        size=to_quantity(record.size, size_precision),
        aggressor_side=_AGGRESSOR[record.aggressor_side],
        trade_id=TradeId(record.trade_id),
        ts_event=ts_ns,
        ts_init=ts_ns,
    )


def _book_order(side: str, price: Decimal, size: Decimal, price_precision: int, size_precision: int) -> BookOrder:
    # order_id 0: an L2 (MBP) book keys its levels by price, not by order
    return BookOrder(_BOOK_SIDE[side], to_price(price, price_precision), to_quantity(size, size_precision), 0)


def book_snapshot_deltas(
    record: BookRecord,
    instrument_id: InstrumentId,
    price_precision: int,
    size_precision: int,
    ts_ns: int,
    sequence: int = 0,
) -> OrderBookDeltas:
    """Convert a full book to the ``OrderBookDeltas`` snapshot NautilusTrader expects.

    ``CLEAR``, then one ``ADD`` per level, bids best first then asks best first; every delta
    carries ``F_SNAPSHOT`` and the last one also ``F_LAST`` (an empty book is a lone ``CLEAR``
    with both). Applied to any ``OrderBook``, the result is exactly ``record``'s levels.

    Parameters
    ----------
    record : BookRecord
        Prices in quote currency, sizes in base units.
    instrument_id : InstrumentId
    price_precision, size_precision : int
        The instrument's decimals.
    ts_ns : int
        ``ts_event`` and ``ts_init`` of every delta (UNIX ns).
    sequence : int
        Venue sequence number (0 when unknown).

    Raises
    ------
    ValueError
        A price or size finer than the precision (as :func:`to_price`).

    Notes
    -----
    Flags as ``RecordFlag`` documents them ("F_LAST: last message in the book event or packet",
    "F_SNAPSHOT: sourced from a replay, such as a snapshot server"; nautilus_trader/model/enums.py).
    """
    levels = [("BID", level) for level in record.bids] + [("ASK", level) for level in record.asks]
    deltas = [OrderBookDelta(instrument_id, BookAction.CLEAR, None,
                             _F_SNAPSHOT | (_F_LAST if not levels else 0), sequence, ts_ns, ts_ns)]
    for i, (side, level) in enumerate(levels):
        flags = _F_SNAPSHOT | (_F_LAST if i == len(levels) - 1 else 0)
        order = _book_order(side, level.price, level.size, price_precision, size_precision)
        deltas.append(OrderBookDelta(instrument_id, BookAction.ADD, order, flags, sequence, ts_ns, ts_ns))
    return OrderBookDeltas(instrument_id, deltas)


def book_update_deltas(
    records: Sequence[BookDeltaRecord],
    instrument_id: InstrumentId,
    price_precision: int,
    size_precision: int,
    ts_ns: int,
) -> OrderBookDeltas:
    """Convert the level changes of one venue event to one ``OrderBookDeltas`` batch.

    A size > 0 is the level's new absolute size: ``UPDATE`` (which an L2 book applies as an add
    when the level is new); a size of 0 is ``DELETE``. The batch's last delta carries ``F_LAST``,
    the others no flag; ``sequence`` is the record's ``update_id`` (0 when None).

    Parameters
    ----------
    records : Sequence[BookDeltaRecord]
        Non-empty, in file order.
    instrument_id : InstrumentId
    price_precision, size_precision : int
    ts_ns : int
        ``ts_event`` and ``ts_init`` of every delta (UNIX ns).

    Raises
    ------
    ValueError
        ``records`` is empty, or a value finer than the precision.
    """
    if not records:
        raise ValueError("records must not be empty")
    deltas = []
    for i, record in enumerate(records):
        action = BookAction.UPDATE if record.size > 0 else BookAction.DELETE
        order = _book_order(record.side, record.price, record.size, price_precision, size_precision)
        flags = _F_LAST if i == len(records) - 1 else 0
        deltas.append(OrderBookDelta(instrument_id, action, order, flags, record.update_id or 0, ts_ns, ts_ns))
    return OrderBookDeltas(instrument_id, deltas)


def book_depth10(
    record: BookRecord, instrument_id: InstrumentId, price_precision: int, size_precision: int, ts_ns: int
) -> OrderBookDepth10:
    """Return the top 10 levels a side of ``record`` as an ``OrderBookDepth10``.

    Missing levels (a side shorter than 10) are NautilusTrader's ``NULL_ORDER`` with count 0,
    which ``OrderBook.apply_depth`` skips; recorded levels get count 1 (the recordings hold no
    order counts). Flags ``F_SNAPSHOT | F_LAST``: the depth replaces the book's top whole.

    Raises
    ------
    ValueError
        A value finer than the precision.
    """
    bids = [_book_order("BID", lv.price, lv.size, price_precision, size_precision) for lv in record.bids[:_DEPTH10]]
    asks = [_book_order("ASK", lv.price, lv.size, price_precision, size_precision) for lv in record.asks[:_DEPTH10]]
    bid_counts = [1] * len(bids) + [0] * (_DEPTH10 - len(bids))
    ask_counts = [1] * len(asks) + [0] * (_DEPTH10 - len(asks))
    bids += [NULL_ORDER] * (_DEPTH10 - len(bids))
    asks += [NULL_ORDER] * (_DEPTH10 - len(asks))
    return OrderBookDepth10(instrument_id, bids, asks, bid_counts, ask_counts, _F_SNAPSHOT | _F_LAST, 0, ts_ns, ts_ns)


def bar_type_for(instrument_id: InstrumentId, interval: timedelta) -> BarType:
    """Return the externally aggregated last-trade ``BarType`` for bars of ``interval``.

    ``interval`` is expressed in its largest whole unit: 1 minute → ``<id>-1-MINUTE-LAST-EXTERNAL``,
    15 s → ``<id>-15-SECOND-LAST-EXTERNAL``, 4 h → ``<id>-4-HOUR-LAST-EXTERNAL``.

    Raises
    ------
    ValueError
        ``interval`` is not a positive whole number of seconds, or its step does not divide its
        unit's period (90 s: NautilusTrader's ``BarSpecification`` wants a seconds step dividing
        60, a minutes step dividing 60, an hours step dividing 24; nautilus_trader/model/data.pyx).
    """
    if interval <= timedelta(0) or interval % timedelta(seconds=1):
        raise ValueError(f"bar interval must be a positive whole number of seconds, got {interval!r}")
    seconds = int(interval.total_seconds())
    unit_seconds, aggregation = next((u, a) for u, a in _BAR_UNITS if seconds % u == 0)
    spec = BarSpecification(seconds // unit_seconds, aggregation, PriceType.LAST)
    return BarType(instrument_id, spec, AggregationSource.EXTERNAL)


def bar_base_volume(record: BarRecord, size_precision: int) -> Decimal:
    """Return the bar's volume in base units on the instrument's size grid.

    ``volume_unit == "BASE"``: the recorded volume, exactly (a finer value raises).
    ``volume_unit == "QUOTE"`` (the shared ``btc_perp_1m_bars_2022-01.csv``): the quote-currency
    volume divided by the bar's typical price ``(high + low + close) / 3``, rounded half-even to
    ``size_precision``. The true divisor is the bar's VWAP, which the recording does not hold; it
    lies in ``[low, high]``, so the estimate's relative error is at most ``(high - low) / low``
    (about 0.1 % for a typical 1-minute BTC bar) before rounding. The typical price is the
    usual bar-based VWAP proxy (the ``hlc3`` source of TradingView's VWAP indicator). This keeps a
    volume profile's shape (VWAP slicing needs relative volumes) and the unit NautilusTrader's
    ``Bar.volume`` (a ``Quantity`` of the instrument) and the sandbox's bar check
    (``volume.precision == size_precision``) expect.

    Raises
    ------
    ValueError
        A ``BASE`` volume finer than ``size_precision``.
    """
    if record.volume_unit == "BASE":
        _fixed(record.volume, size_precision, "volume")
        return record.volume
    typical = (record.high + record.low + record.close) / 3
    return (record.volume / typical).quantize(Decimal(1).scaleb(-size_precision), rounding=ROUND_HALF_EVEN)


def bar_from_record(
    record: BarRecord, bar_type: BarType, price_precision: int, size_precision: int, ts_ns: int
) -> Bar:
    """Convert a :class:`BarRecord` to a ``Bar`` of ``bar_type`` with ``ts_event == ts_init == ts_ns``.

    OHLC exactly as recorded (a finer price raises ``ValueError``); volume as
    :func:`bar_base_volume`. ``ts_event`` is the publication time, which the schedule places at
    the bar's (re-stamped) close, NautilusTrader's convention for bar timestamps.
    """
    return Bar(
        bar_type=bar_type,
        open=to_price(record.open, price_precision),
        high=to_price(record.high, price_precision),
        low=to_price(record.low, price_precision),
        close=to_price(record.close, price_precision),
        volume=to_quantity(bar_base_volume(record, size_precision), size_precision),
        ts_event=ts_ns,
        ts_init=ts_ns,
    )


def quote_tick_from_bar(
    record: BarRecord, instrument_id: InstrumentId, price_precision: int, size_precision: int, ts_ns: int
) -> QuoteTick:
    """Return the top of book a bars-only recording implies: bid = ask = the bar's close.

    A bar holds no spread, so none is invented: the close is the last traded price, and both sides
    are quoted there (zero spread; the mid, the risk engine's reference price and the marks are the
    close exactly). Each side's size is the bar's volume in base units (:func:`bar_base_volume`),
    at least one lot: what traded over the bar, the only liquidity figure the recording holds. The
    paper venue's depth model deepens it (:mod:`venues.node.paper`).

    Raises
    ------
    ValueError
        A close finer than ``price_precision``.
    """
    lot = Decimal(1).scaleb(-size_precision)
    size = to_quantity(max(bar_base_volume(record, size_precision), lot), size_precision)
    price = to_price(record.close, price_precision)
    return QuoteTick(instrument_id=instrument_id, bid_price=price, ask_price=price, bid_size=size, ask_size=size,
                     ts_event=ts_ns, ts_init=ts_ns)


# ---------------------------------------------------------------------------------------------
# source configuration


def _bar_interval(source: ReplaySource) -> timedelta:
    return dict(source.options).get("interval", timedelta(minutes=1))  # read_bars_csv's default


def _check_source_set(sources: Sequence[ReplaySource]) -> None:
    books = sum(1 for s in sources if s.kind == "book")
    if books > 1:
        raise ValueError(f"{books} book sources configured: a replay client keeps one order book, give it one")
    intervals = Counter(_bar_interval(s) for s in sources if s.kind == "bars")
    twice = sorted(str(i) for i, n in intervals.items() if n > 1)
    if twice:
        raise ValueError(f"several bars sources with the same interval {twice}: their bars would share one BarType")


def resolve_sources(config: ReplayDataClientConfig) -> list[ReplaySource]:
    """Validate ``config.sources`` and resolve them against ``config.data_dir``.

    Every source gets the instrument's ``price_precision`` / ``size_precision`` unless it names
    its own, so each reader refuses a recorded value finer than the instrument can represent,
    naming the file, line (or parquet row) and field, instead of rounding it — unless the source
    opts into ``"price_rounding": "half_even"`` (``bars_csv``), which then gets the instrument's
    ``price_increment`` as its ``tick_size``.

    Raises
    ------
    ValueError
        No sources, an unsupported kind, a source precision finer than the instrument's, more
        than one book source, two bars sources of one interval.
    ReplayDataError
        As :func:`~venues.replay.sources.parse_sources` (unknown format, every missing file, ...).
    """
    if not config.sources:
        raise ValueError("ReplayDataClientConfig.sources is empty: nothing to replay")
    instrument = {"price_precision": config.instrument.price_precision,
                  "size_precision": config.instrument.size_precision}
    prepared = []
    for spec in config.sources:
        spec = dict(spec)
        if spec.get("kind") not in SUPPORTED_KINDS:
            raise ValueError(
                f"replay source {spec!r}: kind {spec.get('kind')!r} is not supported by the replay data "
                f"client (supported: {sorted(SUPPORTED_KINDS)})"
            )
        if spec.get("price_rounding") == "half_even":
            spec.setdefault("tick_size", config.instrument.price_increment)
        for key in PRECISION_OPTIONS:
            value = spec.setdefault(key, instrument[key])
            if isinstance(value, int) and not isinstance(value, bool) and value > instrument[key]:
                raise ValueError(f"replay source {spec!r}: {key}={value} is finer than the instrument's "
                                 f"{instrument[key]}; its values could not be published")
        prepared.append(spec)
    resolved = parse_sources(prepared, Path(config.data_dir))
    _check_source_set(resolved)
    return resolved


def replay_sources_for_venue(
    config: Mapping[str, Any], *, root: Path | str | None = None
) -> dict[str, tuple[dict[str, Any], ...]]:
    """Return the replay sources a paper venue's config names per listing, validated.

    A paper venue's ``Venue.config`` carries a ``"replay"`` block made of
    :class:`ReplayDataClientConfig` fields shared by the venue's listings (``data_dir``,
    ``speed``, ``loop``, ``loop_gap_secs``, ``align_sources``) and, under ``instruments``, each
    listing's ``sources`` (the shape ``venues/node/config.py`` reads: one replay client per
    listing)::

        {"replay": {"data_dir": "../shared/data", "speed": 600, "loop": true, "align_sources": true,
                    "instruments": {"BINANCE-FUTURES:PERPETUAL:BTC-USDT@LIN": [
                        {"kind": "book", "format": "tardis_book_snapshot_csv",
                         "path": "market/tardis_binance_futures_btcusdt_book_snapshot_25.csv"},
                        {"kind": "bars", "format": "bars_csv", "interval": "1m",
                         "path": "market/btc_perp_1m_bars_2022-01.csv"}]}}}

    Parameters
    ----------
    config : Mapping
        The venue's ``config`` JSON.
    root : Path | str, optional
        Directory a relative ``data_dir`` is resolved against for validation (the project root;
        default: the current directory). The returned entries keep their paths as written.

    Returns
    -------
    dict[str, tuple[dict, ...]]
        Instrument key → copies of its source entries, in order, each accepted by
        :func:`~venues.replay.sources.parse_source` (format, kind, options and file checked):
        the ``sources`` of that listing's :class:`ReplayDataClientConfig`.

    Raises
    ------
    ReplayDataError
        No ``replay`` block, a key that is not one of the above (e.g. the per-file ``quotes`` /
        ``depth_snapshot`` / ``bars_1m`` keys: give them as source entries under
        ``instruments``), no ``data_dir``, no or empty ``instruments``, a listing without source
        entries, an entry that is not a mapping, an invalid entry, or missing files (every one of
        the listing at once, as :func:`~venues.replay.sources.parse_sources`).
    ValueError
        A listing with more than one book source, or two bars sources of one interval.
    """
    replay = config.get("replay") if isinstance(config, Mapping) else None
    if not isinstance(replay, Mapping):
        raise ReplayDataError("venue config has no 'replay' block", field="replay")
    unknown = sorted(set(replay) - VENUE_REPLAY_KEYS)
    if unknown:
        raise ReplayDataError(
            f"replay block has key(s) {unknown}; it takes {sorted(VENUE_REPLAY_KEYS)}: name each file as a "
            'source entry under "instruments", e.g. {"instruments": {"<instrument key>": [{"kind": "quotes", '
            '"format": "binance_quotes_parquet", "path": "market/....parquet"}]}}',
            field=unknown[0],
        )
    data_dir, instruments = replay.get("data_dir"), replay.get("instruments")
    if not isinstance(data_dir, str) or not data_dir:
        raise ReplayDataError("replay block needs 'data_dir' (a directory path)", field="data_dir")
    if not isinstance(instruments, Mapping) or not instruments:
        raise ReplayDataError("replay block needs a non-empty 'instruments' mapping (instrument key → sources)",
                              field="instruments")
    base_dir = Path(root or ".") / data_dir
    result: dict[str, tuple[dict[str, Any], ...]] = {}
    for key, specs in instruments.items():
        if not isinstance(specs, list | tuple) or not specs:
            raise ReplayDataError(f"instruments[{key!r}] needs a non-empty list of sources", field="instruments")
        for i, spec in enumerate(specs):
            if not isinstance(spec, Mapping):
                raise ReplayDataError(f"instruments[{key!r}][{i}] must be a mapping, got {spec!r}", field="instruments")
        _check_source_set(parse_sources(specs, base_dir))
        result[key] = tuple(dict(spec) for spec in specs)
    return result


# ---------------------------------------------------------------------------------------------
# client

BookEvent = BookRecord | tuple[BookDeltaRecord, ...]


def _book_events(schedule: Iterable[tuple[datetime, object]]) -> Iterator[tuple[datetime, object]]:
    """Group the rows of one venue book event (consecutive :class:`BookDeltaRecord` up to ``is_last``)."""
    pending: list[BookDeltaRecord] = []
    due_first = None
    for due_at, record in schedule:
        if isinstance(record, BookDeltaRecord):
            if not pending:
                due_first = due_at
            pending.append(record)
            if record.is_last:
                yield due_first, tuple(pending)
                pending = []
            continue
        if pending:  # an event cut short (the recording ended mid-event): publish what it holds
            yield due_first, tuple(pending)
            pending = []
        yield due_at, record
    if pending:
        yield due_first, tuple(pending)


class ReplayDataClient(LiveMarketDataClient):
    """Live market data client streaming a recording through a :class:`ReplaySchedule`.

    Runs entirely on the node's event loop. See the module docstring for the semantics.

    Attributes
    ----------
    published : collections.Counter
        Objects handed to the data engine so far, by channel: ``"quotes"``, ``"trades"``,
        ``"book_deltas"`` (``OrderBookDeltas`` batches), ``"book_depth"``, ``"bars"``.
    dropped : collections.Counter
        Publications skipped because nobody subscribed when their record came due, by channel.
    failure : Exception or None
        What ended the replay early (e.g. a :class:`ReplayDataError` naming file and line).
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        client_id: ClientId,
        msgbus: MessageBus,
        cache: Cache,
        clock: LiveClock,
        config: ReplayDataClientConfig,
    ) -> None:
        super().__init__(
            loop=loop,
            client_id=client_id,
            venue=Venue(config.venue),
            msgbus=msgbus,
            cache=cache,
            clock=clock,
            instrument_provider=InstrumentProvider(),
            config=config,
        )
        self._replay_config = config
        self._sources = resolve_sources(config)  # fail at build time, not mid-stream
        self._instrument_id = InstrumentId(Symbol(config.instrument.symbol), Venue(config.venue))
        self._price_precision = config.instrument.price_precision
        self._size_precision = config.instrument.size_precision
        self._kinds = frozenset(source.kind for source in self._sources)
        # A recording of bars only: its bars are the top of book too (see the module docstring).
        self._quotes_from_bars = "bars" in self._kinds and not self._kinds & {"quotes", "book"}
        self._bar_types: dict[timedelta, BarType] = {
            _bar_interval(s): bar_type_for(self._instrument_id, _bar_interval(s)) for s in self._sources if s.kind == "bars"
        }
        self._book = LocalBook()
        self._book_synced = False  # the current book-delta subscribers have had a snapshot
        self._started = asyncio.Event()
        self._stream_task: asyncio.Task | None = None
        self.published: Counter[str] = Counter()
        self.dropped: Counter[str] = Counter()
        self.failure: Exception | None = None

    @property
    def instrument_id(self) -> InstrumentId:
        """The replayed instrument."""
        return self._instrument_id

    @property
    def bar_types(self) -> list[BarType]:
        """The bar types this client's bars sources publish (one per interval)."""
        return list(self._bar_types.values())

    @property
    def published_quotes(self) -> int:
        """``QuoteTick`` s published so far."""
        return self.published["quotes"]

    @property
    def published_trades(self) -> int:
        """``TradeTick`` s published so far."""
        return self.published["trades"]

    @property
    def quotes_from_bars(self) -> bool:
        """Whether this client derives its quotes from bars (a bars-only recording)."""
        return self._quotes_from_bars

    @property
    def rounded_prices(self) -> int:
        """Recorded prices moved onto the instrument's tick so far, every pass counted (``price_rounding``)."""
        return sum(source.report.rounded_prices for source in self._sources)

    # -- lifecycle --------------------------------------------------------------------------------

    def _any_subscription(self) -> bool:
        return bool(self.subscribed_quote_ticks() or self.subscribed_trade_ticks() or self.subscribed_bars()
                    or self.subscribed_order_book_deltas() or self.subscribed_order_book_snapshots())

    async def _connect(self) -> None:
        # The node's own definition when it has one (a paper venue's CryptoPerpetual from the
        # Instrument table): re-publishing a CurrencyPair under its id would replace it in the cache
        # and in the sandbox's matching engine.
        instrument = self._cache.instrument(self._instrument_id) or build_currency_pair(
            self._replay_config.venue, self._replay_config.instrument, self._clock.timestamp_ns())
        self._instrument_provider.add(instrument)
        self._handle_data(instrument)
        self._started = asyncio.Event()
        self._book.clear()
        self._book_synced = False
        if self._any_subscription():  # reconnect
            self._started.set()
        self._stream_task = self._loop.create_task(self._stream(), name=f"replay-stream-{self.id}")
        self._log.info(
            f"Replay of {self._instrument_id} ready: {len(self._sources)} source(s) "
            f"({', '.join(sorted(self._kinds))}), speed x{self._replay_config.speed}, "
            f"loop={self._replay_config.loop}; starts on first subscription"
        )

    async def _disconnect(self) -> None:
        task, self._stream_task = self._stream_task, None
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        counts = ", ".join(f"{n} {channel}" for channel, n in sorted(self.published.items())) or "nothing"
        self._log.info(f"Replay of {self._instrument_id} stopped: {counts} published")

    async def _stream(self) -> None:
        await self._started.wait()
        schedule = ReplaySchedule(
            self._sources,
            speed=self._replay_config.speed,
            loop=self._replay_config.loop,
            loop_gap=timedelta(seconds=self._replay_config.loop_gap_secs),
            align=self._replay_config.align_sources,
        )
        behind = 0
        try:
            for due_at, event in _book_events(schedule):
                delay = (due_at - datetime.now(UTC)).total_seconds()
                if delay > 0:
                    behind = 0
                    await asyncio.sleep(delay)
                else:
                    behind += 1
                    if behind % _YIELD_EVERY == 0:
                        await asyncio.sleep(0)
                self._publish(event)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a malformed recording ends the replay loudly, not the node
            self.failure = exc
            self._log.error(f"Replay of {self._instrument_id} failed: {type(exc).__name__}: {exc}")
            return
        self._log.info(f"Replay of {self._instrument_id} reached the end of the recording")

    # -- publication ------------------------------------------------------------------------------

    def _emit(self, channel: str, subscribed: bool, build: Callable[[int], Data]) -> None:
        # The one publication path: only while subscribed, stamped with the client clock now.
        if subscribed:
            self._handle_data(build(self._clock.timestamp_ns()))
            self.published[channel] += 1
        else:
            self.dropped[channel] += 1

    def _publish(self, event: object) -> None:
        iid, pp, sp = self._instrument_id, self._price_precision, self._size_precision
        if isinstance(event, QuoteRecord):
            self._emit("quotes", iid in self.subscribed_quote_ticks(),
                       lambda ts: quote_tick_from_record(event, iid, pp, sp, ts))
        elif isinstance(event, TradeRecord):
            self._emit("trades", iid in self.subscribed_trade_ticks(),
                       lambda ts: trade_tick_from_record(event, iid, pp, sp, ts))
        elif isinstance(event, BarRecord):
            bar_type = self._bar_types[event.interval]
            quotes_on = self._quotes_from_bars and iid in self.subscribed_quote_ticks()
            # A bars-only recording's bar is published for its quote subscribers too: it drives the
            # paper venue's bar execution and fills the cache's bar history (VWAP profiles).
            self._emit("bars", bar_type in self.subscribed_bars() or quotes_on,
                       lambda ts: bar_from_record(event, bar_type, pp, sp, ts))
            if self._quotes_from_bars:
                self._emit("quotes", quotes_on, lambda ts: quote_tick_from_bar(event, iid, pp, sp, ts))
        elif isinstance(event, BookRecord | tuple):
            self._publish_book(event)
        else:  # pragma: no cover (a reader yielding a new record type without a publisher)
            raise TypeError(f"no publisher for {type(event).__name__}")

    def _publish_book(self, event: BookEvent) -> None:
        iid, pp, sp = self._instrument_id, self._price_precision, self._size_precision
        # The local book follows the recording whether or not anyone listens.
        if isinstance(event, BookRecord):
            self._book.load(event)
            ts, sequence = event.ts, 0
        else:
            for delta in event:
                self._book.apply(delta.side, delta.price, delta.size)
            ts, sequence = event[-1].ts, event[-1].update_id or 0

        def deltas(ts_ns: int) -> OrderBookDeltas:
            if isinstance(event, BookRecord):
                return book_snapshot_deltas(event, iid, pp, sp, ts_ns)
            if not self._book_synced:  # a new subscriber: the book as it stands, then deltas
                return book_snapshot_deltas(self._book.record(ts), iid, pp, sp, ts_ns, sequence=sequence)
            return book_update_deltas(event, iid, pp, sp, ts_ns)

        deltas_on = iid in self.subscribed_order_book_deltas()
        self._emit("book_deltas", deltas_on, deltas)
        self._book_synced = deltas_on
        self._emit("book_depth", iid in self.subscribed_order_book_snapshots(),
                   lambda ts_ns: book_depth10(self._book.record(ts, depth=_DEPTH10), iid, pp, sp, ts_ns))

    # -- subscriptions ----------------------------------------------------------------------------

    def _check_subscription(self, instrument_id: InstrumentId, kind: str, what: str) -> bool:
        if instrument_id != self._instrument_id:
            self._log.error(f"Cannot subscribe {what} of {instrument_id}: this replay client serves "
                            f"{self._instrument_id} only")
            return False
        if kind not in self._kinds and not (kind == "quotes" and self._quotes_from_bars):
            self._log.warning(f"Subscribed {what} of {instrument_id}, but no {kind!r} source is configured: "
                              "nothing will be published")
        self._started.set()
        return True

    def _check_instrument(self, instrument_id: InstrumentId) -> bool:
        if instrument_id != self._instrument_id:
            self._log.error(f"Cannot subscribe {instrument_id}: this replay client serves {self._instrument_id} only")
            return False
        return True

    async def _subscribe_quote_ticks(self, command: SubscribeQuoteTicks) -> None:
        self._check_subscription(command.instrument_id, "quotes", "quote ticks")

    async def _subscribe_trade_ticks(self, command: SubscribeTradeTicks) -> None:
        self._check_subscription(command.instrument_id, "trades", "trade ticks")

    async def _subscribe_order_book_deltas(self, command: SubscribeOrderBook) -> None:
        if command.book_type == BookType.L3_MBO:
            self._log.warning(f"{command.instrument_id}: the recordings are L2 (price levels); an L3_MBO "
                              "subscriber gets one order per level (order_id 0)")
        self._check_subscription(command.instrument_id, "book", "order book deltas")

    async def _subscribe_order_book_snapshots(self, command: SubscribeOrderBook) -> None:
        self._check_subscription(command.instrument_id, "book", "order book depth")

    async def _subscribe_bars(self, command: SubscribeBars) -> None:
        if self._check_subscription(command.bar_type.instrument_id, "bars", f"bars {command.bar_type}"):
            if "bars" in self._kinds and command.bar_type not in self._bar_types.values():
                self._log.error(f"Cannot serve bars {command.bar_type}: the recording holds "
                                f"{[str(b) for b in self._bar_types.values()]}")

    def subscribe_order_book_deltas(self, command: SubscribeOrderBook) -> None:
        """Subscribe book deltas; the next book event reaches the subscriber as a snapshot.

        Reset here, synchronously with the subscription, so that no event can be published as
        plain deltas between the subscription and the snapshot.
        """
        self._book_synced = False
        super().subscribe_order_book_deltas(command)

    def subscribe_order_book_depth(self, command: SubscribeOrderBook) -> None:
        """Serve ``OrderBookDepth10`` subscriptions (the data engine's call, absent from 1.221's live client).

        Recorded as an order-book *snapshot* subscription, which is where NautilusTrader's data
        engine looks for depth subscribers (``subscribed_order_book_snapshots``).
        """
        self.subscribe_order_book_snapshots(command)

    def unsubscribe_order_book_depth(self, command: UnsubscribeOrderBook) -> None:
        """End an ``OrderBookDepth10`` subscription (see :meth:`subscribe_order_book_depth`)."""
        self.unsubscribe_order_book_snapshots(command)

    # The base class already removed the subscription; _publish checks it per record.

    async def _unsubscribe_quote_ticks(self, command: UnsubscribeQuoteTicks) -> None:
        pass

    async def _unsubscribe_trade_ticks(self, command: UnsubscribeTradeTicks) -> None:
        pass

    async def _unsubscribe_order_book_deltas(self, command: UnsubscribeOrderBook) -> None:
        pass

    async def _unsubscribe_order_book_snapshots(self, command: UnsubscribeOrderBook) -> None:
        pass

    async def _unsubscribe_bars(self, command: UnsubscribeBars) -> None:
        pass

    async def _subscribe_instruments(self, command: SubscribeInstruments) -> None:
        pass  # the single instrument is published on connect and never changes

    async def _subscribe_instrument(self, command: SubscribeInstrument) -> None:
        self._check_instrument(command.instrument_id)

    async def _unsubscribe_instruments(self, command: UnsubscribeInstruments) -> None:
        pass

    async def _unsubscribe_instrument(self, command: UnsubscribeInstrument) -> None:
        pass


class ReplayDataClientFactory(LiveDataClientFactory):
    """Factory registered with ``node.add_data_client_factory("REPLAY", ReplayDataClientFactory)``."""

    @staticmethod
    def create(  # type: ignore[override]
        loop: asyncio.AbstractEventLoop,
        name: str,
        config: ReplayDataClientConfig,
        msgbus: MessageBus,
        cache: Cache,
        clock: LiveClock,
    ) -> ReplayDataClient:
        """Return a :class:`ReplayDataClient` with client id ``name``."""
        return ReplayDataClient(loop=loop, client_id=ClientId(name), msgbus=msgbus, cache=cache,
                                clock=clock, config=config)
