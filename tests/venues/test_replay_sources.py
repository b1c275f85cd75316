"""venues.replay.sources: each recorded format read from the real shared files, and bad input named."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.helpers import MARKET_DATA as MARKET
from tests.helpers import SHARED_DATA as DATA
from tests.helpers import needs_market_data as needs_data
from venues.replay.errors import ReplayDataError
from venues.replay.records import BarRecord, BookDeltaRecord, BookRecord, QuoteRecord, TradeRecord
from venues.replay.sources import (
    SkipReport,
    load_source,
    parse_source,
    read_bars_csv,
    read_binance_depth_csv,
    read_binance_quotes_parquet,
    read_binance_trades_parquet,
    read_tardis_book_snapshot_csv,
    read_tardis_incremental_book_l2_csv,
    read_tardis_trades_csv,
)

QUOTES = "market/binance_spot_btcusdt_quotes_2021-01-08.parquet"
TRADES = "market/binance_spot_btcusdt_trades_2021-01-08.parquet"
DEPTH_HEADER = "symbol,timestamp,first_update_id,last_update_id,side,update_type,price,qty,pu\n"



def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --- real files --------------------------------------------------------------------------------


@needs_data
def test_quotes_parquet_real_file_yields_451_ordered_decimal_quotes():
    # Arrange
    spec = {"kind": "quotes", "format": "binance_quotes_parquet", "path": QUOTES,
            "price_precision": 2, "size_precision": 6}

    # Act
    quotes = list(load_source(spec, DATA))

    # Assert
    assert len(quotes) == 451
    assert all(isinstance(q, QuoteRecord) for q in quotes)
    first = quotes[0]
    assert first.ts == utc(2021, 1, 8, 0, 0, 1, 76000)
    assert (first.bid, first.ask) == (Decimal("39432.99"), Decimal("39433.62"))
    assert (first.bid_size, first.ask_size) == (Decimal("0.0031"), Decimal("0.066851"))
    assert quotes[-1].ts == utc(2021, 1, 8, 0, 0, 46, 674000)
    assert all(a.ts <= b.ts for a, b in zip(quotes, quotes[1:]))
    assert all(isinstance(v, Decimal) for q in quotes for v in (q.bid, q.ask, q.bid_size, q.ask_size))


@needs_data
def test_trades_parquet_real_file_yields_2001_trades_with_aggressor_from_buyer_maker():
    # Arrange
    spec = {"kind": "trades", "format": "binance_trades_parquet", "path": TRADES,
            "price_precision": 2, "size_precision": 6}

    # Act
    trades = list(load_source(spec, DATA))

    # Assert
    assert len(trades) == 2001
    first, second = trades[0], trades[1]
    assert first == TradeRecord(ts=utc(2021, 1, 8, 0, 0, 0, 278000), price=Decimal("39432.48"),
                                size=Decimal("0.000263"), aggressor_side="SELL", trade_id="553287559")
    assert second.aggressor_side == "BUY"  # buyer_maker "False": the buyer took liquidity
    assert trades[2].size == Decimal("0.000311")  # recorded float 0.00031099999999999997
    assert trades[-1].ts == utc(2021, 1, 8, 0, 0, 46, 355000)
    assert trades[-1].trade_id == "553289559"
    assert all(a.ts <= b.ts for a, b in zip(trades, trades[1:]))


@needs_data
def test_trades_parquet_without_precision_keeps_float_repr():
    # Act
    trades = list(read_binance_trades_parquet(DATA / TRADES))

    # Assert
    assert trades[2].size == Decimal("0.00031099999999999997")


@needs_data
def test_trades_parquet_wrong_precision_raises_naming_row_and_field():
    # Act / Assert
    with pytest.raises(ReplayDataError, match=r"row 1: field 'quantity': .*not on a 3-decimal grid"):
        list(read_binance_trades_parquet(DATA / TRADES, size_precision=3))


@needs_data
def test_binance_depth_real_files_sequence_gap_raises_naming_update_ids():
    # Arrange
    spec = {"kind": "book", "format": "binance_depth_csv", "path": "market/binance_spot_btcusdt_depth_snapshot.csv",
            "updates_path": "market/binance_spot_btcusdt_depth_updates.csv"}
    records = iter(load_source(spec, DATA))

    # Act
    snapshot = next(records)

    # Assert: the snapshot is 100 bid levels at lastUpdateId 2098021528332; the single update event
    # (U=2098041693435) starts after it, which Binance's rule calls a gap.
    assert isinstance(snapshot, BookRecord)
    assert snapshot.ts == utc(2022, 11, 1, 23, 49, 39, 146000)
    assert len(snapshot.bids) == 100 and snapshot.asks == ()
    assert snapshot.bids[0].price == Decimal("20377.00") and snapshot.bids[0].size == Decimal("1.770")
    with pytest.raises(ReplayDataError, match=r"depth_updates\.csv: line 2: .*sequence gap.*U=2098041693435"):
        next(records)


@needs_data
def test_binance_depth_real_files_on_gap_skip_counts_dropped_rows():
    # Arrange
    source = parse_source(
        {"kind": "book", "format": "binance_depth_csv", "path": "market/binance_spot_btcusdt_depth_snapshot.csv",
         "updates_path": "market/binance_spot_btcusdt_depth_updates.csv", "on_gap": "skip"}, DATA)

    # Act
    records = list(source)

    # Assert
    assert len(records) == 1
    assert (source.report.dropped_events, source.report.dropped_rows) == (1, 100)
    assert "sequence gap" in source.report.reasons[0]


@needs_data
def test_tardis_book_snapshot_25_real_file_yields_ten_books_best_first():
    # Act
    books = list(read_tardis_book_snapshot_csv(MARKET / "tardis_binance_futures_btcusdt_book_snapshot_25.csv"))

    # Assert
    assert len(books) == 10
    first = books[0]
    assert first.ts == utc(2020, 9, 1, 0, 0, 3, 696000)
    assert len(first.bids) == 25 and len(first.asks) == 25
    assert first.best_ask.price == Decimal("11657.08") and first.best_bid.price == Decimal("11657.07")
    assert all(a.ts <= b.ts for a, b in zip(books, books[1:]))


@needs_data
def test_tardis_book_snapshot_local_timestamp_option_uses_arrival_time():
    # Act
    books = list(read_tardis_book_snapshot_csv(MARKET / "tardis_binance_futures_btcusdt_book_snapshot_5.csv",
                                               timestamp_field="local_timestamp"))

    # Assert
    assert books[0].ts == utc(2020, 9, 1, 0, 0, 3, 810979)
    assert len(books[0].asks) == 5


@needs_data
def test_tardis_deribit_l2_real_file_is_one_snapshot_of_fifteen_asks():
    # Act
    records = list(read_tardis_incremental_book_l2_csv(MARKET / "tardis_deribit_btc_perpetual_book_l2.csv"))

    # Assert
    assert len(records) == 1
    book = records[0]
    assert book.bids == () and len(book.asks) == 15
    assert book.best_ask.price == Decimal("6421.5") and book.best_ask.size == Decimal("18640")
    assert book.asks[-1].price == Decimal("6428.5")


@needs_data
def test_tardis_trades_real_file_yields_bitmex_sells():
    # Act
    trades = list(read_tardis_trades_csv(MARKET / "tardis_bitmex_xbtusd_trades.csv"))

    # Assert
    assert len(trades) == 10
    assert trades[0].trade_id == "ccc3c1fa-212c-e8b0-1706-9b9c4f3d5ecf"
    assert trades[0].size == Decimal("2152") and trades[0].price == Decimal("8531.5")
    assert {t.aggressor_side for t in trades} == {"SELL"}


@needs_data
def test_bars_csv_real_file_yields_45031_one_minute_bars_stamped_at_close():
    # Arrange
    spec = {"kind": "bars", "format": "bars_csv", "path": "market/btc_perp_1m_bars_2022-01.csv", "interval": "1m"}

    # Act
    bars = list(load_source(spec, DATA))

    # Assert
    assert len(bars) == 45031
    first = bars[0]
    assert isinstance(first, BarRecord)
    assert first.open_time == utc(2021, 12, 31, 23, 1) and first.ts == utc(2021, 12, 31, 23, 2)
    assert (first.open, first.high, first.low, first.close) == (
        Decimal("46319.0"), Decimal("46385.0"), Decimal("46319.0"), Decimal("46377.0"))
    assert first.volume == Decimal("2300413.7295") and first.volume_unit == "QUOTE"
    assert bars[-1].open_time == utc(2022, 2, 1, 5, 31)
    assert all(b.ts - a.ts == timedelta(minutes=1) for a, b in zip(bars, bars[1:]))


# --- config entry point ------------------------------------------------------------------------


def test_load_source_missing_file_raises_naming_path_and_base(tmp_path):
    # Arrange
    spec = {"kind": "quotes", "format": "binance_quotes_parquet", "path": "market/nope.parquet"}

    # Act / Assert
    with pytest.raises(ReplayDataError, match=r"not found: path='market/nope.parquet' \(looked at .*market/nope\.parquet"):
        load_source(spec, tmp_path)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"kind": "quotes", "format": "csv_of_dreams", "path": "x"}, "unknown format"),
        ({"kind": "trades", "format": "binance_quotes_parquet", "path": "x"}, "does not match format"),
        ({"kind": "quotes", "format": "binance_quotes_parquet", "path": "x", "speed": 2}, "unknown option"),
        ({"kind": "bars", "format": "bars_csv", "path": "x", "interval": "0m"}, "interval must look like"),
    ],
)
def test_parse_source_bad_config_raises(tmp_path, spec, message):
    # Arrange
    (tmp_path / "x").write_text("")

    # Act / Assert
    with pytest.raises(ReplayDataError, match=message):
        parse_source(spec, tmp_path)


def test_replay_source_iterated_twice_rereads_file(tmp_path):
    # Arrange
    write(tmp_path, "t.csv", "exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n"
                             "x,Y,1000000,1000001,a1,buy,10.5,2\n")
    source = parse_source({"kind": "trades", "format": "tardis_trades_csv", "path": "t.csv"}, tmp_path)

    # Act
    first, second = list(source), list(source)

    # Assert
    assert first == second and len(first) == 1
    assert first[0].ts == utc(1970, 1, 1, 0, 0, 1)


# --- malformed input ---------------------------------------------------------------------------


def test_quotes_parquet_null_price_raises_naming_row_and_field(tmp_path):
    # Arrange
    path = tmp_path / "q.parquet"
    ts = pa.array([utc(2021, 1, 1), utc(2021, 1, 1, 0, 0, 1)], type=pa.timestamp("ms", tz="UTC"))
    table = pa.table({"timestamp": ts, "bid": [1.0, None], "ask": [2.0, 2.0], "bid_size": [1.0, 1.0],
                      "ask_size": [1.0, 1.0]})
    pq.write_table(table, path)

    # Act / Assert
    with pytest.raises(ReplayDataError, match=r"q\.parquet: row 2: field 'bid': null value"):
        list(read_binance_quotes_parquet(path))


def test_quotes_parquet_missing_column_raises_naming_column(tmp_path):
    # Arrange
    path = tmp_path / "q.parquet"
    pq.write_table(pa.table({"timestamp": pa.array([utc(2021, 1, 1)], type=pa.timestamp("ms", tz="UTC")),
                             "bid": [1.0]}), path)

    # Act / Assert
    with pytest.raises(ReplayDataError, match=r"field 'ask': missing column"):
        list(read_binance_quotes_parquet(path))


def test_trades_parquet_time_backwards_raises(tmp_path):
    # Arrange
    path = tmp_path / "t.parquet"
    ts = pa.array([utc(2021, 1, 1, 0, 0, 2), utc(2021, 1, 1, 0, 0, 1)], type=pa.timestamp("ms", tz="UTC"))
    pq.write_table(pa.table({"timestamp": ts, "trade_id": [1, 2], "price": [1.0, 1.0], "quantity": [1.0, 1.0],
                             "buyer_maker": ["True", "False"]}), path)

    # Act / Assert
    with pytest.raises(ReplayDataError, match=r"row 2: field 'timestamp': time goes backwards"):
        list(read_binance_trades_parquet(path))


def test_trades_parquet_bad_buyer_maker_raises(tmp_path):
    # Arrange
    path = tmp_path / "t.parquet"
    ts = pa.array([utc(2021, 1, 1)], type=pa.timestamp("ms", tz="UTC"))
    pq.write_table(pa.table({"timestamp": ts, "trade_id": [1], "price": [1.0], "quantity": [1.0],
                             "buyer_maker": ["maybe"]}), path)

    # Act / Assert
    with pytest.raises(ReplayDataError, match=r"row 1: field 'buyer_maker'"):
        list(read_binance_trades_parquet(path))


def test_tardis_trades_bad_price_raises_naming_line_and_field(tmp_path):
    # Arrange
    path = write(tmp_path, "t.csv", "exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n"
                                    "x,Y,1000000,1000001,a1,buy,10.5,2\n"
                                    "x,Y,1000000,1000001,a2,buy,ten,2\n")

    # Act / Assert
    with pytest.raises(ReplayDataError, match=r"t\.csv: line 3: field 'price': not a decimal number: 'ten'"):
        list(read_tardis_trades_csv(path))


def test_tardis_book_snapshot_unordered_levels_raises(tmp_path):
    # Arrange
    path = write(tmp_path, "b.csv",
                 "exchange,symbol,timestamp,local_timestamp,asks[0].price,asks[0].amount,bids[0].price,bids[0].amount,"
                 "asks[1].price,asks[1].amount,bids[1].price,bids[1].amount\n"
                 "x,Y,1,2,101,1,100,1,100.5,1,99,1\n")

    # Act / Assert
    with pytest.raises(ReplayDataError, match=r"line 2: asks not ordered best first"):
        list(read_tardis_book_snapshot_csv(path))


def test_tardis_book_snapshot_half_empty_level_raises(tmp_path):
    # Arrange
    path = write(tmp_path, "b.csv",
                 "exchange,symbol,timestamp,local_timestamp,asks[0].price,asks[0].amount,bids[0].price,bids[0].amount\n"
                 "x,Y,1,2,101,,100,1\n")

    # Act / Assert
    with pytest.raises(ReplayDataError, match=r"line 2: field 'asks\[0\].amount': empty value"):
        list(read_tardis_book_snapshot_csv(path))


def test_tardis_l2_snapshot_then_deltas_emit_deltas_and_books(tmp_path):
    # Arrange
    path = write(tmp_path, "l2.csv", "exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount\n"
                                     "d,P,1000,1001,true,ask,101,5\n"
                                     "d,P,1000,1001,true,bid,100,4\n"
                                     "d,P,2000,2001,false,ask,101,0\n"
                                     "d,P,2000,2001,false,ask,102,7\n")

    # Act
    deltas = list(read_tardis_incremental_book_l2_csv(path, emit="deltas"))
    books = list(read_tardis_incremental_book_l2_csv(path, emit="books"))

    # Assert
    assert isinstance(deltas[0], BookRecord)
    assert deltas[1:] == [
        BookDeltaRecord(ts=utc(1970, 1, 1, 0, 0, 0, 2000), side="ASK", price=Decimal("101"), size=Decimal("0"),
                        is_last=False),
        BookDeltaRecord(ts=utc(1970, 1, 1, 0, 0, 0, 2000), side="ASK", price=Decimal("102"), size=Decimal("7"),
                        is_last=True),
    ]
    assert [lv.price for lv in books[-1].asks] == [Decimal("102")]
    assert books[-1].bids[0].size == Decimal("4")


def test_tardis_l2_delta_before_snapshot_raises(tmp_path):
    # Arrange
    path = write(tmp_path, "l2.csv", "exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount\n"
                                     "d,P,1000,1001,false,ask,101,5\n")

    # Act / Assert
    with pytest.raises(ReplayDataError, match=r"line 2: field 'is_snapshot': delta before any snapshot"):
        list(read_tardis_incremental_book_l2_csv(path))


def test_bars_csv_inconsistent_ohlc_raises(tmp_path):
    # Arrange
    path = write(tmp_path, "bars.csv", "timestamp,open,high,low,close,volume\n"
                                       "2022-01-01 00:00:00.000000,10,9,8,9,100\n")

    # Act / Assert
    with pytest.raises(ReplayDataError, match=r"line 2: inconsistent OHLC"):
        list(read_bars_csv(path))


def test_bars_csv_extra_cell_raises(tmp_path):
    # Arrange
    path = write(tmp_path, "bars.csv", "timestamp,open,high,low,close,volume\n"
                                       "2022-01-01 00:00:00.000000,10,11,9,10,100,7\n")

    # Act / Assert
    with pytest.raises(ReplayDataError, match=r"line 2: 1 cell\(s\) beyond the header"):
        list(read_bars_csv(path))


# --- Binance depth sequencing (synthetic files) ------------------------------------------------


def _depth_files(tmp_path: Path, updates: str, *, pu: bool) -> tuple[Path, Path]:
    snap = write(tmp_path, "snap.csv", DEPTH_HEADER + "S,1000,100,100,b,snap,99.0,1,-1\n"
                                                    "S,1000,100,100,a,snap,101.0,2,-1\n")
    text = updates if pu else "\n".join(",".join(r.split(",")[:-1] + ["-1"]) for r in updates.splitlines())
    return snap, write(tmp_path, "upd.csv", DEPTH_HEADER + text + "\n")


FUTURES_UPDATES = (
    "S,900,90,95,b,set,98.0,9,89\n"  # u=95 < lastUpdateId=100: stale, dropped
    "S,1001,98,102,a,set,101.0,0,95\n"  # U <= 100 <= u: first applied; removes the ask
    "S,1001,98,102,a,set,102.0,3,95\n"
    "S,1002,103,105,b,set,99.5,4,102"  # pu == previous u
)


def test_binance_depth_futures_rule_applies_chain_and_counts_stale(tmp_path):
    # Arrange
    snap, upd = _depth_files(tmp_path, FUTURES_UPDATES, pu=True)
    report = SkipReport()

    # Act
    books = list(read_binance_depth_csv(snap, upd, report=report))

    # Assert
    assert len(books) == 3
    final = books[-1]
    assert [(lv.price, lv.size) for lv in final.bids] == [(Decimal("99.5"), Decimal("4")), (Decimal("99.0"), Decimal("1"))]
    assert [(lv.price, lv.size) for lv in final.asks] == [(Decimal("102.0"), Decimal("3"))]
    assert (report.dropped_events, report.dropped_rows) == (1, 1)


def test_binance_depth_emit_deltas_marks_last_row_of_event(tmp_path):
    # Arrange
    snap, upd = _depth_files(tmp_path, FUTURES_UPDATES, pu=True)

    # Act
    records = list(read_binance_depth_csv(snap, upd, emit="deltas"))

    # Assert
    deltas = records[1:]
    assert [(d.price, d.size, d.update_id, d.is_last) for d in deltas] == [
        (Decimal("101.0"), Decimal("0"), 102, False),
        (Decimal("102.0"), Decimal("3"), 102, True),
        (Decimal("99.5"), Decimal("4"), 105, True),
    ]


def test_binance_depth_futures_broken_pu_chain_raises(tmp_path):
    # Arrange
    updates = "S,1001,98,102,a,set,101.0,0,95\nS,1002,103,105,b,set,99.5,4,101"
    snap, upd = _depth_files(tmp_path, updates, pu=True)

    # Act / Assert
    with pytest.raises(ReplayDataError, match=r"upd\.csv: line 3: .*expected pu == 102"):
        list(read_binance_depth_csv(snap, upd))


def test_binance_depth_spot_rule_requires_u_plus_one(tmp_path):
    # Arrange: spot events (pu -1): first must straddle lastUpdateId+1=101, then U == prev u + 1
    updates = "S,1001,100,102,a,set,102.0,3,0\nS,1002,103,104,b,set,99.5,4,0\nS,1003,106,107,b,set,99.6,1,0"
    snap, upd = _depth_files(tmp_path, updates, pu=False)
    records = iter(read_binance_depth_csv(snap, upd))

    # Act
    applied = [next(records), next(records), next(records)]

    # Assert
    assert applied[-1].bids[0].price == Decimal("99.5")
    with pytest.raises(ReplayDataError, match=r"line 4: .*expected U == 105"):
        next(records)


def test_binance_depth_snapshot_bad_side_raises(tmp_path):
    # Arrange
    snap = write(tmp_path, "snap.csv", DEPTH_HEADER + "S,1000,100,100,x,snap,99.0,1,-1\n")

    # Act / Assert
    with pytest.raises(ReplayDataError, match=r"snap\.csv: line 2: field 'side'"):
        list(read_binance_depth_csv(snap))


# --- precision: a recorded value finer than the instrument is refused, naming file/line/field ---


TARDIS_SNAPSHOT_HEADER = ("exchange,symbol,timestamp,local_timestamp,asks[0].price,asks[0].amount,"
                          "bids[0].price,bids[0].amount\n")


def test_tardis_book_snapshot_price_finer_than_precision_raises_naming_file_line_and_field(tmp_path):
    # Arrange
    path = write(tmp_path, "snap5.csv", TARDIS_SNAPSHOT_HEADER + "x,Y,1,2,101.25,1.5,101.20,2\n"
                                                               "x,Y,3,4,101.255,1.5,101.20,2\n")
    books = read_tardis_book_snapshot_csv(path, price_precision=2, size_precision=3)

    # Act
    first = next(books)

    # Assert: the fine row is refused where it stands, the rows before it are served
    assert first.best_ask.price == Decimal("101.25")
    with pytest.raises(ReplayDataError, match=r"snap5\.csv: line 3: field 'asks\[0\]\.price': 101\.255 has 3 decimals, "
                                              r"more than the configured precision 2"):
        next(books)


def test_tardis_book_snapshot_size_finer_than_precision_raises(tmp_path):
    # Arrange
    path = write(tmp_path, "snap5.csv", TARDIS_SNAPSHOT_HEADER + "x,Y,1,2,101.25,1.5,101.20,0.0001\n")

    # Act / Assert
    with pytest.raises(ReplayDataError, match=r"line 2: field 'bids\[0\]\.amount': 0\.0001 has 4 decimals"):
        list(read_tardis_book_snapshot_csv(path, price_precision=2, size_precision=3))


def test_csv_precision_ignores_trailing_zeros(tmp_path):
    # Arrange: "46319.0" and "20377.00" are whole numbers, "1.500" has one significant decimal
    path = write(tmp_path, "snap5.csv", TARDIS_SNAPSHOT_HEADER + "x,Y,1,2,46319.0,1.500,20377.00,2\n")

    # Act
    [book] = read_tardis_book_snapshot_csv(path, price_precision=0, size_precision=1)

    # Assert
    assert book.best_ask == book.asks[0] and book.best_ask.price == Decimal("46319.0")
    assert book.best_ask.size == Decimal("1.500")


def test_tardis_trades_size_finer_than_precision_raises(tmp_path):
    # Arrange
    path = write(tmp_path, "t.csv", "exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n"
                                    "x,Y,1000000,1000001,a1,buy,10.5,0.0000001\n")

    # Act / Assert
    with pytest.raises(ReplayDataError, match=r"t\.csv: line 2: field 'amount': 0\.0000001 has 7 decimals"):
        list(read_tardis_trades_csv(path, price_precision=2, size_precision=6))


def test_tardis_l2_price_finer_than_precision_raises(tmp_path):
    # Arrange
    path = write(tmp_path, "l2.csv", "exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount\n"
                                     "d,P,1000,1001,true,ask,101.5,5\n")

    # Act / Assert
    with pytest.raises(ReplayDataError, match=r"l2\.csv: line 2: field 'price': 101\.5 has 1 decimals"):
        list(read_tardis_incremental_book_l2_csv(path, price_precision=0))


def test_binance_depth_qty_finer_than_precision_raises(tmp_path):
    # Arrange
    snap = write(tmp_path, "snap.csv", DEPTH_HEADER + "S,1000,100,100,b,snap,99.0,1.25,-1\n")

    # Act / Assert
    with pytest.raises(ReplayDataError, match=r"snap\.csv: line 2: field 'qty': 1\.25 has 2 decimals"):
        list(read_binance_depth_csv(snap, price_precision=2, size_precision=1))


def test_bars_csv_price_finer_than_precision_raises_and_quote_volume_is_not_on_the_size_grid(tmp_path):
    # Arrange
    path = write(tmp_path, "bars.csv", "timestamp,open,high,low,close,volume\n"
                                       "2022-01-01 00:00:00.000000,10.0,11,9,10,100.123456789\n"
                                       "2022-01-01 00:01:00.000000,10,11,9,10.05,100\n")
    bars = read_bars_csv(path, price_precision=1, size_precision=3)  # QUOTE volume: 9 decimals allowed

    # Act
    first = next(bars)

    # Assert
    assert first.volume == Decimal("100.123456789")
    with pytest.raises(ReplayDataError, match=r"bars\.csv: line 3: field 'close': 10\.05 has 2 decimals"):
        next(bars)


def test_bars_csv_base_volume_finer_than_size_precision_raises(tmp_path):
    # Arrange
    path = write(tmp_path, "bars.csv", "timestamp,open,high,low,close,volume\n"
                                       "2022-01-01 00:00:00.000000,10,11,9,10,1.2345\n")

    # Act / Assert
    with pytest.raises(ReplayDataError, match=r"line 2: field 'volume': 1\.2345 has 4 decimals"):
        list(read_bars_csv(path, volume_unit="BASE", size_precision=3))


def test_parse_source_accepts_precision_options_for_every_format_and_checks_them(tmp_path):
    # Arrange
    (tmp_path / "x").write_text("")

    # Act
    source = parse_source({"kind": "bars", "format": "bars_csv", "path": "x", "price_precision": 1,
                           "size_precision": 3}, tmp_path)

    # Assert
    assert dict(source.options) == {"price_precision": 1, "size_precision": 3}
    with pytest.raises(ReplayDataError, match="price_precision must be an integer 0..18"):
        parse_source({"kind": "book", "format": "tardis_book_snapshot_csv", "path": "x", "price_precision": "2"},
                     tmp_path)


@needs_data
def test_real_book_files_fit_the_binance_btcusdt_precisions():
    # Arrange: price 2 decimals, size 6 (binance_spot_btcusdt_instrument.txt)
    specs = [
        {"kind": "book", "format": "tardis_book_snapshot_csv",
         "path": "market/tardis_binance_futures_btcusdt_book_snapshot_25.csv"},
        {"kind": "book", "format": "binance_depth_csv", "path": "market/binance_spot_btcusdt_depth_snapshot.csv"},
    ]

    # Act
    counts = [sum(1 for _ in load_source({**spec, "price_precision": 2, "size_precision": 6}, DATA))
              for spec in specs]

    # Assert
    assert counts == [10, 1]
    with pytest.raises(ReplayDataError, match=r"book_snapshot_25\.csv: line 2: field 'asks\[0\]\.price'"):
        list(load_source({**specs[0], "price_precision": 1}, DATA))


@needs_data
def test_real_bars_file_holds_interpolated_rows_finer_than_a_cent():
    # Arrange: the month of bars has a few gap-filled rows on a 0.125 / 0.25 / 0.5 grid
    spec = {"kind": "bars", "format": "bars_csv", "path": "market/btc_perp_1m_bars_2022-01.csv", "interval": "1m"}

    # Act
    at_three = sum(1 for _ in load_source({**spec, "price_precision": 3, "size_precision": 3}, DATA))

    # Assert
    assert at_three == 45031
    with pytest.raises(ReplayDataError, match=r"btc_perp_1m_bars_2022-01\.csv: line 17524: field 'close': 43613\.875"):
        list(load_source({**spec, "price_precision": 2}, DATA))
    with pytest.raises(ReplayDataError, match=r"btc_perp_1m_bars_2022-01\.csv: line 244: field 'open': 46821\.75"):
        list(load_source({**spec, "price_precision": 1}, DATA))
