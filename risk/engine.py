"""The pre-trade risk engine: every check an order must pass before it is routed.

:meth:`PreTradeRiskEngine.evaluate` runs every check (it never stops at the first failure, so a
what-if shows the whole picture) and returns a :class:`RiskResult` of :class:`CheckResult` s, each
naming the check, the limit, what was observed and the scope. The result is stored verbatim on the
order (``Order.risk_result``); a denied order is recorded as DENIED with :attr:`RiskResult.reason`.

Checks, in the order results are listed (the first failure gives the reason):

==================== ======================================================================
``kill_switch``      Trading state of every matching scope (GLOBAL, VENUE, STRATEGY,
                     INSTRUMENT). HALTED denies everything (setting it also cancels the
                     scope's working orders: ``risk.services.trading_state_set``).
                     REDUCING admits only an order
                     that reduces the strategy's absolute position in the instrument
                     without flipping it, counting the strategy's open orders on the same
                     side: position ≠ 0, the order is on the opposite side, and open
                     same-side quantity + this quantity ≤ |position| (venues' reduce-only
                     flag, made conservative by counting the working orders). Position and
                     open orders are the strategy's at the scope's venue under a VENUE-scope
                     REDUCING (reduce-only on OKX never opens a position on OKX, whatever
                     is held elsewhere) or an INSTRUMENT one naming one venue's listing
                     (``OKX:SPOT_PAIR:BTC-USDT``), aggregated across venues under the other
                     scopes (``ANY:`` instrument keys included).
``instrument_listed`` A listing was routed, on the chosen venue, matching the requested
                     instrument, with listing and venue enabled.
``lot_size``,        The listing's trading rules (Binance ``LOT_SIZE`` / ``PRICE_FILTER`` /
``tick_size``,       ``NOTIONAL`` filters): quantity a multiple of the lot size, limit price
``min_quantity``,    a multiple of the tick size, min/max quantity, min notional. An ICEBERG's
``max_quantity``,    ``display_qty`` too: each clip is an order of that size at the limit
``min_notional``     price (a whole number of lots, ≥ min quantity, ≤ max quantity, ≥ min
                     notional). ``max_quantity`` holds what reaches the venue as one order:
                     a NORMAL order; an ICEBERG's clip; a TWAP's largest slice (its quantity
                     split into horizon_secs // interval_secs at the lot size exactly as the
                     node splits it, ``odum_live.slicing.apportion``), a VWAP's with a
                     ``volume_profile`` likewise. Such a parent is never sent whole, so it may
                     exceed the maximum when every slice fits ("TWAP slice 250 BTC > listing
                     max_quantity 100 BTC" denies). A VWAP without a profile is sliced on the
                     node from market volume: its parent, which bounds every slice, is held
                     to the maximum (fails closed). The node splits a slice that still
                     exceeds it (venues/algorithms/base.py "Maximum slice").
``reference_price``  A MARKET order, or a LIMIT order under a price collar, needs a fresh
                     mid (``settings.ODUM["MARKET_DATA_MAX_AGE_SECS"]``) from
                     ``venues.marketdata``; missing, stale, or unreachable market data denies.
``price_collar``     |limit price − mid| / mid × 10,000 ≤ PRICE_COLLAR_BPS (LIMIT orders).
``max_order_quantity`` / ``max_order_notional``   per order, the notional at what the order
                     can trade at most (a SELL: the larger of its limit price and the fresh
                     mid; a BUY: its limit price; see below). Besides the configured
                     limits, a notional of 10**18 quote units or more (at the limit price, a
                     MARKET order's at the reference mid) is always denied (scope SYSTEM):
                     NUMERIC(36,18) cannot store it (``odum_live.fields.NUMERIC_BOUND``).
``repeated_order``   No order of the same strategy, routed listing, side and quantity within
                     REPEATED_ORDER_WINDOW_SECS (the longest applicable window). Only orders
                     the strategy sent count, not an execution algorithm's child slices.
``velocity``         Orders per fixed 1 s / 60 s window per scope (``risk.velocity``).
``position_limit``   Projected position = current position + open orders on the order's
                     side + this order, in the instrument aggregated across venues: the
                     strategy's (STRATEGY limits), the firm's (GLOBAL, INSTRUMENT), the
                     firm's on the venue (VENUE). Quantity (base units of the underlying,
                     see below) or notional (at the larger of the order's price and the
                     fresh mid, see below).
``gross_exposure``   Σ |position| notional + Σ open-order notional + this order's notional:
                     the strategy's (STRATEGY), the firm's (GLOBAL), on the venue (VENUE), in
                     the instrument (INSTRUMENT).
``open_exposure``    Always, limits or not (scope SYSTEM): the running totals of the
                     strategy's open orders in the listing on the order's side
                     (``risk.models.OpenOrderExposure``: Σ open quantity, Σ quantity × limit
                     price) must stay below 10**18 with this order, the most NUMERIC(36,18)
                     stores (``odum_live.fields.NUMERIC_BOUND``). Listed only when it fails.
                     Decided by the database when the order is recorded
                     (``risk.services.open_exposure_add_start``), read beforehand for a what-if.
==================== ======================================================================

Units across venues: listings of one instrument differ in contract size (OKX BTC-USDT-SWAP 0.01
BTC, Binance BTCUSDT perpetual 1 BTC), so positions and open orders add up in **base units of the
underlying**, each linear listing's quantity × contract multiplier, never raw contract counts
(:class:`risk.valuation.Holding`). Inverse contracts are quote-denominated (face value =
quantity × multiplier, in quote currency): their base units are face value ÷ price, and the price
is the lower of the order's limit price and its listing's fresh mid, taken only when the order
itself is on an inverse listing (a linear listing's price, an option premium for instance, says
nothing of the inverse listings'). Lower price, more base units: a risk check never counts less
than it should. Without that price, a MAX_POSITION_QUANTITY check holding inverse contracts has no
observed value and denies (fail closed), never sums without them; a comparison that needs no
price (reduce-only, the de-risking exemption, a notional of inverse contracts only) is made on
face values directly. MAX_ORDER_QUANTITY and the listing rules stay in the order's own unit
(contracts for derivatives). A position or open orders whose listing no longer exists (no
``venues.Instrument`` for its key) have no known contract size nor inverse flag: every check
that counts them (position limits, gross exposure, reduce-only) has no observed value and denies,
naming the holder and the missing listing, exactly as inverse contracts without a price do.

Position and gross-exposure limits never block de-risking: an order that strictly reduces the
absolute position (position + open orders on its side; the strategy's, for gross exposure) without
crossing zero (it ends on the same side or flat) passes even above the limit. An order that crosses
zero opens a new position on the other side and must end within the limit like any other order
(:func:`_derisks`).

Notional (quote currency) = quantity × price × contract multiplier; for an inverse contract
(``Instrument.is_inverse``) = quantity × contract multiplier, contracts being quote-denominated
(Deribit, Binance COIN-M: one contract = multiplier USD). The risk limits (``max_order_notional``,
a notional ``position_limit``, ``gross_exposure``) value the order being checked at what it can
trade at most: a SELL-like order at the larger of its limit price and its listing's fresh mid (a
SELL limited through the market trades near the market, so 10 BTC limited at 0.01 against a 40,000
mid counts 400,000, not 0.1), a BUY-like order at its limit price (it trades at no more, above or
below the mid), a MARKET order at the reference mid. A notional ``position_limit`` values the whole
projected position, not the order alone, at the larger of that price and the fresh mid: a position
is worth the market whatever a resting bid says (long 10 BTC at a 40,000 mid, a BUY 1 limited at
1 USDT projects 11 × 40,000 = 440,000, not 11; :meth:`_Valuation.of_position`). Without a fresh mid
a LIMIT order, and the position it projects, count at its limit price (the mid is read only when
such a limit applies, from the router's snapshots when given, and its absence denies nothing by
itself); the check's detail names the price used (:class:`_Valuation`; a position limit's: "projected
position valued at …"). The listing's ``min_notional`` and the storage bound stay at the limit
price, as the venue and the open-order totals count it. ``gross_exposure`` adds this order's value
to what is already there: open orders already in the totals at the values they were checked and
stored with, positions at mark price, else average entry price (``risk.selectors.exposure_rows``).
Limits at INSTRUMENT scope are in the instrument's quote currency; every other scope's notional
limits are in USD, where USD and the USD stablecoins (:data:`risk.valuation.USD_EQUIVALENTS`) count 1:1; an
amount in any other currency cannot be converted and fails the check closed, saying so.

A check that cannot be evaluated (no price, no listing, market data unavailable) fails closed
with the reason. Limits and kill switches are read fresh at every evaluation, so an admin edit
applies to the next order. Concurrency: see :meth:`PreTradeRiskEngine.evaluate` and ``risk.locks``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation, localcontext

from django.conf import settings
from django.utils import timezone

from odum_live.fields import NUMERIC_BOUND
from odum_live.instruments import InstrumentKey, parse_instrument_key
from odum_live.intent import BUY_LIKE_SIDES, OrderIntent
from odum_live.slicing import apportion
from positions.maths import PRECISION
from risk import locks
from risk.exposure import OpenOrderSource, default_open_order_source
from risk.models import RiskLimit, Scope, TradingState
from risk.selectors import (
    ExposureNeeds,
    PendingControls,
    RiskControls,
    StateRow,
    exposure_rows,
    open_exposure_total,
    risk_controls_start,
)
from risk.services import open_exposure_add_start, open_exposure_adjust, open_exposure_value
from risk.valuation import (
    ExposureBook,
    Holding,
    PrefetchedMarketData,
    ReferencePrice,
    common_values,
    in_limit_currency,
    reference_price,
    unlisted_reason,
)
from risk.valuation import decimal_text as _dec
from risk.velocity import velocity_counts, velocity_record, velocity_release, velocity_windows
from venues.marketdata import MarketDataStore, MarketSnapshot, market_data
from venues.models import Instrument, Venue

K = RiskLimit.Kind

CHECK_KILL_SWITCH = "kill_switch"
CHECK_INSTRUMENT_LISTED = "instrument_listed"
CHECK_LOT_SIZE = "lot_size"
CHECK_TICK_SIZE = "tick_size"
CHECK_MIN_QUANTITY = "min_quantity"
CHECK_MAX_QUANTITY = "max_quantity"
CHECK_MIN_NOTIONAL = "min_notional"
CHECK_REFERENCE_PRICE = "reference_price"
CHECK_PRICE_COLLAR = "price_collar"
CHECK_MAX_ORDER_QUANTITY = "max_order_quantity"
CHECK_MAX_ORDER_NOTIONAL = "max_order_notional"
CHECK_REPEATED_ORDER = "repeated_order"
CHECK_VELOCITY = "velocity"
CHECK_POSITION_LIMIT = "position_limit"
CHECK_GROSS_EXPOSURE = "gross_exposure"
CHECK_OPEN_EXPOSURE = "open_exposure"

#: Result order; the first failure in this order is the denial reason.
CHECK_ORDER = (
    CHECK_KILL_SWITCH, CHECK_INSTRUMENT_LISTED, CHECK_LOT_SIZE, CHECK_TICK_SIZE, CHECK_MIN_QUANTITY,
    CHECK_MAX_QUANTITY, CHECK_MIN_NOTIONAL, CHECK_REFERENCE_PRICE, CHECK_PRICE_COLLAR, CHECK_MAX_ORDER_QUANTITY,
    CHECK_MAX_ORDER_NOTIONAL, CHECK_REPEATED_ORDER, CHECK_VELOCITY, CHECK_POSITION_LIMIT, CHECK_GROSS_EXPOSURE,
    CHECK_OPEN_EXPOSURE,
)

#: Scope of the notional bound every order is held to, configured limits or not.
NOTIONAL_BOUND_SCOPE = "SYSTEM"

_DERIVATIVE_TYPES = frozenset({"PERPETUAL", "FUTURE", "OPTION"})
_BPS = Decimal("10000")
#: Limits that value the order being checked (at :class:`_Valuation`'s price).
_VALUED_KINDS = (K.MAX_ORDER_NOTIONAL, K.MAX_POSITION_NOTIONAL, K.MAX_GROSS_EXPOSURE)
_STATEFUL_KINDS = (
    K.MAX_ORDERS_PER_SECOND, K.MAX_ORDERS_PER_MINUTE, K.MAX_POSITION_QUANTITY, K.MAX_POSITION_NOTIONAL,
    K.MAX_GROSS_EXPOSURE, K.REPEATED_ORDER_WINDOW_SECS,
)


# --- results ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check against one limit.

    Parameters
    ----------
    check : str
        Check name (``CHECK_*``): ``"velocity"``, ``"position_limit"``, …
    passed : bool
        Whether the order passed this check.
    limit : str | None
        The limit with its unit and scope, e.g. ``"10 orders/s (STRATEGY:demo)"``.
    observed : str | None
        What was observed, as a decimal string (None when it could not be determined).
    scope : str
        ``GLOBAL``, ``STRATEGY:demo``, ``INSTRUMENT:ANY:SPOT_PAIR:BTC-USDT``, ``LISTING:<key>``, …
    detail : str
        How the observed value was made up, or why the check could not be evaluated.
    unit : str
        Unit of ``observed`` (the limit text names its own): ``"bps"``, ``"orders"``, a base unit (``"BTC"``,
        ``"contracts"``), a currency (``"USDT"``); ``""`` when ``observed`` is a word (``"HALTED"``, a key).
    """

    check: str
    passed: bool
    limit: str | None
    observed: str | None
    scope: str = ""
    detail: str = ""
    unit: str = ""

    def to_json(self) -> dict:
        """Return a JSON-ready dict (decimals stay strings)."""
        return {
            "check": self.check,
            "passed": self.passed,
            "limit": self.limit,
            "observed": self.observed,
            "scope": self.scope,
            "detail": self.detail,
            "unit": self.unit,
        }


