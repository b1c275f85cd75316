"""Venue commands: what the trading worker hands to the venue layer (no NautilusTrader import).

The order services build these from a locked ``Order`` row (:mod:`orders.services.venue_commands`)
and the trading worker hands them to the TradingNode host (:mod:`venues.node.host`), whose bridge
strategy turns them into NautilusTrader orders on the node's own thread. Everything the node needs
is copied into the command, so the node thread never touches the database.

Units: quantities in base units (contracts for derivatives), prices in quote currency, all
``Decimal``; times timezone-aware UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal


class VenueCommandError(Exception):
    """A command the venue layer could not take (node not ready, unknown instrument …).

    The message is safe to show to the order's owner; it becomes the order's rejection reason.
    """


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitOrderCommand:
    """Submit one order (FIX NewOrderSingle) to its routed venue.

    Parameters
    ----------
    order_id : str
        Our order id (UUID text), for logs.
    client_order_id : str
        Our client_order_id; the venue order carries it unchanged.
    venue : str
        Routed venue code, e.g. ``BINANCE-SPOT``.
    instrument_key : str
        Routed listing's canonical key; the node knows its NautilusTrader instrument id.
    side : str
        ``BUY`` or ``SELL``.
    order_type : str
        ``MARKET`` or ``LIMIT``.
    quantity : Decimal
        Base units, > 0.
    price : Decimal | None
        Limit price (quote currency) for LIMIT orders; None for MARKET.
    time_in_force : str
        ``GTC``, ``IOC``, ``FOK`` or ``GTD``.
    expire_time : datetime | None
        GTD expiry, UTC.
    exec_algorithm : str
        ``NORMAL``, ``TWAP``, ``VWAP`` or ``ICEBERG``.
    exec_algorithm_params : dict
        Validated, normalised params (:func:`orders.algorithms.validate_exec_algorithm_params`).
    """

    order_id: str
    client_order_id: str
    venue: str
    instrument_key: str
    side: str
    order_type: str
    quantity: Decimal
    price: Decimal | None
    time_in_force: str
    expire_time: datetime | None = None
    exec_algorithm: str = "NORMAL"
    exec_algorithm_params: dict = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelOrderCommand:
    """Cancel one order (FIX OrderCancelRequest) and, for an algorithm's parent, its open children.

    Parameters
    ----------
    order_id : str
        Our order id (UUID text), for logs.
    client_order_id : str
        The order's client_order_id.
    venue : str
        Routed venue code.
    child_client_order_ids : tuple[str, ...]
        client_order_ids of the parent's open child orders (empty for a plain order).
    """

    order_id: str
    client_order_id: str
    venue: str
    child_client_order_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderStatusQuery:
    """Ask the trading node for one order's state (FIX OrderStatusRequest).

    Parameters
    ----------
    client_order_id : str
        The order's client_order_id.
    ask_venue : bool
        Also send NautilusTrader's ``QueryOrder`` to the order's execution client, which asks the
        venue for its order status report; a difference then comes back as venue events through the
        journal, as any report does. The paper venues' sandbox answers no report: for them the node's
        own state is the venue's.
    """

    client_order_id: str
    ask_venue: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeOrderStatus:
    """The trading node's state of one order (the answer to an :class:`OrderStatusQuery`).

    Parameters
    ----------
    client_order_id : str
        The order's client_order_id.
    venue_order_id : str
        The venue's order id ("" before the venue accepted the order).
    status : str
        NautilusTrader's order status name (``INITIALIZED``, ``SUBMITTED``, ``ACCEPTED``,
        ``PARTIALLY_FILLED``, ``FILLED``, ``CANCELED``, ``REJECTED``, ``EXPIRED`` …). For an
        algorithm's parent, its family's (the primary and its children), as the OMS holds the parent:
        ``SUBMITTED`` while the algorithm holds the primary and nothing has filled.
    quantity, filled_quantity, leaves_quantity : Decimal
        Base units (contracts); leaves are 0 once the order is closed (FIX LeavesQty). For an
        algorithm's parent: the quantity submitted and the fills of the whole family (not the
        primary's, which NautilusTrader reduces by each child spawned from it).
    avg_fill_price : Decimal | None
        Quote currency, exact (quantity-weighted over the fills; a parent's: its family's); None
        before the first fill.
    child_client_order_ids : tuple[str, ...]
        An algorithm parent's children the node knows, in the node's order.
    """

    client_order_id: str
    venue_order_id: str
    status: str
    quantity: Decimal
    filled_quantity: Decimal
    leaves_quantity: Decimal
    avg_fill_price: Decimal | None
    child_client_order_ids: tuple[str, ...] = field(default_factory=tuple)
