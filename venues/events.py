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
    #: A fill on the node's account of an order the OMS did not originate (a venue liquidation / ADL /
    #: settlement auto-close, an order placed by hand): recorded as a reconciliation finding, never booked.
    EXTERNAL_FILL = "EXTERNAL_FILL"


class Liquidity(StrEnum):
    """Liquidity side of a fill (``orders.Fill.Liquidity`` values)."""

    MAKER = "MAKER"
    TAKER = "TAKER"
    UNKNOWN = "UNKNOWN"


_FILL_FIELDS = ("trade_id", "last_qty", "last_px")
_EXTERNAL_FILL_FIELDS = (*_FILL_FIELDS, "side", "instrument_key")
_CHILD_FIELDS = ("parent_client_order_id", "side", "quantity", "order_type")
_SIDES = frozenset({"BUY", "SELL"})
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
        ``<parent>-E1`` as NautilusTrader derives it; for EXTERNAL_FILL: the node's id of the order
        that is not ours, the venue's own client order id such as ``autoclose-…`` when it had one).
    venue : str
        Venue code (``BINANCE-SPOT``), the order's routed venue.
    ts_event : datetime
        Venue event time, timezone-aware (UTC).
    venue_order_id : str
        The venue's order id, when known ("" otherwise).
    reason : str
        Rejection / cancel-rejection / expiry reason text from the venue ("" when none).
    trade_id : str
        FILLED, EXTERNAL_FILL: the venue's trade (execution) id; unique per listing of the venue and side
        (Binance and OKX number trades per symbol, and report a self-trade's one id to both our orders:
        ``orders.models.Fill``).
    last_qty : Decimal
        FILLED, EXTERNAL_FILL: quantity of this fill, base units, > 0.
    last_px : Decimal
        FILLED, EXTERNAL_FILL: price of this fill, quote currency, > 0.
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
        CHILD_CREATED, EXTERNAL_FILL: ``BUY`` or ``SELL``; FILLED: the same, or "" when not sent.
    quantity : Decimal
        CHILD_CREATED: the child's quantity, base units, > 0.
    order_type : str
        CHILD_CREATED: ``MARKET`` or ``LIMIT``.
    price : Decimal | None
        CHILD_CREATED: limit price in quote currency (LIMIT only, > 0); None for MARKET.
    instrument_key : str
        EXTERNAL_FILL (and FILLED, optional: "" when not sent): our instrument key of the listing
        filled (an order the OMS does not know has no listing of ours to look up).
    venue_position : Decimal | None
        EXTERNAL_FILL: the venue's net position in the listing right after the fill as the node
        holds it, signed, base units (None when not known).

    Raises
    ------
    ValueError
        From construction, naming the field: a naive or non-datetime ``ts_event``, an empty
        ``client_order_id`` / ``venue``, a non-Decimal or non-positive quantity or price, a
        non-Decimal or non-finite fee, a side other than BUY / SELL, or a field required by ``kind``
        missing.
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
    instrument_key: str = ""
    venue_position: Decimal | None = None

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
            if self.side:
                self._require_side()
        elif self.kind == VenueEventKind.EXTERNAL_FILL:
            self._require_present(_EXTERNAL_FILL_FIELDS)
            _require_decimal("last_qty", self.last_qty, positive=True)
            _require_decimal("last_px", self.last_px, positive=True)
            self._require_side()
            if self.venue_position is not None:
                _require_decimal("venue_position", self.venue_position, positive=False)
        elif self.kind == VenueEventKind.CHILD_CREATED:
            self._require_present(_CHILD_FIELDS)
            _require_decimal("quantity", self.quantity, positive=True)
            self._require_side()
            if self.order_type not in _CHILD_TYPES:
                raise ValueError(f"order_type: must be one of {sorted(_CHILD_TYPES)}, got {self.order_type!r}")
            if self.order_type == "LIMIT":
                _require_decimal("price", self.price, positive=True)
            elif self.price is not None:
                raise ValueError("price: a MARKET child has no price")

    def _require_side(self) -> None:
        if self.side not in _SIDES:
            raise ValueError(f"side: must be one of {sorted(_SIDES)}, got {self.side!r}")

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
