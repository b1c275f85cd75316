"""The paper venue's execution client: NautilusTrader's sandbox with a documented depth model.

NautilusTrader's ``SandboxExecutionClient`` runs a ``SimulatedExchange`` (the backtest matching
engine) on live data. Left as it is, it has the partial-fill trap of NAUTILUS_NOTES.md: with an L1
book every trade tick overwrites the top of book with the trade's few-lot size, so a MARKET order
larger than that fills partially and the rest hangs. :class:`PaperExecutionClient` changes only
what the matching engine is fed:

Depth model (L1, the recorded top of book)
------------------------------------------
- **Quotes drive the book.** Each recorded quote sets the touch: the recorded best bid / ask
  *prices*, with sizes ``max(recorded size, touch_size)``.
- **Trades do not touch the book** (they carry no resting liquidity); they still reach strategies
  and the OMS as market data through the data engine.
- ``touch_size`` (base units) comes from the venue's ``config["paper"]["touch_sizes"]``, a mapping
  keyed by NautilusTrader instrument id; by default it is **unlimited** — the instrument's maximum order quantity (or
  10⁹ lots when it has none). So a paper MARKET order of any size within risk limits fills
  completely, at the recorded best ask (buy) or bid (sell) of the moment it arrives: every price is
  a recorded price (issue #3 §2). The recording says nothing about liquidity behind the touch, so
  the default invents no price for it; it is optimistic for orders far larger than the recorded
  touch — a desk wanting conservative paper results sets a finite ``touch_size`` (e.g. the median
  recorded touch size, :func:`venues.replay.fill_model.median_touch_size`), and the remainder then
  fills one tick through the touch (NautilusTrader's L1 rule for exhausted book volume,
  ``OrderMatchingEngine.apply_fills``).
- **Bars drive the book when they are all there is** (``bar_execution``; the paper
  BINANCE-FUTURES venue replays one-minute bars only). NautilusTrader's matching engine turns each
  ``LAST`` bar into four trade ticks — open, then high and low (nearer first), then close — each of
  size ``volume / 4``, and moves its L1 book through them, so a resting LIMIT order fills when the
  bar's range crosses its price (at its limit price). That size is the trap again (a minute's volume
  / 4 is a few BTC), so each bar's volume is raised to at least ``4 × touch_size``: every point of
  the path then holds the touch size. NautilusTrader's own sandbox never sees bars in 1.221 (their
  topic ``data.bars.<bar type>`` misses its ``data.*.<venue>.*`` subscription), so this client also
  subscribes ``data.bars.*.<venue>-*`` — for the instruments its config names in
  ``bar_instruments`` (bars-only listings) only; other bars stay off the book. The replay client follows every bar of a bars-only recording
  with a quote at its close (:func:`venues.replay.client.quote_tick_from_bar`), deepened like any
  quote, so a MARKET order — or a marketable LIMIT — fills completely at the **last bar's close**,
  a recorded price. Bar prices are the recording's, moved onto the listing's tick where the source
  says so (``price_rounding``, :func:`venues.replay.sources.read_bars_csv`).
- **Order-book data** (L2 venues) goes to the matching engine as in NautilusTrader's sandbox.
- LIMIT orders rest and fill when the recorded touch crosses their price (maker), or fill at once
  at the touch when marketable (taker).
- Fees: the instrument's maker / taker rates (``MakerTakerFeeModel``), in the quote currency.
- Times: commands move the simulated exchange's clock to the node's clock first, so accepted /
  filled / canceled events carry the time they happened (the sandbox's own clock is the last tick's).
- Ids: venue order ids and trade ids are random UUIDs (``use_random_ids``), so trade ids stay unique
  across restarts of the node (fills are unique on venue, listing, trade id and side in the OMS).
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

from nautilus_trader.adapters.sandbox.config import SandboxExecutionClientConfig
from nautilus_trader.adapters.sandbox.execution import SandboxExecutionClient
from nautilus_trader.cache.cache import Cache
from nautilus_trader.common.component import LiveClock, MessageBus
from nautilus_trader.core.data import Data
from nautilus_trader.live.factories import LiveExecClientFactory
from nautilus_trader.model.data import Bar, QuoteTick, TradeTick
from nautilus_trader.model.objects import Quantity
from nautilus_trader.portfolio import PortfolioFacade

#: Size (lots) standing in for "unlimited" when an instrument has no maximum quantity.
UNLIMITED_LOTS = Decimal(10) ** 9


class PaperExecutionClientConfig(SandboxExecutionClientConfig, frozen=True, kw_only=True):
    """Sandbox configuration plus the depth model's ``touch_sizes``.

    Parameters
    ----------
    touch_sizes : dict[str, str] | None
        Instrument id (``BTCUSDT.BINANCE``) → minimum size at the touch, base units as decimal text.
        Instruments not named are unlimited (see the module docstring).
    bar_instruments : tuple[str, ...]
        Instrument ids whose bars drive the matching engine (bars-only recordings). Bars of other
        instruments are kept off the book: beside recorded quotes they would move it to another
        recording's prices (a VWAP profile's bars need not be of the quotes' day).
    """

    touch_sizes: dict[str, str] | None = None
    bar_instruments: tuple[str, ...] = ()


class PaperExecutionClient(SandboxExecutionClient):
    """``SandboxExecutionClient`` fed by the depth model of the module docstring."""

    def __init__(self, *args, config: PaperExecutionClientConfig, **kwargs) -> None:
        super().__init__(*args, config=config, **kwargs)
        self._touch_config = {k: Decimal(v) for k, v in (config.touch_sizes or {}).items()}
        self._touch: dict = {}  # InstrumentId → Quantity (resolved lazily from the cached instrument)
        self._bar_instruments = frozenset(config.bar_instruments)
        self.quotes_seen = 0
        self.trades_kept_off_book = 0
        self.bars_seen = 0
        self.bars_kept_off_book = 0

    def connect(self) -> None:
        """Connect as the sandbox does, and also take this venue's bars (see the module docstring)."""
        super().connect()
        self._msgbus.subscribe(f"data.bars.*.{self.venue}-*", handler=self.on_data)

    def disconnect(self) -> None:
        """Stop taking bars, then disconnect as the sandbox does."""
        self._msgbus.unsubscribe(f"data.bars.*.{self.venue}-*", handler=self.on_data)
        super().disconnect()

    def _touch_size(self, instrument_id) -> Quantity | None:
        size = self._touch.get(instrument_id)
        if size is None:
            instrument = self._cache.instrument(instrument_id)
            if instrument is None:
                return None
            configured = self._touch_config.get(str(instrument_id))
            if configured is None:
                configured = (instrument.max_quantity.as_decimal() if instrument.max_quantity is not None
                              else UNLIMITED_LOTS * instrument.size_increment.as_decimal())
            size = instrument.make_qty(configured)
            self._touch[instrument_id] = size
        return size

    # The simulated exchange's clock is the last tick's time; a command arrives later. Move it to the
    # node's clock first, so accept / fill / cancel events carry the time they happened.
    def _now(self) -> None:
        now = self._clock.timestamp_ns()
        if now > self.test_clock.timestamp_ns():
            self.test_clock.set_time(now)

    def submit_order(self, command):
        self._now()
        return super().submit_order(command)

    def cancel_order(self, command):
        self._now()
        return super().cancel_order(command)

    def modify_order(self, command):
        self._now()
        return super().modify_order(command)

    def on_data(self, data: Data) -> None:
        """Feed the matching engine per the depth model (quotes and bars deepened, trades kept off the book)."""
        if isinstance(data, TradeTick):
            self.trades_kept_off_book += 1
            return
        if isinstance(data, QuoteTick):
            self.quotes_seen += 1
            touch = self._touch_size(data.instrument_id)
            if touch is not None:
                data = QuoteTick(
                    instrument_id=data.instrument_id,
                    bid_price=data.bid_price,
                    ask_price=data.ask_price,
                    bid_size=max(data.bid_size, touch),
                    ask_size=max(data.ask_size, touch),
                    ts_event=data.ts_event,
                    ts_init=data.ts_init,
                )
        elif isinstance(data, Bar):
            if data.bar_type.instrument_id.value not in self._bar_instruments:
                self.bars_kept_off_book += 1
                return
            self.bars_seen += 1
            data = self._deepened_bar(data)
        super().on_data(data)

    def _deepened_bar(self, bar: Bar) -> Bar:
        # The matching engine gives each of the bar's four price points volume / 4.
        touch = self._touch_size(bar.bar_type.instrument_id)
        if touch is None:
            return bar
        volume = bar.volume.as_decimal()
        deep = touch.as_decimal() * 4
        if volume >= deep:
            return bar
        return Bar(bar.bar_type, bar.open, bar.high, bar.low, bar.close, Quantity(deep, bar.volume.precision),
                   bar.ts_event, bar.ts_init, bar.is_revision)


class SandboxLiveExecClientFactory(LiveExecClientFactory):
    """Factory of :class:`PaperExecutionClient`.

    The class keeps NautilusTrader's sandbox factory *name* on purpose: the node builder hands the
    portfolio only to a factory named ``SandboxLiveExecClientFactory``
    (``nautilus_trader.live.node_builder.build_exec_clients``, NAUTILUS_NOTES.md).
    """

    @staticmethod
    def create(  # type: ignore[override]
        loop: asyncio.AbstractEventLoop,
        name: str,
        config: PaperExecutionClientConfig,
        portfolio: PortfolioFacade,
        msgbus: MessageBus,
        cache: Cache,
        clock: LiveClock,
    ) -> PaperExecutionClient:
        """Return a :class:`PaperExecutionClient` (client id = the config's venue)."""
        return PaperExecutionClient(loop=loop, clock=clock, portfolio=portfolio, msgbus=msgbus, cache=cache,
                                    config=config)
