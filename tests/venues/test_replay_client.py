"""venues.replay.client: record → tick conversion, and the replay data client inside a real TradingNode."""

import asyncio
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal
from itertools import islice

import pytest
from nautilus_trader.config import LoggingConfig, StrategyConfig, TradingNodeConfig
from nautilus_trader.live.node import TradingNode
from nautilus_trader.model.data import QuoteTick, TradeTick
from nautilus_trader.model.enums import AggressorSide
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.objects import Price, Quantity
from nautilus_trader.system.kernel import NautilusKernel
from nautilus_trader.trading.strategy import Strategy

from tests.helpers import SHARED_DATA as DATA
from tests.helpers import eventually
from tests.helpers import needs_market_data as needs_data
from venues.replay.client import (
    ReplayDataClient,
    ReplayDataClientConfig,
    ReplayDataClientFactory,
    ReplayInstrumentConfig,
    build_currency_pair,
    quote_tick_from_record,
    resolve_sources,
    to_price,
    to_quantity,
    trade_tick_from_record,
)
from venues.replay.errors import ReplayDataError
from venues.replay.records import QuoteRecord, TradeRecord
from venues.replay.sources import load_source

QUOTES = {"kind": "quotes", "format": "binance_quotes_parquet",
          "path": "market/binance_spot_btcusdt_quotes_2021-01-08.parquet"}
TRADES = {"kind": "trades", "format": "binance_trades_parquet",
          "path": "market/binance_spot_btcusdt_trades_2021-01-08.parquet"}
BTCUSDT = ReplayInstrumentConfig(
    symbol="BTCUSDT", base_currency="BTC", quote_currency="USDT", price_precision=2, size_precision=6,
    price_increment="0.01", size_increment="0.000001", maker_fee="0.001", taker_fee="0.001",
)
IID = InstrumentId.from_str("BTCUSDT.BINANCE")
T0 = datetime(2021, 1, 8, 12, 0, tzinfo=UTC)


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


def _config(**overrides) -> ReplayDataClientConfig:
    values = dict(venue="BINANCE", instrument=BTCUSDT, sources=(QUOTES, TRADES), data_dir=str(DATA), speed=20.0)
    values.update(overrides)
    return ReplayDataClientConfig(**values)


@needs_data
def test_resolve_sources_fills_the_instrument_precisions_and_refuses_unsupported_kinds():
    quotes, trades = resolve_sources(_config())
    assert dict(quotes.options) == {"price_precision": 2, "size_precision": 6}
    assert dict(trades.options) == {"price_precision": 2, "size_precision": 6}
    bars = {"kind": "bars", "format": "bars_csv", "path": "market/btc_perp_1m_bars_2022-01.csv", "interval": "1m"}
    with pytest.raises(ValueError, match="'bars' is not supported"):
        resolve_sources(_config(sources=(QUOTES, bars)))
    with pytest.raises(ValueError, match="empty"):
        resolve_sources(_config(sources=()))
    with pytest.raises(ReplayDataError, match="not found"):
        resolve_sources(_config(sources=({**QUOTES, "path": "market/missing.parquet"},)))


# -- inside a real TradingNode ---------------------------------------------------------------


class _CollectConfig(StrategyConfig, frozen=True):
    instrument_id: str
    quotes: bool = False
    trades: bool = False


class _Collect(Strategy):
    """Subscribes to what its config says and collects the ticks (lock: read from the test thread)."""

    def __init__(self, config: _CollectConfig) -> None:
        super().__init__(config)
        self.lock = threading.Lock()
        self.ticks: list[QuoteTick | TradeTick] = []

    def on_start(self) -> None:
        instrument_id = InstrumentId.from_str(self.config.instrument_id)
        if self.config.quotes:
            self.subscribe_quote_ticks(instrument_id)
        if self.config.trades:
            self.subscribe_trade_ticks(instrument_id)

    def on_quote_tick(self, tick: QuoteTick) -> None:
        with self.lock:
            self.ticks.append(tick)

    def on_trade_tick(self, tick: TradeTick) -> None:
        with self.lock:
            self.ticks.append(tick)

    def snapshot(self) -> list[QuoteTick | TradeTick]:
        with self.lock:
            return list(self.ticks)


class _RecordingFactory(ReplayDataClientFactory):
    """The production factory, remembering the client it built (for its counters)."""

    created: list[ReplayDataClient] = []

    @staticmethod
    def create(loop, name, config, msgbus, cache, clock):
        client = ReplayDataClientFactory.create(loop, name, config, msgbus, cache, clock)
        _RecordingFactory.created.append(client)
        return client


