"""Shared machinery for our slicing execution algorithms (VWAP, ICEBERG).

A slicing algorithm *holds* the primary (parent) order locally — status INITIALIZED, never sent —
and releases its quantity as child orders spawned from it (``spawn_market`` / ``spawn_limit``
shrink the primary by the child's quantity); the last slice is the primary itself, sent with what
is left (NAUTILUS_NOTES.md, "Execution algorithms"). While the primary is held the algorithm keeps
a *sequence* for it; the sequence ends when the primary is sent as the last slice, or when it is
aborted.

Lifecycle policy (both algorithms)
----------------------------------
* **Primary canceled** (the strategy's cancel of a held primary reaches the algorithm, which emits
  ``OrderCanceled`` for it; or the venue cancels the primary after it was sent as the last slice):
  stop the sequence's timer and cancel every open child. Safe to repeat: children already closed
  or pending cancel are skipped, so the bridge may also cancel the children itself, in any order.
* **Child rejected, denied, canceled or expired while the sequence runs** (anyone but this
  algorithm ended it): abort — stop the timer, cancel the other open children, and cancel the
  primary's unsent remainder so the parent reaches a terminal state (``OrderCanceled`` for the
  primary, generated locally when it is still held). Retrying a rejected slice could repeat the
  rejection forever; stopping loudly lets the OMS and the trader decide. The reason is logged at
  ERROR; ``OrderCanceled`` carries no reason field, the child's own event does (the OMS writes the
  parent's reason from its children: orders/services/venue_events.py). So a bridge that
  cancels the children *before* the primary ends in the same state as one that cancels the
  primary first: its later cancel of the (already canceled) primary is a logged no-op.
* **Invalid primary** (unsupported order type or time in force, bad ``exec_algorithm_params``,
  unknown instrument, an order list, or a primary arriving while the algorithm is not running):
  ``OrderDenied`` for the primary with a reason naming the parameter or rule — never silently
  ignored (NautilusTrader's TWAP only logs, and ``ExecAlgorithm.execute`` silently drops commands
  while not running; both leave the primary INITIALIZED for ever).
* **No slice after a cancel.** NautilusTrader's ``LiveClock`` calls timer callbacks on its own
  (Rust) thread, not on the node's event loop where the bridge's cancel runs, so a slice step that
  had passed its checks when the cancel came still spawned and submitted a child of the canceled
  primary, and that child reached the venue. A slice timer therefore only hands its event to the
  node's loop (``SlicingExecAlgorithm._on_loop``), where slice steps and cancels run one after the
  other, and every slice step re-checks right before it spawns (``_slice_refusal``): no slice from
  a primary that is closed, pending cancel, no longer held, or whose sequence has ended.

Minimum slice. No slice is sent below the smallest order the node's RiskEngine lets through — the
instrument's ``min_quantity`` and its ``min_notional`` (Binance's ``NOTIONAL`` filter; the seeded
paper listing has 10 USDT), the latter valued as the RiskEngine does (a LIMIT slice at its price, a
MARKET slice at the touch when the slice is sent: ``SlicingExecAlgorithm._min_slice_units``) — nor
one that leaves a smaller rest (``fit_to_minimum``). A slice the RiskEngine denies aborts the whole
sequence (above), so a 0.002 BTC TWAP in 10 slices of 8 USDT used to end CANCELED with nothing
filled. Limit: a MARKET rest sized to exactly the minimum at one slice's touch can fall below it if
the market moves against it before the last slice (that slice is then denied and the parent ends
CANCELED with its fills, the reason on the slice).

Maximum slice. No child is sent above the instrument's ``max_quantity`` (Binance's ``LOT_SIZE`` /
``MARKET_LOT_SIZE`` ``maxQty``), which the node's RiskEngine denies (``QUANTITY_EXCEEDS_MAXIMUM``) and
which would abort the sequence at its first slice. TWAP / VWAP send a slice above it as several
near-equal children at once, each within it (``split_units``; the primary itself is the last part
of the last slice), so every interval still sends what its schedule planned; ICEBERG denies a
``display_qty`` above it (a clip is what the book shows). Pre-trade risk already denies, at submit,
a TWAP or VWAP whose planned slices it can compute and that exceed the maximum
(risk/engine.py ``max_quantity``); the split is the backstop for what it cannot see (a VWAP profile
derived on the node, quantity carried from earlier intervals, a listing changed since).

Quantities are whole multiples of the instrument's size increment ("units") and are computed with
integers / ``Fraction``; ``Quantity`` objects are built from exact decimal strings, because
``Instrument.make_qty`` goes through ``float`` (nautilus_trader/model/instruments/base.pyx).
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections import deque
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from typing import Any

from nautilus_trader.core.uuid import UUID4
from nautilus_trader.execution.algorithm import ExecAlgorithm
from nautilus_trader.execution.messages import CancelOrder, SubmitOrder, SubmitOrderList
from nautilus_trader.model.events import OrderDenied
from nautilus_trader.model.identifiers import ClientOrderId
from nautilus_trader.model.instruments import Instrument
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.objects import Price, Quantity
from nautilus_trader.model.orders import Order

from odum_live.slicing import apportion  # re-exported: the algorithms import it from here


class ParamError(ValueError):
    """An ``exec_algorithm_params`` value the algorithm cannot work with.

    Attributes
    ----------
    param : str
        The offending parameter name (quoted in the primary's ``OrderDenied`` reason).
    """

    def __init__(self, param: str, message: str):
        self.param = param
        super().__init__(f"{param}: {message}")


# -- Quantity arithmetic in size-increment units -----------------------------------------------------


def size_increment(instrument: Instrument) -> Decimal:
    """Return the instrument's size increment in base units (e.g. ``Decimal("0.000001")``)."""
    return instrument.size_increment.as_decimal()


def to_units(quantity: Quantity | Decimal, instrument: Instrument) -> int:
    """Return ``quantity`` as a whole number of size increments.

    Raises
    ------
    ValueError
        If ``quantity`` is not on the instrument's size grid.
    """
    units, rest = divmod(Decimal(str(quantity)), size_increment(instrument))
    if rest:
        raise ValueError(f"{quantity} is not a multiple of the size increment {instrument.size_increment}")
    return int(units)


def floor_units(amount: Decimal | Fraction, instrument: Instrument) -> int:
    """Return ``amount`` (base units) rounded DOWN to whole size increments (never negative)."""
    units = math.floor(Fraction(amount) / Fraction(size_increment(instrument)))
    return max(units, 0)


def units_to_qty(units: int, instrument: Instrument) -> Quantity:
    """Return ``units`` size increments as an exact ``Quantity`` at the instrument's size precision."""
    value = Decimal(units) * size_increment(instrument)
    return Quantity.from_str(f"{value:.{instrument.size_precision}f}")


def min_units(instrument: Instrument) -> int:
    """Return the smallest sendable child size in units: one increment or the venue's minimum quantity."""
    if instrument.min_quantity is None:
        return 1
    return max(1, math.ceil(Fraction(instrument.min_quantity.as_decimal()) / Fraction(size_increment(instrument))))


def max_units(instrument: Instrument) -> int | None:
    """Return the largest sendable child size in units: the venue's ``max_quantity`` (None: no maximum).

    NautilusTrader's RiskEngine denies an order above the instrument's ``max_quantity``
    (``QUANTITY_EXCEEDS_MAXIMUM``, nautilus_trader/risk/engine.pyx; the node's instruments carry the
    listing's, Binance's ``LOT_SIZE`` / ``MARKET_LOT_SIZE`` ``maxQty``: venues/node/instruments.py).
    Rounded DOWN to whole size increments, never below one.
    """
    if instrument.max_quantity is None:
        return None
    return max(1, floor_units(instrument.max_quantity.as_decimal(), instrument))


def split_units(send: int, most: int | None) -> list[int]:
    """Return the slice ``send`` as the fewest near-equal parts of at most ``most`` units each.

    A slice above the venue's maximum order size (:func:`max_units`) is sent as
    ceil(send / most) child orders at once, split by :func:`apportion` (larger parts first), so the
    interval still sends what its schedule planned. Each part is at least floor(send / parts), i.e.
    more than half of ``most`` when there are several: above the minimum unless the venue's maximum
    is less than twice its minimum (then the RiskEngine denies the small part and the sequence
    aborts, base.py's policy).

    Parameters
    ----------
    send : int
        The slice, size-increment units (> 0).
    most : int or None
        The largest order allowed, units; None means no maximum.

    Returns
    -------
    list[int]
        Parts summing exactly to ``send``: ``[send]`` when it fits.
    """
    if most is None or send <= most:
        return [send]
    return apportion(send, [1] * math.ceil(send / most))


def min_notional_units(instrument: Instrument, price: Price | None) -> int:
    """Return the fewest size increments whose notional at ``price`` reaches the instrument's ``min_notional``.

    NautilusTrader's RiskEngine denies an order whose notional is below the instrument's
    ``min_notional`` (``NOTIONAL_LESS_THAN_MIN_FOR_INSTRUMENT``, nautilus_trader/risk/engine.pyx; the
    node's instruments carry the listing's, Binance's ``NOTIONAL`` filter: venues/node/instruments.py),
    valuing it with ``Instrument.notional_value(quantity, price, use_quote_for_inverse=True)``:
    quantity × multiplier × price in quote currency, or for an inverse instrument the quantity itself
    (quote currency). The same valuation is checked here, so the answer agrees with the RiskEngine's
    float arithmetic too.

    Parameters
    ----------
    instrument : Instrument
        The slice's instrument.
    price : Price or None
        The price the slice is valued at (quote currency): :meth:`SlicingExecAlgorithm._slice_price`.

    Returns
    -------
    int
        Units (size increments); 0 when no minimum applies: no ``min_notional``, one in another
        currency than the notional's (the RiskEngine skips it too), or no price to value at.
    """
    minimum = instrument.min_notional
    if minimum is None or price is None or minimum.currency != instrument.quote_currency:
        return 0
    per_unit = Fraction(size_increment(instrument))
    if not instrument.is_inverse:
        per_unit *= Fraction(instrument.multiplier.as_decimal()) * Fraction(price.as_decimal())
    if per_unit <= 0:
        return 0
    units = math.ceil(Fraction(minimum.as_decimal()) / per_unit)
    while instrument.notional_value(units_to_qty(units, instrument), price, True).as_decimal() < minimum.as_decimal():
        units += 1  # the RiskEngine's float product fell a hair short of the exact one
    return units


def fit_to_minimum(send: int, remaining: int, minimum: int, *, most: int | None = None) -> int:
    """Return the slice to send instead of ``send`` so that neither it nor the unsent rest is below the minimum.

    NautilusTrader's RiskEngine denies an order below the instrument's ``min_quantity``
    (``QUANTITY_BELOW_MINIMUM``, nautilus_trader/risk/engine.pyx), and a slicing algorithm's last
    slice is the primary itself with whatever is left; so a rest strictly between 0 and the minimum
    would be denied and the parent end under-filled though the order as a whole was valid. Rules:

    1. A slice below the minimum that is not the whole rest is carried (0 is sent).
    2. A slice that would leave 0 < rest < ``minimum`` becomes the candidate closest to ``send``
       among: ``remaining - minimum`` (send less; leaves exactly the minimum) when that is itself
       at least the minimum, else 0 (carry it all); and ``remaining`` (send it all) when ``most``
       allows. Ties go to the smaller slice: never further ahead of plan than needed.
    3. Anything else is sent as asked.

    Parameters
    ----------
    send : int
        The slice the schedule asks for, size-increment units, 0 ≤ send ≤ ``most``.
    remaining : int
        The primary's unsent quantity, units (≥ ``send``).
    minimum : int
        The smallest sendable order, units (:func:`min_units`).
    most : int, optional
        The largest slice allowed now, units (a participation cap); None means ``remaining``.

    Returns
    -------
    int
        Units to send now: 0, or ≥ ``minimum`` and leaving 0 or ≥ ``minimum`` — except when
        ``remaining`` itself is below ``minimum`` (the order as a whole is too small; the slice is
        then what rule 1 or 3 gives).
    """
    if 0 < send < remaining and send < minimum:
        return 0
    if not 0 < remaining - send < minimum:
        return send
    options = [remaining - minimum if remaining - minimum >= minimum else 0]
    if most is None or most >= remaining:
        options.append(remaining)
    return min(options, key=lambda units: (abs(units - send), units))


# -- Parameter parsing (values arrive as int or str; venues/algorithms/__init__.py) ------------------


def param_seconds(params: dict[str, Any], name: str) -> int:
    """Return a positive whole number of seconds from ``params[name]`` (int or digit string).

    Raises
    ------
    ParamError
        If missing, not a whole number, or not positive.
    """
    if name not in params or params[name] is None:
        raise ParamError(name, "is required")
    value = params[name]
    if isinstance(value, bool):
        raise ParamError(name, f"must be a whole number of seconds, got {value!r}")
    try:
        number = Decimal(str(value).strip())
    except ArithmeticError:
        raise ParamError(name, f"must be a whole number of seconds, got {value!r}") from None
    if not number.is_finite() or number != number.to_integral_value() or number <= 0:
        raise ParamError(name, f"must be a positive whole number of seconds, got {value!r}")
    return int(number)


def param_decimal(params: dict[str, Any], name: str) -> Decimal | None:
    """Return ``params[name]`` as a finite ``Decimal`` (None when absent).

    Raises
    ------
    ParamError
        If present but not a finite decimal (floats are refused: they lose precision).
    """
    if name not in params or params[name] is None:
        return None
    value = params[name]
    if isinstance(value, (bool, float)):
        raise ParamError(name, f"must be a decimal string, got {value!r}")
    try:
        number = Decimal(str(value).strip())
    except ArithmeticError:
        raise ParamError(name, f"is not a decimal number: {value!r}") from None
    if not number.is_finite():
        raise ParamError(name, f"must be finite, got {value!r}")
    return number


# -- The algorithm base ------------------------------------------------------------------------------


class SlicingExecAlgorithm(ExecAlgorithm):
    """Base for algorithms that hold a primary order and release it in child slices.

    Subclasses implement :meth:`_on_primary` (instead of ``on_order``), keep per-primary state in
    ``self._sequences`` and call :meth:`_finish` once the primary has been sent as the last slice.
    This class implements the cancel / reject / deny policy described in the module docstring.

    Why ``_on_primary`` runs after ``execute``: NautilusTrader's ``ExecAlgorithm.execute`` calls
    ``on_order`` *before* subscribing to the submitting strategy's order events, so for the first
    primary of a strategy an event raised synchronously by the first child — an ``OrderDenied``
    from the RiskEngine — would never reach the algorithm and the primary would hang. ``on_order``
    therefore only queues the primary; :meth:`execute` works it once the subscription exists.

    Parameters
    ----------
    config : ExecAlgorithmConfig
        The subclass's configuration (carries the ``exec_algorithm_id``).
    """

    def __init__(self, config) -> None:
        super().__init__(config)
        self._sequences: dict[ClientOrderId, Any] = {}
        self._arrived: deque[Order] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None  # the node's loop; None in a backtest
        self._loop_thread: int | None = None

    # -- command entry --------------------------------------------------------------------------------

    def execute(self, command) -> None:
        """Handle a trading command, then work the primaries it brought (see the class docstring).

        A primary submitted while the algorithm is not running (NautilusTrader drops those
        silently, leaving them INITIALIZED for ever) is DENIED instead.

        Parameters
        ----------
        command : TradingCommand
            ``SubmitOrder``, ``SubmitOrderList`` or ``CancelOrder`` routed to this algorithm.
        """
        if not self.is_running and isinstance(command, (SubmitOrder, SubmitOrderList)):
            orders = [command.order] if isinstance(command, SubmitOrder) else command.order_list.orders
            for order in orders:
                self._deny_primary(order, f"execution algorithm {self.id} is not running")
            return
        super().execute(command)
        while self._arrived:
            self._on_primary(self._arrived.popleft())

    def on_order(self, order: Order) -> None:
        """Queue a new primary; :meth:`execute` hands it to :meth:`_on_primary`."""
        self._arrived.append(order)

    def on_order_list(self, order_list) -> None:
        """Deny every order of an order list: no slicing algorithm here works contingent lists."""
        for order in order_list.orders:
            self._deny_primary(order, "order lists are not supported")

    def _on_primary(self, order: Order) -> None:
        raise NotImplementedError

    # -- helpers for subclasses ---------------------------------------------------------------------

    def _new_primary_instrument(self, order: Order):
        # The checks every new primary starts with: not already worked, instrument cached (else DENIED).
        if order.client_order_id in self._sequences:
            self.log.error(f"{self.id} already working {order.client_order_id}; duplicate primary ignored")
            return None
        instrument = self.cache.instrument(order.instrument_id)
        if instrument is None:
            self._deny_primary(order, f"instrument {order.instrument_id} not found in the cache")
        return instrument

    def _timer_name(self, primary_id: ClientOrderId) -> str:
        return f"{self.id}-{primary_id}"

    def _on_loop(self, callback: Callable[[Any], None]) -> Callable[[Any], None]:
        """Return a timer callback that runs ``callback(event)`` on the node's event loop thread.

        NautilusTrader's ``LiveClock`` invokes timer callbacks on its own thread (measured on
        1.221.0), concurrently with commands and order events on the loop; the returned callback
        hands the event over with ``call_soon_threadsafe``. In a backtest (no running loop at
        start) or when already on the loop thread it calls ``callback`` directly.
        """

        def run(event) -> None:
            loop = self._loop
            if loop is None or threading.get_ident() == self._loop_thread:
                callback(event)
                return
            try:
                loop.call_soon_threadsafe(callback, event)
            except RuntimeError as exc:  # the loop closed: the node stopped, held primaries stay (on_stop)
                self.log.error(f"{self.id} timer {event.name} not handled, the node's loop is gone: {exc}")

        return run

    def _slice_refusal(self, primary: Order) -> str | None:
        """Return why no slice may be spawned or sent from ``primary`` now (None: it may).

        Checked by every slice step, right before it spawns: a primary that is closed (canceled,
        e.g. by the trader's cancel), pending cancel, no longer held locally, or whose sequence has
        ended gets no new slice — a parent cancel means no new slice reaches the venue.
        """
        if primary.client_order_id not in self._sequences:
            return "its sequence has ended"
        if primary.is_closed or primary.is_pending_cancel or not primary.is_active_local:
            return f"the primary is {primary.status_string()}"
        return None

    def _slice_price(self, primary: Order) -> Price | None:
        """Return the price NautilusTrader's RiskEngine values a slice of ``primary`` at (None: unknown).

        As nautilus_trader/risk/engine.pyx does: a LIMIT order's own price; a MARKET order's last
        quote (the ask to buy, the bid to sell), else the last trade; else None (the RiskEngine then
        skips its notional checks too).
        """
        if primary.has_price:
            return primary.price
        quote = self.cache.quote_tick(primary.instrument_id)
        if quote is not None:
            return quote.ask_price if primary.side == OrderSide.BUY else quote.bid_price
        trade = self.cache.trade_tick(primary.instrument_id)
        return trade.price if trade is not None else None

    def _min_slice_units(self, primary: Order, instrument: Instrument) -> int:
        """Return the smallest slice of ``primary`` the node's RiskEngine lets through, in size increments.

        The larger of :func:`min_units` (one increment, or ``min_quantity``) and
        :func:`min_notional_units` at :meth:`_slice_price`. Re-read at every slice step: a MARKET
        slice is valued at the market as it is then.
        """
        return max(min_units(instrument), min_notional_units(instrument, self._slice_price(primary)))

    def _finish(self, primary_id: ClientOrderId, note: str) -> None:
        # The primary left local hold (sent as the last slice) or was aborted: stop driving it.
        name = self._timer_name(primary_id)
        if name in self.clock.timer_names:
            self.clock.cancel_timer(name)
        if self._sequences.pop(primary_id, None) is not None:
            self.log.info(f"{self.id} sequence for {primary_id} finished: {note}")

    def _deny_primary(self, primary: Order, reason: str) -> None:
        """Deny a primary the algorithm cannot work (``OrderDenied`` with ``reason``)."""
        self.log.error(f"{self.id} denied {primary.client_order_id}: {reason}")
        denied = OrderDenied(
            trader_id=primary.trader_id,
            strategy_id=primary.strategy_id,
            instrument_id=primary.instrument_id,
            client_order_id=primary.client_order_id,
            reason=f"{self.id}: {reason}",
            event_id=UUID4(),
            ts_init=self.clock.timestamp_ns(),
        )
        # Same route as the RiskEngine's denials: the ExecEngine applies, caches and publishes.
        self.msgbus.send(endpoint="ExecEngine.process", msg=denied)

    def _cancel_held_primary(self, primary: Order) -> None:
        # A held (INITIALIZED) primary is unknown to the venue: cancel it locally through the
        # same path as a strategy's cancel (ExecAlgorithm._handle_cancel_order applies and
        # publishes OrderCanceled synchronously).
        command = CancelOrder(
            trader_id=primary.trader_id,
            strategy_id=primary.strategy_id,
            instrument_id=primary.instrument_id,
            client_order_id=primary.client_order_id,
            venue_order_id=primary.venue_order_id,
            command_id=UUID4(),
            ts_init=self.clock.timestamp_ns(),
        )
        ExecAlgorithm.execute(self, command)

    def _cancel_open_children(self, primary_id: ClientOrderId) -> None:
        """Cancel every child of ``primary_id`` still working; skip closed or pending-cancel ones."""
        for order in self.cache.orders_for_exec_spawn(primary_id):
            if order.client_order_id == primary_id:
                continue
            if order.is_closed or order.is_pending_cancel:
                continue
            self.log.info(f"{self.id} canceling child {order.client_order_id} of {primary_id}")
            self.cancel_order(order)

    def _abort(self, primary_id: ClientOrderId, reason: str) -> None:
        """Stop the sequence, cancel open children and the primary's unsent remainder."""
        self.log.error(f"{self.id} aborting {primary_id}: {reason}")
        self._finish(primary_id, f"aborted ({reason})")
        self._cancel_open_children(primary_id)
        primary = self.cache.order(primary_id)
        if primary is None or primary.is_closed or primary.is_pending_cancel:
            return
        if primary.is_active_local:
            self._cancel_held_primary(primary)
        else:
            self.cancel_order(primary)

    def _primary_of(self, client_order_id: ClientOrderId) -> tuple[Order | None, ClientOrderId | None]:
        order = self.cache.order(client_order_id)
        if order is None or order.exec_spawn_id is None:
            return order, None
        return order, order.exec_spawn_id

    def _on_order_ended(self, client_order_id: ClientOrderId, what: str) -> None:
        _, primary_id = self._primary_of(client_order_id)
        if primary_id is None:
            return
        if client_order_id == primary_id:
            self.log.warning(f"{self.id} primary {primary_id} {what}: stopping and canceling its open children")
            self._finish(primary_id, f"primary {what}")
            self._cancel_open_children(primary_id)
        elif primary_id in self._sequences:
            self._abort(primary_id, f"child {client_order_id} {what}")
        # else: a child ended after the sequence finished (our own teardown, or the bridge's
        # cancel of children after the primary's): nothing left to drive.

    # -- event handlers (NautilusTrader calls these only for orders carrying our exec_algorithm_id) --

    def on_order_canceled(self, event) -> None:
        """Handle ``OrderCanceled``: primary → cancel open children; child → abort the sequence."""
        self._on_order_ended(event.client_order_id, "canceled")

    def on_order_expired(self, event) -> None:
        """Handle ``OrderExpired`` as a cancel (a GTD child or primary ran out of time)."""
        self._on_order_ended(event.client_order_id, "expired")

    def on_order_rejected(self, event) -> None:
        """Handle ``OrderRejected`` (venue): primary → cancel open children; child → abort."""
        self._on_order_ended(event.client_order_id, f"rejected ({event.reason})")

    def on_order_denied(self, event) -> None:
        """Handle ``OrderDenied`` (pre-trade risk, or our own denial): as a rejection."""
        self._on_order_ended(event.client_order_id, f"denied ({event.reason})")

    def on_start(self) -> None:
        """Remember the node's event loop and its thread for :meth:`_on_loop` (none in a backtest).

        NautilusTrader starts the trader, and so this algorithm, on the node's loop thread
        (``TradingNode.run`` → ``NautilusKernel.start_async``). Subclasses that subscribe to data
        here must call this too.
        """
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        self._loop_thread = threading.get_ident()

    def on_stop(self) -> None:
        """Cancel all timers; held primaries stay INITIALIZED (see the package docstring)."""
        self.clock.cancel_timers()

    def on_reset(self) -> None:
        """Forget all sequences."""
        self._sequences.clear()
