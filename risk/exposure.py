"""What pre-trade risk needs to know about orders, without importing ``orders``.

``orders`` imports ``risk`` (DESIGN.md, "Dependencies point one way"), so risk states here what it
reads from the order table as a :class:`OpenOrderSource` protocol, and ``orders/exposure.py``
implements it over ``Order`` rows. The engine gets the implementation from its constructor, or by
default from the dotted path ``settings.ODUM["RISK_OPEN_ORDER_SOURCE"]`` (default
:data:`DEFAULT_OPEN_ORDER_SOURCE`), imported on first use — the way Django loads pluggable
backends, so no module of ``risk`` imports ``orders``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol, runtime_checkable

from django.conf import settings
from django.utils.module_loading import import_string

#: Implementation used when neither the engine's constructor nor the settings name one.
DEFAULT_OPEN_ORDER_SOURCE = "orders.exposure.OrdersOpenOrderSource"


@dataclass(frozen=True, slots=True)
class OpenOrderTotal:
    """Open quantity of one strategy's orders in one routed listing on one side.

    Parameters
    ----------
    strategy_id : str
        Owning strategy.
    instrument_key : str
        Routed listing (canonical key, never ``ANY``).
    side : str
        ``Order.Side`` value.
    leaves_quantity : Decimal
        Σ (quantity − filled_quantity), base units (contracts for derivatives).
    priced_quantity : Decimal
        The part of ``leaves_quantity`` carried by orders with a limit price, base units.
    priced_value : Decimal
        Σ leaves × limit price over those orders, quote currency, before the contract multiplier.
    """

    strategy_id: str
    instrument_key: str
    side: str
    leaves_quantity: Decimal
    priced_quantity: Decimal
    priced_value: Decimal


@runtime_checkable
class OpenOrderSource(Protocol):
    """Reads of the order table that pre-trade risk needs (implemented in ``orders/exposure.py``).

    An implementation may also offer ``repeat_count_start(**same keywords as repeat_count)``,
    returning a no-argument callable that reads the count: the engine then sends the query before
    its exposure read and reads it after, so in a psycopg pipeline both share a round trip.
    """

    def open_order_totals(self) -> list[OpenOrderTotal]:
        """Return the open-order totals recomputed from the order table.

        Sums over orders in ``orders.state.OPEN_STATUSES`` whose risk check recorded exposure
        (``risk_result["recorded"]``), grouped by strategy, routed listing and side. Scans every
        open order: for reconciliation (:func:`risk.services.open_exposure_rebuild`), never per
        order.
        """

    def repeat_count(
        self, *, strategy_id: str, instrument_key: str, side: str, quantity: Decimal, since: datetime
    ) -> int:
        """Return how many orders repeat this one: same strategy, routed listing, side and quantity.

        Counts orders the strategy sent (not an execution algorithm's child slices) created at or
        after ``since`` (UTC) in any status but DENIED (a denied order never reached a venue). Must
        use the ``order_repeat_idx`` index (strategy, routed_instrument_key, side, created_at).

        Parameters
        ----------
        quantity : Decimal
            Base units; compared exactly.
        """


_default_source: OpenOrderSource | None = None
_default_lock = threading.Lock()


def default_open_order_source() -> OpenOrderSource:
    """Return the process's default :class:`OpenOrderSource`, importing it on first use.

    The class named by ``settings.ODUM["RISK_OPEN_ORDER_SOURCE"]`` (default
    :data:`DEFAULT_OPEN_ORDER_SOURCE`) is instantiated without arguments.

    Raises
    ------
    ImportError
        When the dotted path does not name an importable class.
    TypeError
        When the instance does not implement :class:`OpenOrderSource`.
    """
    global _default_source
    if _default_source is None:
        with _default_lock:
            if _default_source is None:
                path = getattr(settings, "ODUM", {}).get("RISK_OPEN_ORDER_SOURCE", DEFAULT_OPEN_ORDER_SOURCE)
                source = import_string(path)()
                if not isinstance(source, OpenOrderSource):
                    raise TypeError(f"{path} does not implement risk.exposure.OpenOrderSource")
                _default_source = source
    return _default_source
