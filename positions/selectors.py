"""Reads of positions: aggregated by canonical instrument across venues, with a per-venue breakdown.

Listings that share an equivalence key (``PERPETUAL:BTC-USDT@LIN``) are the same economic
instrument (DESIGN.md, "Canonical instrument IDs"), so their positions add up. Quantities are
signed base units, prices and PnL quote currency; the equivalence key pins the quote currency, so
sums never mix currencies.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db.models import QuerySet

from positions.models import Position

ZERO = Decimal("0")


@dataclass
class VenuePosition:
    """The position on one venue listing (summed over the visible strategies).

    Attributes
    ----------
    venue : str
    instrument_key : str
        Canonical key of the listing.
    quantity : Decimal
        Signed, base units.
    avg_entry_price : Decimal | None
        Quote currency; quantity-weighted over the strategies' positions when they are all on the
        same side, else None (long and short legs have no common entry price).
    mark_price : Decimal | None
        Latest mark, quote currency.
    realized_pnl, unrealized_pnl, fees : Decimal
        Quote currency.
    strategies : list[str]
    updated_at, marked_at : datetime | None
    """

    venue: str
    instrument_key: str
    quantity: Decimal = ZERO
    avg_entry_price: Decimal | None = None
    mark_price: Decimal | None = None
    realized_pnl: Decimal = ZERO
    unrealized_pnl: Decimal = ZERO
    fees: Decimal = ZERO
    strategies: list[str] = field(default_factory=list)
    updated_at: datetime | None = None
    marked_at: datetime | None = None


@dataclass
class InstrumentPosition:
    """The position in one canonical instrument across venues.

    Attributes
    ----------
    instrument_key : str
        ``ANY:<equivalence_key>``: the canonical key that names the instrument on every venue.
    equivalence_key : str
    quantity : Decimal
        Net signed quantity, base units.
    gross_quantity : Decimal
        Sum of absolute venue quantities, base units.
    avg_entry_price : Decimal | None
        As for :class:`VenuePosition`, across venues.
    realized_pnl, unrealized_pnl, fees : Decimal
        Quote currency.
    venues : list[VenuePosition]
        Ordered by venue code.
    """

    instrument_key: str
    equivalence_key: str
    quantity: Decimal = ZERO
    gross_quantity: Decimal = ZERO
    avg_entry_price: Decimal | None = None
    realized_pnl: Decimal = ZERO
    unrealized_pnl: Decimal = ZERO
    fees: Decimal = ZERO
    venues: list[VenuePosition] = field(default_factory=list)
    updated_at: datetime | None = None


def position_visible_queryset(*, strategy_ids: Iterable[str] | None) -> QuerySet[Position]:
    """Return the positions of ``strategy_ids`` (None: all strategies)."""
    qs = Position.objects.all()
    if strategy_ids is not None:
        qs = qs.filter(strategy_id__in=list(strategy_ids))
    return qs


def _avg_entry(rows: list[tuple[Decimal, Decimal | None]], *, inverse: bool) -> Decimal | None:
    # Quantity-weighted mean of same-direction legs; for inverse contracts the harmonic mean, the
    # rule positions.maths applies within one position (BitMEX, "average entry price").
    legs = [(q, p) for q, p in rows if q != 0]
    if not legs or any(p is None for _, p in legs):
        return None
    if len({q > 0 for q, _ in legs}) != 1:
        return None
    weight = sum(abs(q) for q, _ in legs)
    if inverse:
        return weight / sum(abs(q) / p for q, p in legs)
    return sum(abs(q) * p for q, p in legs) / weight


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def position_aggregates(
    *,
    strategy_ids: Iterable[str] | None,
    strategy_id: str | None = None,
    equivalence_key: str | None = None,
    instrument_key: str | None = None,
) -> list[InstrumentPosition]:
    """Return positions aggregated by canonical instrument, each with its per-venue breakdown.

    Parameters
    ----------
    strategy_ids : Iterable[str] | None
        The caller's visible strategies (None: all) — the BOLA scope.
    strategy_id : str | None
        Narrow to one strategy (within the scope).
    equivalence_key : str | None
        Narrow to one instrument across venues (``PERPETUAL:BTC-USDT@LIN``).
    instrument_key : str | None
        Narrow to one venue listing (``BINANCE-FUTURES:PERPETUAL:BTC-USDT@LIN``).

    Returns
    -------
    list[InstrumentPosition]
        Ordered by equivalence key; empty when nothing matches.
    """
    qs = position_visible_queryset(strategy_ids=strategy_ids)
    if strategy_id:
        qs = qs.filter(strategy_id=strategy_id)
    if equivalence_key:
        qs = qs.filter(equivalence_key=equivalence_key)
    if instrument_key:
        qs = qs.filter(instrument_key=instrument_key)
    rows = qs.order_by("equivalence_key", "venue", "instrument_key", "strategy_id").values_list(
        "equivalence_key", "venue", "instrument_key", "strategy_id", "quantity", "avg_entry_price", "mark_price",
        "realized_pnl", "unrealized_pnl", "fees", "updated_at", "marked_at",
    )
    instruments: dict[str, InstrumentPosition] = {}
    venue_index: dict[tuple[str, str, str], VenuePosition] = {}
    venue_rows: dict[tuple[str, str, str], list] = {}
    for eq, venue, key, strategy, qty, entry, mark, rpnl, upnl, fees, updated, marked in rows:
        agg = instruments.get(eq)
        if agg is None:
            agg = instruments[eq] = InstrumentPosition(instrument_key=f"ANY:{eq}", equivalence_key=eq)
        slot = (eq, venue, key)
        vp = venue_index.get(slot)
        if vp is None:
            vp = venue_index[slot] = VenuePosition(venue=venue, instrument_key=key)
            agg.venues.append(vp)
            venue_rows[slot] = []
        venue_rows[slot].append((qty, entry))
        vp.quantity += qty
        vp.realized_pnl += rpnl
        vp.unrealized_pnl += upnl
        vp.fees += fees
        vp.strategies.append(strategy)
        if mark is not None and (vp.marked_at is None or (marked is not None and marked >= vp.marked_at)):
            vp.mark_price, vp.marked_at = mark, marked
        vp.updated_at = _latest(vp.updated_at, updated)
    for eq, agg in instruments.items():
        legs = []
        inverse = eq.endswith("@INV")  # the settlement suffix of the equivalence key
        for vp in agg.venues:
            vp.avg_entry_price = _avg_entry(venue_rows[(eq, vp.venue, vp.instrument_key)], inverse=inverse)
            legs.extend(venue_rows[(eq, vp.venue, vp.instrument_key)])
            agg.quantity += vp.quantity
            agg.gross_quantity += abs(vp.quantity)
            agg.realized_pnl += vp.realized_pnl
            agg.unrealized_pnl += vp.unrealized_pnl
            agg.fees += vp.fees
            agg.updated_at = _latest(agg.updated_at, vp.updated_at)
        agg.avg_entry_price = _avg_entry(legs, inverse=inverse)
    return list(instruments.values())
