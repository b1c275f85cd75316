"""venues.replay.client: record → tick conversion, and the replay data client inside a real TradingNode."""

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import islice
from pathlib import Path

import pytest
from nautilus_trader.config import LoggingConfig, StrategyConfig, TradingNodeConfig
from nautilus_trader.live.node import TradingNode
from nautilus_trader.model.data import Bar, BarType, OrderBookDeltas, OrderBookDepth10, QuoteTick, TradeTick
from nautilus_trader.model.enums import AggressorSide, BookAction, OrderSide, RecordFlag
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.objects import Price, Quantity
from nautilus_trader.system.kernel import NautilusKernel
from nautilus_trader.trading.strategy import Strategy

from tests.helpers import SHARED_DATA as DATA
from tests.helpers import eventually
from tests.helpers import needs_market_data as needs_data
from venues.marketdata import BookLevel
from venues.replay.client import (
    ReplayDataClient,
    ReplayDataClientConfig,
    ReplayDataClientFactory,
    ReplayInstrumentConfig,
    _book_events,
    bar_base_volume,
    bar_from_record,
    bar_type_for,
    book_depth10,
    book_snapshot_deltas,
    book_update_deltas,
    build_currency_pair,
    quote_tick_from_record,
    replay_sources_for_venue,
    resolve_sources,
    to_price,
    to_quantity,
    trade_tick_from_record,
)
from venues.replay.errors import ReplayDataError, ReplayFileNotFound
from venues.replay.records import BarRecord, BookDeltaRecord, BookRecord, QuoteRecord, TradeRecord
from venues.replay.sources import load_source

QUOTES = {"kind": "quotes", "format": "binance_quotes_parquet",
          "path": "market/binance_spot_btcusdt_quotes_2021-01-08.parquet"}
TRADES = {"kind": "trades", "format": "binance_trades_parquet",
          "path": "market/binance_spot_btcusdt_trades_2021-01-08.parquet"}
BTCUSDT = ReplayInstrumentConfig(
    symbol="BTCUSDT", base_currency="BTC", quote_currency="USDT", price_precision=2, size_precision=6,
    price_increment="0.01", size_increment="0.000001", maker_fee="0.001", taker_fee="0.001",
)
BOOK25 = {"kind": "book", "format": "tardis_book_snapshot_csv",
          "path": "market/tardis_binance_futures_btcusdt_book_snapshot_25.csv"}
BARS = {"kind": "bars", "format": "bars_csv", "path": "market/btc_perp_1m_bars_2022-01.csv", "interval": "1m"}
IID = InstrumentId.from_str("BTCUSDT.BINANCE")
BAR_1M = BarType.from_str("BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL")
T0 = datetime(2021, 1, 8, 12, 0, tzinfo=UTC)
F_LAST, F_SNAPSHOT = int(RecordFlag.F_LAST), int(RecordFlag.F_SNAPSHOT)
L2_HEADER = "exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount\n"


# -- pure conversion ----------------------------------------------------------------------------


def test_quote_record_converts_to_quote_tick_exactly():
    record = QuoteRecord(ts=T0, bid=Decimal("39876.54"), ask=Decimal("39876.55"),
                         bid_size=Decimal("0.000311"), ask_size=Decimal("1.5"))
    tick = quote_tick_from_record(record, IID, 2, 6, ts_ns=1_700_000_000_123_456_789)

    assert isinstance(tick, QuoteTick)
    assert tick.instrument_id == IID
    assert tick.bid_price == Price.from_str("39876.54") and tick.bid_price.precision == 2
    assert tick.ask_price == Price.from_str("39876.55") and tick.ask_price.precision == 2
    assert tick.bid_size == Quantity.from_str("0.000311") and tick.bid_size.precision == 6
    assert tick.ask_size == Quantity.from_str("1.500000") and tick.ask_size.precision == 6
    assert tick.bid_price.as_decimal() == Decimal("39876.54")
    assert tick.ask_size.as_decimal() == Decimal("1.500000")
    assert tick.ts_event == tick.ts_init == 1_700_000_000_123_456_789


@pytest.mark.parametrize(("side", "expected"), [("BUY", AggressorSide.BUYER), ("SELL", AggressorSide.SELLER),
                                                (None, AggressorSide.NO_AGGRESSOR)])
def test_trade_record_converts_to_trade_tick(side, expected):
    record = TradeRecord(ts=T0, price=Decimal("39876.5"), size=Decimal("0.034"), aggressor_side=side,
                         trade_id="566421234")
    tick = trade_tick_from_record(record, IID, 2, 6, ts_ns=42)

    assert tick.instrument_id == IID
    assert tick.price == Price.from_str("39876.50") and tick.price.precision == 2
    assert tick.size == Quantity.from_str("0.034000") and tick.size.precision == 6
    assert tick.aggressor_side == expected
    assert str(tick.trade_id) == "566421234"
    assert tick.ts_event == tick.ts_init == 42


def test_decimal_off_the_instrument_grid_is_refused_not_rounded():
    with pytest.raises(ValueError, match="precision 2"):
        to_price(Decimal("39876.545"), 2)
    with pytest.raises(ValueError, match="precision 6"):
        to_quantity(Decimal("0.0000001"), 6)
    with pytest.raises(TypeError):
        to_price(39876.5, 2)  # type: ignore[arg-type]
    assert str(to_quantity(Decimal("1E-8"), 8)) == "0.00000001"


