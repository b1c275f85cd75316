"""NautilusTrader live data client that replays recorded market data as if it were a live feed.

The node boundary of the replay layer: :mod:`venues.replay.sources` reads the recorded files,
:class:`~venues.replay.clock.ReplaySchedule` maps recorded time onto wall-clock time, and
:class:`ReplayDataClient` sleeps until each record is due, converts it to a NautilusTrader
``QuoteTick`` / ``TradeTick`` re-stamped to *now* (``ts_event == ts_init`` = the client clock at
publication, in ns) and hands it to the data engine.

Semantics (those of a live feed):

- On connect the client builds the configured ``CurrencyPair`` and publishes it (the data engine
  adds it to the cache).
- The replay starts at the **first** quote or trade subscription (the first record plays then),
  so a strategy that subscribes on start sees the recording from its first record. Records that
  come due while their kind is not subscribed are dropped, never buffered: quotes are published
  only while quote ticks of the instrument are subscribed, trades only while trade ticks are.
- Disconnect cancels the stream task and waits for it.

Only ``quotes`` and ``trades`` sources are supported; a ``book`` or ``bars`` source is refused at
construction (no silent drop). Conversion lives in small pure functions
(:func:`build_currency_pair`, :func:`quote_tick_from_record`, :func:`trade_tick_from_record`,
:func:`to_price`, :func:`to_quantity`) testable without a node.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from nautilus_trader.cache.cache import Cache
from nautilus_trader.common.component import LiveClock, MessageBus
from nautilus_trader.common.providers import InstrumentProvider
from nautilus_trader.config import NautilusConfig
from nautilus_trader.data.messages import (
    SubscribeInstrument,
    SubscribeInstruments,
    SubscribeQuoteTicks,
    SubscribeTradeTicks,
    UnsubscribeInstrument,
    UnsubscribeInstruments,
    UnsubscribeQuoteTicks,
    UnsubscribeTradeTicks,
)
from nautilus_trader.live.config import LiveDataClientConfig
from nautilus_trader.live.data_client import LiveMarketDataClient
from nautilus_trader.live.factories import LiveDataClientFactory
from nautilus_trader.model.data import QuoteTick, TradeTick
from nautilus_trader.model.enums import AggressorSide
from nautilus_trader.model.identifiers import ClientId, InstrumentId, Symbol, TradeId, Venue
from nautilus_trader.model.instruments import CurrencyPair
from nautilus_trader.model.objects import Currency, Price, Quantity

from venues.replay.clock import ReplaySchedule
from venues.replay.records import QuoteRecord, TradeRecord
from venues.replay.sources import ReplaySource, parse_source

SUPPORTED_KINDS = frozenset({"quotes", "trades"})
# Float-backed formats whose readers take the instrument's precisions to round float noise away.
_PRECISION_FORMATS = frozenset({"binance_quotes_parquet", "binance_trades_parquet"})
_AGGRESSOR = {"BUY": AggressorSide.BUYER, "SELL": AggressorSide.SELLER, None: AggressorSide.NO_AGGRESSOR}
_YIELD_EVERY = 100  # records published back to back (replay behind schedule) before yielding the loop


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
        Venue-config source entries for :func:`venues.replay.sources.parse_source`, kinds
        ``quotes`` / ``trades`` only. For the Binance parquet formats the instrument's
        ``price_precision`` / ``size_precision`` are filled in when absent.
    data_dir : str
        Base directory relative source paths resolve against (the shared ``data`` directory).
    speed : float
        Replay speed factor (> 0): 1 = real time, 20 = twenty times faster.
    loop : bool
        Replay the recording forever.
    loop_gap_secs : float
        Wall-clock pause between two passes when looping (>= 0).
    """

    venue: str
    instrument: ReplayInstrumentConfig
    sources: tuple[dict[str, Any], ...]
    data_dir: str
    speed: float = 1.0
    loop: bool = False
    loop_gap_secs: float = 1.0


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


