"""Reads of positions: aggregated by canonical instrument across venues, with a per-venue breakdown.

Listings that share an equivalence key (``PERPETUAL:BTC-USDT@LIN``) are the same economic
instrument (DESIGN.md, "Canonical instrument IDs"), so their positions add up — in base units of
the underlying, since their contracts may differ in size (:attr:`InstrumentPosition.quantity`);
each listing's own row stays in its contracts. Prices and notionals are in quote currency, which
the equivalence key pins. PnL and fees are in each listing's PnL currency (the quote currency;
the settlement currency for an inverse listing), which the key does not pin: an option may be
listed inverse and BTC-settled on one venue, linear and USD-settled on another. So an
instrument's PnL total exists only when its listings share one PnL currency
(:attr:`InstrumentPosition.pnl_currency`); amounts of different currencies are never added (no FX
source exists in the service). Fees paid in a third currency (``Position.other_fees``, e.g. BNB: no
rate converts them) are summed per currency beside them (``other_fees``), never into ``fees``.

Arithmetic is exact: each read (:func:`position_aggregates`, :func:`position_book`,
:func:`equity_curve`) runs in one local decimal context of ``positions.maths.PRECISION`` (120)
significant digits, as the pre-trade risk engine does, so sums of NUMERIC(36,18) values and
products quantity × multiplier × price are never rounded to Python's default 28 digits. Only the
divisions round, to 18 decimal places half-even as ``positions.maths`` stores them: average entry
prices, and an inverse listing's face value ÷ price.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Context, Decimal, localcontext

from django.db.models import OuterRef, Q, QuerySet, Subquery

from odum_live.instruments import InstrumentKeyError, parse_instrument_key
from positions.maths import PRECISION, QUANTUM, pnl_currency
from positions.models import Position, PositionSnapshot
from venues.models import Instrument

ZERO = Decimal("0")
#: For the figures read after the selector returned (``equity``): as exact as the selector's context.
_EXACT = Context(prec=PRECISION)


@dataclass
class VenuePosition:
    """The position on one venue listing (summed over the visible strategies).

    Attributes
    ----------
    venue : str
    instrument_key : str
        Canonical key of the listing.
    quantity : Decimal
        Signed, in the listing's own unit: base units, contracts for derivatives (see
        :attr:`InstrumentPosition.quantity` for the sum across venues).
    avg_entry_price : Decimal | None
        Quote currency; quantity-weighted over the strategies' positions when they are all on the
        same side, else None (long and short legs have no common entry price). Harmonic for an
        inverse listing: inverse or linear is the listing's ``venues.Instrument.is_inverse`` (the
        flag its fills were netted with), the key's ``@INV`` suffix only for a key without listing.
    mark_price : Decimal | None
        Latest mark, quote currency.
    realized_pnl, unrealized_pnl, fees : Decimal
        In ``pnl_currency``; ``realized_pnl`` is net of ``fees`` (those paid in the PnL currency, and
        in the pair's other currency converted at their fill price), not of ``other_fees``.
    other_fees : dict[str, Decimal]
        Fees paid in a third currency (BNB), currency → Σ over the strategies, keys sorted; in
        neither ``fees`` nor ``realized_pnl`` (no rate converts them). Empty when none.
    strategies : list[str]
    updated_at, marked_at : datetime | None
    notional : Decimal | None
        Filled by :func:`position_book` only: exposure ``|quantity| × mark × multiplier`` (entry
        price when never marked) in quote currency; ``|quantity| × multiplier`` (the contracts'
        face value, quote currency) for inverse contracts; None when no price is known or the
        listing no longer exists (no ``venues.Instrument``: the multiplier is unknown).
    pnl_currency : str
        Currency of the PnL and fees: the listing's quote currency; for an inverse listing its
        settlement currency, else its base currency (``"?"`` when none is known).
    """

    venue: str
    instrument_key: str
    quantity: Decimal = ZERO
    avg_entry_price: Decimal | None = None
    mark_price: Decimal | None = None
    realized_pnl: Decimal = ZERO
    unrealized_pnl: Decimal = ZERO
    fees: Decimal = ZERO
    other_fees: dict[str, Decimal] = field(default_factory=dict)
    strategies: list[str] = field(default_factory=list)
    updated_at: datetime | None = None
    marked_at: datetime | None = None
    notional: Decimal | None = None
    pnl_currency: str = ""


@dataclass
class InstrumentPosition:
    """The position in one canonical instrument across venues.

    Attributes
    ----------
    instrument_key : str
        ``ANY:<equivalence_key>``: the canonical key that names the instrument on every venue.
    equivalence_key : str
    quantity : Decimal | None
        Net signed quantity across venues in **base units of the underlying** (``base_unit``), not
        contracts: each linear listing's quantity × contract multiplier (100 OKX BTC-USDT-SWAP
        contracts of 0.01 BTC = 1 BTC), each inverse listing's face value (quantity × multiplier,
        quote currency) ÷ its mark price, else its average entry price. None when a listing holding
        a position cannot be sized (``quantity_problem`` says which and why): never a partial sum.
    gross_quantity : Decimal | None
        Sum of absolute venue quantities, in the same base units (None likewise).
    quantity_problem : str
        Why ``quantity`` is None, ``"; "``-joined per listing: its listing no longer exists (no
        ``venues.Instrument`` row, so neither its contract multiplier nor, for inverse contracts,
        its face value is known — the rule the pre-trade risk engine applies), or inverse contracts
        with neither a mark nor a common entry price to convert their face value; ``""`` when known.
    base_unit : str
        The underlying's currency (``BTC``), unit of ``quantity``.
    avg_entry_price : Decimal | None
        As for :class:`VenuePosition`, across venues; None as well when inverse and linear listings
        both hold a position (options may share an equivalence key across settlements).
    realized_pnl, unrealized_pnl, fees : Decimal | None
        Sums over the venues, in ``pnl_currency``; None when the venues' PnL currencies differ
        (amounts of different currencies are never added: each venue line keeps its own).
    other_fees : dict[str, Decimal]
        The venues' ``other_fees`` summed per currency (one currency's amounts only: always known).
    pnl_currency : str
        The one PnL currency of every venue line; ``""`` when they differ (see ``pnl_currencies``).
    pnl_currencies : list[str]
        The venues' PnL currencies, sorted, each once.
    venues : list[VenuePosition]
        Ordered by venue code.
    notional : Decimal | None
        Filled by :func:`position_book`: the sum of the venues' notionals (gross exposure; None
        when one is unknown).
    notional_currency : str
        Filled by :func:`position_book`: the quote currency the notional is in.
    """

    instrument_key: str
    equivalence_key: str
    quantity: Decimal | None = ZERO
    gross_quantity: Decimal | None = ZERO
    base_unit: str = ""
    quantity_problem: str = ""
    avg_entry_price: Decimal | None = None
    realized_pnl: Decimal | None = ZERO
    unrealized_pnl: Decimal | None = ZERO
    fees: Decimal | None = ZERO
    other_fees: dict[str, Decimal] = field(default_factory=dict)
    venues: list[VenuePosition] = field(default_factory=list)
    updated_at: datetime | None = None
    notional: Decimal | None = None
    pnl_currency: str = ""
    pnl_currencies: list[str] = field(default_factory=list)
    notional_currency: str = ""


def position_visible_queryset(*, strategy_ids: Iterable[str] | None) -> QuerySet[Position]:
    """Return the positions of ``strategy_ids`` (None: all strategies)."""
    qs = Position.objects.all()
    if strategy_ids is not None:
        qs = qs.filter(strategy_id__in=list(strategy_ids))
    return qs


def position_behind_mark_exists(*, instrument_key: str, venue: str, ts: datetime) -> bool:
    """Return whether a position in the listing lacks the mark of ``ts``: never marked, or marked before ``ts``.

    For the market-data publisher (:mod:`venues.node.publisher`): such a row was skipped by
    :func:`positions.services.position_mark` (a fill held it locked) or opened after that mark.

    Parameters
    ----------
    instrument_key : str
        Canonical key of the listing.
    venue : str
        Venue code of the listing.
    ts : datetime
        Time of the listing's latest mark (UTC-aware).
    """
    return (Position.objects.filter(instrument_key=instrument_key, venue=venue)
            .filter(Q(marked_at__isnull=True) | Q(marked_at__lt=ts)).exists())


def _avg_entry(rows: list[tuple[Decimal, Decimal | None]], *, inverse: bool) -> Decimal | None:
    # Quantity-weighted mean of same-direction legs; for inverse contracts the harmonic mean, the
    # rule positions.maths applies within one position (BitMEX, "average entry price"). Computed (in the
    # read's PRECISION context) and quantized as positions.maths does (18 places, half-even): the default
    # 28-digit context rounded 1/p, so one inverse leg at 58354.36 came back as 58354.36000000000000000000001.
    legs = [(q, p) for q, p in rows if q != 0]
    if not legs or any(p is None for _, p in legs):
        return None
    if len({q > 0 for q, _ in legs}) != 1:
        return None
    weight = sum(abs(q) for q, _ in legs)
    if inverse:
        avg = weight / sum(abs(q) / p for q, p in legs)
    else:
        avg = sum(abs(q) * p for q, p in legs) / weight
    return avg.quantize(QUANTUM, rounding=ROUND_HALF_EVEN)


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
    venue: str | None = None,
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
        Narrow to one venue listing (``BINANCE-FUTURES:PERPETUAL:BTC-USDT@LIN``); the aggregate then
        carries that key, not ``ANY:<equivalence key>``, since its figures cover that listing only.
    venue : str | None
        Narrow to one venue's listings (venue code).

    Returns
    -------
    list[InstrumentPosition]
        Ordered by equivalence key; empty when nothing matches. Exact sums and products (see the
        module docstring).
    """
    with localcontext(prec=PRECISION):
        instruments, _ = _aggregates(strategy_ids=strategy_ids, strategy_id=strategy_id,
                                     equivalence_key=equivalence_key, instrument_key=instrument_key, venue=venue)
    return instruments