@dataclass(frozen=True)
class RiskResult:
    """The outcome of a pre-trade risk evaluation.

    Parameters
    ----------
    passed : bool
        True when every check passed.
    checks : tuple of CheckResult
        Every check evaluated, in :data:`CHECK_ORDER`.
    evaluated_at : datetime
        Evaluation time, UTC.
    recorded : bool
        True when the order's velocity usage and open exposure were recorded (``dry_run=False``
        and passed). ``orders.exposure`` releases the exposure of recorded orders only.
    """

    passed: bool
    checks: tuple[CheckResult, ...]
    evaluated_at: datetime
    recorded: bool = False

    @property
    def failures(self) -> tuple[CheckResult, ...]:
        """The failed checks, in result order."""
        return tuple(c for c in self.checks if not c.passed)

    @property
    def reason(self) -> str:
        """The denial reason: the first failed check with its limit and observed value; ``""`` if passed.

        E.g. ``"velocity: observed 11 orders, limit 10 orders/s (STRATEGY:demo) — 11 orders including
        this one in the 1 s window from 2026-01-05T12:00:01+00:00 (+1 more failed check)"``.
        """
        failures = self.failures
        if not failures:
            return ""
        first = failures[0]
        observed = "n/a" if first.observed is None else f"{first.observed} {first.unit}".rstrip()
        text = f"{first.check}: observed {observed}"
        if first.limit:
            text += f", limit {first.limit}"
        if first.detail:
            text += f" — {first.detail}"
        if len(failures) > 1:
            more = len(failures) - 1
            text += f" (+{more} more failed check{'s' if more > 1 else ''})"
        return text

    def to_json(self) -> dict:
        """Return the dict stored in ``Order.risk_result`` and returned by ``POST /api/risk/check``."""
        return {
            "passed": self.passed,
            "reason": self.reason,
            "evaluated_at": self.evaluated_at.isoformat(),
            "recorded": self.recorded,
            "checks": [c.to_json() for c in self.checks],
        }


