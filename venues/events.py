"""Venue events: our own record of what a venue reported about an order (no NautilusTrader import).

The node bridge (and the external adapters) translate their order events into :class:`VenueEvent`
and hand them to the journal writer (:mod:`venues.journal`), which applies them with
:func:`orders.services.venue_events.order_apply_venue_event`. Everything outside ``venues/`` sees
only these types (CONVENTIONS.md).

Units: quantities in base units (contracts for derivatives), prices in quote currency, fees in
``fee_currency``; all ``Decimal``. ``ts_event`` is the venue's event time, timezone-aware UTC
(nanoseconds are converted at the NautilusTrader boundary).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from django.utils import timezone


class VenueEventKind(StrEnum):
    """What the venue reported (NautilusTrader's order event names, less the ``Order`` prefix)."""

    SUBMITTED = "SUBMITTED"
    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    CANCEL_REJECTED = "CANCEL_REJECTED"
    EXPIRED = "EXPIRED"
    #: An execution algorithm spawned a child order (``exec_spawn_id`` = the parent's id).
    CHILD_CREATED = "CHILD_CREATED"


class Liquidity(StrEnum):
    """Liquidity side of a fill (``orders.Fill.Liquidity`` values)."""

    MAKER = "MAKER"
    TAKER = "TAKER"
    UNKNOWN = "UNKNOWN"


_FILL_FIELDS = ("trade_id", "last_qty", "last_px")
_CHILD_FIELDS = ("parent_client_order_id", "side", "quantity", "order_type")
_CHILD_SIDES = frozenset({"BUY", "SELL"})
_CHILD_TYPES = frozenset({"MARKET", "LIMIT"})


@dataclass(frozen=True, slots=True, kw_only=True)
class VenueEvent:
    """One order event reported by a venue (or by an execution algorithm for its children).

    Parameters
    ----------
    kind : VenueEventKind
        What happened.
    client_order_id : str
        Our client_order_id of the order concerned (for CHILD_CREATED: the child's, e.g.
        ``<parent>-E1`` as NautilusTrader derives it).
    venue : str
        Venue code (``BINANCE-SPOT``), the order's routed venue.
    ts_event : datetime
        Venue event time, timezone-aware (UTC).
    venue_order_id : str
        The venue's order id, when known ("" otherwise).
    reason : str
        Rejection / cancel-rejection / expiry reason text from the venue ("" when none).
    trade_id : str
        FILLED: the venue's trade (execution) id; unique per listing of the venue (Binance and OKX
        number trades per symbol: ``orders.models.Fill``).
    last_qty : Decimal
        FILLED: quantity of this fill, base units, > 0.
    last_px : Decimal
        FILLED: price of this fill, quote currency, > 0.
    fee : Decimal
        FILLED: fee for this fill in ``fee_currency``, signed: positive when paid, negative for a
        maker rebate (``positions.maths`` books it so); never a reason to drop the trade.
    fee_currency : str
        FILLED: currency of ``fee`` ("" when the venue did not say: taken as the PnL currency).
    liquidity : Liquidity
        FILLED: MAKER, TAKER or UNKNOWN.
    parent_client_order_id : str
        CHILD_CREATED: client_order_id of the parent (NautilusTrader's ``exec_spawn_id``).
    side : str
        CHILD_CREATED: ``BUY`` or ``SELL``.
    quantity : Decimal
        CHILD_CREATED: the child's quantity, base units, > 0.
    order_type : str
        CHILD_CREATED: ``MARKET`` or ``LIMIT``.
    price : Decimal | None
        CHILD_CREATED: limit price in quote currency (LIMIT only, > 0); None for MARKET.

    Raises
    ------
    ValueError
        From construction, naming the field: a naive or non-datetime ``ts_event``, an empty
        ``client_order_id`` / ``venue``, a non-Decimal or non-positive quantity or price, a
        non-Decimal or non-finite fee, or a field required by ``kind`` missing.
    """

    kind: VenueEventKind
    client_order_id: str
    venue: str
    ts_event: datetime
    venue_order_id: str = ""
    reason: str = ""
    trade_id: str = ""
    last_qty: Decimal | None = None
    last_px: Decimal | None = None
    fee: Decimal = Decimal("0")
    fee_currency: str = ""
    liquidity: Liquidity = Liquidity.UNKNOWN
    parent_client_order_id: str = ""
    side: str = ""
    quantity: Decimal | None = None
    order_type: str = ""
    price: Decimal | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", VenueEventKind(self.kind))
        object.__setattr__(self, "liquidity", Liquidity(self.liquidity))
        for name in ("client_order_id", "venue"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ValueError(f"{name}: must be a non-empty string")
        if not isinstance(self.ts_event, datetime):
            raise ValueError(f"ts_event: must be a datetime, got {type(self.ts_event).__name__}")
        if timezone.is_naive(self.ts_event):
            raise ValueError(f"ts_event: must be timezone-aware (UTC), got naive {self.ts_event.isoformat()}")
        _require_decimal("fee", self.fee, positive=False)
        if self.kind == VenueEventKind.FILLED:
            self._require_present(_FILL_FIELDS)
            _require_decimal("last_qty", self.last_qty, positive=True)
            _require_decimal("last_px", self.last_px, positive=True)
        elif self.kind == VenueEventKind.CHILD_CREATED:
            self._require_present(_CHILD_FIELDS)
            _require_decimal("quantity", self.quantity, positive=True)
            if self.side not in _CHILD_SIDES:
                raise ValueError(f"side: must be one of {sorted(_CHILD_SIDES)}, got {self.side!r}")
            if self.order_type not in _CHILD_TYPES:
                raise ValueError(f"order_type: must be one of {sorted(_CHILD_TYPES)}, got {self.order_type!r}")
            if self.order_type == "LIMIT":
                _require_decimal("price", self.price, positive=True)
            elif self.price is not None:
                raise ValueError("price: a MARKET child has no price")

    def _require_present(self, names: tuple[str, ...]) -> None:
        for name in names:
            value = getattr(self, name)
            if value is None or value == "":
                raise ValueError(f"{name}: required for a {self.kind} event")


def _require_decimal(field: str, value: object, *, positive: bool) -> None:
    # A finite Decimal; > 0 when ``positive``, of either sign otherwise (a fee: a rebate is negative).
    if not isinstance(value, Decimal) or not value.is_finite():
        raise ValueError(f"{field}: must be a finite Decimal, got {value!r}")
    if positive and value <= 0:
        raise ValueError(f"{field}: must be > 0, got {value}")