def _aggregates(*, strategy_ids: Iterable[str] | None, strategy_id: str | None, equivalence_key: str | None,
                instrument_key: str | None, venue: str | None) -> tuple[list[InstrumentPosition], dict[str, _Terms]]:
    # position_aggregates inside the caller's PRECISION context, with the listings' terms it read (one query).
    qs = position_visible_queryset(strategy_ids=strategy_ids)
    if strategy_id:
        qs = qs.filter(strategy_id=strategy_id)
    if equivalence_key:
        qs = qs.filter(equivalence_key=equivalence_key)
    if instrument_key:
        qs = qs.filter(instrument_key=instrument_key)
    if venue:
        qs = qs.filter(venue=venue)
    rows = qs.order_by("equivalence_key", "venue", "instrument_key", "strategy_id").values_list(
        "equivalence_key", "venue", "instrument_key", "strategy_id", "quantity", "avg_entry_price", "mark_price",
        "realized_pnl", "unrealized_pnl", "fees", "other_fees", "updated_at", "marked_at",
    )
    instruments: dict[str, InstrumentPosition] = {}
    venue_index: dict[tuple[str, str, str], VenuePosition] = {}
    venue_rows: dict[tuple[str, str, str], list] = {}
    for eq, venue, key, strategy, qty, entry, mark, rpnl, upnl, fees, other_fees, updated, marked in rows:
        agg = instruments.get(eq)
        if agg is None:
            # Keyed by what it covers: one listing when narrowed to it, else the instrument on every venue.
            agg = instruments[eq] = InstrumentPosition(instrument_key=instrument_key or f"ANY:{eq}", equivalence_key=eq)
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
        _add_fees(vp.other_fees, {ccy: Decimal(amount) for ccy, amount in other_fees.items()})
        vp.strategies.append(strategy)
        if mark is not None and (vp.marked_at is None or (marked is not None and marked >= vp.marked_at)):
            vp.mark_price, vp.marked_at = mark, marked
        vp.updated_at = _latest(vp.updated_at, updated)
    # Inverse or linear as the listing says (venues.Instrument.is_inverse, the flag the fills were netted
    # with), not the key's suffix: an option key may omit it.
    terms = _terms_of({key for _, _, key in venue_rows})
    for eq, agg in instruments.items():
        legs = []
        settlements = set()
        sizes_known = True
        problems = []
        for vp in agg.venues:
            rows_of_venue = venue_rows[(eq, vp.venue, vp.instrument_key)]
            t = terms[vp.instrument_key]
            vp.pnl_currency = t.pnl_currency
            vp.avg_entry_price = _avg_entry(rows_of_venue, inverse=t.inverse)
            # Across venues contracts differ in size: weigh each leg by quantity × multiplier (base units;
            # face value for inverse contracts, the weight of their harmonic mean).
            legs.extend((q * t.multiplier, p) for q, p in rows_of_venue)
            if vp.quantity:
                settlements.add(t.inverse)
                sizes_known = sizes_known and t.multiplier > 0
            agg.base_unit = agg.base_unit or t.base_currency
            base, problem = _base_units(vp, t)
            if problem:
                problems.append(problem)
            agg.quantity = None if base is None or agg.quantity is None else agg.quantity + base
            agg.gross_quantity = None if base is None or agg.gross_quantity is None else agg.gross_quantity + abs(base)
            agg.realized_pnl += vp.realized_pnl
            agg.unrealized_pnl += vp.unrealized_pnl
            agg.fees += vp.fees
            _add_fees(agg.other_fees, vp.other_fees)
            agg.updated_at = _latest(agg.updated_at, vp.updated_at)
        agg.quantity_problem = "; ".join(problems)
        agg.pnl_currencies = sorted({vp.pnl_currency for vp in agg.venues})
        if len(agg.pnl_currencies) == 1:
            agg.pnl_currency = agg.pnl_currencies[0]
        else:  # e.g. BTC and USD: no sum (no FX source); the venue lines keep theirs
            agg.pnl_currency, agg.realized_pnl, agg.unrealized_pnl, agg.fees = "", None, None, None
        # Inverse and linear legs have no common mean (harmonic vs arithmetic).
        holding = [vp for vp in agg.venues if vp.quantity]
        if len(holding) == 1:
            agg.avg_entry_price = holding[0].avg_entry_price  # one listing: no contract sizes to weigh
        else:
            agg.avg_entry_price = (_avg_entry(legs, inverse=settlements.pop())
                                   if len(settlements) == 1 and sizes_known else None)
    for agg in instruments.values():
        agg.other_fees = dict(sorted(agg.other_fees.items()))
        for vp in agg.venues:
            vp.other_fees = dict(sorted(vp.other_fees.items()))
    return list(instruments.values()), terms


