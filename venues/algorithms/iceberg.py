"""ICEBERG: rest a LIMIT order on the book one ``display_qty`` slice at a time.

Parameters: ``display_qty`` (decimal string, base units, > 0), rounded DOWN to the instrument's
size increment (a value that rounds to zero, below the instrument's ``min_quantity``, or whose
notional at the primary's price is below its ``min_notional``, is DENIED: base.py "Minimum slice";
so is one above its ``max_quantity``: base.py "Maximum slice").
The primary must be a LIMIT order with a resting time in force (GTC, GTD or DAY).

Behaviour
---------
* On arrival the algorithm spawns one child LIMIT order (``spawn_limit``) of
  min(display_qty, quantity) at the primary's price, time in force, expiry, post-only and
  reduce-only flags; the venue sees only this child.
* When that child is **completely** filled the next slice is sent, min(display_qty, remaining);
  when the remaining quantity fits in one slice the primary itself is sent as the last slice
  (it has shrunk to exactly the remainder). So at most one slice works at a time and the visible
  quantity never exceeds ``display_qty``.
* Partial fills of a child do not trigger a refill: the visible quantity shrinks until the child
  is done, as on exchange-native icebergs (CME Globex, for one, reveals the next display quantity
  only once the current one is completely filled). Refilling early would show more than
  ``display_qty`` or force a cancel/replace that loses queue priority.
* Each refill joins the back of the queue at its price (a new order), as native icebergs do.
* A primary whose quantity is at most ``display_qty`` is sent whole, at once.
* Minimum size: no slice is shown that would leave a rest strictly between 0 and the instrument's
  minimum (``min_quantity``, or the size whose notional at the price reaches ``min_notional``) —
  the last slice is the primary itself with that rest, NautilusTrader's RiskEngine denies it
  (``QUANTITY_BELOW_MINIMUM`` / ``NOTIONAL_LESS_THAN_MIN_FOR_INSTRUMENT``,
  nautilus_trader/risk/engine.pyx), and the iceberg would end under-filled though the order as a
  whole was valid. When showing ``display_qty`` would leave 0 < rest < minimum, the slice shown is
  remaining − minimum (leaving exactly the minimum for the last slice), which is smaller than
  ``display_qty``; only when that
  is itself below the minimum (remaining < 2 × minimum) is the whole remainder shown at once, the
  one case where the visible quantity exceeds ``display_qty`` (by less than the minimum) — the
  only way left to fill the order with slices the venue accepts. Example, minimum 0.01 and
  display 0.03: 0.065 shows 0.03, 0.025, 0.01; with display 0.01, 0.025 shows 0.01, then 0.015.

Cancel / reject / deny handling: venues/algorithms/base.py (a canceled, rejected, denied or
expired child ends the iceberg and cancels the unsent remainder; a canceled primary cancels the
working child).
"""

from __future__ import annotations

from dataclasses import dataclass

from nautilus_trader.config import ExecAlgorithmConfig
from nautilus_trader.model.enums import OrderStatus, OrderType, TimeInForce
from nautilus_trader.model.events import OrderFilled
from nautilus_trader.model.identifiers import ClientOrderId, ExecAlgorithmId
from nautilus_trader.model.instruments import Instrument
from nautilus_trader.model.orders import Order

from venues.algorithms.base import (
    ParamError,
    SlicingExecAlgorithm,
    floor_units,
    max_units,
    param_decimal,
    to_units,
    units_to_qty,
)


class IcebergExecAlgorithmConfig(ExecAlgorithmConfig, frozen=True):
    """Configuration for :class:`IcebergExecAlgorithm`.

    Parameters
    ----------
    exec_algorithm_id : ExecAlgorithmId, default ``ICEBERG``
        The id primaries name in ``exec_algorithm_id``.
    """

    exec_algorithm_id: ExecAlgorithmId | None = ExecAlgorithmId("ICEBERG")


@dataclass
class _Sequence:
    display_units: int
    working: ClientOrderId  # the child currently on the book


