"""Expected execution cost of an order on one venue, in basis points of notional.

The standard transaction-cost-analysis decomposition (Perold, "The Implementation Shortfall:
Paper versus Reality", *J. Portfolio Management* 14(3), 1988; Kissell, *The Science of
Algorithmic Trading and Portfolio Management*, 2013, ch. 3 "Transaction Costs"), restricted to
what is known before the order is sent, and the best-execution factors of MiFID II art. 27(1)
(price, costs, speed, likelihood of execution)::

    expected cost (bps) = fee + expected slippage + latency penalty

- **fee**: the venue's maker fee for the part of a resting limit order expected to rest, its taker
  fee for everything that takes liquidity (all of a MARKET, IOC or FOK order).
- **expected slippage**: the volume-weighted average price of walking the latest book snapshot
  for the order's size, against a *benchmark* price, signed so that a cost is positive:
  ``side × (VWAP − benchmark) / benchmark × 10 000`` with side +1 for buy-like, −1 for sell-like
  orders. The benchmark is the arrival mid (Perold's decision price, as implementation shortfall
  measures it) of the *consolidated* book — best bid and best ask across the candidate venues —
  so that the spread, the depth *and* price differences between venues all show in one figure
  comparable across venues. It is the touch when no two-sided book exists. Negative slippage
  (a venue priced through the consolidated mid, i.e. a crossed market) is kept: it is real.
- **latency penalty**: ``latency_ms × ROUTER_LATENCY_PENALTY_BPS_PER_MS``, the expected adverse
  price move while the order travels (the "delay cost" of Kissell's decomposition, linearised).

Decisions this module makes, and why:

- *A LIMIT order that would not cross* (buy limit below the best ask, sell limit above the best
  bid) has 0 bps slippage: it rests and is not charged for the spread it does not pay.
- *A book that cannot fill the size* keeps the venue eligible: snapshots carry a truncated depth
  (top N levels), not the whole book, and algorithmic orders are worked over time. The unfilled
  remainder of a MARKET order is priced at the worst visible level worsened by
  ``ROUTER_DEPTH_SHORTFALL_PENALTY_BPS`` (default 50 bps), so a deeper venue ranks first and the
  shortfall is written in the candidate's notes. The remainder of a LIMIT order is priced at its
  limit price, the worst price it can execute at (the bound needs no penalty).
- *No fresh book* (no snapshot, older than ``MARKET_DATA_MAX_AGE_SECS``, or no level on the side
  the order takes): slippage is unknown (``None``), the total is fee + latency only (a lower
  bound), and the router ranks such venues after every venue with a known book.

Units: prices in quote currency, quantities in base units (contracts for derivatives; the book's
sizes must be in the same unit), costs in bps. Everything is ``Decimal``; bps are rounded to
:data:`BPS_QUANTUM` and the router ranks on the rounded figures it records.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from odum_live.intent import BUY_LIKE_SIDES, OrderIntent
from venues.marketdata import BookLevel, MarketSnapshot

BPS = Decimal("10000")
#: Precision of recorded bps figures (a millionth of a basis point).
BPS_QUANTUM = Decimal("0.000001")
#: Precision of recorded prices (quote currency).
PRICE_QUANTUM = Decimal("0.0000000001")
DEFAULT_DEPTH_SHORTFALL_PENALTY_BPS = Decimal("50")


def quantize_bps(value: Decimal) -> Decimal:
    """Round a bps figure to :data:`BPS_QUANTUM` (banker's rounding)."""
    return value.quantize(BPS_QUANTUM, rounding=ROUND_HALF_EVEN)


def is_buy_like(side: str) -> bool:
    """Return True for sides that take the offer (``BUY``, ``SUPPLY``, ``STAKE``, ``BACK``)."""
    return side in BUY_LIKE_SIDES


@dataclass(frozen=True, slots=True)
class CostModelParams:
    """Parameters of the cost model (``settings.ODUM``).

    Parameters
    ----------
    latency_penalty_bps_per_ms : Decimal
        bps added per millisecond of a venue's estimated latency
        (``ROUTER_LATENCY_PENALTY_BPS_PER_MS``).
    depth_shortfall_penalty_bps : Decimal
        bps beyond the worst visible level at which the unfilled remainder of a MARKET order is
        priced (``ROUTER_DEPTH_SHORTFALL_PENALTY_BPS``).
    max_book_age_secs : float
        Seconds after which a book snapshot no longer counts (``MARKET_DATA_MAX_AGE_SECS``).
    """

    latency_penalty_bps_per_ms: Decimal
    depth_shortfall_penalty_bps: Decimal
    max_book_age_secs: float

    @classmethod
    def from_settings(cls, odum: dict) -> CostModelParams:
        """Build from ``settings.ODUM`` (strings, ints or decimals; never through float)."""
        return cls(
            latency_penalty_bps_per_ms=Decimal(str(odum.get("ROUTER_LATENCY_PENALTY_BPS_PER_MS", "0.01"))),
            depth_shortfall_penalty_bps=Decimal(
                str(odum.get("ROUTER_DEPTH_SHORTFALL_PENALTY_BPS", DEFAULT_DEPTH_SHORTFALL_PENALTY_BPS))
            ),
            max_book_age_secs=float(odum.get("MARKET_DATA_MAX_AGE_SECS", 10)),
        )

    def to_json(self) -> dict:
        """Return the parameters as strings (stored with each routing decision)."""
        return {
            "latency_penalty_bps_per_ms": str(self.latency_penalty_bps_per_ms),
            "depth_shortfall_penalty_bps": str(self.depth_shortfall_penalty_bps),
            "max_book_age_secs": str(self.max_book_age_secs),
        }


@dataclass(frozen=True, slots=True)
class BookWalk:
    """The result of walking one side of a book for a quantity.

    Parameters
    ----------
    requested : Decimal
        Quantity asked for, base units.
    filled : Decimal
        Quantity the visible levels (within the limit price, if any) can fill, base units.
    notional : Decimal
        Quote-currency value of ``filled`` at the walked levels' prices.
    worst_price : Decimal | None
        Price of the last level touched, quote currency (None when nothing filled).
    levels_used : int
        Number of levels touched.
    ignored_levels : int
        Levels skipped because their price or size was not positive (bad data).
    """

    requested: Decimal
    filled: Decimal
    notional: Decimal
    worst_price: Decimal | None
    levels_used: int
    ignored_levels: int = 0

    @property
    def shortfall(self) -> Decimal:
        """Quantity the visible levels cannot fill, base units."""
        return self.requested - self.filled

    @property
    def vwap(self) -> Decimal | None:
        """Volume-weighted average price of the filled part, quote currency (None if nothing)."""
        return self.notional / self.filled if self.filled else None


def walk_book(
    *, levels: Iterable[BookLevel], quantity: Decimal, buy: bool, limit_price: Decimal | None = None
) -> BookWalk:
    """Walk book levels best-first and fill ``quantity`` as a taker would.

    Parameters
    ----------
    levels : iterable of BookLevel
        The side the order takes: asks for a buy, bids for a sell (any order; they are sorted
        best-first here so a publisher's ordering mistake cannot understate the cost).
    quantity : Decimal
        Base units, > 0.
    buy : bool
        True when taking asks.
    limit_price : Decimal | None
        Quote currency; levels priced through it (above for a buy, below for a sell) are not taken.

    Returns
    -------
    BookWalk

    Raises
    ------
    ValueError
        When ``quantity`` is not positive (a programming error: intents are validated first).
    """
    if quantity <= 0:
        raise ValueError(f"quantity must be positive, got {quantity}")
    given = list(levels)
    valid = [lv for lv in given if lv.price > 0 and lv.size > 0]
    ignored = len(given) - len(valid)
    valid.sort(key=lambda lv: lv.price, reverse=not buy)
    remaining = quantity
    notional = Decimal("0")
    worst = None
    used = 0
    for level in valid:
        if limit_price is not None and (level.price > limit_price if buy else level.price < limit_price):
            break
        take = min(remaining, level.size)
        notional += take * level.price
        remaining -= take
        worst = level.price
        used += 1
        if remaining == 0:
            break
    return BookWalk(
        requested=quantity,
        filled=quantity - remaining,
        notional=notional,
        worst_price=worst,
        levels_used=used,
        ignored_levels=ignored,
    )


def best_price(snapshot: MarketSnapshot, *, bid: bool) -> Decimal | None:
    """Return the best bid (``bid=True``) or best ask of ``snapshot``, quote currency, or None."""
    levels = snapshot.bids if bid else snapshot.asks
    if levels:
        prices = [lv.price for lv in levels if lv.price > 0 and lv.size > 0]
        if prices:
            return max(prices) if bid else min(prices)
        return None
    value = snapshot.bid if bid else snapshot.ask
    return value if value is not None and value > 0 else None


@dataclass(frozen=True, slots=True)
class Benchmark:
    """The reference price slippage is measured against.

    Parameters
    ----------
    price : Decimal
        Quote currency.
    kind : str
        ``consolidated_mid`` (mid of the best bid and best ask across the books considered) or
        ``touch`` (best price on the side the order takes, when no two-sided book exists).
    """

    price: Decimal
    kind: str


def consolidated_benchmark(*, snapshots: Iterable[MarketSnapshot], buy: bool) -> Benchmark | None:
    """Return the benchmark for an order from the fresh books of its candidate venues.

    Parameters
    ----------
    snapshots : iterable of MarketSnapshot
        Fresh snapshots of equivalent listings (the caller filters by age).
    buy : bool
        Side of the order (chooses the touch when no two-sided book exists).

    Returns
    -------
    Benchmark | None
        The consolidated mid ``(max best bid + min best ask) / 2``, else the best touch on the side
        the order takes, else None (no price at all).
    """
    bids, asks = [], []
    for snapshot in snapshots:
        bid = best_price(snapshot, bid=True)
        ask = best_price(snapshot, bid=False)
        if bid is not None:
            bids.append(bid)
        if ask is not None:
            asks.append(ask)
    if bids and asks:
        return Benchmark(price=(max(bids) + min(asks)) / 2, kind="consolidated_mid")
    if buy and asks:
        return Benchmark(price=min(asks), kind="touch")
    if not buy and bids:
        return Benchmark(price=max(bids), kind="touch")
    return None


@dataclass(frozen=True, slots=True)
class CostEstimate:
    """Expected cost of an order on one venue.

    Parameters
    ----------
    fee_bps, latency_bps : Decimal
        bps of notional.
    slippage_bps : Decimal | None
        bps versus the benchmark; None when no usable book exists.
    total_bps : Decimal
        fee + slippage + latency; fee + latency only (a lower bound) when slippage is unknown.
    expected_price : Decimal | None
        Expected average execution price, quote currency (None when unknown).
    notes : tuple[str, ...]
        What was assumed, in words (recorded in the decision).
    """

    fee_bps: Decimal
    slippage_bps: Decimal | None
    latency_bps: Decimal
    total_bps: Decimal
    expected_price: Decimal | None
    notes: tuple[str, ...] = ()

    @property
    def slippage_known(self) -> bool:
        """True when the slippage figure comes from a book walk."""
        return self.slippage_bps is not None


def estimate_cost(
    *,
    intent: OrderIntent,
    maker_fee_bps: Decimal,
    taker_fee_bps: Decimal,
    latency_ms: Decimal,
    levels: Sequence[BookLevel] | None,
    benchmark: Benchmark | None,
    params: CostModelParams,
    no_book_reason: str = "no book",
) -> CostEstimate:
    """Estimate the cost of ``intent`` on one venue (see the module docstring for the model).

    Parameters
    ----------
    intent : OrderIntent
        Side, order type, time in force, quantity (base units, > 0) and limit price (quote ccy).
    maker_fee_bps, taker_fee_bps : Decimal
        The venue's fees, bps of notional.
    latency_ms : Decimal
        The venue's estimated order round trip, milliseconds.
    levels : sequence of BookLevel | None
        The fresh book side the order takes (asks for a buy); None when there is no usable book.
    benchmark : Benchmark | None
        The decision's benchmark (:func:`consolidated_benchmark`); None when no venue has a price.
    params : CostModelParams
        Latency and depth-shortfall penalties.
    no_book_reason : str
        Why ``levels`` is None, for the notes (e.g. ``book stale (age 31.0 s > 10 s)``).

    Returns
    -------
    CostEstimate
        bps rounded to :data:`BPS_QUANTUM`.

    Raises
    ------
    ValueError
        When the intent's quantity is not positive (a programming error).
    """
    quantity = intent.quantity
    if quantity <= 0:
        raise ValueError(f"quantity must be positive, got {quantity}")
    buy = is_buy_like(intent.side)
    resting = intent.is_resting_limit
    limit = intent.price if intent.order_type == "LIMIT" else None
    latency = quantize_bps(latency_ms * params.latency_penalty_bps_per_ms)
    notes: list[str] = []

    if not levels or benchmark is None:
        fee = maker_fee_bps if resting else taker_fee_bps
        reason = no_book_reason if not levels else "no benchmark price"
        notes.append(f"{reason}; slippage unknown, total is fee + latency only, ranked after venues with a book")
        if resting:
            notes.append("resting limit: maker fee assumed (marketability unknown without a book)")
        fee = quantize_bps(fee)
        return CostEstimate(fee, None, latency, quantize_bps(fee + latency), None, tuple(notes))

    walk = walk_book(levels=levels, quantity=quantity, buy=buy, limit_price=limit)
    if walk.ignored_levels:
        notes.append(f"ignored {walk.ignored_levels} book level(s) with a non-positive price or size")
    if limit is not None and walk.filled == 0:
        # The order does not cross: it rests (GTC/GTD) or is canceled unfilled (IOC/FOK).
        fee = quantize_bps(maker_fee_bps if resting else taker_fee_bps)
        notes.append(
            "limit does not cross the book: rests, slippage 0"
            if resting
            else f"limit does not cross the book: {intent.time_in_force} would not fill now, slippage 0"
        )
        zero = Decimal("0").quantize(BPS_QUANTUM)
        return CostEstimate(fee, zero, latency, quantize_bps(fee + latency), limit, tuple(notes))

    remainder = walk.shortfall
    notional = walk.notional
    if remainder > 0:
        if limit is not None:
            remainder_price = limit
            fate = "rests at the limit" if resting else f"is canceled ({intent.time_in_force})"
            notes.append(
                f"book within the limit fills {walk.filled} of {quantity}; the remainder {fate}, "
                f"priced at the limit price {limit} as a bound"
            )
        else:
            penalty = params.depth_shortfall_penalty_bps / BPS
            worst = walk.worst_price if walk.worst_price is not None else benchmark.price
            remainder_price = worst * (1 + penalty) if buy else worst * (1 - penalty)
            notes.append(
                f"visible depth fills {walk.filled} of {quantity}; the remainder {remainder} is priced at the "
                f"worst visible level {worst} {'+' if buy else '-'} {params.depth_shortfall_penalty_bps} bps"
            )
        notional += remainder * remainder_price
    vwap = notional / quantity
    sign = 1 if buy else -1
    slippage = quantize_bps(sign * (vwap - benchmark.price) / benchmark.price * BPS)
    if resting:
        # A marketable resting limit takes the visible liquidity within its limit (taker) and rests
        # the rest (maker): blend the two by quantity.
        taken = walk.filled / quantity
        fee = quantize_bps(taker_fee_bps * taken + maker_fee_bps * (1 - taken))
        if taken < 1:
            notes.append(f"marketable resting limit: taker fee on {walk.filled}, maker fee on {remainder}")
        else:
            notes.append("marketable resting limit: fills now, taker fee")
    else:
        fee = quantize_bps(taker_fee_bps)
    return CostEstimate(
        fee_bps=fee,
        slippage_bps=slippage,
        latency_bps=latency,
        total_bps=quantize_bps(fee + slippage + latency),
        expected_price=vwap.quantize(PRICE_QUANTUM),
        notes=tuple(notes),
    )