def _add_fees(into: dict[str, Decimal], fees: dict[str, Decimal]) -> None:
    # Sum per currency (inside the caller's PRECISION context): amounts of one currency only.
    for currency, amount in fees.items():
        into[currency] = into.get(currency, ZERO) + amount


def _base_units(vp: VenuePosition, terms: _Terms) -> tuple[Decimal | None, str]:
    # The listing's signed quantity in base units of the underlying, or None and why: linear quantity ×
    # multiplier; inverse face value (quantity × multiplier, quote currency) ÷ mark, else average entry price.
    if vp.quantity == 0:
        return ZERO, ""
    if not terms.multiplier:
        return None, (f"{vp.instrument_key}: its listing no longer exists (no venues.Instrument), so its contract "
                      f"size is unknown")
    if not terms.inverse:
        return vp.quantity * terms.multiplier, ""
    price = vp.mark_price if vp.mark_price is not None else vp.avg_entry_price
    if price is None:
        return None, (f"{vp.instrument_key}: inverse contracts with neither a mark nor a common entry price to "
                      f"convert their face value to base units")
    return (vp.quantity * terms.multiplier / price).quantize(QUANTUM, rounding=ROUND_HALF_EVEN), ""


# --- the positions page and CLI: notional, totals, equity curve -----------------------------------

