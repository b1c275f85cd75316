"""venues.replay.fill_model: paper MARKET orders always fill completely at recorded prices."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.helpers import SHARED_DATA as DATA
from tests.helpers import needs_market_data as needs_data
from venues.marketdata import BookLevel
from venues.replay.fill_model import (
    DEFAULT_ASSUMED_TOUCH_SIZE,
    FillSlice,
    NoRecordedPrice,
    fill_market_order,
    median_touch_size,
)
from venues.replay.records import BookRecord, QuoteRecord
from venues.replay.sources import parse_source, read_tardis_book_snapshot_csv

TS = datetime(2026, 1, 1, tzinfo=UTC)
BOOK = BookRecord(
    ts=TS,
    bids=(BookLevel(Decimal("99"), Decimal("1")), BookLevel(Decimal("98"), Decimal("2"))),
    asks=(BookLevel(Decimal("101"), Decimal("1")), BookLevel(Decimal("102"), Decimal("2")),
          BookLevel(Decimal("105"), Decimal("0.5"))),
)
QUOTE = QuoteRecord(ts=TS, bid=Decimal("99"), ask=Decimal("101"), bid_size=Decimal("0.01"), ask_size=Decimal("0.02"))

sizes = st.decimals(min_value=Decimal("0.000001"), max_value=Decimal("1000000"), places=6)


def test_fill_buy_within_depth_walks_asks_best_first():
    # Act
    fill = fill_market_order(side="BUY", size=Decimal("2.5"), book=BOOK)

    # Assert
    assert fill.slices == (FillSlice(Decimal("101"), Decimal("1")), FillSlice(Decimal("102"), Decimal("1.5")))
    assert fill.beyond_depth_size == 0
    assert fill.avg_price == Decimal("254") / Decimal("2.5")


def test_fill_sell_beyond_depth_fills_remainder_at_worst_bid():
    # Act
    fill = fill_market_order(side="SELL", size=Decimal("10"), book=BOOK)

    # Assert
    assert fill.slices == (FillSlice(Decimal("99"), Decimal("1")), FillSlice(Decimal("98"), Decimal("9")))
    assert fill.beyond_depth_size == Decimal("7")
    assert fill.size == Decimal("10")


def test_fill_buy_beyond_depth_with_penalty_rounds_up_to_tick():
    # Act
    fill = fill_market_order(side="BUY", size=Decimal("4"), book=BOOK, beyond_depth_penalty_bps=Decimal("15"),
                             price_increment=Decimal("0.01"))

    # Assert: 105 × 1.0015 = 105.1575 → 105.16 (against the buyer)
    assert fill.slices[-1] == FillSlice(Decimal("105.16"), Decimal("0.5"))
    assert sum(s.size for s in fill.slices) == Decimal("4")


def test_fill_quote_only_assumes_touch_size_then_penalises_remainder():
    # Act
    fill = fill_market_order(side="BUY", size=Decimal("1"), quote=QUOTE, assumed_touch_size=Decimal("0.3"),
                             beyond_depth_penalty_bps=Decimal("10"))

    # Assert
    assert fill.slices == (FillSlice(Decimal("101"), Decimal("0.3")), FillSlice(Decimal("101.101"), Decimal("0.7")))


def test_fill_quote_only_without_penalty_fills_all_at_touch():
    # Act
    fill = fill_market_order(side="SELL", size=Decimal("5"), quote=QUOTE)

    # Assert
    assert fill.slices == (FillSlice(Decimal("99"), Decimal("5")),)


def test_fill_book_empty_side_falls_back_to_quote():
    # Arrange
    asks_only = BookRecord(ts=TS, bids=(), asks=BOOK.asks)

    # Act
    fill = fill_market_order(side="SELL", size=Decimal("1"), book=asks_only, quote=QUOTE)

    # Assert
    assert fill.slices[0].price == Decimal("99")


def test_fill_no_price_on_side_raises_instead_of_partial():
    # Arrange
    asks_only = BookRecord(ts=TS, bids=(), asks=BOOK.asks)

    # Act / Assert
    with pytest.raises(NoRecordedPrice, match="no recorded bid"):
        fill_market_order(side="SELL", size=Decimal("1"), book=asks_only)


@pytest.mark.parametrize(("kwargs", "error"), [
    ({"size": Decimal("0")}, ValueError),
    ({"size": Decimal("-1")}, ValueError),
    ({"size": 1.0}, TypeError),
    ({"side": "HOLD"}, ValueError),
])
def test_fill_invalid_order_is_refused(kwargs, error):
    # Arrange
    args = {"side": "BUY", "size": Decimal("1"), "book": BOOK} | kwargs

    # Act / Assert
    with pytest.raises(error):
        fill_market_order(**args)


@given(size=sizes, side=st.sampled_from(["BUY", "SELL"]))
def test_fill_any_positive_size_fills_completely_with_vwap_within_levels(size, side):
    # Act
    fill = fill_market_order(side=side, size=size, book=BOOK)

    # Assert
    assert sum(s.size for s in fill.slices) == size
    assert all(s.size > 0 for s in fill.slices)
    recorded = {lv.price for lv in (BOOK.asks if side == "BUY" else BOOK.bids)}
    assert {s.price for s in fill.slices} <= recorded
    used = [s.price for s in fill.slices]
    assert min(used) <= fill.avg_price <= max(used)
    best = (BOOK.asks if side == "BUY" else BOOK.bids)[0].price
    assert used[0] == best


@given(size=sizes, penalty=st.decimals(min_value=0, max_value=500, places=2))
def test_fill_quote_only_any_size_and_penalty_fills_completely(size, penalty):
    # Act
    fill = fill_market_order(side="BUY", size=size, quote=QUOTE, beyond_depth_penalty_bps=penalty)

    # Assert
    assert fill.size == size and sum(s.size for s in fill.slices) == size
    assert QUOTE.ask <= fill.avg_price <= QUOTE.ask * (1 + penalty / 10_000)


@needs_data
def test_fill_real_tardis_book_large_buy_fills_completely_between_best_and_worst_ask():
    # Arrange
    book = next(iter(read_tardis_book_snapshot_csv(
        DATA / "market" / "tardis_binance_futures_btcusdt_book_snapshot_25.csv")))
    depth = sum(lv.size for lv in book.asks)

    # Act
    fill = fill_market_order(side="BUY", size=depth + Decimal("100"), book=book)

    # Assert
    assert fill.size == depth + Decimal("100")
    assert fill.beyond_depth_size == Decimal("100")
    assert book.asks[0].price <= fill.avg_price <= book.asks[-1].price


@needs_data
def test_default_assumed_touch_size_is_median_of_recorded_btcusdt_touch():
    # Arrange
    quotes = parse_source({"kind": "quotes", "format": "binance_quotes_parquet",
                           "path": "market/binance_spot_btcusdt_quotes_2021-01-08.parquet",
                           "price_precision": 2, "size_precision": 6}, DATA)

    # Act
    median = median_touch_size(quotes)

    # Assert
    assert median.quantize(Decimal("0.000001")) == DEFAULT_ASSUMED_TOUCH_SIZE