def test_build_currency_pair_matches_the_recorded_instrument():
    pair = build_currency_pair("BINANCE", BTCUSDT, ts_ns=7)
    assert pair.id == IID
    assert str(pair.raw_symbol) == "BTCUSDT"
    assert pair.base_currency.code == "BTC" and pair.quote_currency.code == "USDT"
    assert pair.price_precision == 2 and pair.size_precision == 6
    assert pair.price_increment == Price.from_str("0.01")
    assert pair.size_increment == Quantity.from_str("0.000001")
    assert pair.maker_fee == Decimal("0.001") and pair.taker_fee == Decimal("0.001")
    assert pair.ts_event == pair.ts_init == 7


# -- pure conversion: order books and bars --------------------------------------------------------


def _lv(price: str, size: str) -> BookLevel:
    return BookLevel(Decimal(price), Decimal(size))


BOOK = BookRecord(ts=T0, bids=(_lv("100.00", "1.5"), _lv("99.50", "0.000001")), asks=(_lv("100.01", "2"),))


def _book_levels(book) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
    """A NautilusTrader OrderBook's (price, size) levels, best first, as Decimals."""
    def side(levels):
        return [(lv.price.as_decimal(), sum(o.size.as_decimal() for o in lv.orders())) for lv in levels]
    return side(book.bids()), side(book.asks())


def test_book_record_converts_to_clear_plus_adds_flagged_snapshot_and_last():
    # Act
    deltas = book_snapshot_deltas(BOOK, IID, 2, 6, ts_ns=99)

    # Assert
    assert isinstance(deltas, OrderBookDeltas) and deltas.is_snapshot
    items = deltas.deltas
    assert [d.action for d in items] == [BookAction.CLEAR, BookAction.ADD, BookAction.ADD, BookAction.ADD]
    assert [(d.order.side, d.order.price, d.order.size) for d in items[1:]] == [
        (OrderSide.BUY, Price.from_str("100.00"), Quantity.from_str("1.500000")),
        (OrderSide.BUY, Price.from_str("99.50"), Quantity.from_str("0.000001")),
        (OrderSide.SELL, Price.from_str("100.01"), Quantity.from_str("2.000000")),
    ]
    assert [d.flags for d in items] == [F_SNAPSHOT, F_SNAPSHOT, F_SNAPSHOT, F_SNAPSHOT | F_LAST]
    assert all(d.ts_event == d.ts_init == 99 and d.instrument_id == IID for d in items)


def test_book_snapshot_deltas_rebuild_the_recorded_book_in_a_nautilus_order_book():
    # Arrange
    from nautilus_trader.model.book import OrderBook
    from nautilus_trader.model.enums import BookType

    book = OrderBook(IID, BookType.L2_MBP)
    book.apply_deltas(book_snapshot_deltas(BookRecord(ts=T0, bids=(_lv("1", "1"),), asks=(_lv("5", "5"),)), IID, 2, 6, 1))

    # Act: a second snapshot replaces the first entirely
    book.apply_deltas(book_snapshot_deltas(BOOK, IID, 2, 6, ts_ns=2))

    # Assert
    assert _book_levels(book) == ([(Decimal("100.00"), Decimal("1.5")), (Decimal("99.50"), Decimal("0.000001"))],
                                  [(Decimal("100.01"), Decimal("2"))])


def test_empty_book_record_is_a_lone_clear_flagged_snapshot_and_last():
    # Act
    deltas = book_snapshot_deltas(BookRecord(ts=T0, bids=(), asks=()), IID, 2, 6, ts_ns=1, sequence=7)

    # Assert
    [clear] = deltas.deltas
    assert clear.action == BookAction.CLEAR and clear.flags == F_SNAPSHOT | F_LAST and clear.sequence == 7


def test_book_delta_records_convert_to_updates_and_deletes_with_f_last_on_the_event_end():
    # Arrange
    event = (BookDeltaRecord(ts=T0, side="ASK", price=Decimal("100.01"), size=Decimal("0"), update_id=42, is_last=False),
             BookDeltaRecord(ts=T0, side="BID", price=Decimal("100.00"), size=Decimal("3.25"), update_id=42))

    # Act
    deltas = book_update_deltas(event, IID, 2, 6, ts_ns=5)

    # Assert
    assert not deltas.is_snapshot
    assert [(d.action, d.order.side, d.order.price, d.order.size, d.flags, d.sequence) for d in deltas.deltas] == [
        (BookAction.DELETE, OrderSide.SELL, Price.from_str("100.01"), Quantity.from_str("0.000000"), 0, 42),
        (BookAction.UPDATE, OrderSide.BUY, Price.from_str("100.00"), Quantity.from_str("3.250000"), F_LAST, 42),
    ]
    with pytest.raises(ValueError, match="empty"):
        book_update_deltas((), IID, 2, 6, ts_ns=5)


def test_book_conversion_refuses_a_price_finer_than_the_instrument():
    # Arrange
    fine = BookRecord(ts=T0, bids=(_lv("100.005", "1"),), asks=())

    # Act / Assert
    with pytest.raises(ValueError, match="precision 2"):
        book_snapshot_deltas(fine, IID, 2, 6, ts_ns=1)