def _run_node(monkeypatch, strategy_config: _CollectConfig, count: int, check) -> None:
    """Run a TradingNode (own loop, ``run()`` on a thread) until ``count`` ticks reached the strategy.

    Then stop it from this thread, and call ``check(ticks, client, cache, started_ns, stopped_ns)``
    once ``run()`` has returned (the loop is idle: the cache is safe to read), before disposing.
    """
    # The node must not own process signals (see NAUTILUS_NOTES): neutralised for this test only.
    monkeypatch.setattr(NautilusKernel, "_setup_loop", lambda self: None)
    monkeypatch.setattr(_RecordingFactory, "created", [])
    loop = asyncio.new_event_loop()
    node = TradingNode(
        config=TradingNodeConfig(
            trader_id="REPLAY-001",
            logging=LoggingConfig(log_level="ERROR"),
            data_clients={"REPLAY": _config()},
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

        started_ns = time.time_ns()
        runner = threading.Thread(target=node.run, name="replay-node", daemon=True)
        runner.start()
        try:
            ticks = eventually(lambda: len(got := strategy.snapshot()) >= count and got, timeout=15,
                               message=f"{count} replayed ticks reach the strategy")
        finally:
            asyncio.run_coroutine_threadsafe(node.stop_async(), loop).result(timeout=15)
            runner.join(timeout=15)
        stopped_ns = time.time_ns()
        assert not runner.is_alive(), "node.run() did not return after stop_async()"
        check(ticks, client, node.kernel.cache, started_ns, stopped_ns)
    finally:
        node.dispose()
        loop.close()


def _assert_restamped(ticks, started_ns: int, stopped_ns: int) -> None:
    stamps = [t.ts_event for t in ticks]
    assert all(started_ns <= ts <= stopped_ns for ts in stamps), "ts re-stamped to now (inside the run window)"
    assert stamps == sorted(stamps)
    assert all(t.ts_event == t.ts_init for t in ticks)
    assert all(t.instrument_id == IID for t in ticks)


@needs_data
def test_replay_client_streams_recorded_quotes_through_a_trading_node(monkeypatch):
    expected = list(islice(load_source({**QUOTES, "price_precision": 2, "size_precision": 6}, DATA), 20))

    def check(ticks, client, cache, started_ns, stopped_ns):
        assert all(isinstance(t, QuoteTick) for t in ticks)
        # the first recorded quotes, in order, at the recorded prices and sizes
        got = [(q.bid_price.as_decimal(), q.ask_price.as_decimal(), q.bid_size.as_decimal(), q.ask_size.as_decimal())
               for q in ticks[: len(expected)]]
        assert got == [(r.bid, r.ask, r.bid_size, r.ask_size) for r in expected]
        _assert_restamped(ticks, started_ns, stopped_ns)
        # the instrument was published on connect; trades are recorded but nobody subscribed them
        assert cache.instrument(IID) == build_currency_pair("BINANCE", BTCUSDT, ts_ns=0)
        assert client.published_quotes >= len(ticks)
        assert client.published_trades == 0
        assert cache.trade_ticks(IID) == []

    _run_node(monkeypatch, _CollectConfig(instrument_id=str(IID), quotes=True), 200, check)


@needs_data
def test_replay_client_streams_only_trades_when_only_trades_are_subscribed(monkeypatch):
    expected = list(islice(load_source({**TRADES, "price_precision": 2, "size_precision": 6}, DATA), 10))
    sides = {"BUY": AggressorSide.BUYER, "SELL": AggressorSide.SELLER}

    def check(ticks, client, cache, started_ns, stopped_ns):
        assert all(isinstance(t, TradeTick) for t in ticks)
        got = [(t.price.as_decimal(), t.size.as_decimal(), t.aggressor_side, str(t.trade_id))
               for t in ticks[: len(expected)]]
        assert got == [(r.price, r.size, sides[r.aggressor_side], r.trade_id) for r in expected]
        _assert_restamped(ticks, started_ns, stopped_ns)
        assert client.published_trades >= len(ticks)
        assert client.published_quotes == 0
        assert cache.quote_ticks(IID) == []

    _run_node(monkeypatch, _CollectConfig(instrument_id=str(IID), trades=True), len(expected), check)