@dataclass
class CurrencyTotal:
    """Totals of one currency over the visible positions.

    Attributes
    ----------
    currency : str
    realized_pnl, unrealized_pnl, fees : Decimal
        PnL of the instruments whose PnL currency this is (``realized_pnl`` net of ``fees``).
    notional : Decimal
        Gross exposure of the instruments quoted in this currency (Σ known notionals).
    equity : Decimal
        ``realized_pnl + unrealized_pnl``: the PnL line the equity curve draws.
    """

    currency: str
    realized_pnl: Decimal = ZERO
    unrealized_pnl: Decimal = ZERO
    fees: Decimal = ZERO
    notional: Decimal = ZERO

    @property
    def equity(self) -> Decimal:
        return _EXACT.add(self.realized_pnl, self.unrealized_pnl)  # read outside the selector's context


@dataclass
class PositionBook:
    """What the positions page and ``manage.py positions`` show.

    Attributes
    ----------
    instruments : list[InstrumentPosition]
        :func:`position_aggregates` with ``notional`` and currencies filled in.
    totals : list[CurrencyTotal]
        One per currency, by currency code. Amounts of different currencies are never added: no
        FX source exists in the service.
    other_fees : dict[str, Decimal]
        Fees paid in a third currency over the visible positions (Σ of their ``other_fees`` per
        currency, keys sorted): in no total's ``fees`` or ``realized_pnl``.
    unpriced : list[str]
        Listings whose notional is unknown (never marked, no entry price, or no listing for an
        inverse contract's face value), left out of the notional totals.
    """

    instruments: list[InstrumentPosition]
    totals: list[CurrencyTotal]
    unpriced: list[str]
    other_fees: dict[str, Decimal] = field(default_factory=dict)