def test_book_depth10_takes_the_top_ten_levels_and_pads_a_short_side():
    # Arrange
    bids = tuple(_lv(str(100 - i), str(i + 1)) for i in range(12))
    record = BookRecord(ts=T0, bids=bids, asks=(_lv("101", "1"), _lv("102", "2"), _lv("103", "3")))

    # Act
    depth = book_depth10(record, IID, 2, 6, ts_ns=3)

    # Assert
    assert isinstance(depth, OrderBookDepth10)
    assert [o.price.as_decimal() for o in depth.bids] == [Decimal(100 - i) for i in range(10)]
    assert [o.size.as_decimal() for o in depth.bids] == [Decimal(i + 1) for i in range(10)]
    assert [o.price.as_decimal() for o in depth.asks[:3]] == [Decimal("101"), Decimal("102"), Decimal("103")]
    assert all(o.side == OrderSide.NO_ORDER_SIDE for o in depth.asks[3:])
    assert depth.bid_counts == [1] * 10 and depth.ask_counts == [1, 1, 1] + [0] * 7
    assert depth.ts_event == depth.ts_init == 3


@pytest.mark.parametrize(("interval", "expected"), [
    (timedelta(minutes=1), "BTCUSDT.BINANCE-1-MINUTE-LAST-EXTERNAL"),
    (timedelta(seconds=15), "BTCUSDT.BINANCE-15-SECOND-LAST-EXTERNAL"),
    (timedelta(minutes=5), "BTCUSDT.BINANCE-5-MINUTE-LAST-EXTERNAL"),
    (timedelta(hours=4), "BTCUSDT.BINANCE-4-HOUR-LAST-EXTERNAL"),
    (timedelta(days=1), "BTCUSDT.BINANCE-1-DAY-LAST-EXTERNAL"),
])
def test_bar_type_for_uses_the_largest_whole_unit(interval, expected):
    assert bar_type_for(IID, interval) == BarType.from_str(expected)


def test_bar_type_for_refuses_intervals_nautilus_cannot_name():
    with pytest.raises(ValueError, match="whole number of seconds"):
        bar_type_for(IID, timedelta(milliseconds=500))
    with pytest.raises(ValueError, match="step must evenly divide 60"):
        bar_type_for(IID, timedelta(seconds=90))  # NautilusTrader: a step must divide its unit's period


def _bar(volume: str, unit: str = "QUOTE", close: str = "46377.0") -> BarRecord:
    return BarRecord(ts=T0, interval=timedelta(minutes=1), open=Decimal("46319.0"), high=Decimal("46385.0"),
                     low=Decimal("46319.0"), close=Decimal(close), volume=Decimal(volume), volume_unit=unit)


def test_quote_volume_converts_to_base_units_at_the_typical_price():
    # Arrange: the first bar of btc_perp_1m_bars_2022-01.csv; typical price (H+L+C)/3 = 46360.333…
    record = _bar("2300413.7295")

    # Act
    base = bar_base_volume(record, 6)

    # Assert
    assert base == Decimal("49.620302")
    assert record.volume / record.high <= base <= record.volume / record.low
    assert bar_base_volume(_bar("7.25", unit="BASE"), 6) == Decimal("7.25")
    with pytest.raises(ValueError, match="precision 3"):
        bar_base_volume(_bar("7.2505", unit="BASE"), 3)


def test_bar_record_converts_to_bar_exactly():
    # Act
    bar = bar_from_record(_bar("2300413.7295"), BAR_1M, 2, 6, ts_ns=11)

    # Assert
    assert isinstance(bar, Bar) and bar.bar_type == BAR_1M
    assert (bar.open, bar.high, bar.low, bar.close) == tuple(
        Price.from_str(p) for p in ("46319.00", "46385.00", "46319.00", "46377.00"))
    assert bar.volume == Quantity.from_str("49.620302") and bar.volume.precision == 6
    assert bar.ts_event == bar.ts_init == 11
    with pytest.raises(ValueError, match="precision 0"):
        bar_from_record(_bar("1", close="46377.5"), BAR_1M, 0, 6, ts_ns=11)


def test_book_events_group_the_rows_of_one_venue_event():
    # Arrange
    d = [BookDeltaRecord(ts=T0, side="BID", price=Decimal(p), size=Decimal("1"), is_last=last)
         for p, last in (("1", False), ("2", True), ("3", False))]
    quote = QuoteRecord(ts=T0, bid=Decimal("1"), ask=Decimal("2"), bid_size=Decimal("1"), ask_size=Decimal("1"))
    stream = [(1, BOOK), (2, d[0]), (2, d[1]), (3, quote), (4, d[2])]

    # Act
    events = list(_book_events(stream))

    # Assert: the last, unterminated event is still delivered
    assert events == [(1, BOOK), (2, (d[0], d[1])), (3, quote), (4, (d[2],))]


# -- configuration --------------------------------------------------------------------------------


def _config(**overrides) -> ReplayDataClientConfig:
    values = dict(venue="BINANCE", instrument=BTCUSDT, sources=(QUOTES, TRADES), data_dir=str(DATA), speed=20.0)
    values.update(overrides)
    return ReplayDataClientConfig(**values)


@needs_data
def test_resolve_sources_fills_the_instrument_precisions_into_every_kind():
    # Act
    quotes, trades, book, bars = resolve_sources(_config(sources=(QUOTES, TRADES, BOOK25, BARS)))

    # Assert
    assert dict(quotes.options) == {"price_precision": 2, "size_precision": 6}
    assert dict(trades.options) == {"price_precision": 2, "size_precision": 6}
    assert dict(book.options) == {"price_precision": 2, "size_precision": 6}
    assert dict(bars.options) == {"interval": timedelta(minutes=1), "price_precision": 2, "size_precision": 6}