# --- the order as the checks see it ---------------------------------------------------------------
@dataclass(frozen=True)
class _Order:
    intent: OrderIntent
    listing: Instrument | None
    venue: Venue | None
    listing_key: str  # routed listing, "" when none
    key: InstrumentKey  # parsed listing key, else the requested key
    venue_code: str
    equivalence_key: str
    quote: str
    unit: str  # of the order's quantity: contracts for derivatives
    base_unit: str  # of position limits: base units of the underlying
    multiplier: Decimal | None  # None without a listing
    inverse: bool
    buy_like: bool
    signed_quantity: Decimal
    holding: Holding  # the order's quantity × contract multiplier, unsigned

    @classmethod
    def build(cls, intent: OrderIntent, listing: Instrument | None, venue: Venue | None) -> _Order:
        # Instrument.save() parses its key, so a stored listing's key always parses.
        key = parse_instrument_key(listing.instrument_key) if listing is not None else intent.instrument
        quote = (listing.quote_currency if listing is not None else "") or key.quote or ""
        base_unit = (listing.base_currency if listing is not None else "") or key.base or key.symbol or "units"
        unit = "contracts" if key.instrument_type in _DERIVATIVE_TYPES else base_unit
        inverse = bool(listing.is_inverse) if listing is not None else False
        # Without a listing (instrument_listed denies) the quantity counts as it is.
        scaled = intent.quantity * (listing.contract_multiplier if listing is not None else Decimal("1"))
        return cls(
            intent=intent,
            listing=listing,
            venue=venue,
            listing_key=listing.instrument_key if listing is not None else "",
            key=key,
            venue_code=venue.code if venue is not None else "",
            equivalence_key=key.equivalence_key,
            quote=quote,
            unit=unit,
            base_unit=base_unit,
            multiplier=listing.contract_multiplier if listing is not None else None,
            inverse=inverse,
            buy_like=intent.side in BUY_LIKE_SIDES,
            signed_quantity=intent.signed_quantity,
            holding=Holding(face=scaled) if inverse else Holding(base=scaled),
        )

    @property
    def sign(self) -> int:
        return 1 if self.buy_like else -1

    def unit_of(self, kind: str) -> str:
        """Name of a :func:`risk.valuation.common_values` unit."""
        return self.base_unit if kind == "base" else f"{self.quote or 'quote currency'} face value"

    def notional(self, quantity: Decimal, price: Decimal | None) -> Decimal | None:
        """Quote-currency notional of ``quantity`` (base units, ≥ 0) at ``price``; None if unknown."""
        if self.multiplier is None:
            return None
        if self.inverse:
            return quantity * self.multiplier
        if price is None:
            return None
        return quantity * price * self.multiplier


def _scope_is_one_venue(scope: str, scope_key: str) -> bool:
    # A VENUE scope, or an INSTRUMENT scope whose key names one venue's listing (not ``ANY:``).
    if scope == Scope.VENUE:
        return True
    return scope == Scope.INSTRUMENT and not parse_instrument_key(scope_key).is_any_venue


@dataclass(frozen=True)
class _Valuation:
    """The price the risk limits value the order being checked at, and why that price.

    :meth:`of` values the order itself (``max_order_notional``, this order's part of
    ``gross_exposure``); :meth:`of_position` the projected position of a notional ``position_limit``.

    Parameters
    ----------
    price : Decimal | None
        Quote currency per unit: for a SELL-like order the larger of the limit price and the fresh
        mid (``market``), for a BUY-like order its limit price; the limit price without a fresh mid,
        the reference mid for a MARKET order; None when a MARKET order has no mid.
    problem : str
        Why ``price`` is None.
    basis : str
        How ``price`` was chosen, for the checks' detail (``"at the fresh mid 40000 USDT, above the
        limit price 0.01"``); ``""`` for an inverse order, whose notional takes no price.
    """

    price: Decimal | None
    problem: str = ""
    basis: str = ""

    @classmethod
    def of(cls, order: _Order, market: ReferencePrice) -> _Valuation:
        limit, mid, quote = order.intent.price, market.mid, order.quote
        if limit is None:
            if mid is None:
                return cls(price=None, problem=market.problem or "no price")
            return cls(price=mid, basis=f"at the reference mid {_dec(mid)} {quote}")
        if order.inverse:
            return cls(price=limit)
        if mid is None:
            why = f": no fresh mid ({market.problem})" if market.needed else ""
            return cls(price=limit, basis=f"at the limit price {_dec(limit)} {quote}{why}")
        if mid > limit and not order.buy_like:
            # A SELL through the market trades near the mid whatever its limit says. A BUY trades at its
            # limit or better (lower) on either side of the mid: its limit price bounds its notional.
            return cls(price=mid, basis=f"at the fresh mid {_dec(mid)} {quote}, above the limit price {_dec(limit)}")
        if mid > limit:
            return cls(price=limit, basis=f"at the limit price {_dec(limit)} {quote}, which a BUY pays at most "
                                          f"(the fresh mid is {_dec(mid)})")
        return cls(price=limit, basis=f"at the limit price {_dec(limit)} {quote}, not below the fresh mid {_dec(mid)}")

    def of_quantity(self, order: _Order) -> str:
        """``"10 BTC at the fresh mid …"``; ``""`` without a basis."""
        return f"{_dec(order.intent.quantity)} {order.unit} {self.basis}" if self.basis else ""

    def of_position(self, order: _Order, market: ReferencePrice) -> _Valuation:
        """Return the valuation of the projected position: the larger of this price and the fresh mid.

        A position is worth the market whatever a resting order's limit says: a BUY limited at 1 USDT
        against a 40,000 mid pays at most 1 USDT for itself, but the 10 BTC it adds to are worth
        400,000. Only a BUY-like LIMIT order below the mid changes (a SELL-like order's price is
        already at least the mid, a MARKET order's is the mid). Without a fresh mid, or for an
        inverse order (face value takes no price), this valuation stands.
        """
        mid = market.mid
        if order.inverse or self.price is None or mid is None or mid <= self.price:
            return self
        return _Valuation(price=mid, basis=f"at the fresh mid {_dec(mid)} {order.quote}, above this order's limit "
                                           f"price {_dec(self.price)} (a position is worth the market, whatever a "
                                           f"bid says)")


@dataclass
class _Plan:
    """What the stateful checks need: lock resources and exposure rows."""

    resources: set[str] = field(default_factory=set)
    strategy: bool = False
    instrument: bool = False
    venue: bool = False
    everything: bool = False

    @property
    def needs(self) -> ExposureNeeds:
        return ExposureNeeds(strategy=self.strategy, instrument=self.instrument, venue=self.venue,
                             everything=self.everything)


def _exposure_deltas(intent: OrderIntent) -> tuple[Decimal, Decimal, Decimal]:
    # What the order adds to its open-order total: leaves, priced leaves, leaves × limit price (as stored).
    if intent.price is None:
        return intent.quantity, Decimal("0"), Decimal("0")
    return intent.quantity, intent.quantity, open_exposure_value(quantity=intent.quantity, price=intent.price)