@dataclass(frozen=True)
class _Terms:
    multiplier: Decimal  # ZERO: unknown, the listing no longer exists
    inverse: bool
    pnl_currency: str
    quote_currency: str
    base_currency: str = ""


def _terms_of(instrument_keys: set[str]) -> dict[str, _Terms]:
    # Listing terms from venues.Instrument; a key without a listing has no known contract size (multiplier
    # ZERO, the risk engine's rule for unlisted rows) and takes its currencies and inverse flag from the key.
    listings = {key: (mult, inv, quote, settle, base) for key, mult, inv, quote, settle, base in
                Instrument.objects.filter(instrument_key__in=instrument_keys).values_list(
                    "instrument_key", "contract_multiplier", "is_inverse", "quote_currency", "settlement_currency",
                    "base_currency")}
    terms = {}
    for key in instrument_keys:
        key_base, key_quote, key_inverse = _key_terms(key)
        if key in listings:
            mult, inverse, quote, settle, base = listings[key]
            pnl = listing_pnl_currency(instrument_key=key, is_inverse=inverse, base=base, quote=quote,
                                       settlement=settle)
            terms[key] = _Terms(mult, inverse, pnl, (quote or key_quote) or "?", base or key_base)
        else:
            # No listing, no contract size: base units and notional stay unknown (linear or inverse alike).
            pnl = listing_pnl_currency(instrument_key=key, is_inverse=None)
            terms[key] = _Terms(ZERO, key_inverse, pnl, key_quote or "?", key_base)
    return terms


def _key_terms(instrument_key: str) -> tuple[str, str, bool]:
    # (base, quote, inverse) as the canonical key states them ("", "", False for a malformed key).
    try:
        parsed = parse_instrument_key(instrument_key)
    except InstrumentKeyError:
        return "", "", False
    return parsed.base or "", parsed.quote or "", parsed.settlement == "INV"


def listing_pnl_currency(*, instrument_key: str, is_inverse: bool | None, base: str = "", quote: str = "",
                         settlement: str = "") -> str:
    """Return the currency of the PnL and fees of positions in a listing, as every read of them states it.

    Parameters
    ----------
    instrument_key : str
        Canonical key of the listing.
    is_inverse : bool | None
        The listing's ``venues.Instrument.is_inverse``; None when the key has no listing (its
        ``@INV`` suffix then decides).
    base, quote, settlement : str
        The listing's currencies; blank ones are taken from the key.

    Returns
    -------
    str
        :func:`positions.maths.pnl_currency` (the quote currency; for an inverse listing its
        settlement currency, else its base currency); ``"?"`` when none is known.
    """
    key_base, key_quote, key_inverse = _key_terms(instrument_key)
    inverse = key_inverse if is_inverse is None else is_inverse
    return pnl_currency(inverse=inverse, base=base or key_base, quote=quote or key_quote,
                        settlement=settlement) or "?"