@needs_data
@pytest.mark.parametrize(("sources", "error", "message"), [
    ((), ValueError, "empty"),
    (({"kind": "funding", "format": "bars_csv", "path": "x"},), ValueError, "'funding' is not supported"),
    (({**QUOTES, "path": "market/missing.parquet"},), ReplayDataError, "not found"),
    (({**BOOK25, "price_precision": 3},), ValueError, "price_precision=3 is finer than the instrument's 2"),
    ((BOOK25, {**BOOK25, "path": "market/tardis_binance_futures_btcusdt_book_snapshot_5.csv"}), ValueError,
     "2 book sources"),
    ((BARS, {**BARS}), ValueError, "same interval"),
])
def test_resolve_sources_refuses_bad_source_sets(sources, error, message):
    with pytest.raises(error, match=message):
        resolve_sources(_config(sources=sources))


PERP = "BINANCE-FUTURES:PERPETUAL:BTC-USDT@LIN"


@needs_data
def test_replay_sources_for_venue_returns_each_listings_sources():
    # Arrange
    venue_config = {"account_type": "USDT_FUTURES", "api_key_env": "BINANCE_API_KEY",
                    "replay": {"data_dir": "shared/data", "speed": 600, "loop": True, "align_sources": True,
                               "instruments": {PERP: [BOOK25, BARS]}}}

    # Act
    sources = replay_sources_for_venue(venue_config, root=DATA.parent.parent)

    # Assert: usable as is by the listing's client config (paths stay relative to data_dir)
    assert sources == {PERP: (BOOK25, BARS)}
    assert sources[PERP][0] is not BOOK25
    config = _config(sources=sources[PERP], speed=600.0, align_sources=True)
    assert [s.kind for s in resolve_sources(config)] == ["book", "bars"]


@needs_data
@pytest.mark.parametrize(("replay", "error", "message"), [
    (None, ReplayDataError, "no 'replay' block"),
    ({"data_dir": "shared/data", "quotes": "market/binance_spot_btcusdt_quotes_2021-01-08.parquet",
      "depth_snapshot": "market/binance_spot_btcusdt_depth_snapshot.csv"},
     ReplayDataError, r"key\(s\) \['depth_snapshot', 'quotes'\]"),
    ({"data_dir": "shared/data", "sources": [BOOK25]}, ReplayDataError, r"key\(s\) \['sources'\]"),
    ({"data_dir": "shared/data", "instruments": {}}, ReplayDataError, "non-empty 'instruments'"),
    ({"instruments": {PERP: [BOOK25]}}, ReplayDataError, "needs 'data_dir'"),
    ({"data_dir": "shared/data", "instruments": {PERP: []}}, ReplayDataError, "non-empty list of sources"),
    ({"data_dir": "shared/data", "instruments": {PERP: ["market/x.csv"]}}, ReplayDataError, "must be a mapping"),
    ({"data_dir": "shared/data", "instruments": {PERP: [{**BARS, "path": "market/nope.csv"}]}},
     ReplayDataError, "replay file not found"),
    ({"data_dir": "shared/data", "instruments": {PERP: [{**BOOK25, "path": "market/gone.csv"},
                                                         {**BARS, "path": "market/nope.csv"}]}},
     ReplayFileNotFound, r"2 replay files not found: .*market/gone\.csv.*; .*market/nope\.csv"),
    ({"data_dir": "shared/data", "instruments": {PERP: [BOOK25, BOOK25]}}, ValueError, "2 book sources"),
])
def test_replay_sources_for_venue_refuses_configs_not_in_the_client_shape(replay, error, message):
    venue_config = {} if replay is None else {"replay": replay}
    with pytest.raises(error, match=message):
        replay_sources_for_venue(venue_config, root=DATA.parent.parent)


# -- inside a real TradingNode ---------------------------------------------------------------


class _CollectConfig(StrategyConfig, frozen=True):
    instrument_id: str
    quotes: bool = False
    trades: bool = False
    book_deltas: bool = False
    book_depth: bool = False
    bar_type: str | None = None
    book_after_quotes: int = 0  # subscribe book deltas on the Nth quote instead of on start
    unsubscribe_bars_after: int = 0  # unsubscribe bars on the Nth bar (0: never)