class IcebergExecAlgorithm(SlicingExecAlgorithm):
    """Synthetic iceberg: shows ``display_qty`` of a LIMIT primary at a time (see module docstring).

    Parameters
    ----------
    config : IcebergExecAlgorithmConfig, optional
        Defaults to ``IcebergExecAlgorithmConfig()`` (id ``ICEBERG``).
    """

    def __init__(self, config: IcebergExecAlgorithmConfig | None = None) -> None:
        super().__init__(config or IcebergExecAlgorithmConfig())

    def _on_primary(self, order: Order) -> None:
        """Validate a new LIMIT primary and show its first slice.

        Parameters
        ----------
        order : Order
            The primary LIMIT order carrying ``exec_algorithm_params = {"display_qty": "<decimal>"}``.

        Notes
        -----
        A primary that cannot be worked is DENIED with a reason naming the parameter or rule.
        """
        primary_id = order.client_order_id
        instrument = self._new_primary_instrument(order)
        if instrument is None:
            return
        if order.order_type != OrderType.LIMIT:
            self._deny_primary(order, f"order_type {order.order_type.name} not supported: ICEBERG works LIMIT orders")
            return
        if order.time_in_force in (TimeInForce.IOC, TimeInForce.FOK):
            self._deny_primary(order, f"time_in_force {order.time_in_force.name}: an iceberg must rest on the book")
            return
        try:
            display = param_decimal(order.exec_algorithm_params or {}, "display_qty")
            if display is None:
                raise ParamError("display_qty", "is required")
            display_units = floor_units(display, instrument)
            if display_units < self._min_slice_units(order, instrument):
                raise ParamError(
                    "display_qty",
                    f"{display} rounds down to {units_to_qty(display_units, instrument)}, below the "
                    f"instrument's minimum size (increment {instrument.size_increment}, "
                    f"min_quantity {instrument.min_quantity}, min_notional {instrument.min_notional} "
                    f"at the price {order.price})",
                )
            most = max_units(instrument)
            if most is not None and display_units > most:
                raise ParamError(
                    "display_qty",
                    f"{units_to_qty(display_units, instrument)} is above the instrument's max_quantity "
                    f"{instrument.max_quantity}: every clip would be denied",
                )
        except ParamError as exc:
            self._deny_primary(order, str(exc))
            return

        if to_units(order.quantity, instrument) <= display_units:
            self.log.warning(f"ICEBERG {primary_id}: quantity {order.quantity} fits in one slice; sending it whole")
            self.submit_order(order)
            return
        self.log.info(f"ICEBERG {primary_id}: showing {units_to_qty(display_units, instrument)} of {order.quantity}")
        self._sequences[primary_id] = _Sequence(display_units=display_units, working=primary_id)
        self._show_next(order, instrument)

    def on_order_filled(self, event: OrderFilled) -> None:
        """Show the next slice once the working child is completely filled.

        Parameters
        ----------
        event : OrderFilled
            A fill of one of our orders (children or a primary sent as the last slice).
        """
        child, primary_id = self._primary_of(event.client_order_id)
        sequence = self._sequences.get(primary_id) if primary_id is not None else None
        if sequence is None or child.client_order_id != sequence.working:
            return
        if child.status != OrderStatus.FILLED:
            return  # partially filled: wait for the rest (module docstring)
        primary = self.cache.order(primary_id)
        if primary is None or not primary.is_active_local:
            self._finish(primary_id, "primary no longer held")
            return
        self._show_next(primary, self.cache.instrument(primary.instrument_id))

    def _show_next(self, primary: Order, instrument: Instrument) -> None:
        primary_id = primary.client_order_id
        refusal = self._slice_refusal(primary)
        if refusal:
            self.log.warning(f"ICEBERG {primary_id}: no slice shown, {refusal}")
            self._finish(primary_id, f"no slice shown ({refusal})")
            return
        sequence = self._sequences[primary_id]
        remaining = to_units(primary.quantity, instrument)
        show = _slice_units(remaining, sequence.display_units, self._min_slice_units(primary, instrument))
        if show == remaining:
            self.submit_order(primary)  # the last slice is the primary itself
            self._finish(primary_id, f"primary sent as the last slice ({primary.quantity})")
            return
        child = self.spawn_limit(
            primary=primary,
            quantity=units_to_qty(show, instrument),
            price=primary.price,
            time_in_force=primary.time_in_force,
            expire_time=primary.expire_time,
            post_only=primary.is_post_only,
            reduce_only=primary.is_reduce_only,
            tags=primary.tags,
        )
        sequence.working = child.client_order_id
        self.log.info(f"ICEBERG {primary_id}: showing {child.client_order_id} {child.quantity} @ {child.price}")
        self.submit_order(child)


def _slice_units(remaining: int, display: int, minimum: int) -> int:
    # The next slice in units: display_qty, unless that leaves 0 < rest < minimum (module docstring).
    if remaining <= display or remaining - display >= minimum:
        return min(remaining, display)
    if remaining - minimum >= minimum:
        return remaining - minimum
    return remaining
