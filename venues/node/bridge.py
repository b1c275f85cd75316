"""The bridge strategy: our venue commands in, our ``VenueEvent`` out, on the node's own thread.

One ``Strategy`` instance per node. Every method here runs on the node's event-loop thread (the
host hands commands in with ``loop.call_soon_threadsafe``); nothing here touches the database.

- :meth:`BridgeStrategy.submit` turns a :class:`~venues.commands.SubmitOrderCommand` into a
  NautilusTrader ``MarketOrder`` / ``LimitOrder`` carrying *our* client_order_id (and
  ``exec_algorithm_id`` + params for TWAP / VWAP / ICEBERG) and submits it with the listing's
  execution client id.
- :meth:`BridgeStrategy.cancel` cancels the order and, for an algorithm's parent, every open child
  (those the OMS knows and those only the node knows yet: ``cache.orders_for_exec_spawn``). A cancel
  for an order the node has already closed sends its fills and closing event to the journal again:
  the OMS still waiting on that cancel missed them.
- :meth:`BridgeStrategy.query` answers the node's state of one order (FIX OrderStatusRequest:
  status, venue order id, filled / leaves quantity, exact average fill price, known children) and,
  when asked, sends NautilusTrader's ``QueryOrder`` so the venue reports its own. For an algorithm's
  parent the figures are its family's (the primary and the children spawned from it), as the OMS
  holds the parent, not those of NautilusTrader's primary order alone.
- :meth:`BridgeStrategy.on_order_event` translates each order event with
  :func:`venue_event_from_nautilus` and hands it to the journal writer's ``submit`` — also while
  the node stops (:meth:`BridgeStrategy.handle_event`): a venue's answer is never dropped.
- :meth:`BridgeStrategy.on_external_fill` sees every fill the node's execution engine handles
  (message bus topic ``events.fills.<instrument id>``, published for every order's fill,
  nautilus_trader/execution/engine.pyx ``_handle_order_fill``) and forwards those of orders that
  are not ours — NautilusTrader's EXTERNAL orders: a venue liquidation / ADL / settlement or
  delivery auto-close, an order placed by hand on the account (nautilus_trader/live/
  execution_engine.py ``_generate_order``), or any other strategy's — as an EXTERNAL_FILL
  :class:`VenueEvent` with the venue's net position right after it (:func:`external_fill_event`).
  Ours are the bridge's strategy id: its orders and its algorithms' children (spawned with the
  primary's strategy id), which arrive through :meth:`BridgeStrategy.on_order_event`. The bridge
  claims no external orders (``external_order_claims``), so none of them is taken for ours. One of
  ours the node lost its record of (a restart without a persisted cache) comes back from the venue
  as an EXTERNAL order with our client_order_id: the journal, which can look that id up, books it as
  the order's fill (``orders.services.venue_events``). Fills
  the node's own start-up reconciliation generates come before the bridge starts: those show as the
  listing's POSITION_MISMATCH of venues/node/reconcile.py.
- Quotes (and bars) go to the market-data sink, which the host publishes at a bounded rate.

Events translated (NautilusTrader → ``VenueEventKind``): OrderInitialized of an algorithm's child
(``exec_spawn_id`` ≠ own id) → CHILD_CREATED; OrderSubmitted of a child → SUBMITTED (a parent was
already moved to SUBMITTED by the trading worker before the hand-off); OrderAccepted → ACCEPTED;
OrderRejected / OrderDenied → REJECTED; OrderFilled → FILLED; OrderCanceled → CANCELED;
OrderExpired → EXPIRED; OrderCancelRejected → CANCEL_REJECTED. A CANCELED or REJECTED that
NautilusTrader's reconciliation made without a venue report (its in-flight check giving up on a
venue that never answered) says so in its reason: the venue confirmed nothing. Other events
(pending cancel / update, updated, triggered, emulated, released) change nothing the OMS tracks and
are not sent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from nautilus_trader.config import StrategyConfig
from nautilus_trader.model.data import Bar, QuoteTick
from nautilus_trader.model.enums import LiquiditySide, OrderSide, OrderType, PositionSide, TimeInForce
from nautilus_trader.model.enums import OrderStatus as NtStatus
from nautilus_trader.model.events import (
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderDenied,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderInitialized,
    OrderRejected,
    OrderSubmitted,
)
from nautilus_trader.model.identifiers import ClientId, ClientOrderId, ExecAlgorithmId, InstrumentId
from nautilus_trader.model.objects import Price, Quantity
from nautilus_trader.trading.strategy import Strategy

from venues.commands import (
    CancelOrderCommand,
    NodeOrderStatus,
    OrderStatusQuery,
    SubmitOrderCommand,
    VenueCommandError,
)
from venues.events import Liquidity, VenueEvent, VenueEventKind

logger = logging.getLogger(__name__)

_SIDES = {"BUY": OrderSide.BUY, "SELL": OrderSide.SELL}
_TIF = {"GTC": TimeInForce.GTC, "IOC": TimeInForce.IOC, "FOK": TimeInForce.FOK, "GTD": TimeInForce.GTD}
_LIQUIDITY = {LiquiditySide.MAKER: Liquidity.MAKER, LiquiditySide.TAKER: Liquidity.TAKER}
_ORDER_TYPES = {OrderType.MARKET: "MARKET", OrderType.LIMIT: "LIMIT"}


def _fill_figures(orders) -> tuple[Decimal, Decimal | None]:
    # (Σ quantity, average price or None) over the fills of ``orders``, exact (``avg_px``: a float, 39444.950000000004).
    fills = [e for order in orders for e in order.events if isinstance(e, OrderFilled)]
    quantity = sum((e.last_qty.as_decimal() for e in fills), Decimal(0))
    if not quantity:
        return quantity, None
    return quantity, sum((e.last_px.as_decimal() * e.last_qty.as_decimal() for e in fills), Decimal(0)) / quantity


_CLOSED_STATUSES = frozenset({"FILLED", "CANCELED", "EXPIRED", "REJECTED", "DENIED"})


def _family_figures(primary, family) -> tuple[str, Decimal, Decimal, Decimal, Decimal | None]:
    # (status, quantity, filled, leaves, average price) of an algorithm's parent: BridgeStrategy.query says how.
    quantity = primary.init_event.quantity.as_decimal()
    filled, average = _fill_figures(family)
    if filled >= quantity:
        status = "FILLED"
    elif primary.is_closed and primary.status != NtStatus.FILLED:
        status = primary.status_string()
        if filled and status in ("REJECTED", "DENIED"):
            status = "CANCELED"
    elif primary.status == NtStatus.FILLED and all(order.is_closed for order in family):
        status = "CANCELED"  # the family ended short: nothing of it can fill any more, as the journal closes it
    elif primary.is_pending_cancel:
        status = "PENDING_CANCEL"
    elif filled:
        status = "PARTIALLY_FILLED"
    elif primary.status == NtStatus.INITIALIZED:
        status = "SUBMITTED"
    else:
        status = primary.status_string()
    leaves = Decimal(0) if status in _CLOSED_STATUSES else quantity - filled
    return status, quantity, filled, leaves, average


def nanos_to_datetime(ns: int) -> datetime:
    """Return UNIX nanoseconds as an aware UTC datetime (microsecond resolution, no float rounding)."""
    seconds, rest = divmod(int(ns), 1_000_000_000)
    return datetime.fromtimestamp(seconds, UTC) + timedelta(microseconds=rest // 1000)


def _closed_without_venue_report(event) -> bool:
    # Made by NautilusTrader's reconciliation with no venue report behind it (``reconciliation`` set, and
    # ts_event = ts_init instead of the report's time: nautilus_trader/live/reconciliation.py).
    return bool(getattr(event, "reconciliation", False)) and event.ts_event == event.ts_init


def _unconfirmed(reason: str = "") -> str:
    # The reason of a CANCELED / REJECTED the node made up (venue_event_from_nautilus).
    why = f" ({reason})" if reason else ""
    return (f"not confirmed by the venue: the trading node's reconciliation closed the order without a venue "
            f"report{why}, e.g. no answer to it or to its cancel after its in-flight checks; it may still be "
            f"working: check the order at the venue")


def venue_event_from_nautilus(event, *, venue: str, is_child: bool, instrument_key: str = "") -> VenueEvent | None:
    """Translate one NautilusTrader order event into our :class:`VenueEvent` (None: not tracked).

    Parameters
    ----------
    event : nautilus_trader.model.events.OrderEvent
        The event.
    venue : str
        Our venue code of the order's listing.
    is_child : bool
        Whether the order is an execution algorithm's child (its OrderSubmitted is forwarded).
    instrument_key : str
        Our instrument key of the order's listing, sent with a fill (with its side) so that a fill of
        an order the OMS holds no record of is still recorded (``orders.services.venue_events``);
        "" when the caller does not know it.

    Returns
    -------
    VenueEvent | None
        An OrderCanceled / OrderRejected that NautilusTrader's own reconciliation made without a
        venue report — its in-flight check giving up on a venue that never answered an order
        (→ REJECTED, reason UNKNOWN) or its cancel (→ CANCELED), an order missing from the venue's
        open orders — carries a ``reason`` saying the venue confirmed nothing and the order may
        still be working there (:func:`_unconfirmed`).

    Raises
    ------
    ValueError
        From :class:`VenueEvent` for figures it refuses (e.g. a non-finite price). A negative
        commission is a maker rebate, carried as a negative ``fee``.
    """
    cid = event.client_order_id.value
    ts = nanos_to_datetime(event.ts_event)
    common = dict(client_order_id=cid, venue=venue, ts_event=ts)
    if isinstance(event, OrderInitialized):
        spawn = event.exec_spawn_id
        if spawn is None or spawn == event.client_order_id:
            return None
        price = event.options.get("price")
        return VenueEvent(kind=VenueEventKind.CHILD_CREATED, **common, parent_client_order_id=spawn.value,
                          side="BUY" if event.side == OrderSide.BUY else "SELL",
                          quantity=event.quantity.as_decimal(),
                          order_type=_ORDER_TYPES.get(event.order_type, str(event.order_type)),
                          price=Decimal(str(price)) if price is not None else None)
    venue_order_id = getattr(event, "venue_order_id", None)
    common["venue_order_id"] = venue_order_id.value if venue_order_id is not None else ""
    if isinstance(event, OrderSubmitted):
        return VenueEvent(kind=VenueEventKind.SUBMITTED, **common) if is_child else None
    if isinstance(event, OrderAccepted):
        return VenueEvent(kind=VenueEventKind.ACCEPTED, **common)
    if isinstance(event, OrderRejected):
        reason = str(event.reason)
        return VenueEvent(kind=VenueEventKind.REJECTED, **common,
                          reason=_unconfirmed(reason) if _closed_without_venue_report(event) else reason)
    if isinstance(event, OrderDenied):
        return VenueEvent(kind=VenueEventKind.REJECTED, **common,
                          reason=f"denied by the trading node: {event.reason}")
    if isinstance(event, OrderCanceled):
        return VenueEvent(kind=VenueEventKind.CANCELED, **common,
                          reason=_unconfirmed() if _closed_without_venue_report(event) else "")
    if isinstance(event, OrderExpired):
        return VenueEvent(kind=VenueEventKind.EXPIRED, **common)
    if isinstance(event, OrderCancelRejected):
        return VenueEvent(kind=VenueEventKind.CANCEL_REJECTED, **common, reason=str(event.reason))
    if isinstance(event, OrderFilled):
        commission = event.commission
        return VenueEvent(
            kind=VenueEventKind.FILLED, **common, trade_id=event.trade_id.value,
            last_qty=event.last_qty.as_decimal(), last_px=event.last_px.as_decimal(),
            fee=commission.as_decimal() if commission is not None else Decimal(0),
            fee_currency=commission.currency.code if commission is not None else "",
            liquidity=_LIQUIDITY.get(event.liquidity_side, Liquidity.UNKNOWN),
            side="BUY" if event.order_side == OrderSide.BUY else "SELL", instrument_key=instrument_key,
        )
    return None


def net_position(cache, instrument_id: InstrumentId) -> Decimal:
    """Return the node's net position in one instrument: signed (short negative), base units, 0 when flat.

    Summed over the open positions of every strategy, EXTERNAL included (run on the loop thread).
    """
    total = Decimal(0)
    for position in cache.positions_open(instrument_id=instrument_id):
        size = position.quantity.as_decimal()
        total += -size if position.side == PositionSide.SHORT else size
    return total


def external_fill_event(fill: OrderFilled, *, venue: str, instrument_key: str,
                        venue_position: Decimal | None) -> VenueEvent:
    """Translate a NautilusTrader fill of an order that is not ours into an EXTERNAL_FILL :class:`VenueEvent`.

    Parameters
    ----------
    fill : OrderFilled
        The fill (any strategy's but the bridge's: ``EXTERNAL`` for NautilusTrader's external orders).
    venue, instrument_key : str
        Our venue code and instrument key of the listing filled.
    venue_position : Decimal | None
        The node's net position in the instrument right after the fill (:func:`net_position`).

    Returns
    -------
    VenueEvent
        ``client_order_id``: the node's id of the order (the venue's own client order id, e.g.
        Binance's ``autoclose-…``, when it had one); ``reason``: the owning strategy and the fee.

    Raises
    ------
    ValueError
        From :class:`VenueEvent` for figures it refuses.
    """
    commission = fill.commission
    fee = f"{commission.as_decimal()} {commission.currency.code}" if commission is not None else "none reported"
    return VenueEvent(
        kind=VenueEventKind.EXTERNAL_FILL, client_order_id=fill.client_order_id.value, venue=venue,
        ts_event=nanos_to_datetime(fill.ts_event),
        venue_order_id=fill.venue_order_id.value if fill.venue_order_id is not None else "",
        trade_id=fill.trade_id.value, last_qty=fill.last_qty.as_decimal(), last_px=fill.last_px.as_decimal(),
        fee=commission.as_decimal() if commission is not None else Decimal(0),
        fee_currency=commission.currency.code if commission is not None else "",
        liquidity=_LIQUIDITY.get(fill.liquidity_side, Liquidity.UNKNOWN),
        side="BUY" if fill.order_side == OrderSide.BUY else "SELL", instrument_key=instrument_key,
        venue_position=venue_position,
        reason=f"order of strategy {fill.strategy_id} on the trading node, not of the OMS; fee {fee}",
    )


class BridgeConfig(StrategyConfig, frozen=True, kw_only=True):
    """Bridge strategy configuration.

    Parameters
    ----------
    listings : tuple[tuple[str, str, str, str, str, tuple[str, ...]], ...]
        Per listing: (NautilusTrader instrument id, venue code, instrument key, exec client id,
        data client id or "", market data feeds such as ``("quotes", "trades")``).
    """

    listings: tuple[tuple[str, str, str, str, str, tuple[str, ...]], ...] = ()


class BridgeStrategy(Strategy):
    """Our orders in, our events out (see the module docstring). Runs on the node's loop thread."""

    def __init__(self, config: BridgeConfig, *, event_sink: Callable[[VenueEvent], None],
                 quote_sink: Callable[[str, QuoteTick], None] | None = None,
                 bar_sink: Callable[[str, Bar], None] | None = None) -> None:
        super().__init__(config)
        self._event_sink = event_sink
        self._quote_sink = quote_sink
        self._bar_sink = bar_sink
        self._listings = {iid: (venue, key, exec_id, data_id, tuple(feeds))
                          for iid, venue, key, exec_id, data_id, feeds in config.listings}
        self._instrument_ids = {key: iid for iid, _venue, key, *_rest in config.listings}
        self.events_forwarded = 0
        self.events_untranslatable = 0
        self.external_fills_forwarded = 0
        self._watching_fills = False

    # -- lifecycle --------------------------------------------------------------------------------

    def on_start(self) -> None:
        if not self._watching_fills:  # kept through a stop: a fill while the node stops is still reported
            self.msgbus.subscribe(topic="events.fills.*", handler=self.on_external_fill)
            self._watching_fills = True
        for iid_text, (_venue, _key, _exec_id, data_id, feeds) in self._listings.items():
            if not data_id:
                continue
            iid, client = InstrumentId.from_str(iid_text), ClientId(data_id)
            if "quotes" in feeds:
                self.subscribe_quote_ticks(iid, client_id=client)
            if "trades" in feeds:
                self.subscribe_trade_ticks(iid, client_id=client)

    # -- commands (called on the loop thread by the host) -----------------------------------------

    def submit(self, command: SubmitOrderCommand) -> None:
        """Build and submit the NautilusTrader order of ``command``.

        Raises
        ------
        VenueCommandError
            The listing is not on this node, its instrument is not loaded, the order is already
            known to the node (a duplicate hand-off), or a figure does not fit the instrument's
            tick / lot.
        """
        iid_text = self._instrument_ids.get(command.instrument_key)
        if iid_text is None:
            raise VenueCommandError(f"listing {command.instrument_key} is not traded by this trading node")
        listing = self._listings[iid_text]
        iid = InstrumentId.from_str(iid_text)
        instrument = self.cache.instrument(iid)
        if instrument is None:
            raise VenueCommandError(f"instrument {iid} is not loaded on the trading node")
        cid = ClientOrderId(command.client_order_id)
        if self.cache.order(cid) is not None:
            raise VenueCommandError(f"order {command.client_order_id} is already known to the trading node")
        quantity = _exact(Quantity, command.quantity, instrument.size_precision, "quantity")
        algo, params = _algorithm(command)
        side = _SIDES[command.side]
        tif = _TIF[command.time_in_force]
        if command.order_type == "MARKET":
            order = self.order_factory.market(iid, side, quantity, time_in_force=tif, exec_algorithm_id=algo,
                                              exec_algorithm_params=params, client_order_id=cid)
        elif command.order_type == "LIMIT":
            price = _exact(Price, command.price, instrument.price_precision, "price")
            order = self.order_factory.limit(iid, side, quantity, price, time_in_force=tif,
                                             expire_time=command.expire_time if tif == TimeInForce.GTD else None,
                                             exec_algorithm_id=algo, exec_algorithm_params=params,
                                             client_order_id=cid)
        else:
            raise VenueCommandError(f"order type {command.order_type} is not supported by the trading node")
        self.submit_order(order, client_id=ClientId(listing[2]))

    def cancel(self, command: CancelOrderCommand) -> None:
        """Cancel the order and its open children.

        The OMS sends a cancel only for an order it holds PENDING_CANCEL (and the sweeper sends it
        again while no answer is recorded: orders.services.dispatch). If the node has closed the
        order already (canceled, filled, expired, rejected), the journal missed its answer — a
        write that failed (venues/journal.py) — and no venue will send it again while the node
        runs: its fills and its closing event are handed to the journal again (idempotent there:
        fills are unique on trade id, a repeated status is a recorded no-op), so the OMS's pending
        cancel ends instead of being re-sent for ever.

        Raises
        ------
        VenueCommandError
            The order is not known to the trading node (e.g. lost in a restart: reconciliation
            resolves it).
        """
        cid = ClientOrderId(command.client_order_id)
        order = self.cache.order(cid)
        if order is None:
            raise VenueCommandError(f"order {command.client_order_id} is not known to the trading node")
        if order.is_closed:
            self._redeliver_closed(order)
        # The order, its children the node knows (spawned but maybe not yet in the OMS), and those the OMS named.
        named = (self.cache.order(ClientOrderId(child_id)) for child_id in command.child_client_order_ids)
        targets = {o.client_order_id: o for o in (order, *self.cache.orders_for_exec_spawn(cid), *named)
                   if o is not None}
        for target in targets.values():
            if target.is_closed or target.is_pending_cancel:
                continue
            listing = self._listings.get(target.instrument_id.value)
            self.cancel_order(target, client_id=ClientId(listing[2]) if listing else None)

    def _redeliver_closed(self, order) -> None:
        # BridgeStrategy.cancel: a closed order's fills and closing event, to the journal again.
        logger.warning("cancel for order %s, which the trading node holds %s: its fills and closing event are "
                       "sent to the journal again", order.client_order_id.value, order.status_string())
        closing = order.last_event
        for event in (*(e for e in order.events if isinstance(e, OrderFilled) and e is not closing), closing):
            self.on_order_event(event)

    def query(self, query: OrderStatusQuery) -> NodeOrderStatus | None:
        """Return the node's state of one order, or None when the node does not know it.

        For an algorithm's parent (the primary order of an ``exec_algorithm_id``) the figures are its
        family's, as the OMS holds the parent (orders.services.venue_events: fills of the parent and
        its children). NautilusTrader reduces the primary's quantity by each child spawned from it
        (``ExecAlgorithm._reduce_primary_order``) and keeps it INITIALIZED while the algorithm holds
        it, so the primary alone shows neither. Quantity: as submitted (the primary's
        OrderInitialized); filled quantity and exact average price: over the fills of the primary
        and its children (``cache.orders_for_exec_spawn``); status: FILLED once the family filled
        the quantity, else the primary's closed status (REJECTED / DENIED with fills: CANCELED, as
        the journal records it), else CANCELED when the primary filled as the last slice and every
        child has ended (the family ended short: the journal closes the parent so), else
        PENDING_CANCEL, PARTIALLY_FILLED with a fill, SUBMITTED while the algorithm holds the
        primary, or the primary's own once sent as the last slice; leaves: 0 once closed, else
        quantity − filled. The venue order id is the primary's own.

        With ``query.ask_venue`` and the order still open, NautilusTrader's ``QueryOrder`` also goes
        to the order's execution client (the venue answers with a status report, applied as any).
        """
        cid = ClientOrderId(query.client_order_id)
        order = self.cache.order(cid)
        if order is None:
            return None
        if query.ask_venue and not order.is_closed:
            listing = self._listings.get(order.instrument_id.value)
            self.query_order(order, client_id=ClientId(listing[2]) if listing else None)
        family = self.cache.orders_for_exec_spawn(cid)  # the primary and its children; empty for a plain order
        children = tuple(o.client_order_id.value for o in family if o.client_order_id != cid)
        if order.exec_algorithm_id is not None and order.exec_spawn_id == cid:
            status, quantity, filled, leaves, average = _family_figures(order, family or [order])
        else:
            status, quantity, filled = order.status_string(), order.quantity.as_decimal(), order.filled_qty.as_decimal()
            # FIX LeavesQty: 0 once the order is closed (NautilusTrader keeps the last open leaves on a cancel).
            leaves = Decimal(0) if order.is_closed else order.leaves_qty.as_decimal()
            average = _fill_figures([order])[1]
        return NodeOrderStatus(
            client_order_id=cid.value,
            venue_order_id=order.venue_order_id.value if order.venue_order_id is not None else "",
            status=status, quantity=quantity, filled_quantity=filled, leaves_quantity=leaves,
            avg_fill_price=average, child_client_order_ids=children,
        )

    # -- events -----------------------------------------------------------------------------------

    def handle_event(self, event) -> None:
        """Pass an order event to :meth:`on_order_event` whatever the strategy's state.

        NautilusTrader's ``Strategy.handle_event`` passes events on only while the strategy is
        RUNNING (nautilus_trader/trading/strategy.pyx), and a node's stop stops the trader — this
        strategy — before it disconnects the execution clients (``NautilusKernel.stop_async``: the
        trader, then ``timeout_post_stop``, then the clients). A venue's answer in that window (the
        cancel handed off just before the worker's SIGTERM, a resting order's fill) would never reach
        the journal, which the host drains only after the node has stopped. Other events, and every
        event while running, go through NautilusTrader's own handling.
        """
        if isinstance(event, OrderEvent) and not self.is_running:
            self.on_order_event(event)
            return
        super().handle_event(event)

    def on_order_event(self, event) -> None:
        listing = self._listings.get(event.instrument_id.value)
        if listing is None:
            logger.error("order event for %s, a listing this node does not trade: %r", event.instrument_id, event)
            self.events_untranslatable += 1
            return
        is_child = False
        if isinstance(event, OrderSubmitted):
            order = self.cache.order(event.client_order_id)
            is_child = order is not None and order.exec_spawn_id is not None and \
                order.exec_spawn_id != order.client_order_id
        try:
            translated = venue_event_from_nautilus(event, venue=listing[0], is_child=is_child,
                                                   instrument_key=listing[1])
        except ValueError as exc:
            # Never a silent drop: logged with the event; reconciliation re-reads the venue's fills.
            logger.error("order event not journaled (%s): %r", exc, event)
            self.events_untranslatable += 1
            return
        if translated is not None:
            self._event_sink(translated)
            self.events_forwarded += 1

    def on_external_fill(self, fill) -> None:
        """Forward a fill of an order that is not ours as an EXTERNAL_FILL event (see the module docstring).

        Called by the message bus for every fill on the node (``events.fills.*``); the bridge's own
        fills (its strategy id) are left to :meth:`on_order_event`. A fill in an instrument the node
        has no listing of is still forwarded, under NautilusTrader's venue and instrument id, and
        logged at ERROR. Never raises into the execution engine: a fill that cannot be translated is
        logged at ERROR and counted (``events_untranslatable``).
        """
        if not isinstance(fill, OrderFilled) or fill.strategy_id == self.id:
            return
        iid = fill.instrument_id
        listing = self._listings.get(iid.value)
        if listing is None:
            logger.error("external fill in %s, an instrument this node has no listing of: %r", iid, fill)
            venue, key = iid.venue.value, iid.value
        else:
            venue, key = listing[0], listing[1]
        try:
            event = external_fill_event(fill, venue=venue, instrument_key=key,
                                        venue_position=net_position(self.cache, iid))
        except Exception as exc:  # noqa: BLE001 - never into the engine's fill handling
            logger.error("external fill not journaled (%s: %s): %r", type(exc).__name__, exc, fill)
            self.events_untranslatable += 1
            return
        logger.error("fill of an order the OMS did not originate (strategy %s): %s %s %s @ %s, trade %s",
                     fill.strategy_id, key, event.side, event.last_qty, event.last_px, event.trade_id)
        self._event_sink(event)
        self.external_fills_forwarded += 1

    def on_quote_tick(self, tick: QuoteTick) -> None:
        if self._quote_sink is not None:
            listing = self._listings.get(tick.instrument_id.value)
            if listing is not None:
                self._quote_sink(listing[1], tick)

    def on_bar(self, bar: Bar) -> None:
        if self._bar_sink is not None:
            listing = self._listings.get(bar.bar_type.instrument_id.value)
            if listing is not None:
                self._bar_sink(listing[1], bar)


def _exact(kind, value: Decimal | None, precision: int, name: str):
    if value is None:
        raise VenueCommandError(f"{name}: required")
    rounded = value.quantize(Decimal(1).scaleb(-precision))
    if rounded != value:
        raise VenueCommandError(f"{name} {value} has more than the instrument's {precision} decimals")
    return kind(rounded, precision)


def _algorithm(command: SubmitOrderCommand) -> tuple[ExecAlgorithmId | None, dict | None]:
    if command.exec_algorithm in ("", "NORMAL"):
        return None, None
    from venues.algorithms import nautilus_exec_algorithm_params

    return (ExecAlgorithmId(command.exec_algorithm),
            nautilus_exec_algorithm_params(command.exec_algorithm, command.exec_algorithm_params))