def _notional(vp: VenuePosition, terms: _Terms) -> Decimal | None:
    if vp.quantity == 0:
        return ZERO
    if not terms.multiplier:
        return None  # no listing: its contract size is unknown
    if terms.inverse:
        return abs(vp.quantity) * terms.multiplier
    price = vp.mark_price if vp.mark_price is not None else vp.avg_entry_price
    return None if price is None else abs(vp.quantity) * price * terms.multiplier


def position_book(*, strategy_ids: Iterable[str] | None, strategy_id: str | None = None,
                  venue: str | None = None) -> PositionBook:
    """Return the visible positions with notional exposure and per-currency totals.

    Parameters
    ----------
    strategy_ids : Iterable[str] | None
        The caller's visible strategies (None: all) — the BOLA scope.
    strategy_id : str | None
        Narrow to one strategy (within the scope).
    venue : str | None
        Only this venue's listings (the instruments' figures are then that venue's).

    Returns
    -------
    PositionBook
        Quantities in base units; prices, notionals and linear PnL in quote currency; inverse PnL
        in the settlement currency. Exact sums and products (see the module docstring).
    """
    with localcontext(prec=PRECISION):
        return _book(strategy_ids=strategy_ids, strategy_id=strategy_id, venue=venue)


def _book(*, strategy_ids: Iterable[str] | None, strategy_id: str | None, venue: str | None) -> PositionBook:
    # position_book inside the caller's PRECISION context.
    instruments, terms = _aggregates(strategy_ids=strategy_ids, strategy_id=strategy_id, equivalence_key=None,
                                     instrument_key=None, venue=venue)
    totals: dict[str, CurrencyTotal] = {}
    unpriced = []
    other_fees: dict[str, Decimal] = {}
    for agg in instruments:
        _add_fees(other_fees, agg.other_fees)
        agg.notional = ZERO
        for vp in agg.venues:
            t = terms[vp.instrument_key]
            vp.notional = _notional(vp, t)
            agg.notional_currency = t.quote_currency
            pnl = totals.setdefault(t.pnl_currency, CurrencyTotal(t.pnl_currency))
            pnl.realized_pnl += vp.realized_pnl
            pnl.unrealized_pnl += vp.unrealized_pnl
            pnl.fees += vp.fees
            if vp.notional is None:
                unpriced.append(vp.instrument_key)
                agg.notional = None
                continue
            totals.setdefault(t.quote_currency, CurrencyTotal(t.quote_currency)).notional += vp.notional
            if agg.notional is not None:
                agg.notional += vp.notional
    return PositionBook(instruments=instruments, totals=[totals[c] for c in sorted(totals)], unpriced=unpriced,
                        other_fees=dict(sorted(other_fees.items())))


@dataclass(frozen=True)
class EquityPoint:
    """The visible positions' PnL at one time, in one currency.

    Attributes
    ----------
    ts : datetime
        UTC.
    realized_pnl, unrealized_pnl : Decimal
        Sums over positions of each one's latest snapshot at ``ts``.
    """

    ts: datetime
    realized_pnl: Decimal
    unrealized_pnl: Decimal

    @property
    def equity(self) -> Decimal:
        return _EXACT.add(self.realized_pnl, self.unrealized_pnl)  # read outside the selector's context


