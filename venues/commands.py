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