class _Collect(Strategy):
    """Subscribes to what its config says and collects what arrives (lock: read from the test thread).

    ``client`` is set by the test after ``node.build()``; it is only read in handlers, on the loop.
    """

    def __init__(self, config: _CollectConfig) -> None:
        super().__init__(config)
        self.lock = threading.Lock()
        self.items: list = []
        self.client: ReplayDataClient | None = None
        self.quotes_seen = 0
        self.bars_seen = 0
        self.bars_unsubscribed = False
        self.after_unsubscribe: list[tuple[bool, int, int]] = []  # per quote: (subscribed, published, dropped)

    def on_start(self) -> None:
        instrument_id = InstrumentId.from_str(self.config.instrument_id)
        if self.config.quotes:
            self.subscribe_quote_ticks(instrument_id)
        if self.config.trades:
            self.subscribe_trade_ticks(instrument_id)
        if self.config.book_deltas and not self.config.book_after_quotes:
            self.subscribe_order_book_deltas(instrument_id)
        if self.config.book_depth:
            # unmanaged: a managed book fed deltas and depth alike would be cut to 10 levels
            self.subscribe_order_book_depth(instrument_id, managed=False)
        if self.config.bar_type:
            self.subscribe_bars(BarType.from_str(self.config.bar_type))

    def _add(self, item) -> None:
        with self.lock:
            self.items.append(item)

    def on_quote_tick(self, tick: QuoteTick) -> None:
        self._add(tick)
        self.quotes_seen += 1
        if self.config.book_after_quotes and self.quotes_seen == self.config.book_after_quotes:
            self.subscribe_order_book_deltas(tick.instrument_id)
        if self.bars_unsubscribed:
            bar_type = BarType.from_str(self.config.bar_type)
            self.after_unsubscribe.append((bar_type in self.client.subscribed_bars(),
                                           self.client.published["bars"], self.client.dropped["bars"]))

    def on_trade_tick(self, tick: TradeTick) -> None:
        self._add(tick)

    def on_order_book_deltas(self, deltas: OrderBookDeltas) -> None:
        self._add(deltas)

    def on_order_book_depth(self, depth: OrderBookDepth10) -> None:
        self._add(depth)

    def on_bar(self, bar: Bar) -> None:
        self._add(bar)
        self.bars_seen += 1
        if self.config.unsubscribe_bars_after and self.bars_seen == self.config.unsubscribe_bars_after:
            self.unsubscribe_bars(bar.bar_type)
            self.bars_unsubscribed = True

    def snapshot(self) -> list:
        with self.lock:
            return list(self.items)


class _RecordingFactory(ReplayDataClientFactory):
    """The production factory, remembering the client it built (for its counters)."""

    created: list[ReplayDataClient] = []

    @staticmethod
    def create(loop, name, config, msgbus, cache, clock):
        client = ReplayDataClientFactory.create(loop, name, config, msgbus, cache, clock)
        _RecordingFactory.created.append(client)
        return client


class _Run:
    """What a node run leaves for the checks (read after ``run()`` returned: the loop is idle)."""

    def __init__(self, items, strategy, client, cache, started_ns, stopped_ns):
        self.items, self.strategy, self.client, self.cache = items, strategy, client, cache
        self.started_ns, self.stopped_ns = started_ns, stopped_ns

    def of(self, kind) -> list:
        return [item for item in self.items if isinstance(item, kind)]


def _run_node(monkeypatch, strategy_config: _CollectConfig, until, check, config: ReplayDataClientConfig | None = None):
    """Run a TradingNode (own loop, ``run()`` on a thread) until ``until`` holds, then stop it and ``check``.

    ``until`` is a number of collected items or a predicate ``(items, strategy, client) -> bool``.
    ``check(run)`` gets a :class:`_Run` once ``run()`` has returned, before the node is disposed.
    """
    # The node must not own process signals (see NAUTILUS_NOTES): neutralised for this test only.
    monkeypatch.setattr(NautilusKernel, "_setup_loop", lambda self: None)
    monkeypatch.setattr(_RecordingFactory, "created", [])
    if isinstance(until, int):
        count = until
        until = lambda items, strategy, client: len(items) >= count  # noqa: E731
    loop = asyncio.new_event_loop()
    node = TradingNode(
        config=TradingNodeConfig(
            trader_id="REPLAY-001",
            logging=LoggingConfig(log_level="ERROR"),
            data_clients={"REPLAY": config or _config()},
            timeout_connection=5.0,
            timeout_post_stop=0.2,
        ),
        loop=loop,
    )
    try:
        node.add_data_client_factory("REPLAY", _RecordingFactory)
        strategy = _Collect(strategy_config)
        node.trader.add_strategy(strategy)
        node.build()
        [client] = _RecordingFactory.created
        strategy.client = client

        started_ns = time.time_ns()
        runner = threading.Thread(target=node.run, name="replay-node", daemon=True)
        runner.start()
        try:
            items = eventually(lambda: until(got := strategy.snapshot(), strategy, client) and got, timeout=20,
                               message="the replayed data reach the strategy")
        finally:
            asyncio.run_coroutine_threadsafe(node.stop_async(), loop).result(timeout=15)
            runner.join(timeout=15)
        stopped_ns = time.time_ns()
        assert not runner.is_alive(), "node.run() did not return after stop_async()"
        check(_Run(strategy.snapshot() or items, strategy, client, node.kernel.cache, started_ns, stopped_ns))
    finally:
        node.dispose()
        loop.close()


def _assert_restamped(items, started_ns: int, stopped_ns: int) -> None:
    stamps = [t.ts_event for t in items]
    assert all(started_ns <= ts <= stopped_ns for ts in stamps), "ts re-stamped to now (inside the run window)"
    assert stamps == sorted(stamps)
    assert all(t.ts_event == t.ts_init for t in items)
    assert all((t.bar_type.instrument_id if isinstance(t, Bar) else t.instrument_id) == IID for t in items)


@needs_data
def test_replay_client_streams_recorded_quotes_through_a_trading_node(monkeypatch):
    expected = list(islice(load_source({**QUOTES, "price_precision": 2, "size_precision": 6}, DATA), 20))

    def check(run):
        ticks = run.items
        assert all(isinstance(t, QuoteTick) for t in ticks)
        # the first recorded quotes, in order, at the recorded prices and sizes
        got = [(q.bid_price.as_decimal(), q.ask_price.as_decimal(), q.bid_size.as_decimal(), q.ask_size.as_decimal())
               for q in ticks[: len(expected)]]
        assert got == [(r.bid, r.ask, r.bid_size, r.ask_size) for r in expected]
        _assert_restamped(ticks, run.started_ns, run.stopped_ns)
        # the instrument was published on connect; trades are recorded but nobody subscribed them
        assert run.cache.instrument(IID) == build_currency_pair("BINANCE", BTCUSDT, ts_ns=0)
        assert run.client.published_quotes >= len(ticks)
        assert run.client.published_trades == 0 and run.client.dropped["trades"] > 0
        assert run.cache.trade_ticks(IID) == []

    _run_node(monkeypatch, _CollectConfig(instrument_id=str(IID), quotes=True), 200, check)