def equity_curve(*, strategy_ids: Iterable[str] | None, since: datetime, until: datetime | None = None,
                 strategy_id: str | None = None, max_points: int = 240) -> dict[str, list[EquityPoint]]:
    """Return the PnL over time of the visible positions, one series per PnL currency.

    Built from :class:`~positions.models.PositionSnapshot` rows: the value at a time is the sum,
    over positions, of each one's latest snapshot up to that time, so a position recorded before
    ``since`` starts the series at its value then. One point per distinct snapshot time in
    ``[since, until]``, thinned evenly to at most ``max_points`` (the first and last are kept).

    Parameters
    ----------
    strategy_ids : Iterable[str] | None
        The caller's visible strategies (None: all).
    since, until : datetime
        Window (UTC-aware); ``until`` default: no upper bound.
    strategy_id : str | None
        Narrow to one strategy.
    max_points : int
        Upper bound on points per series (≥ 2).

    Returns
    -------
    dict[str, list[EquityPoint]]
        Currency → points by time; empty when no snapshot exists. Exact sums (see the module
        docstring).

    Raises
    ------
    ValueError
        ``max_points`` below 2.
    """
    if max_points < 2:
        raise ValueError(f"max_points: must be at least 2, got {max_points}")
    with localcontext(prec=PRECISION):
        return _equity_series(strategy_ids=strategy_ids, since=since, until=until, strategy_id=strategy_id,
                              max_points=max_points)


def _equity_series(*, strategy_ids: Iterable[str] | None, since: datetime, until: datetime | None,
                   strategy_id: str | None, max_points: int) -> dict[str, list[EquityPoint]]:
    # equity_curve inside the caller's PRECISION context.
    positions = position_visible_queryset(strategy_ids=strategy_ids)
    if strategy_id:
        positions = positions.filter(strategy_id=strategy_id)
    before = PositionSnapshot.objects.filter(position=OuterRef("pk"), ts__lt=since).order_by("-ts", "-id")
    rows = list(positions.annotate(start=Subquery(before.values("id")[:1])).values_list("pk", "instrument_key",
                                                                                          "start"))
    if not rows:
        return {}
    currency_of = {key: t.pnl_currency for key, t in _terms_of({key for _, key, _ in rows}).items()}
    position_currency = {pk: currency_of[key] for pk, key, _ in rows}
    window = PositionSnapshot.objects.filter(position_id__in=list(position_currency), ts__gte=since)
    if until is not None:
        window = window.filter(ts__lte=until)
    starts = [start for _, _, start in rows if start is not None]
    fields = ("position_id", "ts", "realized_pnl", "unrealized_pnl")
    initial = list(PositionSnapshot.objects.filter(pk__in=starts).values_list(*fields))
    current: dict[int, tuple[Decimal, Decimal]] = {pk: (r, u) for pk, _, r, u in initial}
    series: dict[str, list[EquityPoint]] = {}
    if initial:
        for currency in {position_currency[pk] for pk in current}:
            series[currency] = [_point(since, current, position_currency, currency)]
    snapshots = window.order_by("ts", "id").values_list(*fields)
    pending: set[str] = set()
    last_ts = None
    for pk, ts, realized, unrealized in snapshots.iterator():
        if last_ts is not None and ts != last_ts:
            for currency in pending:
                series.setdefault(currency, []).append(_point(last_ts, current, position_currency, currency))
            pending = set()
        current[pk] = (realized, unrealized)
        pending.add(position_currency[pk])
        last_ts = ts
    for currency in pending:
        series.setdefault(currency, []).append(_point(last_ts, current, position_currency, currency))
    return {currency: _thin(points, max_points) for currency, points in sorted(series.items())}


def _point(ts: datetime, current: dict[int, tuple[Decimal, Decimal]], position_currency: dict[int, str],
           currency: str) -> EquityPoint:
    realized = sum((r for pk, (r, _) in current.items() if position_currency[pk] == currency), ZERO)
    unrealized = sum((u for pk, (_, u) in current.items() if position_currency[pk] == currency), ZERO)
    return EquityPoint(ts=ts, realized_pnl=realized, unrealized_pnl=unrealized)


def _thin(points: list[EquityPoint], max_points: int) -> list[EquityPoint]:
    if len(points) <= max_points:
        return points
    step = (len(points) - 1) / (max_points - 1)
    return [points[round(i * step)] for i in range(max_points)]
