"""VWAP: slice a primary order over a horizon in proportion to a volume profile, under a participation cap.

Parameters (``exec_algorithm_params`` on the primary; shapes in venues/algorithms/__init__.py)
--------------------------------------------------------------------------------------------
``horizon_secs`` (int, s), ``interval_secs`` (int, s, ≤ horizon): N = horizon_secs // interval_secs
slices, the first when the primary arrives (t0), then one every ``interval_secs``; the slice at
t0 + (N-1)·interval is the last scheduled one — the same grid as NautilusTrader's TWAP.
``max_participation`` (decimal string in (0, 1], optional): cap per slice. ``volume_profile``
(comma-separated decimal weights, N of them, optional).

Profile source, first that applies (logged at INFO for every primary):

1. ``params``: the ``volume_profile`` passed with the order. This is the preferred source: a real
   VWAP schedule follows the *time-of-day* volume curve, which the OMS computes from days of
   history — the node's cache only holds the last minutes or hours.
2. ``bars``: the instrument's bars in the node's cache (``VWAPExecAlgorithmConfig.profile_bar_spec``,
   default ``1-MINUTE-LAST-EXTERNAL``), when they reach back one full horizon: the volume of the
   most recent ``horizon_secs`` (ending at the newest bar's ``ts_event``, taken as its close:
   NautilusTrader's default ``time_bars_timestamp_on_close`` and the Binance adapter's kline
   ``close_time`` both stamp bars at the close) is laid on the N-interval grid, each bar's volume
   spread evenly over its minute. So with 60 s intervals the weights are exactly the last N bars'
   volumes. Skipped when the newest bar closed more than two bar periods ago (a stopped feed).
   The assumption — the next horizon looks like the last — is naive; hence rank 2.
3. ``trade_ticks``: the same, from the trade ticks in the cache, bucketed by ``ts_event`` into the
   N intervals of the last ``horizon_secs``; used only when the cached ticks reach back a full
   horizon (the tick cache is capacity-bounded, 10 000 ticks by default).
4. ``uniform``: equal weights (= TWAP).

Slice sizes: the primary's quantity in size-increment units, apportioned to the weights by the
largest-remainder method (each slice rounded DOWN to the increment, the left-over increments to the
largest remainders) so the slices sum *exactly* to the primary's quantity. A zero-weight interval
sends nothing; no child of zero size is ever sent, nor one below the instrument's minimum — its
``min_quantity``, and its ``min_notional`` at the price the slice is valued at (base.py "Minimum
slice") — that size is carried to a later slice. Nor is a slice sent that would leave an unsent rest
strictly between 0 and the minimum: the last slice is the primary itself with that rest, and
NautilusTrader's RiskEngine denies it (``QUANTITY_BELOW_MINIMUM``,
``NOTIONAL_LESS_THAN_MIN_FOR_INSTRUMENT``), which would end the parent under-filled and CANCELED.
Such a slice becomes the closer to plan of "send less" (unsent − minimum,
leaving exactly the minimum; or carry it all when that would itself be below the minimum) and
"send it all" (only when the participation cap allows), ties to the smaller
(venues/algorithms/base.py ``fit_to_minimum``). Example: 0.021 BTC over 3 intervals, minimum 0.01:
planned 0.007 × 3 → sent 0, 0.011 (0.014 would leave 0.007), then the primary with 0.010. With a
minimum notional of 10 USDT at 40 000, 0.002 BTC over 10 intervals plans 0.0002 (8 USDT) each →
sent 0, 0.0004, 0, 0.0004, … and the primary with the last 0.0004. A slice above the instrument's
``max_quantity`` is sent as the fewest near-equal children within it, all at once (base.py "Maximum
slice"): with a maximum of 0.25 BTC, a 0.6 BTC slice goes out as three of 0.2.

Participation cap. With ``max_participation`` = p, the slice sent at each interval is at most
p × V rounded down to the size increment, V = the instrument's traded volume in the previous
interval: the sizes of the trade ticks the algorithm received since the previous slice decision
(it subscribes to the instrument's trade ticks when its first primary for that instrument
arrives). For the slice at t0, V is the volume of the cached trade ticks stamped in
(t0 - interval_secs, t0] — zero if the node had no trade subscription yet, and then the first
slice waits. What the cap holds back is carried into the following slices. V counts every print,
so in live trading it includes our own fills (participation = our volume / total volume, the
usual definition); in a backtest our fills create no prints.

After the horizon (policy). If the cap leaves quantity unsent at the last scheduled slice, the
algorithm keeps working *at the cap* after the horizon, one slice per interval, and sends the
primary itself as the final slice once the cap allows the whole remainder. It does so for at most
``max_overtime_intervals`` more intervals (config; default N, i.e. at most twice the horizon).
If quantity is still unsent then, the algorithm cancels the primary's remainder (``OrderCanceled``
for the primary, logged at ERROR with the unsent quantity): the parent ends CANCELED with the
children's fills. Why: the cap is the trader's market-impact limit, so dumping the rest at the
horizon would break it exactly when it matters (a thin market); finishing somewhat late at the cap
keeps the limit and usually completes the order (the brief's "professional default"); but a dead
market must not keep an order open for ever, so the overrun is bounded and ends in a terminal
state the OMS and the trader can see, with the reason in the node's log.

Order types: MARKET primaries are sliced into MARKET children (time in force copied; GTD refused),
LIMIT primaries into LIMIT children at the primary's price (GTC/GTD/DAY; IOC/FOK refused — an
unfilled IOC slice would end the sequence, see base.py). Anything else is DENIED with a reason.
Cancel / reject / deny handling: venues/algorithms/base.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from fractions import Fraction

from nautilus_trader.common.events import TimeEvent
from nautilus_trader.config import ExecAlgorithmConfig
from nautilus_trader.model.data import BarType, TradeTick
from nautilus_trader.model.enums import OrderType, TimeInForce
from nautilus_trader.model.identifiers import ClientOrderId, ExecAlgorithmId, InstrumentId
from nautilus_trader.model.instruments import Instrument
from nautilus_trader.model.orders import Order

from venues.algorithms.base import (
    ParamError,
    SlicingExecAlgorithm,
    apportion,
    fit_to_minimum,
    floor_units,
    max_units,
    param_decimal,
    param_seconds,
    split_units,
    to_units,
    units_to_qty,
)

_NS = 1_000_000_000

class VWAPExecAlgorithmConfig(ExecAlgorithmConfig, frozen=True):
    """Configuration for :class:`VWAPExecAlgorithm`.

    Parameters
    ----------
    exec_algorithm_id : ExecAlgorithmId, default ``VWAP``
        The id primaries name in ``exec_algorithm_id``.
    profile_bar_spec : str, default ``"1-MINUTE-LAST-EXTERNAL"``
        Bar specification and aggregation source of the cached bars used as profile source 2:
        the bar type is ``<instrument_id>-<profile_bar_spec>``; must be time-based.
    max_overtime_intervals : int, optional
        Intervals to keep working at the participation cap after the horizon before the unsent
        remainder is canceled; None means N (the horizon's own number of slices).
    """

    exec_algorithm_id: ExecAlgorithmId | None = ExecAlgorithmId("VWAP")
    profile_bar_spec: str = "1-MINUTE-LAST-EXTERNAL"
    max_overtime_intervals: int | None = None


@dataclass
class _Sequence:
    instrument_id: InstrumentId
    interval_ns: int
    targets: list[int]  # planned units per scheduled interval (sum == primary quantity)
    participation: Decimal | None
    overtime_max: int
    source: str
    index: int = 0  # next interval to work; 0 is the primary's arrival
    carry: int = 0  # planned units not sent yet (held back by the cap or the minimum size)
    volume_mark: Decimal = Decimal(0)  # the instrument's volume counter at the last slice


class VWAPExecAlgorithm(SlicingExecAlgorithm):
    """Volume-weighted slicing of a primary order, with an optional participation cap.

    The schedule, profile sources, participation cap and after-horizon policy are described in
    the module docstring; cancel / reject / deny handling in venues/algorithms/base.py.

    Parameters
    ----------
    config : VWAPExecAlgorithmConfig, optional
        Defaults to ``VWAPExecAlgorithmConfig()`` (id ``VWAP``).
    """

    def __init__(self, config: VWAPExecAlgorithmConfig | None = None) -> None:
        config = config or VWAPExecAlgorithmConfig()
        # A bad or non-time bar spec fails at startup, not on every order.
        BarType.from_str(f"CHECK.VENUE-{config.profile_bar_spec}").spec.timedelta
        if config.max_overtime_intervals is not None and config.max_overtime_intervals < 0:
            raise ValueError(f"max_overtime_intervals must be >= 0, got {config.max_overtime_intervals}")
        super().__init__(config)
        self._market_volume: dict[InstrumentId, Decimal] = {}
        self._trade_subscriptions: set[InstrumentId] = set()

    # -- market volume ------------------------------------------------------------------------------

    def on_trade_tick(self, tick: TradeTick) -> None:
        """Add the trade's size (base units) to the instrument's market-volume counter."""
        self._market_volume[tick.instrument_id] = (
            self._market_volume.get(tick.instrument_id, Decimal(0)) + tick.size.as_decimal()
        )

    def _ensure_trade_subscription(self, instrument_id: InstrumentId) -> None:
        if instrument_id not in self._trade_subscriptions:
            self.subscribe_trade_ticks(instrument_id)
            self._trade_subscriptions.add(instrument_id)

    def _cached_volume_since(self, instrument_id: InstrumentId, start_ns: int) -> Decimal:
        now = self.clock.timestamp_ns()
        total = Decimal(0)
        for tick in self.cache.trade_ticks(instrument_id):  # newest first
            if tick.ts_event <= start_ns:
                break
            if tick.ts_event <= now:
                total += tick.size.as_decimal()
        return total

    # -- profile --------------------------------------------------------------------------------------

    def _profile_from_bars(self, instrument_id: InstrumentId, n: int, interval_ns: int) -> list[Fraction] | None:
        bar_type = BarType.from_str(f"{instrument_id}-{self.config.profile_bar_spec}")
        bars = self.cache.bars(bar_type)  # newest first
        if not bars:
            return None
        step_ns = int(bar_type.spec.timedelta.value)
        end = bars[0].ts_event
        if self.clock.timestamp_ns() - end > 2 * step_ns:
            return None  # stale: the bar feed stopped
        start = end - n * interval_ns
        if bars[-1].ts_event - step_ns > start:
            return None  # history shorter than one horizon
        weights = [Fraction(0)] * n
        for bar in bars:
            bar_end, bar_start = bar.ts_event, bar.ts_event - step_ns
            if bar_end <= start:
                break
            volume = Fraction(bar.volume.as_decimal())
            first = max(0, (bar_start - start) // interval_ns)
            last = min(n - 1, (bar_end - 1 - start) // interval_ns)
            for j in range(first, last + 1):
                overlap = min(bar_end, start + (j + 1) * interval_ns) - max(bar_start, start + j * interval_ns)
                if overlap > 0:
                    weights[j] += volume * overlap / step_ns
        return weights if any(weights) else None

    def _profile_from_trade_ticks(self, instrument_id: InstrumentId, n: int, interval_ns: int) -> list[Fraction] | None:
        ticks = self.cache.trade_ticks(instrument_id)  # newest first
        now = self.clock.timestamp_ns()
        start = now - n * interval_ns
        if not ticks or ticks[-1].ts_event > start:
            return None  # the cache does not reach back one horizon
        weights = [Fraction(0)] * n
        for tick in ticks:
            if tick.ts_event < start:
                break
            j = min(n - 1, (tick.ts_event - start) // interval_ns)
            weights[j] += Fraction(tick.size.as_decimal())
        return weights if any(weights) else None

    def _profile(self, primary: Order, params: dict, n: int, interval_ns: int) -> tuple[list, str]:
        given = params.get("volume_profile")
        if given is not None:
            return _parse_profile(given, n), "params"
        from_bars = self._profile_from_bars(primary.instrument_id, n, interval_ns)
        if from_bars is not None:
            return from_bars, "bars"
        from_ticks = self._profile_from_trade_ticks(primary.instrument_id, n, interval_ns)
        if from_ticks is not None:
            return from_ticks, "trade_ticks"
        return [Fraction(1)] * n, "uniform"

    # -- order handling -------------------------------------------------------------------------------

    def _on_primary(self, order: Order) -> None:
        """Plan the slices of a new primary order and send the first one.

        Parameters
        ----------
        order : Order
            The primary (MARKET or LIMIT) carrying ``exec_algorithm_params`` (see module docstring).

        Notes
        -----
        A primary that cannot be worked is DENIED with a reason naming the parameter or rule.
        """
        primary_id = order.client_order_id
        instrument = self._new_primary_instrument(order)
        if instrument is None:
            return
        problem = _order_shape_problem(order)
        if problem:
            self._deny_primary(order, problem)
            return
        params = order.exec_algorithm_params or {}
        try:
            horizon = param_seconds(params, "horizon_secs")
            interval = param_seconds(params, "interval_secs")
            if interval > horizon:
                raise ParamError("interval_secs", f"must be at most horizon_secs ({horizon}), got {interval}")
            participation = param_decimal(params, "max_participation")
            if participation is not None and not (0 < participation <= 1):
                raise ParamError("max_participation", f"must be a fraction in (0, 1], got {participation}")
            n = horizon // interval
            interval_ns = interval * _NS
            weights, source = self._profile(order, params, n, interval_ns)
        except ParamError as exc:
            self._deny_primary(order, str(exc))
            return

        total = to_units(order.quantity, instrument)
        targets = apportion(total, weights)
        overtime = self.config.max_overtime_intervals
        sequence = _Sequence(
            instrument_id=order.instrument_id,
            interval_ns=interval_ns,
            targets=targets,
            participation=participation,
            overtime_max=n if overtime is None else overtime,
            source=source,
        )
        self._sequences[primary_id] = sequence
        self.log.info(
            f"{self.id} {primary_id}: {n} slices every {interval}s, profile from {source}, "
            f"planned {[str(units_to_qty(t, instrument)) for t in targets]}, "
            f"max_participation={participation}"
        )
        if participation is not None:  # the market volume counter only feeds the cap
            self._ensure_trade_subscription(order.instrument_id)
        previous = self._cached_volume_since(order.instrument_id, self.clock.timestamp_ns() - interval_ns)
        sequence.volume_mark = self._market_volume.get(order.instrument_id, Decimal(0))
        self._work_interval(order, instrument, sequence, previous)
        if primary_id in self._sequences:
            self.clock.set_timer(
                name=self._timer_name(primary_id),
                interval=timedelta(seconds=interval),
                callback=self._on_loop(self._on_interval),
            )

    def _on_interval(self, event: TimeEvent) -> None:
        primary_id = ClientOrderId(event.name.removeprefix(f"{self.id}-"))
        sequence = self._sequences.get(primary_id)
        primary = self.cache.order(primary_id)
        if sequence is None or primary is None or not primary.is_active_local:
            self._finish(primary_id, "primary no longer held")
            return
        instrument = self.cache.instrument(primary.instrument_id)
        if instrument is None:
            self._abort(primary_id, f"instrument {primary.instrument_id} no longer in the cache")
            return
        counter = self._market_volume.get(sequence.instrument_id, Decimal(0))
        previous, sequence.volume_mark = counter - sequence.volume_mark, counter
        self._work_interval(primary, instrument, sequence, previous)

    def _work_interval(self, primary: Order, instrument: Instrument, seq: _Sequence, previous: Decimal) -> None:
        # Send this interval's slice: planned size plus carry, capped; the primary when it is all.
        primary_id = primary.client_order_id
        refusal = self._slice_refusal(primary)
        if refusal:
            self.log.warning(f"{self.id} {primary_id} interval {seq.index}: no slice sent, {refusal}")
            self._finish(primary_id, f"no slice sent ({refusal})")
            return
        n = len(seq.targets)
        remaining = to_units(primary.quantity, instrument)
        planned = seq.targets[seq.index] if seq.index < n else 0
        desired = remaining if seq.index >= n - 1 else min(remaining, seq.carry + planned)
        cap = None if seq.participation is None else floor_units(seq.participation * previous, instrument)
        send = desired if cap is None else min(desired, cap)
        minimum = self._min_slice_units(primary, instrument)
        send = fit_to_minimum(send, remaining, minimum, most=cap)  # no slice, nor rest, below the minimum
        phase = "overtime " if seq.index >= n else ""
        self.log.info(
            f"{self.id} {primary_id} {phase}interval {seq.index}: planned {planned}, carry {seq.carry}, "
            f"market volume {previous}, cap {cap}, sending {send} of {remaining} units"
        )
        if not self._send_slice(primary, instrument, send, remaining):
            return  # the primary was sent as the last slice, or a child's denial ended the sequence
        seq.carry = desired - send
        seq.index += 1
        if seq.index >= n + seq.overtime_max:
            unsent = units_to_qty(remaining - send, instrument)
            self._abort(
                primary_id,
                f"participation cap left {unsent} unsent {seq.overtime_max} intervals after the horizon",
            )

    def _send_slice(self, primary: Order, instrument: Instrument, send: int, remaining: int) -> bool:
        # Send `send` units as children within the venue's max_quantity (several at once when it is
        # above it: module docstring, "Slice sizes"); the last part is the primary itself when
        # `send` is all that is left. False when the sequence has ended (primary sent, or aborted).
        primary_id = primary.client_order_id
        parts = split_units(send, max_units(instrument)) if send > 0 else []
        if len(parts) > 1:
            self.log.info(f"{self.id} {primary_id}: slice of {send} units above max_quantity "
                          f"{instrument.max_quantity}, sent as {parts}")
        for i, part in enumerate(parts):
            refusal = self._slice_refusal(primary) if i else None
            if refusal:  # an earlier part was denied or rejected at once and aborted the sequence
                self.log.warning(f"{self.id} {primary_id}: rest of the split slice not sent, {refusal}")
                return False
            if send == remaining and i == len(parts) - 1:
                self.submit_order(primary)  # the last slice is the primary itself
                self._finish(primary_id, f"primary sent as the last slice ({primary.quantity})")
                return False
            self.submit_order(self._spawn(primary, units_to_qty(part, instrument)))
        return primary_id in self._sequences

    def _spawn(self, primary: Order, quantity):
        if primary.order_type == OrderType.MARKET:
            return self.spawn_market(
                primary=primary,
                quantity=quantity,
                time_in_force=primary.time_in_force,
                reduce_only=primary.is_reduce_only,
                tags=primary.tags,
            )
        return self.spawn_limit(
            primary=primary,
            quantity=quantity,
            price=primary.price,
            time_in_force=primary.time_in_force,
            expire_time=primary.expire_time,
            post_only=primary.is_post_only,
            reduce_only=primary.is_reduce_only,
            tags=primary.tags,
        )


def _order_shape_problem(order: Order) -> str | None:
    if order.order_type == OrderType.MARKET:
        if order.time_in_force == TimeInForce.GTD:
            return "MARKET primary cannot be GTD"
        return None
    if order.order_type == OrderType.LIMIT:
        if order.time_in_force in (TimeInForce.IOC, TimeInForce.FOK):
            return "LIMIT primary must rest (GTC/GTD/DAY): an unfilled IOC/FOK slice would end the sequence"
        return None
    return f"order_type {order.order_type.name} not supported (MARKET or LIMIT)"


def _parse_profile(value: object, n: int) -> list[Decimal]:
    # Comma-separated decimal string (our params shape) or a list of decimals (direct Nautilus use).
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        raise ParamError("volume_profile", f"must be comma-separated decimal weights, got {value!r}")
    weights: list[Decimal] = []
    for index, item in enumerate(items):
        try:
            weight = param_decimal({"volume_profile": item}, "volume_profile")
        except ParamError:
            weight = None
        if weight is None or weight < 0:
            raise ParamError("volume_profile", f"item {index} must be a non-negative decimal, got {item!r}")
        weights.append(weight)
    if len(weights) != n:
        raise ParamError("volume_profile", f"must have one weight per interval ({n}), got {len(weights)}")
    if not any(weights):
        raise ParamError("volume_profile", "must have at least one positive weight")
    return weights
