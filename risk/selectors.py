"""Reads of pre-trade risk: the limits and kill switches that apply to an order, and exposure.

Everything is read fresh from the database at every evaluation, so a risk manager's edit in the
admin applies to the very next order, in every process, without a restart. Each function is one
query, whatever the number of limits, scopes, positions or open orders.

Scope matching (``risk/models.py``): GLOBAL (empty key), VENUE (the chosen venue's code),
STRATEGY (the strategy id), INSTRUMENT (the listing's canonical key, or the ``ANY:`` key with the
same equivalence key; an asset-class prefix is not part of an instrument's identity, so
``CRYPTO:ANY:SPOT_PAIR:BTC-USDT`` matches too).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Context, Decimal

from django.db import DEFAULT_DB_ALIAS, connections

from odum_live.instruments import ANY_VENUE, InstrumentKey, InstrumentKeyError, parse_instrument_key
from odum_live.sql import SentQuery, send_query
from odum_live.intent import BUY_LIKE_SIDES
from positions.models import Position
from risk.models import OpenOrderExposure, RiskLimit, Scope, TradingState
from venues.models import Instrument

# Django's own SQLite decimal converter precision: SQLite keeps NUMERIC values as doubles.
_SQLITE_DECIMAL = Context(prec=15)


@dataclass(frozen=True, slots=True)
class LimitRow:
    """One enabled :class:`~risk.models.RiskLimit` that applies to the order.

    ``value`` is in the unit of ``kind`` (see ``RiskLimit.Kind`` labels).
    """

    scope: str
    scope_key: str
    kind: str
    value: Decimal

    @property
    def scope_label(self) -> str:
        """``GLOBAL`` or ``SCOPE:key`` (``STRATEGY:demo``)."""
        return scope_label_of(self.scope, self.scope_key)


@dataclass(frozen=True, slots=True)
class StateRow:
    """One non-ACTIVE :class:`~risk.models.TradingState` (kill switch) that applies to the order."""

    scope: str
    scope_key: str
    state: str
    reason: str

    @property
    def scope_label(self) -> str:
        """``GLOBAL`` or ``SCOPE:key``."""
        return scope_label_of(self.scope, self.scope_key)


@dataclass(frozen=True, slots=True)
class RiskControls:
    """The limits and kill switches applicable to one order, as read for one evaluation."""

    limits: tuple[LimitRow, ...]
    states: tuple[StateRow, ...]

    def of_kind(self, *kinds: str) -> tuple[LimitRow, ...]:
        """Return the limits of the given kinds, in (scope, scope_key, kind) order."""
        return tuple(limit for limit in self.limits if limit.kind in kinds)


def scope_label_of(scope: str, scope_key: str) -> str:
    """Return how a scope is written in results, reasons and reports: ``GLOBAL``, ``VENUE:OKX`` …"""
    return f"{scope}:{scope_key}" if scope_key else scope


def instrument_scope_matches(*, scope_key: str, instrument: InstrumentKey) -> bool:
    """Return whether the INSTRUMENT scope key ``scope_key`` covers ``instrument``.

    True for the listing's own key and for the ``ANY:`` key of its equivalence class, with or
    without an asset class prefix (``CRYPTO:ANY:SPOT_PAIR:BTC-USDT``); False for a key that does
    not parse.

    Parameters
    ----------
    scope_key : str
        A ``RiskLimit`` / ``TradingState`` scope key of the INSTRUMENT scope.
    instrument : InstrumentKey
        The routed listing (or the requested key when nothing was routed; may be ``ANY``).
    """
    try:
        key = parse_instrument_key(scope_key)
    except InstrumentKeyError:
        return False
    return key.equivalence_key == instrument.equivalence_key and key.venue in (instrument.venue, ANY_VENUE)


def scope_covers(*, scope: str, scope_key: str, strategy_id: str, venue_code: str, instrument_key: str) -> bool:
    """Return whether a limit or kill switch of ``scope`` / ``scope_key`` applies to an order.

    The engine's matching (:func:`scope_covers_listing`, which :meth:`PendingControls.result` uses)
    for an order whose listing key is text: given the scope, does it cover this order? Used where a kill switch acts on
    orders already accepted (``orders.services.kill_switch``, the trading worker's claim).

    Parameters
    ----------
    scope, scope_key : str
        ``risk.models.Scope`` value and its key (empty for GLOBAL).
    strategy_id : str
        The order's strategy.
    venue_code : str
        The venue the order was routed to.
    instrument_key : str
        The routed listing's canonical key. One that does not parse is covered by every
        INSTRUMENT scope: a kill switch that cannot tell stops the order (fail closed).
    """
    if scope == Scope.INSTRUMENT:
        try:
            instrument = parse_instrument_key(instrument_key)
        except InstrumentKeyError:
            return True
    else:
        instrument = None  # not read by the other scopes
    return scope_covers_listing(scope=scope, scope_key=scope_key, strategy_id=strategy_id, venue_code=venue_code,
                                instrument=instrument)


def scope_covers_listing(*, scope: str, scope_key: str, strategy_id: str, venue_code: str,
                         instrument: InstrumentKey | None) -> bool:
    """:func:`scope_covers` for an order whose listing key is parsed: the one scope-matching rule.

    The engine keeps the limits and kill switches of an order with it (:meth:`PendingControls.result`);
    ``instrument`` may be None only when ``scope`` is not INSTRUMENT.
    """
    if scope == Scope.GLOBAL:
        return True
    if scope == Scope.VENUE:
        return scope_key == venue_code
    if scope == Scope.STRATEGY:
        return scope_key == strategy_id
    if scope == Scope.INSTRUMENT:
        return instrument_scope_matches(scope_key=scope_key, instrument=instrument)
    return False


def halted_scopes_of(*, strategy_id: str, venue_code: str, instrument_key: str,
                     using: str = DEFAULT_DB_ALIAS) -> list[TradingState]:
    """Return the HALTED kill switches that cover an order (:func:`scope_covers`), in scope order.

    One query over the HALTED rows (a handful at most). Parameters as :func:`scope_covers`.
    """
    return [
        row for row in TradingState.objects.using(using).filter(state=TradingState.State.HALTED)
        .order_by("scope", "scope_key")
        if scope_covers(scope=row.scope, scope_key=row.scope_key, strategy_id=strategy_id, venue_code=venue_code,
                        instrument_key=instrument_key)
    ]


def risk_controls_for_order(
    *, strategy_id: str, venue_code: str, instrument: InstrumentKey, using: str = DEFAULT_DB_ALIAS
) -> RiskControls:
    """Return the enabled limits and non-ACTIVE kill switches that apply to an order, in one query.

    Parameters
    ----------
    strategy_id : str
        The order's strategy.
    venue_code : str
        The venue the router chose, ``""`` when none (VENUE scopes then match nothing).
    instrument : InstrumentKey
        The routed listing, or the requested key when nothing was routed.
    using : str
        Database alias.

    Returns
    -------
    RiskControls
        Limits ordered by (scope, scope_key, kind); states by (scope, scope_key).
    """
    pending = risk_controls_start(strategy_id=strategy_id, equivalence_key=instrument.equivalence_key, using=using)
    return pending.result(venue_code=venue_code, instrument=instrument)


class PendingControls:
    """The limits and kill switches query of one order, sent before the order is routed.

    :func:`risk_controls_start` sends the query; :meth:`result` reads it and keeps the rows that
    apply to the routed order. Inside a psycopg pipeline (``orders.services.submit``) the query
    travels with the router's own read, so the two cost one round trip.
    """

    def __init__(self, query: SentQuery, vendor: str, strategy_id: str) -> None:
        self._query = query
        self._vendor = vendor
        self._strategy_id = strategy_id

    def result(self, *, venue_code: str, instrument: InstrumentKey) -> RiskControls:
        """Return the :class:`RiskControls` of the order as routed (call once).

        Parameters
        ----------
        venue_code : str
            The venue the router chose, ``""`` when none (VENUE scopes then match nothing).
        instrument : InstrumentKey
            The routed listing, or the requested key when nothing was routed; its equivalence key
            must be the one the query was started with.
        """
        raw = self._query.fetchall()
        rows = [
            r for r in raw
            if scope_covers_listing(scope=r[1], scope_key=r[2], strategy_id=self._strategy_id, venue_code=venue_code,
                                    instrument=instrument)
        ]
        to_decimal = _decimal_converter(self._vendor)
        limits = sorted(
            (LimitRow(scope=r[1], scope_key=r[2], kind=r[3], value=to_decimal(r[4])) for r in rows if r[0] == "L"),
            key=lambda lim: (lim.scope, lim.scope_key, lim.kind),
        )
        states = sorted(
            (StateRow(scope=r[1], scope_key=r[2], state=r[3], reason=r[5]) for r in rows if r[0] == "S"),
            key=lambda st: (st.scope, st.scope_key),
        )
        return RiskControls(limits=tuple(limits), states=tuple(states))


def risk_controls_start(*, strategy_id: str, equivalence_key: str, using: str = DEFAULT_DB_ALIAS) -> PendingControls:
    """Send the query of the limits and kill switches that may apply to an order; read it later.

    It needs only what the request says, not where the order is routed: VENUE rows of every venue
    (a handful) and INSTRUMENT rows narrowed by the key's ``":<equivalence key>"`` suffix come
    back, and :meth:`PendingControls.result` keeps those of the chosen venue and listing.

    Parameters
    ----------
    strategy_id : str
        The order's strategy.
    equivalence_key : str
        ``InstrumentKey.equivalence_key`` of the requested instrument.
    using : str
        Database alias.
    """
    suffix = ":" + equivalence_key
    pattern = "%" + suffix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    scope_sql = (
        "(scope = %s OR scope = %s OR (scope = %s AND scope_key = %s)"
        " OR (scope = %s AND scope_key LIKE %s ESCAPE '\\'))"
    )
    scope_params = [Scope.GLOBAL, Scope.VENUE, Scope.STRATEGY, strategy_id, Scope.INSTRUMENT, pattern]
    sql = (
        f"SELECT 'L', scope, scope_key, kind, value, '' FROM {RiskLimit._meta.db_table}"
        f" WHERE enabled = %s AND {scope_sql}"
        " UNION ALL "
        f"SELECT 'S', scope, scope_key, state, NULL, reason FROM {TradingState._meta.db_table}"
        f" WHERE state <> %s AND {scope_sql}"
    )
    params = [True, *scope_params, TradingState.State.ACTIVE, *scope_params]
    return PendingControls(send_query(sql, params, using=using), connections[using].vendor, strategy_id)


# --- exposure ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ExposureNeeds:
    """Which rows an evaluation needs: every population a configured limit measures.

    Parameters
    ----------
    strategy : bool
        Rows of the order's strategy, every instrument.
    instrument : bool
        Rows of every strategy in the order's equivalence key.
    venue : bool
        Rows of every strategy on the chosen venue.
    everything : bool
        Every row (firm-wide gross exposure).
    """

    strategy: bool = False
    instrument: bool = False
    venue: bool = False
    everything: bool = False

    def __bool__(self) -> bool:
        return self.strategy or self.instrument or self.venue or self.everything


@dataclass(frozen=True, slots=True)
class ExposureRow:
    """A group of positions or of open-order totals, classified against the order being checked.

    Parameters
    ----------
    source : str
        ``"position"`` or ``"open_orders"``.
    mine : bool
        Rows of the order's strategy.
    same_venue : bool
        Rows on the order's venue.
    same_instrument : bool
        Rows in the order's equivalence key (aggregated across venues).
    buy_like : bool
        Open orders: buy-like sides (``odum_live.intent.BUY_LIKE_SIDES``). Positions: False.
    quote_currency : str
        Quote currency of the listings, ``""`` when no ``venues.Instrument`` row matches.
    listed : bool
        False when no ``venues.Instrument`` row matches: the listing was removed (or never
        existed), so the contract multiplier and inverse flag are unknown. The sums below then take
        multiplier 1, which is no measure of size: use :attr:`unlisted` and fail closed.
    quantity : Decimal
        Linear listings, in base units of the underlying: positions Σ signed quantity × contract
        multiplier, open orders Σ leaves quantity × contract multiplier (unsigned). Inverse listings
        are not in it: see ``inverse_face``. An unlisted row counts with multiplier 1 (see ``listed``).
    inverse_face : Decimal
        Inverse listings, the same sums as ``quantity`` (quantity × contract multiplier), which for
        quote-denominated contracts is their face value in quote currency, not base units.
    notional : Decimal
        Quote currency, of the priced part. Positions: Σ |quantity| × (mark, else average entry
        price) × multiplier. Open orders: Σ leaves × limit price × multiplier. Inverse listings:
        |quantity| × multiplier (contracts are quote-denominated).
    unpriced_quantity : Decimal
        Base units with no price (MARKET orders; positions with neither mark nor entry price),
        linear listings only: the engine values them at the reference mid.
    unpriced_listing : str
        The listing of ``unpriced_quantity`` (``""`` when there is none).
    contract_multiplier : Decimal
        Of ``unpriced_listing`` (1 when unlisted).
    missing_listing : str
        Unlisted rows: the listing key that has no ``venues.Instrument`` (one row per key, strategy
        and side); ``""`` otherwise.
    holder_strategy : str
        Unlisted rows: the strategy holding the position or open orders.
    holder_side : str
        Unlisted open-order rows: their side (``Order.Side`` value); ``""`` for positions.
    """

    source: str
    mine: bool
    same_venue: bool
    same_instrument: bool
    buy_like: bool
    quote_currency: str
    listed: bool
    quantity: Decimal
    inverse_face: Decimal
    notional: Decimal
    unpriced_quantity: Decimal
    unpriced_listing: str
    contract_multiplier: Decimal
    missing_listing: str = ""
    holder_strategy: str = ""
    holder_side: str = ""

    @property
    def unlisted(self) -> str:
        """Why this row has no size in base units (names it and the missing listing); ``""`` when listed."""
        if self.listed:
            return ""
        what = (f"position of {self.holder_strategy}" if self.source == "position"
                else f"open {self.holder_side} orders of {self.holder_strategy}")
        return (f"{what} in {self.missing_listing}: its listing {self.missing_listing} no longer exists "
                "(no venues.Instrument), so its contract multiplier and inverse flag are unknown")


def exposure_rows(
    *, strategy_id: str, venue_code: str, equivalence_key: str, needs: ExposureNeeds, using: str = DEFAULT_DB_ALIAS
) -> tuple[ExposureRow, ...]:
    """Return positions and open-order totals grouped for the populations in ``needs``, in one query.

    Reads ``positions.Position`` (non-zero rows) and :class:`risk.models.OpenOrderExposure`
    (non-zero rows), each joined to its ``venues.Instrument`` listing for the contract multiplier,
    inverse flag and quote currency. Both tables are bounded by strategies × listings (× sides),
    never by order history. Rows outside ``needs`` are not read, so callers must only aggregate
    the populations they asked for.

    Parameters
    ----------
    strategy_id, venue_code, equivalence_key : str
        The order's strategy, chosen venue (``""`` when none) and equivalence key.
    needs : ExposureNeeds
        The populations wanted; nothing is read when it is empty.
    using : str
        Database alias.
    """
    if not needs:
        return ()
    position = Position._meta.db_table
    totals = OpenOrderExposure._meta.db_table
    instrument = Instrument._meta.db_table
    buy_like = sorted(BUY_LIKE_SIDES)
    flags = "CASE WHEN t.strategy_id = %s THEN 1 ELSE 0 END, CASE WHEN t.venue = %s THEN 1 ELSE 0 END, " \
            "CASE WHEN t.equivalence_key = %s THEN 1 ELSE 0 END"
    flag_params = [strategy_id, venue_code, equivalence_key]
    where, where_params = _population_filter(needs, strategy_id, venue_code, equivalence_key)
    sql = (
        # Positions: quantity signed; notional per row at mark (else entry) price.
        f"SELECT 'P', {flags}, 0, COALESCE(i.quote_currency, ''), CASE WHEN i.id IS NULL THEN 0 ELSE 1 END,"
        " CASE WHEN i.is_inverse THEN '' WHEN t.mark_price IS NULL AND t.avg_entry_price IS NULL"
        " THEN t.instrument_key ELSE '' END,"
        " SUM(CASE WHEN i.is_inverse THEN 0 ELSE t.quantity * COALESCE(i.contract_multiplier, 1) END),"
        " SUM(CASE WHEN i.is_inverse THEN t.quantity * i.contract_multiplier ELSE 0 END),"
        " SUM(CASE WHEN i.is_inverse THEN ABS(t.quantity) * i.contract_multiplier"
        " ELSE ABS(t.quantity) * COALESCE(t.mark_price, t.avg_entry_price, 0) * COALESCE(i.contract_multiplier, 1)"
        " END),"
        " SUM(CASE WHEN i.is_inverse THEN 0 WHEN t.mark_price IS NULL AND t.avg_entry_price IS NULL"
        " THEN ABS(t.quantity) ELSE 0 END),"
        " MAX(COALESCE(i.contract_multiplier, 1)),"
        # Unlisted: one row per listing and strategy, to name them (multiplier and inverse flag unknown).
        " CASE WHEN i.id IS NULL THEN t.instrument_key ELSE '' END, CASE WHEN i.id IS NULL THEN t.strategy_id"
        " ELSE '' END, ''"
        f" FROM {position} t LEFT JOIN {instrument} i ON i.instrument_key = t.instrument_key"
        f" WHERE t.quantity <> 0{where}"
        " GROUP BY 2, 3, 4, 6, 7, 8, 14, 15"
        " UNION ALL "
        # Open orders: leaves unsigned, by side group; MARKET quantity is left to the reference mid.
        f"SELECT 'O', {flags}, CASE WHEN t.side IN ({', '.join(['%s'] * len(buy_like))}) THEN 1 ELSE 0 END,"
        " COALESCE(i.quote_currency, ''), CASE WHEN i.id IS NULL THEN 0 ELSE 1 END,"
        " CASE WHEN i.is_inverse THEN '' WHEN t.leaves_quantity > t.priced_quantity"
        " THEN t.instrument_key ELSE '' END,"
        " SUM(CASE WHEN i.is_inverse THEN 0 ELSE t.leaves_quantity * COALESCE(i.contract_multiplier, 1) END),"
        " SUM(CASE WHEN i.is_inverse THEN t.leaves_quantity * i.contract_multiplier ELSE 0 END),"
        " SUM(CASE WHEN i.is_inverse THEN t.leaves_quantity * i.contract_multiplier"
        " ELSE t.priced_value * COALESCE(i.contract_multiplier, 1) END),"
        " SUM(CASE WHEN i.is_inverse THEN 0 ELSE t.leaves_quantity - t.priced_quantity END),"
        " MAX(COALESCE(i.contract_multiplier, 1)),"
        " CASE WHEN i.id IS NULL THEN t.instrument_key ELSE '' END, CASE WHEN i.id IS NULL THEN t.strategy_id"
        " ELSE '' END, CASE WHEN i.id IS NULL THEN t.side ELSE '' END"
        f" FROM {totals} t LEFT JOIN {instrument} i ON i.instrument_key = t.instrument_key"
        f" WHERE t.leaves_quantity > 0{where}"
        " GROUP BY 2, 3, 4, 5, 6, 7, 8, 14, 15, 16"
    )
    params = [*flag_params, *where_params, *flag_params, *buy_like, *where_params]
    connection = connections[using]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        raw = cursor.fetchall()
    dec = _decimal_converter(connection.vendor)
    return tuple(
        ExposureRow(
            source="position" if r[0] == "P" else "open_orders",
            mine=bool(r[1]),
            same_venue=bool(r[2]),
            same_instrument=bool(r[3]),
            buy_like=bool(r[4]),
            quote_currency=r[5] or "",
            listed=bool(r[6]),
            unpriced_listing=r[7] or "",
            quantity=dec(r[8]),
            inverse_face=dec(r[9]),
            notional=dec(r[10]),
            unpriced_quantity=dec(r[11]),
            contract_multiplier=dec(r[12]) or Decimal("1"),
            missing_listing=r[13] or "",
            holder_strategy=r[14] or "",
            holder_side=r[15] or "",
        )
        for r in raw
    )


def _population_filter(needs: ExposureNeeds, strategy_id: str, venue_code: str, equivalence_key: str):
    if needs.everything:
        return "", []
    terms, params = [], []
    if needs.strategy:
        terms.append("t.strategy_id = %s")
        params.append(strategy_id)
    if needs.instrument:
        terms.append("t.equivalence_key = %s")
        params.append(equivalence_key)
    if needs.venue:
        terms.append("t.venue = %s")
        params.append(venue_code)
    return f" AND ({' OR '.join(terms)})", params


def _decimal_converter(vendor: str):
    if vendor == "sqlite":
        return _sqlite_decimal
    return _plain_decimal


def _plain_decimal(value) -> Decimal:
    if value is None:
        return Decimal("0")
    return value if isinstance(value, Decimal) else Decimal(value)


def _sqlite_decimal(value) -> Decimal:
    # SQLite returns REAL for NUMERIC columns; round to 15 significant digits as Django does.
    if value is None:
        return Decimal("0")
    if isinstance(value, float):
        return _SQLITE_DECIMAL.create_decimal_from_float(value)
    return Decimal(value) if not isinstance(value, Decimal) else value


def open_exposure_total(
    *, strategy_id: str, instrument_key: str, side: str, using: str = DEFAULT_DB_ALIAS
) -> tuple[Decimal, Decimal, Decimal]:
    """Return one :class:`risk.models.OpenOrderExposure` total: (leaves, priced quantity, priced value).

    Quantities in the listing's unit (contracts for derivatives), value in quote currency; zeros
    when the strategy has no open order in the listing on that side.
    """
    row = (OpenOrderExposure.objects.using(using)
           .filter(strategy_id=strategy_id, instrument_key=instrument_key, side=side)
           .values_list("leaves_quantity", "priced_quantity", "priced_value").first())
    return tuple(row) if row is not None else (Decimal("0"),) * 3
