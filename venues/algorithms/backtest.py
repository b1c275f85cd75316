"""Run primaries through our execution algorithms on a NautilusTrader ``BacktestEngine``.

Deterministic and fast (simulated time, no sleeps): used by the algorithm tests and for dry runs of
algorithm parameters against recorded data. The venue is ``BINANCE`` (cash account, L1 book fed by
quotes only — trades do not move the simulated book, so market orders fill completely, at the
touch and beyond it in one-tick steps; see NAUTILUS_NOTES.md "Partial-fill trap") with the spot
``BTCUSDT`` instrument of ``shared/data/market/binance_spot_btcusdt_instrument.txt`` unless
another is given.

A small strategy submits each :class:`PrimaryOrder` on the first market-data event at or after its
``submit_at_ns`` and, when ``cancel_at_ns`` is set, cancels it there the way the bridge does: the
primary first, then each child still open (so repeated cancels are exercised).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
from nautilus_trader.backtest.models import LatencyModel
from nautilus_trader.config import LoggingConfig, RiskEngineConfig, StrategyConfig
from nautilus_trader.execution.algorithm import ExecAlgorithm
from nautilus_trader.execution.config import ExecAlgorithmFactory
from nautilus_trader.model.currencies import BTC, USDT
from nautilus_trader.model.data import QuoteTick, TradeTick
from nautilus_trader.model.enums import AccountType, AggressorSide, OmsType, OrderSide, TimeInForce
from nautilus_trader.model.events import OrderEvent
from nautilus_trader.model.identifiers import (
    ClientOrderId,
    ExecAlgorithmId,
    InstrumentId,
    Symbol,
    TradeId,
    TraderId,
    Venue,
)
from nautilus_trader.model.instruments import CurrencyPair, Instrument
from nautilus_trader.model.objects import Money, Price, Quantity
from nautilus_trader.model.orders import Order
from nautilus_trader.trading.strategy import Strategy

from venues.algorithms import exec_algorithm_configs

BINANCE = Venue("BINANCE")
BTCUSDT = InstrumentId(Symbol("BTCUSDT"), BINANCE)


def btcusdt_binance_spot(
    *, min_quantity: str | None = None, min_notional: str | None = None, max_quantity: str | None = None
) -> CurrencyPair:
    """Return Binance spot BTCUSDT as in ``shared/data/market/binance_spot_btcusdt_instrument.txt``.

    Price in USDT (tick 0.01), size in BTC (increment 0.000001), no min/max quantity or notional,
    maker/taker fee 0.001.

    Parameters
    ----------
    min_quantity : str, optional
        A venue minimum order size in BTC, for what-if runs (the recorded instrument has none).
    min_notional : str, optional
        A venue minimum order notional in USDT (Binance's ``NOTIONAL`` filter; the seeded paper
        listing has 10), for what-if runs.
    max_quantity : str, optional
        A venue maximum order size in BTC (Binance's ``LOT_SIZE`` / ``MARKET_LOT_SIZE`` ``maxQty``),
        for what-if runs.
    """
    return CurrencyPair(
        instrument_id=BTCUSDT,
        raw_symbol=Symbol("BTCUSDT"),
        base_currency=BTC,
        quote_currency=USDT,
        price_precision=2,
        size_precision=6,
        price_increment=Price.from_str("0.01"),
        size_increment=Quantity.from_str("0.000001"),
        lot_size=None,
        max_quantity=Quantity.from_str(f"{Decimal(max_quantity):.6f}") if max_quantity else None,
        min_quantity=Quantity.from_str(f"{Decimal(min_quantity):.6f}") if min_quantity else None,
        max_notional=None,
        min_notional=Money(Decimal(min_notional), USDT) if min_notional else None,
        max_price=None,
        min_price=None,
        margin_init=Decimal(0),
        margin_maint=Decimal(0),
        maker_fee=Decimal("0.001"),
        taker_fee=Decimal("0.001"),
        ts_event=0,
        ts_init=0,
    )


def quote(
    instrument: Instrument, ts_ns: int, bid: str, ask: str, bid_size: str = "100", ask_size: str = "100"
) -> QuoteTick:
    """Return a quote (prices in quote currency, sizes in base units) stamped ``ts_ns``."""
    return QuoteTick(
        instrument.id,
        instrument.make_price(Decimal(bid)),
        instrument.make_price(Decimal(ask)),
        Quantity.from_str(f"{Decimal(bid_size):.{instrument.size_precision}f}"),
        Quantity.from_str(f"{Decimal(ask_size):.{instrument.size_precision}f}"),
        ts_ns,
        ts_ns,
    )


def trade(instrument: Instrument, ts_ns: int, price: str, size: str, trade_id: str, buyer: bool = True) -> TradeTick:
    """Return a trade print (price in quote currency, size in base units) stamped ``ts_ns``."""
    return TradeTick(
        instrument.id,
        instrument.make_price(Decimal(price)),
        Quantity.from_str(f"{Decimal(size):.{instrument.size_precision}f}"),
        AggressorSide.BUYER if buyer else AggressorSide.SELLER,
        TradeId(trade_id),
        ts_ns,
        ts_ns,
    )


@dataclass(frozen=True)
class PrimaryOrder:
    """A primary order for the harness strategy to submit.

    Attributes
    ----------
    exec_algorithm : str
        ``ExecAlgorithmId`` value: TWAP, VWAP or ICEBERG.
    params : dict
        The Nautilus ``exec_algorithm_params`` (see ``nautilus_exec_algorithm_params``).
    quantity : Decimal
        Base units.
    side, order_type, time_in_force : str
        ``BUY``/``SELL``, ``MARKET``/``LIMIT``, a ``TimeInForce`` name.
    price : Decimal, optional
        Limit price in quote currency (LIMIT only).
    submit_at_ns : int or None
        Submitted on the first market-data event at or after this time (UNIX ns); None submits
        from the strategy's ``on_start`` — before NautilusTrader starts the exec algorithms.
    cancel_at_ns : int, optional
        Canceled on the first event at or after this time: the primary, then (when
        ``cancel_children``) each open child, as the bridge does.
    cancel_children : bool, default True
        Whether the strategy also cancels the open children itself.
    """

    exec_algorithm: str
    params: dict
    quantity: Decimal
    side: str = "BUY"
    order_type: str = "MARKET"
    price: Decimal | None = None
    time_in_force: str = "GTC"
    submit_at_ns: int | None = 0
    cancel_at_ns: int | None = None
    cancel_children: bool = True


@dataclass
class BacktestRun:
    """What a harness run produced.

    Attributes
    ----------
    events : list[tuple[int, OrderEvent]]
        Every order event the strategy received, with the simulated time (UNIX ns) it arrived.
    orders : dict[str, Order]
        Every order in the cache at the end, by client_order_id.
    primary_ids : list[str]
        The client_order_id of each submitted primary, in input order.
    working : list[tuple[int, str, Decimal]]
        After each order event: (time ns, primary id, quantity working at the venue for that
        primary's sequence — leaves of its submitted, not yet closed orders).
    timers_left : list[str]
        Timers the exec algorithms still had set when the data ran out (before the trader stopped).
    """

    events: list[tuple[int, OrderEvent]] = field(default_factory=list)
    orders: dict[str, Order] = field(default_factory=dict)
    primary_ids: list[str] = field(default_factory=list)
    working: list[tuple[int, str, Decimal]] = field(default_factory=list)
    timers_left: list[str] = field(default_factory=list)

    def children(self, primary_id: str) -> list[Order]:
        """Return the spawned children of ``primary_id`` in spawn order (E1, E2, …)."""
        pattern = re.compile(re.escape(primary_id) + r"-E(\d+)$")
        found = [(int(m.group(1)), o) for cid, o in self.orders.items() if (m := pattern.match(cid))]
        return [o for _, o in sorted(found, key=lambda pair: pair[0])]

    def event_times(self, client_order_id: str, kind: str) -> list[int]:
        """Return the times (ns) ``client_order_id`` received events of class name ``kind``."""
        return [ts for ts, e in self.events if e.client_order_id.value == client_order_id and type(e).__name__ == kind]

    def slices(self, primary_id: str) -> list[tuple[int, Order]]:
        """Return (submit time ns, order) for every slice sent to the venue, children and the primary."""
        sent = [(self.event_times(o.client_order_id.value, "OrderSubmitted"), o) for o in self.children(primary_id)]
        sent.append((self.event_times(primary_id, "OrderSubmitted"), self.orders[primary_id]))
        return sorted(((times[0], o) for times, o in sent if times), key=lambda pair: pair[0])


class _PrimaryStrategy(Strategy):
    # Submits the primaries when market data reaches their time; records what happens.

    def __init__(self, instrument: Instrument, primaries: Sequence[PrimaryOrder], run: BacktestRun) -> None:
        super().__init__(StrategyConfig(strategy_id="ALGOTESTER-001"))
        self._instrument = instrument
        self._pending = list(enumerate(primaries))
        self._to_cancel: list[tuple[int, str, bool]] = []
        self._run = run
        self._run.primary_ids = [""] * len(primaries)

    def on_start(self) -> None:
        self.subscribe_quote_ticks(self._instrument.id)
        self.subscribe_trade_ticks(self._instrument.id)
        early = [(i, p) for i, p in self._pending if p.submit_at_ns is None]
        self._pending = [(i, p) for i, p in self._pending if p.submit_at_ns is not None]
        self._submit(early)

    def on_quote_tick(self, tick: QuoteTick) -> None:
        self._act(tick.ts_event)

    def on_trade_tick(self, tick: TradeTick) -> None:
        self._act(tick.ts_event)

    def _act(self, now: int) -> None:
        due = [(i, p) for i, p in self._pending if p.submit_at_ns <= now]
        self._pending = [(i, p) for i, p in self._pending if p.submit_at_ns > now]
        self._submit(due)
        for entry in [c for c in self._to_cancel if c[0] <= now]:
            self._to_cancel.remove(entry)
            self._cancel_like_the_bridge(entry[1], children=entry[2])

    def _submit(self, due: list[tuple[int, PrimaryOrder]]) -> None:
        for i, primary in due:
            order = self._make(primary)
            self._run.primary_ids[i] = order.client_order_id.value
            if primary.cancel_at_ns is not None:
                self._to_cancel.append((primary.cancel_at_ns, order.client_order_id.value, primary.cancel_children))
            self.submit_order(order)

    def _make(self, p: PrimaryOrder) -> Order:
        common = dict(
            instrument_id=self._instrument.id,
            order_side=OrderSide[p.side],
            quantity=Quantity.from_str(f"{p.quantity:.{self._instrument.size_precision}f}"),
            time_in_force=TimeInForce[p.time_in_force],
            exec_algorithm_id=ExecAlgorithmId(p.exec_algorithm),
            exec_algorithm_params=dict(p.params),
        )
        if p.order_type == "MARKET":
            return self.order_factory.market(**common)
        if p.order_type == "LIMIT":
            return self.order_factory.limit(price=self._instrument.make_price(p.price), **common)
        raise ValueError(f"unsupported order_type {p.order_type}")

    def _cancel_like_the_bridge(self, primary_id: str, *, children: bool) -> None:
        primary = self.cache.order(ClientOrderId(primary_id))
        if not primary.is_closed:
            self.cancel_order(primary)
        if not children:
            return
        for order in self.cache.orders_for_exec_spawn(primary.client_order_id):
            if order.client_order_id != primary.client_order_id and not order.is_closed:
                self.cancel_order(order)

    def on_order_event(self, event: OrderEvent) -> None:
        now = self.clock.timestamp_ns()
        self._run.events.append((now, event))
        order = self.cache.order(event.client_order_id)
        if order is None or order.exec_spawn_id is None:
            return
        spawn_id = order.exec_spawn_id
        sequence = self.cache.orders_for_exec_spawn(spawn_id)
        working = sum((o.leaves_qty.as_decimal() for o in sequence if o.is_open or o.is_inflight), Decimal(0))
        self._run.working.append((now, spawn_id.value, working))


def run_algorithm_backtest(
    *,
    data: Iterable,
    primaries: Sequence[PrimaryOrder],
    instrument: Instrument | None = None,
    exec_algorithms: Sequence[ExecAlgorithm] | None = None,
    max_notional_per_order: dict[str, int] | None = None,
    latency_ns: int = 0,
    log_level: str = "ERROR",
) -> BacktestRun:
    """Run ``primaries`` through the exec algorithms over ``data`` and return what happened.

    Parameters
    ----------
    data : iterable of QuoteTick / TradeTick / Bar
        Market data for ``instrument``, any order (the engine sorts by ``ts_init``).
    primaries : sequence of PrimaryOrder
        Orders to submit (see :class:`PrimaryOrder`).
    instrument : Instrument, optional
        Defaults to :func:`btcusdt_binance_spot`.
    exec_algorithms : sequence of ExecAlgorithm, optional
        Defaults to TWAP, VWAP and ICEBERG built from ``exec_algorithm_configs()`` — the node's
        own configuration entries.
    max_notional_per_order : dict[str, int], optional
        The node RiskEngine's per-order notional limit (quote currency) by instrument id; a
        child above it is DENIED.
    latency_ns : int, default 0
        One-way latency (ns) of every command to the simulated venue; with a latency, an order
        meets the book as it is when the order arrives, not as it was when it was sent.
    log_level : str, default ``"ERROR"``
        NautilusTrader log level (process-global: the first engine's setting wins).

    Returns
    -------
    BacktestRun
    """
    instrument = instrument or btcusdt_binance_spot()
    engine = BacktestEngine(
        BacktestEngineConfig(
            trader_id=TraderId("BACKTESTER-001"),
            logging=LoggingConfig(log_level=log_level),
            risk_engine=RiskEngineConfig(max_notional_per_order=dict(max_notional_per_order or {})),
        )
    )
    try:
        engine.add_venue(
            instrument.id.venue,
            oms_type=OmsType.NETTING,
            account_type=AccountType.CASH,
            starting_balances=[Money(10_000_000, USDT), Money(1_000, BTC)],
            latency_model=LatencyModel(base_latency_nanos=latency_ns) if latency_ns else None,
        )
        engine.add_instrument(instrument)
        engine.add_data(list(data))
        run = BacktestRun()
        engine.add_strategy(_PrimaryStrategy(instrument, primaries, run))
        algorithms = list(exec_algorithms or [ExecAlgorithmFactory.create(c) for c in exec_algorithm_configs()])
        engine.add_exec_algorithms(algorithms)
        engine.run(streaming=True)  # leaves the trader running, so timers can be inspected
        run.orders = {o.client_order_id.value: o for o in engine.cache.orders()}
        run.timers_left = [name for algorithm in algorithms for name in algorithm.clock.timer_names]
        engine.end()
        return run
    finally:
        engine.dispose()