@needs_data
def test_replay_client_streams_only_trades_when_only_trades_are_subscribed(monkeypatch):
    expected = list(islice(load_source({**TRADES, "price_precision": 2, "size_precision": 6}, DATA), 10))
    sides = {"BUY": AggressorSide.BUYER, "SELL": AggressorSide.SELLER}

    def check(run):
        ticks = run.items
        assert all(isinstance(t, TradeTick) for t in ticks)
        got = [(t.price.as_decimal(), t.size.as_decimal(), t.aggressor_side, str(t.trade_id))
               for t in ticks[: len(expected)]]
        assert got == [(r.price, r.size, sides[r.aggressor_side], r.trade_id) for r in expected]
        _assert_restamped(ticks, run.started_ns, run.stopped_ns)
        assert run.client.published_trades >= len(ticks)
        assert run.client.published_quotes == 0
        assert run.cache.quote_ticks(IID) == []

    _run_node(monkeypatch, _CollectConfig(instrument_id=str(IID), trades=True), len(expected), check)


def _snapshot_levels(deltas: OrderBookDeltas) -> tuple[list, list]:
    adds = [d.order for d in deltas.deltas if d.action == BookAction.ADD]
    side = lambda s: [(o.price.as_decimal(), o.size.as_decimal()) for o in adds if o.side == s]  # noqa: E731
    return side(OrderSide.BUY), side(OrderSide.SELL)


def _levels(levels) -> list[tuple[Decimal, Decimal]]:
    return [(lv.price, lv.size) for lv in levels]


@needs_data
def test_replay_client_streams_book_snapshots_as_deltas_and_depth10_in_recorded_order(monkeypatch):
    # Arrange: 10 recorded 25-level snapshots; quotes configured (aligned to start with the book) but
    # not subscribed
    expected = list(load_source({**BOOK25, "price_precision": 2, "size_precision": 6}, DATA))
    config = _config(sources=(BOOK25, QUOTES), align_sources=True)

    def until(items, strategy, client):
        return sum(isinstance(i, OrderBookDepth10) for i in items) >= 10 and client.dropped["quotes"] >= 20

    def check(run):
        deltas, depths = run.of(OrderBookDeltas), run.of(OrderBookDepth10)
        # each snapshot is published as deltas then depth, in recorded order, and nothing else
        assert [type(i) for i in run.items] == [OrderBookDeltas, OrderBookDepth10] * 10
        for got, record in zip(deltas, expected, strict=True):
            assert got.is_snapshot and got.deltas[0].action == BookAction.CLEAR
            assert [d.action for d in got.deltas[1:]] == [BookAction.ADD] * 50
            assert _snapshot_levels(got) == (_levels(record.bids), _levels(record.asks))
            assert [d.flags for d in got.deltas] == [F_SNAPSHOT] * 50 + [F_SNAPSHOT | F_LAST]
        for got, record in zip(depths, expected, strict=True):
            assert [(o.price.as_decimal(), o.size.as_decimal()) for o in got.bids] == _levels(record.bids[:10])
            assert [(o.price.as_decimal(), o.size.as_decimal()) for o in got.asks] == _levels(record.asks[:10])
        _assert_restamped(run.items, run.started_ns, run.stopped_ns)
        # the data engine's managed book holds the last recorded snapshot, all 25 levels a side
        assert _book_levels(run.cache.order_book(IID)) == (_levels(expected[-1].bids), _levels(expected[-1].asks))
        assert run.client.published["book_deltas"] == run.client.published["book_depth"] == 10
        assert run.client.published_quotes == 0 and run.cache.quote_ticks(IID) == []

    _run_node(monkeypatch, _CollectConfig(instrument_id=str(IID), book_deltas=True, book_depth=True), until, check,
              config=config)


def _l2_file(path: Path, start: datetime, events: int, step_ms: int) -> Path:
    """Write a Tardis incremental_book_L2 file: a 3x3 snapshot at ``start`` then ``events`` delta events."""
    us = lambda t: int(t.timestamp() * 1_000_000)  # noqa: E731
    rows = [f"t,BTCUSDT,{us(start)},{us(start)},true,{side},{price},{size}"
            for side, price, size in (("bid", "100.00", "1"), ("bid", "99.90", "2"), ("bid", "99.80", "3"),
                                      ("ask", "100.10", "1"), ("ask", "100.20", "2"), ("ask", "100.30", "3"))]
    for j in range(1, events + 1):
        ts = us(start + timedelta(milliseconds=step_ms * j))
        rows.append(f"t,BTCUSDT,{ts},{ts},false,ask,{Decimal('100.10') + Decimal(j % 3) / 10},{0 if j % 4 == 0 else j}")
        rows.append(f"t,BTCUSDT,{ts},{ts},false,bid,{Decimal('99.50') - Decimal(j % 5) / 100},0.{j:06d}")
    path.write_text(L2_HEADER + "\n".join(rows) + "\n")
    return path