def resolve_sources(config: ReplayDataClientConfig) -> list[ReplaySource]:
    """Validate ``config.sources`` and resolve them against ``config.data_dir``.

    Raises
    ------
    ValueError
        No sources, or a source kind other than ``quotes`` / ``trades``.
    ReplayDataError
        As :func:`~venues.replay.sources.parse_source` (unknown format, missing file, ...).
    """
    if not config.sources:
        raise ValueError("ReplayDataClientConfig.sources is empty: nothing to replay")
    resolved = []
    for spec in config.sources:
        spec = dict(spec)
        if spec.get("kind") not in SUPPORTED_KINDS:
            raise ValueError(
                f"replay source {spec!r}: kind {spec.get('kind')!r} is not supported by the replay data "
                f"client (supported: {sorted(SUPPORTED_KINDS)})"
            )
        if spec.get("format") in _PRECISION_FORMATS:
            spec.setdefault("price_precision", config.instrument.price_precision)
            spec.setdefault("size_precision", config.instrument.size_precision)
        resolved.append(parse_source(spec, Path(config.data_dir)))
    return resolved


# ---------------------------------------------------------------------------------------------
# client


class ReplayDataClient(LiveMarketDataClient):
    """Live market data client streaming a recording through a :class:`ReplaySchedule`.

    Runs entirely on the node's event loop. See the module docstring for the semantics.
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
        self._started = asyncio.Event()
        self._stream_task: asyncio.Task | None = None
        self.published_quotes = 0
        self.published_trades = 0

    @property
    def instrument_id(self) -> InstrumentId:
        """The replayed instrument."""
        return self._instrument_id

    # -- lifecycle --------------------------------------------------------------------------------

    async def _connect(self) -> None:
        instrument = build_currency_pair(self._replay_config.venue, self._replay_config.instrument,
                                         self._clock.timestamp_ns())
        self._instrument_provider.add(instrument)
        self._handle_data(instrument)
        self._started = asyncio.Event()
        if self.subscribed_quote_ticks() or self.subscribed_trade_ticks():  # reconnect
            self._started.set()
        self._stream_task = self._loop.create_task(self._stream(), name=f"replay-stream-{self.id}")
        self._log.info(
            f"Replay of {self._instrument_id} ready: {len(self._sources)} source(s), "
            f"speed x{self._replay_config.speed}, loop={self._replay_config.loop}; starts on first subscription"
        )

    async def _disconnect(self) -> None:
        task, self._stream_task = self._stream_task, None
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        self._log.info(
            f"Replay of {self._instrument_id} stopped: {self.published_quotes} quotes, "
            f"{self.published_trades} trades published"
        )

    async def _stream(self) -> None:
        await self._started.wait()
        schedule = ReplaySchedule(
            self._sources,
            speed=self._replay_config.speed,
            loop=self._replay_config.loop,
            loop_gap=timedelta(seconds=self._replay_config.loop_gap_secs),
        )
        behind = 0
        try:
            for due_at, record in schedule:
                delay = (due_at - datetime.now(UTC)).total_seconds()
                if delay > 0:
                    behind = 0
                    await asyncio.sleep(delay)
                else:
                    behind += 1
                    if behind % _YIELD_EVERY == 0:
                        await asyncio.sleep(0)
                self._publish(record)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a malformed recording ends the replay loudly, not the node
            self._log.error(f"Replay of {self._instrument_id} failed: {type(exc).__name__}: {exc}")
            return
        self._log.info(f"Replay of {self._instrument_id} reached the end of the recording")

    def _publish(self, record: object) -> None:
        iid = self._instrument_id
        if isinstance(record, QuoteRecord):
            if iid in self.subscribed_quote_ticks():
                self._handle_data(quote_tick_from_record(
                    record, iid, self._price_precision, self._size_precision, self._clock.timestamp_ns()))
                self.published_quotes += 1
        elif isinstance(record, TradeRecord):
            if iid in self.subscribed_trade_ticks():
                self._handle_data(trade_tick_from_record(
                    record, iid, self._price_precision, self._size_precision, self._clock.timestamp_ns()))
                self.published_trades += 1

    def _check_instrument(self, instrument_id: InstrumentId) -> bool:
        if instrument_id != self._instrument_id:
            self._log.error(f"Cannot subscribe {instrument_id}: this replay client serves {self._instrument_id} only")
            return False
        return True

    # -- subscriptions ----------------------------------------------------------------------------

    async def _subscribe_quote_ticks(self, command: SubscribeQuoteTicks) -> None:
        if self._check_instrument(command.instrument_id):
            self._started.set()

    async def _subscribe_trade_ticks(self, command: SubscribeTradeTicks) -> None:
        if self._check_instrument(command.instrument_id):
            self._started.set()

    async def _unsubscribe_quote_ticks(self, command: UnsubscribeQuoteTicks) -> None:
        pass  # the base class already removed the subscription; _publish checks it per record

    async def _unsubscribe_trade_ticks(self, command: UnsubscribeTradeTicks) -> None:
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
