"""The order as pre-trade risk and the router see it: validated, not yet stored."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from odum_live.instruments import InstrumentKey

#: Sides that add to a long position / reduce a short one. SELL-like sides are the opposite.
BUY_LIKE_SIDES = frozenset({"BUY", "SUPPLY", "STAKE", "BACK"})


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """A validated order request.

    Parameters
    ----------
    strategy_id : str
        The owning strategy.
    instrument : InstrumentKey
        The requested instrument; ``instrument.venue`` may be ``ANY``.
    side : str
        ``BUY``, ``SELL``, … (``Order.Side``).
    order_type : str
        ``MARKET`` or ``LIMIT``.
    quantity : Decimal
        Base units (contracts for derivatives), > 0.
    price : Decimal | None
        Limit price in quote currency; None for MARKET.
    time_in_force : str
        ``GTC``, ``IOC``, ``FOK`` or ``GTD``.
    exec_algorithm : str
        ``NORMAL``, ``TWAP``, ``VWAP`` or ``ICEBERG``.
    operation : str
        ``trade``, ``supply``, … (``Order.Operation``).
    display_qty : Decimal | None
        An ICEBERG's visible quantity (``exec_algorithm_params``), base units: each clip is an order
        of this size at the limit price, under the listing's rules; None for other algorithms.
    slice_weights : tuple of Decimal, optional
        A TWAP's or VWAP's planned slices, one weight per interval, when known at submit
        (``orders.algorithms.slice_weights``): TWAP ``horizon_secs // interval_secs`` equal
        weights, VWAP its ``volume_profile``. The node cuts the quantity in the same proportions
        (``odum_live.slicing.apportion``), so pre-trade risk holds each slice, not the parent, to
        the listing's ``max_quantity``. None for other orders and for a VWAP whose profile the node
        derives from market volume.
    """

    strategy_id: str
    instrument: InstrumentKey
    side: str
    order_type: str
    quantity: Decimal
    price: Decimal | None = None
    time_in_force: str = "GTC"
    exec_algorithm: str = "NORMAL"
    operation: str = "trade"
    display_qty: Decimal | None = None
    slice_weights: tuple[Decimal, ...] | None = None

    @property
    def signed_quantity(self) -> Decimal:
        """Quantity signed by side: positive for buy-like sides, negative otherwise."""
        return self.quantity if self.side in BUY_LIKE_SIDES else -self.quantity

    @property
    def is_resting_limit(self) -> bool:
        """True for a LIMIT order that may rest on the book (maker fee applies to it)."""
        return self.order_type == "LIMIT" and self.time_in_force in ("GTC", "GTD")