def test_replay_client_streams_recorded_book_deltas_one_batch_per_event(monkeypatch, tmp_path):
    # Arrange
    spec = {"kind": "book", "format": "tardis_incremental_book_l2_csv", "emit": "deltas",
            "path": str(_l2_file(tmp_path / "l2.csv", T0, events=12, step_ms=250))}
    records = list(load_source({**spec, "price_precision": 2, "size_precision": 6}, tmp_path))
    books = list(load_source({**spec, "emit": "books"}, tmp_path))
    snapshot, rows = records[0], records[1:]
    events = [rows[i:i + 2] for i in range(0, len(rows), 2)]
    config = _config(sources=(spec,), data_dir=str(tmp_path))

    def check(run):
        first, *updates = run.of(OrderBookDeltas)
        assert first.is_snapshot and _snapshot_levels(first) == (_levels(snapshot.bids), _levels(snapshot.asks))
        assert len(updates) == 12
        for got, event in zip(updates, events, strict=True):
            assert not got.is_snapshot
            assert [(d.action, d.order.side, d.order.price.as_decimal(), d.order.size.as_decimal(), d.flags)
                    for d in got.deltas] == [
                (BookAction.UPDATE if r.size else BookAction.DELETE, OrderSide.SELL if r.side == "ASK" else OrderSide.BUY,
                 r.price, r.size, F_LAST if r.is_last else 0) for r in event]
        _assert_restamped(run.of(OrderBookDeltas), run.started_ns, run.stopped_ns)
        # the managed book, built from the published deltas, is the recorded book after the last event
        assert _book_levels(run.cache.order_book(IID)) == (_levels(books[-1].bids), _levels(books[-1].asks))

    _run_node(monkeypatch, _CollectConfig(instrument_id=str(IID), book_deltas=True), 13, check, config=config)


@needs_data
def test_replay_client_sends_a_late_book_subscriber_a_snapshot_before_deltas(monkeypatch, tmp_path):
    # Arrange: book events every 200 ms over the quotes' 46 s; the book is subscribed on the 50th quote
    start = datetime(2021, 1, 8, 0, 0, 1, tzinfo=UTC)
    spec = {"kind": "book", "format": "tardis_incremental_book_l2_csv", "emit": "deltas",
            "path": str(_l2_file(tmp_path / "l2.csv", start, events=200, step_ms=200))}
    states = [(_levels(b.bids), _levels(b.asks)) for b in load_source({**spec, "emit": "books"}, tmp_path)]
    config = _config(sources=(QUOTES, spec))

    def joined_at(items) -> int | None:
        book = [i for i in items if isinstance(i, OrderBookDeltas)]
        return states.index(_snapshot_levels(book[0])) if book else None

    def until(items, strategy, client):
        k = joined_at(items)
        return k is not None and sum(isinstance(i, OrderBookDeltas) for i in items) == len(states) - k

    def check(run):
        first, *rest = run.of(OrderBookDeltas)
        k = states.index(_snapshot_levels(first))
        assert first.is_snapshot and k > 0, "joined mid-recording, with the book as it stood then"
        assert rest and not any(d.is_snapshot for d in rest)
        assert _book_levels(run.cache.order_book(IID)) == states[-1]
        assert run.client.dropped["book_deltas"] == k  # the events before the subscription

    _run_node(monkeypatch, _CollectConfig(instrument_id=str(IID), quotes=True, book_deltas=True, book_after_quotes=50),
              until, check, config=config)


@needs_data
def test_replay_client_streams_the_month_of_bars_lazily_at_the_recorded_prices(monkeypatch):
    # Arrange: x6000 = 100 one-minute bars a second; quotes aligned with the bars but not subscribed
    expected = list(islice(load_source({**BARS, "price_precision": 2, "size_precision": 6}, DATA), 10))
    config = _config(sources=(BARS, QUOTES), speed=6000.0, align_sources=True)

    def until(items, strategy, client):
        return len(items) >= 10 and client.dropped["quotes"] >= 20

    def check(run):
        bars = run.of(Bar)
        assert bars == run.items
        assert [b.bar_type for b in bars] == [BAR_1M] * len(bars)
        got = [(b.open.as_decimal(), b.high.as_decimal(), b.low.as_decimal(), b.close.as_decimal(), b.volume)
               for b in bars[:10]]
        assert got == [(r.open, r.high, r.low, r.close, Quantity.from_str(str(bar_base_volume(r, 6))))
                       for r in expected]
        assert all(b.volume.precision == 6 and b.open.precision == 2 for b in bars)
        _assert_restamped(bars, run.started_ns, run.stopped_ns)
        # the data engine cached them (newest first); it kept caching after the strategy stopped
        assert run.cache.bars(BAR_1M)[-len(bars):] == bars[::-1]
        assert run.client.published_quotes == 0 and run.cache.quote_ticks(IID) == []

    _run_node(monkeypatch, _CollectConfig(instrument_id=str(IID), bar_type=str(BAR_1M)), until, check, config=config)


def _bars_file(path: Path, start: datetime, count: int, step: timedelta) -> Path:
    """Write a bars CSV of ``count`` bars (base-unit volume) opening at ``start``, ``step`` apart."""
    rows = []
    for i in range(count):
        price = Decimal("39400.00") + i
        rows.append(f"{(start + i * step).strftime('%Y-%m-%d %H:%M:%S.%f')},{price},{price + 2},{price - 1},"
                    f"{price + 1},{i + 1}.5")
    path.write_text("timestamp,open,high,low,close,volume\n" + "\n".join(rows) + "\n")
    return path