def _derisks(projected: Decimal, current: Decimal) -> bool:
    """Return whether going from ``current`` to ``projected`` (signed, one unit) only de-risks.

    True when ``|projected| < |current|`` and ``projected`` is flat or on the same side as
    ``current``: the order reduces the position without crossing zero. An order that crosses zero
    (long 10 → short 8) opens a new position and gets no exemption from a position or exposure limit.
    """
    return abs(projected) < abs(current) and (projected == 0 or (projected > 0) == (current > 0))


def _all_passed(results: dict[str, list[CheckResult]]) -> bool:
    return all(c.passed for group in results.values() for c in group)


def _is_multiple(value: Decimal, step: Decimal) -> bool:
    # Inside the evaluation's context: quantity / lot can exceed the default 28 digits (1e18 / 1e-18).
    try:
        return value % step == 0
    except InvalidOperation:
        return False


# --- the engine ------------------------------------------------------------------------------------
class PreTradeRiskEngine:
    """Evaluate orders against pre-trade risk limits, kill switches and listing rules.

    Stateless between calls (every evaluation reads limits, states and exposure fresh), so one
    instance per process serves every thread.

    Parameters
    ----------
    open_orders : OpenOrderSource, optional
        Order-table reads (repeated-order throttle). Default:
        :func:`risk.exposure.default_open_order_source` (``orders.exposure``), resolved on first use.
    market_data_store : MarketDataStore, optional
        Reference prices. Default: :func:`venues.marketdata.market_data` at each evaluation.
    clock : callable, optional
        Returns the evaluation time, UTC-aware. Default :func:`django.utils.timezone.now`.
    """

    def __init__(
        self,
        *,
        open_orders: OpenOrderSource | None = None,
        market_data_store: MarketDataStore | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._open_orders = open_orders
        self._market_data = market_data_store
        self._clock = clock or timezone.now

    # -- public ------------------------------------------------------------------------------------
    def start(self, *, intent: OrderIntent) -> PendingControls:
        """Send the read of the limits and kill switches for ``intent`` before it is routed.

        Pass the result to :meth:`evaluate` (``controls=``). Inside a psycopg pipeline the query
        then shares a round trip with the router's read; elsewhere it is simply sent earlier.
        """
        return risk_controls_start(strategy_id=intent.strategy_id, equivalence_key=intent.instrument.equivalence_key)

    def evaluate(
        self, *, intent: OrderIntent, listing: Instrument | None, venue: Venue | None, dry_run: bool = False,
        controls: PendingControls | None = None, snapshots: Mapping[str, MarketSnapshot | None] | None = None,
    ) -> RiskResult:
        """Run every pre-trade check on ``intent`` as routed to ``listing`` on ``venue``.

        Parameters
        ----------
        intent : OrderIntent
            The validated order; quantity in base units (contracts), price in quote currency.
        listing : venues.models.Instrument or None
            The listing the router chose; None when nothing could be routed (``instrument_listed``
            then fails).
        venue : venues.models.Venue or None
            The venue of ``listing``.
        dry_run : bool
            True for a what-if: no locks, no writes, the full result.
        controls : PendingControls, optional
            From :meth:`start` for this intent; default: read now.
        snapshots : Mapping[str, MarketSnapshot | None], optional
            Market snapshots already read for this order (listing key → snapshot, None when the
            store had none), e.g. by the router (``RoutingDecision.snapshots``): the reference
            price of a listing read there is not read again.

        Returns
        -------
        RiskResult
            ``passed`` is True when every check passed. With ``dry_run=False`` and a pass, the
            order's velocity usage and open exposure are recorded in the caller's transaction
            (``recorded=True``).

        Raises
        ------
        risk.locks.TransactionRequired
            ``dry_run=False`` outside ``transaction.atomic()``.

        Notes
        -----
        With ``dry_run=False`` the caller holds ``transaction.atomic()`` and inserts the order in
        it right after (ROUTED if passed, DENIED if not, ``risk_result=result.to_json()``). The
        stateless checks run first, without a lock. If they all pass, the engine takes the
        serialization locks of every velocity, position, exposure, repeated-order and reduce-only
        scope that applies (``risk.locks``: PostgreSQL advisory locks held until the caller
        commits; SQLite's IMMEDIATE transactions already serialize writers), then reads exposure,
        so two orders can never jointly breach a limit. An order already denied by a stateless
        check takes no lock and records nothing.

        Arithmetic is exact: the whole evaluation runs in one local decimal context of
        ``positions.maths.PRECISION`` (120) significant digits, enough for a product of three
        NUMERIC(36,18) values (quantity × price × contract multiplier) and sums of them, so no check
        compares a value rounded to the default 28 digits. Only a division (inverse face value ÷
        price, the collar's deviation) rounds, as its check states; the open-order total is stored
        by :func:`risk.services.open_exposure_value`'s rule.
        """
        with localcontext(prec=PRECISION):
            return self._evaluate(intent=intent, listing=listing, venue=venue, dry_run=dry_run, controls=controls,
                                  snapshots=snapshots)

    def _evaluate(
        self, *, intent: OrderIntent, listing: Instrument | None, venue: Venue | None, dry_run: bool,
        controls: PendingControls | None, snapshots: Mapping[str, MarketSnapshot | None] | None,
    ) -> RiskResult:
        now = self._clock()
        if not dry_run:
            locks.require_transaction()
        order = _Order.build(intent, listing, venue)
        if controls is not None and order.key.equivalence_key != intent.instrument.equivalence_key:
            # A listing of another instrument (instrument_listed denies it) has INSTRUMENT rows of its own.
            controls.result(venue_code="", instrument=intent.instrument)
            controls = None
        if controls is None:
            controls = risk_controls_start(strategy_id=intent.strategy_id, equivalence_key=order.key.equivalence_key)
        controls = controls.result(venue_code=order.venue_code, instrument=order.key)
        store = self._market_data or market_data()
        if snapshots:
            store = PrefetchedMarketData(store=store, snapshots=snapshots)
        reference = self._reference(order, controls, store, now)
        market = self._market(order, controls, reference, store, now)
        conversion = self._conversion_price(order, controls, reference, store, now)
        # The order's own price (listing rules, storage bound) and the price the risk limits value it at.
        price = intent.price if intent.price is not None else reference.mid
        notional, notional_problem = self._notional(order, price, reference.problem or "no price")
        valuation = _Valuation.of(order, market)
        valued, valued_problem = self._notional(order, valuation.price, valuation.problem)

        results: dict[str, list[CheckResult]] = {name: [] for name in CHECK_ORDER}
        reducing_states = self._kill_switch(order, controls, results)
        self._listing(order, notional, notional_problem, results)
        self._reference_check(reference, order, results)
        self._collar(order, controls, reference, results)
        self._max_order(order, controls, notional, valuation, valued, valued_problem, results)
        stateless_ok = _all_passed(results)

        plan = self._plan(order, controls, reducing_states)
        if not dry_run and stateless_ok and plan.resources:
            locks.acquire(resources=plan.resources)
        # Sent before the exposure read, read after it: in a pipeline both travel with the lock.
        repeated = self._repeated_start(order, controls, now)
        rows = exposure_rows(
            strategy_id=intent.strategy_id, venue_code=order.venue_code,
            equivalence_key=order.equivalence_key, needs=plan.needs,
        )
        book = ExposureBook(rows=rows, buy_like=order.buy_like, listing_key=order.listing_key, store=store,
                            now=now, reference=market)
        self._reducing(order, reducing_states, book, conversion, results)
        self._repeated(order, repeated, results)
        self._position(order, controls, book, valuation.of_position(order, market), conversion, results)
        self._gross(order, controls, book, valuation, valued, valued_problem, conversion, results)

        recording = not dry_run and _all_passed(results)
        deltas = _exposure_deltas(intent)
        # Sent before velocity is counted and read after it: in a pipeline both share a round trip.
        added = open_exposure_add_start(strategy_id=intent.strategy_id, instrument_key=order.listing_key,
                                        side=intent.side, leaves_delta=deltas[0], priced_delta=deltas[1],
                                        value_delta=deltas[2]) if recording else None
        if dry_run:
            self._open_exposure(order, deltas, refused=False, results=results)
        counted = self._velocity(controls, now, recording, results)
        recorded = False
        if added is not None:
            exposure_added = added()
            if not exposure_added:
                self._open_exposure(order, deltas, refused=True, results=results)
            recorded = _all_passed(results)
            if not recorded:
                # One of the two guarded writes refused the order: take back the other.
                velocity_release(windows=counted)
                if exposure_added:
                    open_exposure_adjust(strategy_id=intent.strategy_id, instrument_key=order.listing_key,
                                         side=intent.side, leaves_delta=-deltas[0], priced_delta=-deltas[1],
                                         value_delta=-deltas[2])
        checks = tuple(c for name in CHECK_ORDER for c in results[name])
        passed = all(c.passed for c in checks)
        return RiskResult(passed=passed, checks=checks, evaluated_at=now, recorded=recorded)

    # -- stateless checks ----------------------------------------------------------------------------
    @staticmethod
    def _kill_switch(order: _Order, controls: RiskControls, results) -> list[StateRow]:
        reducing = []
        out = results[CHECK_KILL_SWITCH]
        for st in controls.states:
            if st.state == TradingState.State.HALTED:
                out.append(CheckResult(
                    check=CHECK_KILL_SWITCH, passed=False, limit=f"not HALTED ({st.scope_label})", observed="HALTED",
                    scope=st.scope_label, detail=f"trading halted at {st.scope_label}: {st.reason}",
                ))
            elif st.state == TradingState.State.REDUCING:
                reducing.append(st)
        if not controls.states:
            out.append(CheckResult(check=CHECK_KILL_SWITCH, passed=True, limit="ACTIVE", observed="ACTIVE",
                                   scope="ALL", detail="every matching scope is ACTIVE"))
        return reducing

    @staticmethod
    def _listing(order: _Order, notional, notional_problem: str, results) -> None:
        intent, listing, venue = order.intent, order.listing, order.venue
        requested = str(intent.instrument)
        problem = ""
        if listing is None:
            problem = f"no listing could be routed for {requested}"
        elif venue is None or listing.venue_id != venue.code:
            problem = f"listing {listing.instrument_key} is not on the chosen venue {order.venue_code or '(none)'}"
        elif order.key.equivalence_key != intent.instrument.equivalence_key or (
            not intent.instrument.is_any_venue and order.key.venue != intent.instrument.venue
        ):
            problem = f"listing {listing.instrument_key} is not the requested instrument {requested}"
        elif not listing.enabled:
            problem = f"listing {listing.instrument_key} is disabled"
        elif not venue.enabled:
            problem = f"venue {venue.code} is disabled"
        results[CHECK_INSTRUMENT_LISTED].append(CheckResult(
            check=CHECK_INSTRUMENT_LISTED, passed=not problem, limit="listed and enabled",
            observed=listing.instrument_key if listing is not None else None,
            scope=f"LISTING:{listing.instrument_key}" if listing is not None else f"INSTRUMENT:{requested}",
            detail=problem or f"routed to {listing.instrument_key} on {venue.code}",
        ))
        if listing is None:
            return  # no listing, no listing rules: instrument_listed already denies
        scope = f"LISTING:{listing.instrument_key}"
        qty = intent.quantity
        PreTradeRiskEngine._size_rules(order, listing, scope, results, size=qty, notional=notional,
                                       notional_problem=notional_problem)
        PreTradeRiskEngine._max_quantity(order, listing, scope, results)
        if intent.order_type == "LIMIT" or intent.price is not None:
            price = intent.price
            results[CHECK_TICK_SIZE].append(CheckResult(
                check=CHECK_TICK_SIZE,
                passed=price is not None and price > 0 and _is_multiple(price, listing.tick_size),
                limit=f"multiple of {_dec(listing.tick_size)} {order.quote}", observed=_dec(price), scope=scope,
                unit=order.quote,
                detail="limit price must be a positive whole number of ticks" if price is not None
                else "a LIMIT order needs a price",
            ))
        if intent.display_qty is not None:
            # An ICEBERG shows display_qty at a time: each clip is an order of that size at the limit price,
            # which the venue (and the node's RiskEngine) holds to the listing's rules like any other; the
            # node would round a display off the lot grid down, and a clip below a minimum is denied there.
            PreTradeRiskEngine._size_rules(order, listing, scope, results, size=intent.display_qty,
                                           notional=order.notional(intent.display_qty, intent.price),
                                           clip="display_qty (the size of each iceberg clip)")

    @staticmethod
    def _max_quantity(order: _Order, listing, scope: str, results) -> None:
        # The listing's max_quantity holds each order that reaches the venue: a NORMAL order itself; an
        # algorithm's parent never goes whole, only its slices (TWAP, VWAP with a volume_profile: the
        # largest of the node's split, odum_live.slicing.apportion at the lot size) or its clips (ICEBERG
        # display_qty). A VWAP whose profile the node derives has slices unknown here: its parent, which
        # bounds them, is held to it (fails closed). venues/algorithms/base.py "Maximum slice" is the
        # node's backstop.
        intent, maximum = order.intent, listing.max_quantity
        if maximum is None:
            return
        unit = order.unit
        limit = f"{_dec(maximum)} {unit}"
        if intent.display_qty is not None:
            size, passed = intent.display_qty, intent.display_qty <= maximum
            detail = "display_qty (the size of each iceberg clip)" + ("" if passed else " above the listing's maximum")
        elif intent.slice_weights:
            count = len(intent.slice_weights)
            lots = int(intent.quantity // listing.lot_size)  # off the lot grid: lot_size denies
            size = max(apportion(lots, intent.slice_weights)) * listing.lot_size
            passed = size <= maximum
            plan = ("horizon_secs // interval_secs" if intent.exec_algorithm == "TWAP" else "volume_profile")
            detail = (f"{intent.exec_algorithm} slice {_dec(size)} {unit} {'<=' if passed else '>'} listing "
                      f"max_quantity {limit}: the largest of {count} planned ({_dec(intent.quantity)} {unit} "
                      f"split by {plan}); the parent is never sent whole")
        else:
            size, passed = intent.quantity, intent.quantity <= maximum
            detail = "" if passed else "quantity above the listing's maximum"
            if not passed and intent.exec_algorithm == "VWAP":
                detail += (" (a VWAP without volume_profile is sliced on the node from market volume: only a "
                           "parent within the maximum is known to fit; give a volume_profile to have each "
                           "slice checked instead)")
        results[CHECK_MAX_QUANTITY].append(CheckResult(
            check=CHECK_MAX_QUANTITY, passed=passed, limit=limit, observed=_dec(size), scope=scope, detail=detail,
            unit=unit,
        ))

    @staticmethod
    def _size_rules(order: _Order, listing, scope: str, results, *, size: Decimal, notional: Decimal | None,
                    notional_problem: str = "", clip: str = "") -> None:
        # The listing's lot size, minimum quantity and minimum notional for one order size: the order's
        # quantity, or (``clip`` naming it) an iceberg's clip, whose notional is at the limit price.
        unit, noun = order.unit, clip or "quantity"
        results[CHECK_LOT_SIZE].append(CheckResult(
            check=CHECK_LOT_SIZE, passed=_is_multiple(size, listing.lot_size),
            limit=f"multiple of {_dec(listing.lot_size)} {unit}", observed=_dec(size), scope=scope, unit=unit,
            detail=f"{noun} must be a whole number of lots",
        ))
        if listing.min_quantity is not None:
            results[CHECK_MIN_QUANTITY].append(CheckResult(
                check=CHECK_MIN_QUANTITY, passed=size >= listing.min_quantity,
                limit=f"{_dec(listing.min_quantity)} {unit}", observed=_dec(size), scope=scope, unit=unit,
                detail=f"{noun} below the listing's minimum" if size < listing.min_quantity else clip,
            ))
        if listing.min_notional is not None:
            priced = f"{clip} at the limit price" if clip else ""
            if notional is None:
                detail = f"{clip}: notional unknown" if clip else f"notional unknown: {notional_problem}"
            elif notional < listing.min_notional:
                detail = (f"{priced}: " if clip else "") + "notional below the listing's minimum"
            else:
                detail = priced
            results[CHECK_MIN_NOTIONAL].append(CheckResult(
                check=CHECK_MIN_NOTIONAL, passed=notional is not None and notional >= listing.min_notional,
                limit=f"{_dec(listing.min_notional)} {order.quote}", observed=_dec(notional), scope=scope,
                unit=order.quote,
                detail=detail,
            ))

    def _reference(
        self, order: _Order, controls: RiskControls, store: MarketDataStore, now: datetime
    ) -> ReferencePrice:
        intent = order.intent
        needed = intent.price is None or intent.order_type == "MARKET" or bool(controls.of_kind(K.PRICE_COLLAR_BPS))
        if not needed:
            return ReferencePrice(needed=False)
        if order.listing is None:
            return ReferencePrice(needed=True, problem="no listing to take a reference price for")
        return reference_price(store=store, listing_key=order.listing_key, now=now)

    @staticmethod
    def _market(
        order: _Order, controls: RiskControls, reference: ReferencePrice, store: MarketDataStore, now: datetime
    ) -> ReferencePrice:
        # The fresh mid a LIMIT order and the position it projects are valued against (_Valuation): the
        # reference when it was read, else read only when a limit values the order (an inverse order's
        # notional takes no price). Its absence denies nothing: the order then counts at its limit price.
        if reference.needed or order.listing is None or order.inverse or not controls.of_kind(*_VALUED_KINDS):
            return reference
        return reference_price(store=store, listing_key=order.listing_key, now=now)

    @staticmethod
    def _notional(order: _Order, price: Decimal | None, price_problem: str) -> tuple[Decimal | None, str]:
        # The order's notional at ``price`` and, when unknown, why.
        notional = order.notional(order.intent.quantity, price)
        if notional is not None:
            return notional, ""
        if order.listing is None:
            return None, "no listing to take the contract multiplier from"
        return None, f"no price: {price_problem}"

    @staticmethod
    def _conversion_price(
        order: _Order, controls: RiskControls, reference: ReferencePrice, store: MarketDataStore, now: datetime
    ) -> ReferencePrice:
        # The price that turns inverse contracts' face value into base units: only for an order on an
        # inverse listing (a linear listing's price is not the inverse listings'), the lower of its
        # limit price and the fresh mid, so a SELL limited far above the market is not counted small.
        # Read without a check of its own: a missing mid fails the quantity limits that need it, and
        # never blocks de-risking.
        if not order.inverse or order.listing is None:
            return ReferencePrice(needed=False, problem="the order is not on an inverse listing")
        if reference.mid is None and not reference.needed and controls.of_kind(K.MAX_POSITION_QUANTITY):
            reference = reference_price(store=store, listing_key=order.listing_key, now=now)
        if reference.mid is None:
            return ReferencePrice(needed=True, problem=reference.problem or "no reference mid")
        price = order.intent.price
        return ReferencePrice(needed=True, mid=min(reference.mid, price) if price is not None else reference.mid,
                              age_secs=reference.age_secs)

    @staticmethod
    def _reference_check(reference: ReferencePrice, order: _Order, results) -> None:
        if not reference.needed:
            return
        max_age = settings.ODUM["MARKET_DATA_MAX_AGE_SECS"]
        scope = f"LISTING:{order.listing_key}" if order.listing_key else f"INSTRUMENT:{order.intent.instrument}"
        results[CHECK_REFERENCE_PRICE].append(CheckResult(
            check=CHECK_REFERENCE_PRICE, passed=reference.mid is not None,
            limit=f"fresh mid within {max_age} s", observed=_dec(reference.mid), scope=scope, unit=order.quote,
            detail=reference.problem or f"mid {_dec(reference.mid)} {order.quote}, {reference.age_secs:.3f} s old",
        ))

    @staticmethod
    def _collar(order: _Order, controls: RiskControls, reference: ReferencePrice, results) -> None:
        price = order.intent.price
        if order.intent.order_type != "LIMIT" or price is None:
            return  # a MARKET order has no price to collar; it needs a fresh reference instead
        for limit in controls.of_kind(K.PRICE_COLLAR_BPS):
            label = f"{_dec(limit.value)} bps from mid ({limit.scope_label})"
            if reference.mid is None:
                results[CHECK_PRICE_COLLAR].append(CheckResult(
                    check=CHECK_PRICE_COLLAR, passed=False, limit=label, observed=None, scope=limit.scope_label,
                    unit="bps",
                    detail=f"no reference mid: {reference.problem}",
                ))
                continue
            # A fat-fingered price far from a tiny mid (10**16 vs 0.00001: 10**25 bps) has more digits than
            # the default 28 can quantize; NUMERIC(36,18) bounds it below 10**41 (the evaluation's context).
            deviation = abs(price - reference.mid) / reference.mid * _BPS
            shown = deviation.quantize(Decimal("0.0001"))
            results[CHECK_PRICE_COLLAR].append(CheckResult(
                check=CHECK_PRICE_COLLAR, passed=deviation <= limit.value, limit=label,
                observed=_dec(shown), scope=limit.scope_label, unit="bps",
                detail=f"limit price {_dec(price)} vs mid {_dec(reference.mid)} {order.quote}",
            ))

    @staticmethod
    def _max_order(order: _Order, controls: RiskControls, notional, valuation: _Valuation, valued,
                   valued_problem: str, results) -> None:
        qty = order.intent.quantity
        if notional is not None and notional >= NUMERIC_BOUND:
            # Always applies, limits or not: exposure, position and PnL of such an order could not be
            # stored (a LIMIT order's quantity × price is refused before, by orders.services.request).
            results[CHECK_MAX_ORDER_NOTIONAL].append(CheckResult(
                check=CHECK_MAX_ORDER_NOTIONAL, passed=False,
                limit=f"below {_dec(NUMERIC_BOUND)} {order.quote} ({NOTIONAL_BOUND_SCOPE})", observed=_dec(notional),
                scope=NOTIONAL_BOUND_SCOPE, unit=order.quote,
                detail="notional (quantity × price × contract multiplier; a MARKET order at the reference mid) "
                       "does not fit NUMERIC(36,18), at most 18 integer digits",
            ))
        for limit in controls.of_kind(K.MAX_ORDER_QUANTITY):
            results[CHECK_MAX_ORDER_QUANTITY].append(CheckResult(
                check=CHECK_MAX_ORDER_QUANTITY, passed=qty <= limit.value,
                limit=f"{_dec(limit.value)} {order.unit} ({limit.scope_label})", observed=_dec(qty),
                scope=limit.scope_label, unit=order.unit,
            ))
        for limit in controls.of_kind(K.MAX_ORDER_NOTIONAL):
            amount, ccy, problem = in_limit_currency(amount=valued, quote=order.quote, limit=limit,
                                                     unknown=valued_problem)
            results[CHECK_MAX_ORDER_NOTIONAL].append(CheckResult(
                check=CHECK_MAX_ORDER_NOTIONAL, passed=amount is not None and amount <= limit.value,
                limit=f"{_dec(limit.value)} {ccy} ({limit.scope_label})", observed=_dec(amount),
                scope=limit.scope_label, unit=ccy,
                detail="; ".join(p for p in (valuation.of_quantity(order), problem) if p),
            ))

    # -- stateful checks ------------------------------------------------------------------------------
    @staticmethod
    def _open_exposure(order: _Order, deltas: tuple[Decimal, Decimal, Decimal], *, refused: bool, results) -> None:
        # The open-order totals this order would make, against what NUMERIC(36,18) stores; a result only
        # when they do not fit (or the database refused the addition).
        if not order.listing_key:
            return  # nothing routed, nothing recorded (instrument_listed denies)
        current = open_exposure_total(strategy_id=order.intent.strategy_id, instrument_key=order.listing_key,
                                      side=order.intent.side)
        totals = [c + d for c, d in zip(current, deltas, strict=True)]
        names = ((f"open quantity ({order.unit})", order.unit), (f"priced open quantity ({order.unit})", order.unit),
                 (f"Σ open quantity × limit price ({order.quote})", order.quote))
        over = [(total, name, unit, c, d) for total, (name, unit), c, d in zip(totals, names, current, deltas,
                                                                             strict=True) if total >= NUMERIC_BOUND]
        if not over and not refused:
            return
        out = results[CHECK_OPEN_EXPOSURE]
        where = f"open {order.intent.side} orders of {order.intent.strategy_id} in {order.listing_key}"
        if not over:
            out.append(CheckResult(
                check=CHECK_OPEN_EXPOSURE, passed=False, limit=f"below {_dec(NUMERIC_BOUND)} ({NOTIONAL_BOUND_SCOPE})",
                observed=None, scope=NOTIONAL_BOUND_SCOPE,
                detail=f"{where}: a total reached the storage bound while this order was recorded (concurrent orders)",
            ))
            return
        total, name, unit, current_value, delta = max(over, key=lambda o: o[0])
        out.append(CheckResult(
            check=CHECK_OPEN_EXPOSURE, passed=False, observed=_dec(total), scope=NOTIONAL_BOUND_SCOPE, unit=unit,
            limit=f"below {_dec(NUMERIC_BOUND)} {unit} ({NOTIONAL_BOUND_SCOPE})",
            detail=f"{where}: {name} {_dec(current_value)} + this order {_dec(delta)} does not fit NUMERIC(36,18), "
                   f"at most 18 integer digits",
        ))

    @staticmethod
    def _velocity(controls: RiskControls, now: datetime, recording: bool, results) -> tuple:
        # Last check: when every other check passed (and not a dry run) the order is counted here,
        # all windows or none; otherwise the windows are only read. Returns the windows it was counted in.
        windows = velocity_windows(limits=controls.of_kind(K.MAX_ORDERS_PER_SECOND, K.MAX_ORDERS_PER_MINUTE), now=now)
        if not windows:
            return ()
        if recording:
            admitted, counts = velocity_record(windows=windows)
        else:
            counts = {key: count + 1 for key, count in velocity_counts(windows=windows).items()}
            admitted = True
        out = results[CHECK_VELOCITY]
        for w in windows:
            observed = counts[w.bucket_key]
            out.append(CheckResult(
                check=CHECK_VELOCITY,
                passed=observed <= w.max_orders,
                limit=f"{_dec(w.limit.value)} {'orders/s' if w.seconds == 1 else 'orders/min'} ({w.limit.scope_label})",
                observed=str(observed),
                scope=w.limit.scope_label,
                unit="orders",
                detail=f"{observed} orders including this one in the {w.seconds} s window from "
                       f"{w.window_start.isoformat()}",
            ))
        if not admitted and all(c.passed for c in out):
            # Refused by the guarded upsert although the re-read shows room: a window filled and
            # emptied concurrently. Deny rather than route an order that was not counted.
            out.append(CheckResult(check=CHECK_VELOCITY, passed=False, limit=None, observed=None,
                                   detail="velocity window was full when this order was counted"))
        return windows if recording and admitted else ()

    @staticmethod
    def _plan(order: _Order, controls: RiskControls, reducing_states) -> _Plan:
        plan = _Plan()
        strategy = f"STRATEGY:{order.intent.strategy_id}"
        equivalence = f"EQUIVALENCE:{order.equivalence_key}"
        for limit in controls.of_kind(*_STATEFUL_KINDS):
            if limit.kind in (K.MAX_ORDERS_PER_SECOND, K.MAX_ORDERS_PER_MINUTE):
                plan.resources.add(limit.scope_label)
            elif limit.kind == K.REPEATED_ORDER_WINDOW_SECS:
                plan.resources.add(strategy)
            elif limit.kind in (K.MAX_POSITION_QUANTITY, K.MAX_POSITION_NOTIONAL):
                if limit.scope == Scope.STRATEGY:
                    plan.resources.add(strategy)
                    plan.strategy = True
                else:
                    plan.resources.add(equivalence)
                    plan.instrument = True
            elif limit.kind == K.MAX_GROSS_EXPOSURE:
                # The de-risking exemption reads the strategy's position: lock and read it too.
                plan.resources.add(strategy)
                plan.strategy = True
                if limit.scope == Scope.GLOBAL:
                    plan.resources.add(Scope.GLOBAL)
                    plan.everything = True
                elif limit.scope == Scope.VENUE:
                    plan.resources.add(limit.scope_label)
                    plan.venue = True
                elif limit.scope == Scope.INSTRUMENT:
                    plan.resources.add(equivalence)
                    plan.instrument = True
        if reducing_states:
            plan.resources.add(strategy)
            plan.strategy = True
        return plan

    @staticmethod
    def _reducing(order: _Order, reducing_states, book: ExposureBook, conversion: ReferencePrice, results) -> None:
        judged: dict[str, tuple[bool, Decimal | None, str]] = {}
        for st in reducing_states:
            # A venue's reduce-only, or one listing's (an INSTRUMENT key naming a venue), guards the
            # strategy's position on that venue; other scopes the instrument's across venues.
            population = "strategy_venue" if _scope_is_one_venue(st.scope, st.scope_key) else "strategy"
            if population not in judged:
                judged[population] = PreTradeRiskEngine._reduce_only(order, book, population, conversion)
            reduces, projected, unit, made_of = judged[population]
            results[CHECK_KILL_SWITCH].append(CheckResult(
                check=CHECK_KILL_SWITCH, passed=reduces, limit=f"REDUCING ({st.scope_label}): reduce-only",
                observed=_dec(projected), scope=st.scope_label, unit=unit,
                detail=(f"{made_of}: "
                        + ("reduces the position without flipping it" if reduces
                           else "does not reduce the position, or would flip it")
                        + f"; reduce-only because: {st.reason}"),
            ))

    @staticmethod
    def _reduce_only(order: _Order, book: ExposureBook, population: str,
                     conversion: ReferencePrice) -> tuple[bool, Decimal | None, str, str]:
        # (reduces without flipping, projected position, its unit, how it was made up) of the strategy's position
        # in the instrument: across venues ("strategy") or on the order's venue ("strategy_venue").
        position, open_same = book.position(population), book.open_same_side(population)
        where = f" on {order.venue_code}" if population == "strategy_venue" else ""
        common = common_values([position, open_same, order.holding], conversion.mid)
        if common is None:
            why = unlisted_reason([position, open_same]) or (
                f"linear and inverse listings held and no price to convert inverse contracts to base units "
                f"({conversion.problem})")
            return False, None, "", f"{why}: cannot tell"
        (position_v, open_v, mine), kind = common
        reduces = position_v != 0 and (position_v > 0) != order.buy_like and open_v + mine <= abs(position_v)
        projected = position_v + order.sign * (open_v + mine)
        made_of = (f"position{where} {_dec(position_v)} {order.unit_of(kind)}, open {order.intent.side} orders"
                   f"{where} {_dec(open_v)}, this order {_dec(order.sign * mine)}")
        return reduces, projected, order.unit_of(kind), made_of

    def _repeated_start(self, order: _Order, controls: RiskControls, now: datetime):
        # (limit, since, count reader) of the repeated-order check; None when it does not apply.
        limits = controls.of_kind(K.REPEATED_ORDER_WINDOW_SECS)
        if not limits or order.listing is None:
            return None  # without a routed listing there is nothing to compare (instrument_listed denies)
        limit = max(limits, key=lambda lim: (lim.value, lim.scope_label))  # the longest window decides
        if limit.value <= 0:
            return limit, None, None
        try:
            since = now - timedelta(seconds=float(limit.value))
        except OverflowError:  # a "never repeat" window reaching before year 1: every order counts
            since = datetime.min.replace(tzinfo=UTC)
        source = self._open_orders or default_open_order_source()
        query = dict(strategy_id=order.intent.strategy_id, instrument_key=order.listing_key, side=order.intent.side,
                     quantity=order.intent.quantity, since=since)
        start = getattr(source, "repeat_count_start", None)  # optional part of OpenOrderSource
        return limit, since, (start(**query) if start is not None else lambda: source.repeat_count(**query))

    @staticmethod
    def _repeated(order: _Order, repeated, results) -> None:
        if repeated is None:
            return
        limit, since, read_count = repeated
        label = f"no identical order within {_dec(limit.value)} s ({limit.scope_label})"
        if read_count is None:
            results[CHECK_REPEATED_ORDER].append(CheckResult(
                check=CHECK_REPEATED_ORDER, passed=True, limit=label, observed="0", scope=limit.scope_label,
                unit="orders",
                detail="window is 0 s: throttle off",
            ))
            return
        count = read_count()
        results[CHECK_REPEATED_ORDER].append(CheckResult(
            check=CHECK_REPEATED_ORDER, passed=count == 0, limit=label, observed=str(count), scope=limit.scope_label,
            unit="orders",
            detail=f"{count} order(s) with the same strategy, listing, side {order.intent.side} and quantity "
                   f"{_dec(order.intent.quantity)} since {since.isoformat()}",
        ))

    @staticmethod
    def _position(
        order: _Order, controls: RiskControls, book: ExposureBook, valuation: _Valuation,
        conversion: ReferencePrice, results
    ) -> None:
        # Quantities add up in base units of the underlying (quantity × contract multiplier); the face
        # value of inverse contracts only at the conversion price (see _conversion_price). ``valuation``
        # values the projected position (_Valuation.of_position), not the order alone.
        no_conversion = f"no price to convert inverse contracts to base units: {conversion.problem}"
        for limit in controls.of_kind(K.MAX_POSITION_QUANTITY, K.MAX_POSITION_NOTIONAL):
            population = {Scope.STRATEGY: "strategy", Scope.VENUE: "venue"}.get(limit.scope, "firm")
            position = book.position(population)
            open_same = book.open_same_side(population).scaled(order.sign)
            base = position + open_same
            projected = base + order.holding.scaled(order.sign)
            common = common_values([position, open_same, order.holding.scaled(order.sign), projected, base],
                                   conversion.mid)
            unsized = unlisted_reason([base])
            if common is None:
                reduces = False
                made_of = unsized or (f"{population} position, open {order.intent.side} orders and this order hold "
                                      f"linear and inverse contracts")
                base_units = None
            else:
                (pos_v, open_v, mine_v, projected_v, base_v), kind = common
                reduces = _derisks(projected_v, base_v)
                made_of = (f"{population} position {_dec(pos_v)} + open {order.intent.side} orders {_dec(open_v)} "
                           f"+ this order {_dec(mine_v)} = {_dec(projected_v)} {order.unit_of(kind)}")
                base_units = abs(projected_v) if kind == "base" else None
                if projected.face and kind == "base":
                    made_of += (f" (inverse contracts {_dec(projected.face)} {order.quote} at "
                                f"{_dec(conversion.mid)} {order.quote})")
            if limit.kind == K.MAX_POSITION_QUANTITY:
                observed, ccy = base_units, order.base_unit
                problem = "" if observed is not None else no_conversion
            else:
                native, unknown = PreTradeRiskEngine._position_notional(order, projected, valuation.price,
                                                                        valuation.problem, conversion)
                observed, ccy, problem = in_limit_currency(amount=native, quote=order.quote, limit=limit,
                                                           unknown=unknown)
                if valuation.basis and native is not None and not projected.face:
                    made_of += f"; projected position valued {valuation.basis}"
            if unsized:
                problem = ""  # made_of already names what cannot be sized
            within = observed is not None and observed <= limit.value
            detail = made_of + (f"; {problem}" if problem else "")
            if not within and reduces:
                detail += "; reduces the absolute position without crossing zero: allowed above the limit"
            results[CHECK_POSITION_LIMIT].append(CheckResult(
                check=CHECK_POSITION_LIMIT, passed=within or reduces,
                limit=f"{_dec(limit.value)} {ccy} ({limit.scope_label})", observed=_dec(observed),
                scope=limit.scope_label, detail=detail, unit=ccy,
            ))

    @staticmethod
    def _position_notional(order: _Order, projected: Holding, price, price_problem: str,
                           conversion: ReferencePrice) -> tuple[Decimal | None, str]:
        # |projected| in quote currency: base units at the position's valuation price, face value as it is.
        if order.multiplier is None:
            return None, "no listing to take the contract multiplier from"
        if projected.unlisted:
            return None, unlisted_reason([projected])
        if not projected.face:
            return (abs(projected.base) * price, "") if price is not None else (None, f"no price: {price_problem}")
        if not projected.base:
            return abs(projected.face), ""
        if conversion.mid is None:
            return None, f"no price to convert inverse contracts to base units: {conversion.problem}"
        return abs(projected.base * conversion.mid + projected.face), ""

    @staticmethod
    def _gross(
        order: _Order, controls: RiskControls, book: ExposureBook, valuation: _Valuation, valued,
        valued_problem: str, conversion: ReferencePrice, results
    ) -> None:
        limits = controls.of_kind(K.MAX_GROSS_EXPOSURE)
        if not limits:
            return
        base = book.position("strategy") + book.open_same_side("strategy").scaled(order.sign)
        common = common_values([base + order.holding.scaled(order.sign), base], conversion.mid)
        reduces = common is not None and _derisks(*common[0])
        for limit in limits:
            population = {Scope.STRATEGY: "strategy", Scope.VENUE: "venue", Scope.INSTRUMENT: "instrument"}.get(
                limit.scope, "firm")
            native_ok = limit.scope == Scope.INSTRUMENT
            existing, problem = book.gross(population, native_ok=native_ok)
            mine, _, mine_problem = in_limit_currency(amount=valued, quote=order.quote, limit=limit,
                                                      unknown=valued_problem)
            ccy = order.quote if native_ok else "USD"
            problems = [p for p in (problem, mine_problem) if p]
            observed = existing + mine if existing is not None and mine is not None else None
            within = observed is not None and observed <= limit.value
            how = valuation.of_quantity(order)
            detail = (f"{population} positions and open orders {_dec(existing) or 'n/a'} + this order "
                      f"{_dec(mine) or 'n/a'} {ccy}" + (f" ({how})" if how else "")
                      + (f"; {'; '.join(problems)}" if problems else ""))
            if not within and reduces:
                detail += "; reduces the strategy's position without crossing zero: allowed above the limit"
            results[CHECK_GROSS_EXPOSURE].append(CheckResult(
                check=CHECK_GROSS_EXPOSURE, passed=within or reduces,
                limit=f"{_dec(limit.value)} {ccy} ({limit.scope_label})", observed=_dec(observed),
                scope=limit.scope_label, detail=detail, unit=ccy,
            ))
