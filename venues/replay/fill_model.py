"""The paper venue's depth model: how a MARKET order fills against recorded data.

Rule (from the replay issue: "a paper MARKET order of any size within risk limits fills completely
at prices from the recorded data — no order may hang half-filled because of the simulation"):

1. Walk the recorded levels on the side the order takes (asks for a buy, bids for a sell), best
   first, filling ``min(remaining, level size)`` at each level's price.
2. Beyond the recorded depth, fill the whole remainder at the **worst recorded level's price**,
   moved against the order by ``beyond_depth_penalty_bps`` (default 0). Reasoning: the recording
   says nothing about liquidity past its last level, and the issue requires recorded prices, so
   the default invents no price; a desk that wants paper results to be conservative for large
   orders configures a penalty (square-root / linear market-impact models are the usual next
   step, but they need parameters the recording cannot supply). A record of the shortfall
   (``beyond_depth_size``) is returned so the caller can log it.
3. With only an L1 quote, the touch is the only recorded level; it is taken to hold at least
   ``assumed_touch_size`` (the sandbox's L1 book otherwise holds a few-lot trade size: the
   partial-fill trap in NAUTILUS_NOTES.md), and the remainder follows rule 2.

The result is always a complete fill of the requested size, or an exception before any fill
when the data hold no price at all for that side (then the paper venue must reject the order;
it must never leave it half-filled).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from venues.marketdata import BookLevel
from venues.replay.records import BookRecord, QuoteRecord

#: Default minimum size (BTC, base units) assumed at the touch when only L1 quotes are recorded:
#: the median recorded top-of-book size (bid and ask sizes pooled, 902 values) of the shared
#: ``binance_spot_btcusdt_quotes_2021-01-08.parquet``, rounded half-even to its 0.000001 lot (0.1951065 → 0.195106), as
#: :func:`median_touch_size` computes it. It is a BTCUSDT figure: a venue replaying another
#: instrument should set its own, e.g. ``median_touch_size(its recorded quotes)``.
DEFAULT_ASSUMED_TOUCH_SIZE = Decimal("0.195106")

_BPS = Decimal(10_000)


class NoRecordedPrice(ValueError):
    """The recorded data hold no price on the side a market order needs: reject, don't fill."""


@dataclass(frozen=True, slots=True)
class FillSlice:
    """One execution of a paper fill: ``price`` in quote currency, ``size`` in base units."""

    price: Decimal
    size: Decimal


@dataclass(frozen=True, slots=True)
class PaperFill:
    """A complete paper fill of a MARKET order.

    Attributes
    ----------
    side : {"BUY", "SELL"}
    size : Decimal
        Total filled, base units; always equals the order size.
    slices : tuple[FillSlice, ...]
        Executions in walk order (best price first); sizes sum exactly to ``size``.
    beyond_depth_size : Decimal
        Part of ``size`` filled past the recorded (or assumed) depth, at the last slice's price.
    """

    side: str
    size: Decimal
    slices: tuple[FillSlice, ...]
    beyond_depth_size: Decimal

    @property
    def notional(self) -> Decimal:
        """Exact Σ price × size, quote currency."""
        return sum((s.price * s.size for s in self.slices), Decimal(0))

    @property
    def avg_price(self) -> Decimal:
        """Volume-weighted average price, quote currency (Decimal context precision, 28 digits)."""
        return self.notional / self.size


def median_touch_size(quotes: Iterable[QuoteRecord]) -> Decimal:
    """Return the median of recorded bid and ask sizes pooled (base units).

    Raises
    ------
    ValueError
        When ``quotes`` is empty.
    """
    sizes = [size for q in quotes for size in (q.bid_size, q.ask_size)]
    if not sizes:
        raise ValueError("no quotes to take a median touch size from")
    return statistics.median(sizes)


