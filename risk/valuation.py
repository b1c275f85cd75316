"""Prices and notionals for pre-trade risk: reference mids, currency rules, the exposure book.

- :func:`reference_price` — the fresh mid of a listing from ``venues.marketdata``, or why there is
  none (missing, stale, unreachable), never an exception.
- :func:`in_limit_currency` — express a quote-currency amount in a limit's currency: the
  instrument's quote currency for INSTRUMENT-scope limits, USD otherwise, with USD and the USD
  stablecoins (:data:`USD_EQUIVALENTS`) counted 1:1 and any other currency refused (no FX source
  exists in the service, so converting would be guessing).
- :class:`Holding` — a quantity summed across listings of different contract sizes: base units of
  the underlying for linear listings, face value for inverse ones, never raw contract counts.
- :class:`ExposureBook` — positions and open-order totals of one evaluation, summed per population.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_UP, Decimal, localcontext

from django.conf import settings

from risk.models import Scope
from risk.selectors import ExposureRow, LimitRow
from venues.marketdata import MarketDataError, MarketDataStore, MarketSnapshot

#: Quote currencies counted 1:1 as USD when notionals of different instruments are added up.
USD_EQUIVALENTS = frozenset({"USD", "USDT", "USDC", "BUSD", "FDUSD", "TUSD", "USDP", "DAI", "PYUSD"})

_NO_USD = "has no USD conversion (only USD and USD stablecoins count 1:1)"


def decimal_text(value: Decimal | int | None) -> str | None:
    """Return ``value`` as plain decimal text without exponent or trailing zeros (``"0.001"``)."""
    if value is None:
        return None
    value = Decimal(value)
    if value == 0:
        return "0"
    return format(value.normalize(), "f")


@dataclass(frozen=True, slots=True)
class Holding:
    """A quantity of one instrument summed over listings whose contracts differ in size.

    Contract counts of different listings do not add up (an OKX BTC-USDT-SWAP contract is 0.01 BTC,
    a Binance BTCUSDT perpetual 1 BTC), so each listing's quantity is scaled by its contract
    multiplier first, into one of two parts that are never silently added together:

    Parameters
    ----------
    base : Decimal
        Linear listings: Σ quantity × contract multiplier, **base units of the underlying** (BTC).
    face : Decimal
        Inverse listings (quote-denominated contracts: Deribit, Binance COIN-M): Σ quantity ×
        contract multiplier, the contracts' **face value in quote currency** (USD). Its size in base
        units depends on a price: ``face / price`` (:meth:`in_base`).

    unlisted : frozenset of str
        Positions and open orders whose listing no longer exists (``ExposureRow.unlisted``: each
        names the holder and the missing listing). Their contract multiplier and inverse flag are
        unknown, so the holding has no size in base units: :meth:`in_base` and
        :func:`common_values` give None, as for inverse contracts without a price.

    Both are signed for positions (+ long) and unsigned for open-order totals.
    """

    base: Decimal = Decimal("0")
    face: Decimal = Decimal("0")
    unlisted: frozenset[str] = frozenset()

    def __add__(self, other: Holding) -> Holding:
        return Holding(base=self.base + other.base, face=self.face + other.face,
                       unlisted=self.unlisted | other.unlisted)

    def scaled(self, sign: int) -> Holding:
        """Return the holding times ``sign`` (+1 or -1)."""
        return Holding(base=self.base * sign, face=self.face * sign, unlisted=self.unlisted)

    def in_base(self, price: Decimal | None) -> Decimal | None:
        """Return the holding in base units: ``base + face / price``; None when it needs a price and has none.

        ``price`` is in quote currency per base unit. The inverse part is rounded away from zero to
        18 decimal places (NUMERIC(36,18)), so a risk check never counts less than the holding.
        """
        if self.unlisted:
            return None
        if not self.face:
            return self.base
        if price is None or price <= 0:
            return None
        with localcontext() as ctx:
            ctx.prec = 100  # face ≤ 10**18, price ≥ 10**-18: the quotient has ≤ 36 integer digits
            return self.base + (self.face / price).quantize(Decimal(1).scaleb(-18), rounding=ROUND_UP)


def common_values(holdings: Sequence[Holding], price: Decimal | None) -> tuple[list[Decimal], str] | None:
    """Express ``holdings`` in one unit so they can be compared; None when no unit fits them all.

    Parameters
    ----------
    holdings : sequence of Holding
    price : Decimal | None
        Quote currency per base unit, to convert face value (:meth:`Holding.in_base`).

    Returns
    -------
    (list of Decimal, str) | None
        The signed values and their unit: ``"base"`` (base units; face value converted at
        ``price``, or none held) or ``"face"`` (quote currency; only inverse listings held, no price
        needed: comparing face values is comparing base units at any one price). None when linear
        and inverse parts are both held and there is no price, or when any holding counts a
        position or open orders whose listing no longer exists (:func:`unlisted_reason` says which).
    """
    if any(h.unlisted for h in holdings):
        return None
    if all(not h.face for h in holdings):
        return [h.base for h in holdings], "base"
    if price is not None and price > 0:
        return [h.in_base(price) for h in holdings], "base"
    if all(not h.base for h in holdings):
        return [h.face for h in holdings], "face"
    return None


def unlisted_reason(holdings: Iterable[Holding]) -> str:
    """Return why ``holdings`` cannot be sized for want of a listing, ``""`` when every listing exists.

    E.g. ``"position of demo in OKX:PERPETUAL:BTC-USDT@LIN: its listing OKX:PERPETUAL:BTC-USDT@LIN no
    longer exists (no venues.Instrument), so its contract multiplier and inverse flag are unknown"``.
    """
    return "; ".join(sorted(frozenset().union(*(h.unlisted for h in holdings))))


@dataclass(frozen=True)
class ReferencePrice:
    """A listing's reference mid, or why there is none.

    Parameters
    ----------
    needed : bool
        Whether the order needed one (False: not looked up).
    mid : Decimal | None
        Fresh mid in quote currency; None when missing, stale or unavailable.
    problem : str
        Why ``mid`` is None (``"missing: …"``, ``"stale: …"``, ``"market data unavailable …"``).
    age_secs : float | None
        Age of the snapshot, seconds, when there was one.
    """

    needed: bool
    mid: Decimal | None = None
    problem: str = ""
    age_secs: float | None = None


class PrefetchedMarketData:
    """A :class:`~venues.marketdata.MarketDataStore` that answers from snapshots already read.

    The router reads the books of an order's candidate listings; pre-trade risk asks the same
    store for the chosen listing's mid moments later, in the same request. Keys in ``snapshots``
    are answered from it (None: the store had no snapshot); other keys go to ``store``.

    Parameters
    ----------
    store : MarketDataStore
        The underlying store.
    snapshots : Mapping[str, MarketSnapshot | None]
        Listing key → snapshot as read for this order.
    """

    def __init__(self, *, store: MarketDataStore, snapshots: Mapping[str, MarketSnapshot | None]) -> None:
        self._store = store
        self._snapshots = snapshots

    def get(self, instrument_key: str) -> MarketSnapshot | None:
        if instrument_key in self._snapshots:
            return self._snapshots[instrument_key]
        return self._store.get(instrument_key)

    def get_many(self, instrument_keys: list[str]) -> dict[str, MarketSnapshot]:
        found = {k: self._snapshots[k] for k in instrument_keys if k in self._snapshots}
        rest = [k for k in instrument_keys if k not in self._snapshots]
        if rest:
            found.update(self._store.get_many(rest))
        return {k: v for k, v in found.items() if v is not None}


def reference_price(*, store: MarketDataStore, listing_key: str, now: datetime) -> ReferencePrice:
    """Return the fresh mid of ``listing_key``, judged at ``now`` (UTC), or the reason there is none.

    Fresh means at most ``settings.ODUM["MARKET_DATA_MAX_AGE_SECS"]`` seconds old. A store that
    cannot answer (``MarketDataError``: Redis down, malformed payload) gives a problem, not an
    exception: pre-trade risk denies with it.
    """
    try:
        snapshot = store.get(listing_key)
    except MarketDataError as exc:
        return ReferencePrice(needed=True, problem=f"market data unavailable for {listing_key}: {exc}")
    return judge_snapshot(snapshot, listing_key=listing_key, now=now)


def _venue_cause(listing_key: str) -> str:
    # Why the listing's venue sends no market data, when the trading node reported it (issue #3 §2:
    # a paper venue without replay files, a live venue without credentials); "" when unknown.
    from odum_live.health import venue_problems

    venue = listing_key.split(":", 1)[0]
    problems = venue_problems(venue)
    return f" (venue {venue}: {'; '.join(problems)})" if problems else ""


def judge_snapshot(snapshot: MarketSnapshot | None, *, listing_key: str, now: datetime) -> ReferencePrice:
    """Return the usable mid of ``snapshot`` at ``now``, or why it is not usable."""
    max_age = settings.ODUM["MARKET_DATA_MAX_AGE_SECS"]
    if snapshot is None:
        return ReferencePrice(needed=True, problem=f"missing: no market data for {listing_key}{_venue_cause(listing_key)}")
    age = snapshot.age_secs(now)
    mid = snapshot.mid
    if mid is None or mid <= 0:
        return ReferencePrice(needed=True, problem=f"no bid/ask or last price in the {listing_key} snapshot",
                              age_secs=age)
    stale = snapshot.staleness(max_age, now)
    if stale:
        return ReferencePrice(needed=True, age_secs=age, problem=f"stale: {listing_key} snapshot is {stale}")
    return ReferencePrice(needed=True, mid=mid, age_secs=age)


def in_limit_currency(
    *, amount: Decimal | None, quote: str, limit: LimitRow, unknown: str
) -> tuple[Decimal | None, str, str]:
    """Express a quote-currency ``amount`` in the currency of ``limit``.

    Parameters
    ----------
    amount : Decimal | None
        Notional in ``quote``; None when it could not be computed.
    quote : str
        Quote currency of the instrument (``USDT``).
    limit : LimitRow
        INSTRUMENT-scope limits are in the instrument's quote currency; others in USD.
    unknown : str
        Why ``amount`` is None, for the problem text.

    Returns
    -------
    (Decimal | None, str, str)
        The amount in the limit's currency (None when unknown or not convertible), the
        currency's name, and the problem ("" when none).
    """
    if limit.scope == Scope.INSTRUMENT:
        return amount, quote or "quote currency", "" if amount is not None else f"notional unknown: {unknown}"
    if amount is None:
        return None, "USD", f"notional unknown: {unknown}"
    if quote.upper() not in USD_EQUIVALENTS:
        return None, "USD", f"quote currency {quote or '(unknown)'} {_NO_USD}"
    return amount, "USD", ""


class ExposureBook:
    """Positions and open-order totals of one evaluation, summed per population.

    Populations: ``"strategy"`` (the order's strategy), ``"strategy_venue"`` (the order's strategy
    on the chosen venue: a subset of ``"strategy"``'s rows), ``"firm"`` (every strategy), ``"venue"``
    (every strategy on the chosen venue), ``"instrument"`` (every strategy in the order's
    equivalence key). Only populations whose rows were read (``risk.selectors.ExposureNeeds``)
    give true sums.

    Parameters
    ----------
    rows : iterable of ExposureRow
        From :func:`risk.selectors.exposure_rows`.
    buy_like : bool
        Side group of the order being checked.
    listing_key : str
        The order's routed listing ("" when none).
    store : MarketDataStore
        Prices unpriced quantity (MARKET orders) of other listings.
    now : datetime
        Evaluation time, UTC.
    reference : ReferencePrice
        The order's own reference mid, reused for its listing.
    """

    def __init__(self, *, rows: Iterable[ExposureRow], buy_like: bool, listing_key: str, store: MarketDataStore,
                 now: datetime, reference: ReferencePrice) -> None:
        self._rows = tuple(rows)
        self._buy_like = buy_like
        self._listing_key = listing_key
        self._store = store
        self._now = now
        self._reference = reference
        self._marks: dict[str, ReferencePrice] | None = None

    @staticmethod
    def _in(row: ExposureRow, population: str) -> bool:
        if population == "strategy":
            return row.mine
        if population == "strategy_venue":
            return row.mine and row.same_venue
        if population == "venue":
            return row.same_venue
        if population == "instrument":
            return row.same_instrument
        return True

    def position(self, population: str) -> Holding:
        """Return the signed position of ``population`` in the order's instrument, on its venues (:class:`Holding`)."""
        return self._holding(r for r in self._rows
                             if r.source == "position" and r.same_instrument and self._in(r, population))

    def open_same_side(self, population: str) -> Holding:
        """Return the open quantity of ``population`` on the order's side in its instrument (:class:`Holding`)."""
        return self._holding(r for r in self._rows if r.source == "open_orders" and r.same_instrument
                             and r.buy_like == self._buy_like and self._in(r, population))

    @staticmethod
    def _holding(rows: Iterable[ExposureRow]) -> Holding:
        total = Holding()
        for r in rows:
            total += Holding(base=r.quantity, face=r.inverse_face,
                             unlisted=frozenset((r.unlisted,)) if r.unlisted else frozenset())
        return total

    def gross(self, population: str, *, native_ok: bool) -> tuple[Decimal | None, str]:
        """Return Σ position and open-order notional of ``population`` and the problem, if any.

        In USD (stablecoins 1:1) unless ``native_ok`` (one instrument: its quote currency).
        Unpriced quantity is valued at its listing's fresh mid × contract multiplier. The amount is
        None when any part cannot be valued or converted (a position or open orders whose listing
        no longer exists cannot be: :attr:`ExposureRow.unlisted`); the problem then says which.
        """
        total = Decimal("0")
        problems: list[str] = []
        for row in self._rows:
            if not self._in(row, population):
                continue
            if row.unlisted:
                problems.append(row.unlisted)
                continue
            amount = row.notional
            if row.unpriced_quantity:
                mark = self._mark(row.unpriced_listing)
                if mark.mid is None:
                    problems.append(f"open {row.unpriced_listing} quantity {decimal_text(row.unpriced_quantity)} "
                                    f"has no price: {mark.problem}")
                    continue
                amount += row.unpriced_quantity * mark.mid * row.contract_multiplier
            if not native_ok and row.quote_currency.upper() not in USD_EQUIVALENTS:
                what = row.unpriced_listing or f"a {row.source} group"
                problems.append(f"{what} in quote currency {row.quote_currency or '(unlisted)'} {_NO_USD}")
                continue
            total += amount
        if problems:
            return None, "; ".join(problems)
        return total, ""

    def _mark(self, listing_key: str) -> ReferencePrice:
        if listing_key == self._listing_key and self._reference.mid is not None:
            return self._reference
        if self._marks is None:
            # One get_many for every unpriced listing of the evaluation.
            keys = sorted({r.unpriced_listing for r in self._rows if r.unpriced_quantity and r.unpriced_listing})
            try:
                snapshots = self._store.get_many(keys)
            except MarketDataError as exc:
                self._marks = {k: ReferencePrice(needed=True, problem=f"market data unavailable: {exc}") for k in keys}
            else:
                self._marks = {k: judge_snapshot(snapshots.get(k), listing_key=k, now=self._now) for k in keys}
        return self._marks.get(listing_key) or ReferencePrice(needed=True, problem=f"no market data for {listing_key}")
