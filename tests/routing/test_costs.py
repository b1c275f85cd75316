"""The router's cost model (routing/costs.py): book walk, benchmark, fee choice, penalties."""

from datetime import datetime, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from routing.costs import (
    BookWalk,
    CostModelParams,
    consolidated_benchmark,
    estimate_cost,
    walk_book,
)
from tests.routing.helpers import make_intent
from venues.marketdata import BookLevel, MarketSnapshot

PARAMS = CostModelParams(
    latency_penalty_bps_per_ms=Decimal("0.01"), depth_shortfall_penalty_bps=Decimal("50"), max_book_age_secs=10
)
KEY = "BYBIT:PERPETUAL:BTC-USDT@LIN"


def levels(*pairs):
    return tuple(BookLevel(Decimal(str(p)), Decimal(str(s))) for p, s in pairs)


def snapshot(bids=(), asks=()):
    return MarketSnapshot(instrument_key=KEY, ts=datetime.now(timezone.utc), bids=levels(*bids), asks=levels(*asks))


def test_walk_book_buy_takes_cheapest_asks_first():
    # Act
    walk = walk_book(levels=levels((102, 5), (101, 1)), quantity=Decimal("3"), buy=True)

    # Assert
    assert walk == BookWalk(
        requested=Decimal("3"), filled=Decimal("3"), notional=Decimal("305"), worst_price=Decimal("102"), levels_used=2
    )
    assert walk.vwap == Decimal("305") / 3 and walk.shortfall == 0


def test_walk_book_sell_takes_highest_bids_first():
    # Act
    walk = walk_book(levels=levels((98, 5), (99, 1)), quantity=Decimal("2"), buy=False)

    # Assert
    assert (walk.notional, walk.worst_price) == (Decimal("197"), Decimal("98"))


def test_walk_book_limit_price_stops_the_walk():
    # Act
    walk = walk_book(levels=levels((101, 1), (102, 5)), quantity=Decimal("3"), buy=True, limit_price=Decimal("101.5"))

    # Assert
    assert (walk.filled, walk.shortfall, walk.levels_used) == (Decimal("1"), Decimal("2"), 1)


def test_walk_book_skips_levels_with_non_positive_price_or_size():
    # Act
    walk = walk_book(levels=levels((0, 5), (100, 0), (101, 2)), quantity=Decimal("1"), buy=True)

    # Assert
    assert walk.vwap == Decimal("101") and walk.ignored_levels == 2


def test_walk_book_non_positive_quantity_raises():
    # Act / Assert
    with pytest.raises(ValueError, match="quantity must be positive"):
        walk_book(levels=levels((101, 2)), quantity=Decimal("0"), buy=True)


def test_consolidated_benchmark_uses_best_bid_and_ask_across_books():
    # Act
    benchmark = consolidated_benchmark(
        snapshots=[snapshot(bids=[(99, 1)], asks=[(102, 1)]), snapshot(bids=[(98, 1)], asks=[(101, 1)])], buy=True
    )

    # Assert
    assert (benchmark.price, benchmark.kind) == (Decimal("100"), "consolidated_mid")


def test_consolidated_benchmark_one_sided_books_fall_back_to_touch():
    # Act
    buy = consolidated_benchmark(snapshots=[snapshot(asks=[(101, 1)]), snapshot(asks=[(100, 1)])], buy=True)
    sell = consolidated_benchmark(snapshots=[snapshot(asks=[(101, 1)])], buy=False)

    # Assert
    assert (buy.price, buy.kind) == (Decimal("100"), "touch")
    assert sell is None


def test_estimate_cost_no_book_gives_unknown_slippage_and_lower_bound_total():
    # Act
    cost = estimate_cost(
        intent=make_intent(KEY), maker_fee_bps=Decimal("2"), taker_fee_bps=Decimal("5"), latency_ms=Decimal("30"),
        levels=None, benchmark=None, params=PARAMS,
    )

    # Assert
    assert cost.slippage_bps is None and not cost.slippage_known and cost.expected_price is None
    assert (cost.fee_bps, cost.latency_bps, cost.total_bps) == (Decimal("5"), Decimal("0.3"), Decimal("5.3"))


def test_estimate_cost_market_sell_shortfall_priced_below_worst_bid():
    # Arrange: sell 3 into bids 99@1, 98@1; benchmark 100. Remainder 1 at 98 × 0.995 = 97.51.
    intent = make_intent(KEY, side="SELL", quantity="3")
    benchmark = consolidated_benchmark(snapshots=[snapshot(bids=[(99, 1)], asks=[(101, 1)])], buy=False)

    # Act
    cost = estimate_cost(
        intent=intent, maker_fee_bps=Decimal("2"), taker_fee_bps=Decimal("5"), latency_ms=Decimal("0"),
        levels=levels((99, 1), (98, 1)), benchmark=benchmark, params=PARAMS,
    )

    # Assert: VWAP (99 + 98 + 97.51) / 3 = 98.17
    assert cost.expected_price == Decimal("98.17")
    assert cost.slippage_bps == Decimal("183.000000")
    assert "worst visible level 98 - 50 bps" in cost.notes[0]


# -- properties ------------------------------------------------------------------------------------
book_levels = st.lists(
    st.tuples(
        st.decimals(min_value=Decimal("1"), max_value=Decimal("100000"), places=2),
        st.decimals(min_value=Decimal("0.001"), max_value=Decimal("50"), places=3),
    ),
    min_size=1,
    max_size=20,
)
quantities = st.decimals(min_value=Decimal("0.001"), max_value=Decimal("500"), places=3)


@given(book=book_levels, quantity=quantities, buy=st.booleans())
def test_walk_book_vwap_lies_between_best_and_worst_level(book, quantity, buy):
    # Act
    walk = walk_book(levels=levels(*book), quantity=quantity, buy=buy)

    # Assert
    prices = [p for p, _ in book]
    assert 0 < walk.filled <= quantity and walk.filled == min(quantity, sum(s for _, s in book))
    assert min(prices) <= walk.vwap <= max(prices)
    best = min(prices) if buy else max(prices)
    assert (walk.vwap >= best) if buy else (walk.vwap <= best)


@given(book=book_levels, small=quantities, extra=quantities, buy=st.booleans())
def test_estimate_cost_market_slippage_never_decreases_with_size(book, small, extra, buy):
    # Arrange
    side = "BUY" if buy else "SELL"
    book_levels_ = levels(*book)
    snap = snapshot(bids=book, asks=book)
    benchmark = consolidated_benchmark(snapshots=[snap], buy=buy)

    def slippage(quantity):
        cost = estimate_cost(
            intent=make_intent(KEY, side=side, quantity=str(quantity)), maker_fee_bps=Decimal("0"),
            taker_fee_bps=Decimal("0"), latency_ms=Decimal("0"), levels=book_levels_, benchmark=benchmark,
            params=PARAMS,
        )
        return cost.slippage_bps

    # Act / Assert
    assert slippage(small) <= slippage(small + extra)