def _levels(side: str, book: BookRecord | None, quote: QuoteRecord | None, assumed: Decimal) -> tuple[BookLevel, ...]:
    if book is not None:
        levels = book.asks if side == "BUY" else book.bids
        if levels:
            return levels
    if quote is not None:
        price, size = (quote.ask, quote.ask_size) if side == "BUY" else (quote.bid, quote.bid_size)
        return (BookLevel(price, max(size, assumed)),)
    raise NoRecordedPrice(f"no recorded {'ask' if side == 'BUY' else 'bid'} to fill a {side} market order against")


def fill_market_order(
    *,
    side: str,
    size: Decimal,
    book: BookRecord | None = None,
    quote: QuoteRecord | None = None,
    assumed_touch_size: Decimal = DEFAULT_ASSUMED_TOUCH_SIZE,
    beyond_depth_penalty_bps: Decimal = Decimal(0),
    price_increment: Decimal | None = None,
) -> PaperFill:
    """Fill a paper MARKET order completely against the latest recorded book or quote.

    Parameters
    ----------
    side : {"BUY", "SELL"}
    size : Decimal
        Order quantity, base units, > 0.
    book : BookRecord, optional
        Latest recorded book; used when it has levels on the side taken.
    quote : QuoteRecord, optional
        Latest recorded quote; used when ``book`` is absent or empty on that side.
    assumed_touch_size : Decimal
        Minimum size (base units, >= 0) assumed at an L1 touch; default
        :data:`DEFAULT_ASSUMED_TOUCH_SIZE` (median recorded BTCUSDT touch size). Not used with a book.
    beyond_depth_penalty_bps : Decimal
        Price penalty (bps, >= 0) for the remainder past the recorded depth, applied against the
        order from the worst recorded level; default 0 = the worst recorded price itself.
    price_increment : Decimal, optional
        Tick size (quote currency); a penalised price is rounded to it against the order
        (up for a buy, down for a sell). Recorded prices are used as recorded.

    Returns
    -------
    PaperFill
        Slices summing exactly to ``size``; with no penalty every price is a recorded price and
        the VWAP lies between the best and worst level used.

    Raises
    ------
    TypeError
        ``size`` (or another amount) is not a Decimal.
    ValueError
        ``side`` is not BUY/SELL, ``size <= 0``, a negative penalty or assumed size, or a penalty
        that would take a sell price to zero or below.
    NoRecordedPrice
        Neither ``book`` nor ``quote`` has a price on the side taken.
    """
    if side not in ("BUY", "SELL"):
        raise ValueError(f"side must be BUY or SELL, got {side!r}")
    for name, value in (("size", size), ("assumed_touch_size", assumed_touch_size),
                        ("beyond_depth_penalty_bps", beyond_depth_penalty_bps)):
        if not isinstance(value, Decimal):
            raise TypeError(f"{name} must be Decimal, got {type(value).__name__}")
    if not size.is_finite() or size <= 0:
        raise ValueError(f"size must be > 0, got {size}")
    if assumed_touch_size < 0 or beyond_depth_penalty_bps < 0:
        raise ValueError("assumed_touch_size and beyond_depth_penalty_bps must be >= 0")

    levels = _levels(side, book, quote, assumed_touch_size)
    slices: list[FillSlice] = []
    remaining = size
    for level in levels:
        if remaining == 0:
            break
        take = min(remaining, level.size)
        slices.append(FillSlice(level.price, take))
        remaining -= take
    beyond = remaining
    if beyond > 0:
        worst = levels[-1].price
        direction = 1 if side == "BUY" else -1
        price = worst * (1 + direction * beyond_depth_penalty_bps / _BPS)
        if beyond_depth_penalty_bps and price_increment:
            rounding = ROUND_CEILING if side == "BUY" else ROUND_FLOOR
            price = (price / price_increment).to_integral_value(rounding=rounding) * price_increment
        if price <= 0:
            raise ValueError(f"penalty of {beyond_depth_penalty_bps} bps takes the sell price to {price}")
        if slices and slices[-1].price == price:
            slices[-1] = FillSlice(price, slices[-1].size + beyond)
        else:
            slices.append(FillSlice(price, beyond))
    return PaperFill(side=side, size=size, slices=tuple(slices), beyond_depth_size=beyond)