def _key(item) -> tuple:
    if isinstance(item, QuoteTick | QuoteRecord):
        q = item if isinstance(item, QuoteRecord) else None
        return ("Q",) + ((q.bid, q.ask, q.bid_size, q.ask_size) if q else (
            item.bid_price.as_decimal(), item.ask_price.as_decimal(), item.bid_size.as_decimal(),
            item.ask_size.as_decimal()))
    if isinstance(item, TradeTick | TradeRecord):
        return ("T", item.trade_id if isinstance(item, TradeRecord) else str(item.trade_id))
    if isinstance(item, BarRecord):
        return ("B", item.open, item.close, item.volume)
    return ("B", item.open.as_decimal(), item.close.as_decimal(), item.volume.as_decimal())


@needs_data
def test_replay_client_merges_quotes_trades_and_bars_in_recorded_time_order(monkeypatch, tmp_path):
    # Arrange: 5-second bars recorded over the same 46 s as the quotes and trades
    bars_spec = {"kind": "bars", "format": "bars_csv", "interval": "5s", "volume_unit": "BASE",
                 "path": str(_bars_file(tmp_path / "bars.csv", datetime(2021, 1, 8, tzinfo=UTC), 9,
                                        timedelta(seconds=5)))}
    sources = (QUOTES, TRADES, bars_spec)
    recorded = [(r.ts, i, n, r) for i, spec in enumerate(sources)
                for n, r in enumerate(load_source({**spec, "price_precision": 2, "size_precision": 6}, DATA))]
    expected = [_key(r) for *_, r in sorted(recorded, key=lambda t: t[:3])]
    bar_type = "BTCUSDT.BINANCE-5-SECOND-LAST-EXTERNAL"
    config = _config(sources=sources)

    def until(items, strategy, client):
        return sum(isinstance(i, Bar) for i in items) >= 3

    def check(run):
        got = [_key(i) for i in run.items]
        assert len(got) > 500 and {k[0] for k in got} == {"Q", "T", "B"}
        assert got == expected[: len(got)]
        _assert_restamped(run.items, run.started_ns, run.stopped_ns)

    _run_node(monkeypatch, _CollectConfig(instrument_id=str(IID), quotes=True, trades=True, bar_type=bar_type),
              until, check, config=config)


@needs_data
def test_replay_client_stops_publishing_bars_once_unsubscribed(monkeypatch, tmp_path):
    # Arrange: one bar a recorded second beside the quotes; the strategy unsubscribes on the 3rd bar
    bars_spec = {"kind": "bars", "format": "bars_csv", "interval": "1s", "volume_unit": "BASE",
                 "path": str(_bars_file(tmp_path / "bars.csv", datetime(2021, 1, 8, tzinfo=UTC), 46,
                                        timedelta(seconds=1)))}
    bar_type = "BTCUSDT.BINANCE-1-SECOND-LAST-EXTERNAL"
    config = _config(sources=(QUOTES, bars_spec))

    def gone(strategy) -> list:
        return [entry for entry in strategy.after_unsubscribe if not entry[0]]

    def until(items, strategy, client):
        unsubscribed = gone(strategy)
        return len(unsubscribed) >= 100 and unsubscribed[-1][2] > unsubscribed[0][2]

    def check(run):
        unsubscribed = gone(run.strategy)
        # bars kept coming due (dropped grows) but none was published after the client let go
        assert {published for _, published, _ in unsubscribed} == {unsubscribed[0][1]}
        assert unsubscribed[-1][2] > unsubscribed[0][2]
        assert len(run.of(Bar)) == 3
        assert run.client.published["bars"] == unsubscribed[0][1]

    _run_node(monkeypatch, _CollectConfig(instrument_id=str(IID), quotes=True, bar_type=bar_type,
                                          unsubscribe_bars_after=3), until, check, config=config)


def test_replay_client_ends_the_replay_on_a_price_finer_than_the_instrument_naming_file_and_line(monkeypatch, tmp_path):
    # Arrange: the third snapshot (line 4) quotes a price in tenths of a cent
    path = tmp_path / "snap.csv"
    path.write_text("exchange,symbol,timestamp,local_timestamp,asks[0].price,asks[0].amount,bids[0].price,bids[0].amount\n"
                    "x,BTCUSDT,1000000,1000000,100.10,1,100.00,1\n"
                    "x,BTCUSDT,1100000,1100000,100.20,1,100.00,1\n"
                    "x,BTCUSDT,1200000,1200000,100.205,1,100.00,1\n"
                    "x,BTCUSDT,1300000,1300000,100.30,1,100.00,1\n")
    config = _config(sources=({"kind": "book", "format": "tardis_book_snapshot_csv", "path": "snap.csv"},),
                     data_dir=str(tmp_path))

    def until(items, strategy, client):
        return client.failure is not None and len(items) >= 2

    def check(run):
        assert isinstance(run.client.failure, ReplayDataError)
        assert run.client.failure.path == path.resolve() and run.client.failure.location == "line 4"
        assert "field 'asks[0].price': 100.205 has 3 decimals" in str(run.client.failure)
        asks = [_snapshot_levels(d)[1] for d in run.of(OrderBookDeltas)]
        assert asks == [[(Decimal("100.10"), Decimal("1"))], [(Decimal("100.20"), Decimal("1"))]]
        assert run.client.published["book_deltas"] == 2

    _run_node(monkeypatch, _CollectConfig(instrument_id=str(IID), book_deltas=True), until, check, config=config)
