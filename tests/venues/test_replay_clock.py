"""venues.replay.clock: merge by recorded time, map to wall-clock at ×N, loop monotonically."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import islice

import pytest

from tests.helpers import SHARED_DATA as DATA
from tests.helpers import needs_market_data as needs_data
from venues.replay.clock import ReplaySchedule
from venues.replay.errors import ReplayDataError
from venues.replay.records import BarRecord, QuoteRecord, TradeRecord
from venues.replay.sources import parse_source

START = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
T0 = datetime(2021, 1, 8, 0, 0, 0, tzinfo=UTC)



def trade(ms: int, trade_id: str = "t") -> TradeRecord:
    return TradeRecord(ts=T0 + timedelta(milliseconds=ms), price=Decimal("100"), size=Decimal("1"),
                       aggressor_side="BUY", trade_id=trade_id)


def quote(ms: int) -> QuoteRecord:
    return QuoteRecord(ts=T0 + timedelta(milliseconds=ms), bid=Decimal("99"), ask=Decimal("101"),
                       bid_size=Decimal("1"), ask_size=Decimal("1"))


def test_schedule_speed_one_maps_offsets_unchanged_and_restamps():
    # Arrange
    schedule = ReplaySchedule([[trade(0), trade(250), trade(1000)]], start=START)

    # Act
    items = list(schedule)

    # Assert
    assert [due for due, _ in items] == [START, START + timedelta(milliseconds=250), START + timedelta(seconds=1)]
    assert all(record.ts == due for due, record in items)
    assert items[1][1].price == Decimal("100")


def test_schedule_speed_ten_divides_offsets():
    # Arrange
    schedule = ReplaySchedule([[trade(0), trade(250), trade(10_000)]], start=START, speed=10)

    # Act
    dues = [due for due, _ in schedule]

    # Assert
    assert dues == [START, START + timedelta(milliseconds=25), START + timedelta(seconds=1)]


def test_schedule_merges_sources_by_time_with_source_order_on_ties():
    # Arrange
    trades = [trade(0, "a"), trade(500, "b")]
    quotes = [quote(100), quote(500)]
    schedule = ReplaySchedule([quotes, trades], start=START)

    # Act
    kinds = [(type(r).__name__, due - START) for due, r in schedule]

    # Assert: first_ts is the earliest record over all sources; the 500 ms tie keeps source order
    assert kinds == [
        ("TradeRecord", timedelta(0)),
        ("QuoteRecord", timedelta(milliseconds=100)),
        ("QuoteRecord", timedelta(milliseconds=500)),
        ("TradeRecord", timedelta(milliseconds=500)),
    ]


def test_schedule_loop_restarts_after_last_with_gap_and_stays_monotonic():
    # Arrange
    schedule = ReplaySchedule([[trade(0), trade(1000)]], start=START, loop=True,
                              loop_gap=timedelta(milliseconds=500))

    # Act
    dues = [due for due, _ in islice(schedule, 6)]

    # Assert
    second = timedelta(seconds=1)
    gap = timedelta(milliseconds=500)
    assert dues == [START, START + second, START + second + gap, START + 2 * second + gap,
                    START + 2 * second + 2 * gap, START + 3 * second + 2 * gap]


@needs_data
def test_schedule_real_quotes_and_trades_looping_at_x10_is_non_decreasing():
    # Arrange
    quotes = parse_source({"kind": "quotes", "format": "binance_quotes_parquet",
                           "path": "market/binance_spot_btcusdt_quotes_2021-01-08.parquet"}, DATA)
    trades = parse_source({"kind": "trades", "format": "binance_trades_parquet",
                           "path": "market/binance_spot_btcusdt_trades_2021-01-08.parquet"}, DATA)
    schedule = ReplaySchedule([quotes, trades], start=START, speed=Decimal("10"), loop=True)

    # Act: two full passes (451 + 2001 records each) and the start of a third
    items = list(islice(schedule, 2 * 2452 + 1))

    # Assert
    dues = [due for due, _ in items]
    assert all(a <= b for a, b in zip(dues, dues[1:]))
    assert all(record.ts == due for due, record in items)
    # first record is the first trade (00:00:00.278); the last is the quote at 00:00:46.674:
    # span 46.396 s / 10 = 4.6396 s; the second pass starts one loop_gap (1 s) later
    assert dues[2451] == START + timedelta(seconds=4.6396)
    assert dues[2452] == START + timedelta(seconds=5.6396)
    assert dues[2 * 2452] == START + 2 * timedelta(seconds=5.6396)


def test_schedule_loop_with_one_shot_iterator_is_refused():
    # Act / Assert
    with pytest.raises(TypeError, match="re-iterable"):
        ReplaySchedule([iter([trade(0)])], loop=True)


@pytest.mark.parametrize("speed", [0, -1, "nan"])
def test_schedule_non_positive_speed_is_refused(speed):
    # Act / Assert
    with pytest.raises(ValueError, match="speed must be > 0"):
        ReplaySchedule([[trade(0)]], speed=speed)


def test_schedule_naive_start_is_refused():
    # Act / Assert
    with pytest.raises(ValueError, match="UTC-aware"):
        ReplaySchedule([[trade(0)]], start=datetime(2026, 1, 1))


def test_schedule_source_going_backwards_raises():
    # Arrange
    schedule = ReplaySchedule([[trade(1000), trade(0)]], start=START)

    # Act / Assert
    with pytest.raises(ReplayDataError, match="goes back in time at record 2"):
        list(schedule)


def test_schedule_loop_over_empty_sources_raises_instead_of_spinning():
    # Act / Assert
    with pytest.raises(ReplayDataError, match="no records"):
        list(ReplaySchedule([[]], start=START, loop=True))


def test_schedule_loop_single_instant_without_gap_raises():
    # Act / Assert
    with pytest.raises(ReplayDataError, match="never advances"):
        list(islice(ReplaySchedule([[trade(0)]], start=START, loop=True, loop_gap=timedelta(0)), 3))


def test_schedule_default_start_is_utc_now():
    # Arrange
    before = datetime.now(UTC)

    # Act
    schedule = ReplaySchedule([[trade(0)]])

    # Assert
    assert before <= schedule.start <= datetime.now(UTC)
    assert next(iter(schedule))[0] == schedule.start


def bar(minute: int, close: str = "100") -> BarRecord:
    return BarRecord(ts=T0 + timedelta(days=400, minutes=minute), interval=timedelta(minutes=1),
                     open=Decimal("100"), high=Decimal("101"), low=Decimal("99"), close=Decimal(close),
                     volume=Decimal("5"), volume_unit="BASE")


def test_schedule_merges_quotes_trades_and_bars_in_recorded_time_order():
    # Arrange: bars recorded 400 days after the ticks play after them, on the recorded time line
    schedule = ReplaySchedule([[quote(0), quote(2000)], [trade(1000)], [bar(0)]], start=START, speed=1000)

    # Act
    items = list(schedule)

    # Assert
    assert [type(r).__name__ for _, r in items] == ["QuoteRecord", "TradeRecord", "QuoteRecord", "BarRecord"]
    assert items[-1][0] == START + timedelta(days=400) / 1000


def test_schedule_align_starts_every_source_at_the_same_instant_and_keeps_spacing():
    # Arrange: the bars (closing 400 days + 1, 2, 3 minutes after T0) against ticks at T0 + 0..90 s
    ticks = [quote(0), quote(30_000), quote(90_000)]
    bars = [bar(0), bar(1), bar(2)]
    schedule = ReplaySchedule([ticks, bars], start=START, align=True)

    # Act
    items = [(type(r).__name__, due - START) for due, r in schedule]

    # Assert: the first bar plays with the first quote; each source keeps its own spacing
    assert items == [
        ("QuoteRecord", timedelta(0)),
        ("BarRecord", timedelta(0)),
        ("QuoteRecord", timedelta(seconds=30)),
        ("BarRecord", timedelta(minutes=1)),
        ("QuoteRecord", timedelta(seconds=90)),
        ("BarRecord", timedelta(minutes=2)),
    ]


def test_schedule_align_with_an_empty_source_and_loop_replays_the_others():
    # Arrange
    schedule = ReplaySchedule([[], [trade(0), trade(1000)]], start=START, align=True, loop=True,
                              loop_gap=timedelta(seconds=1))

    # Act
    dues = [due - START for due, _ in islice(schedule, 4)]

    # Assert
    assert dues == [timedelta(0), timedelta(seconds=1), timedelta(seconds=2), timedelta(seconds=3)]


def test_schedule_streams_lazily_a_file_whose_end_is_malformed(tmp_path):
    # Arrange: 3 good bars then a broken row; an eager loader would fail before the first bar
    path = tmp_path / "bars.csv"
    path.write_text("timestamp,open,high,low,close,volume\n"
                    "2022-01-01 00:00:00.000000,10,11,9,10,100\n"
                    "2022-01-01 00:01:00.000000,10,11,9,10,100\n"
                    "2022-01-01 00:02:00.000000,10,11,9,10,100\n"
                    "2022-01-01 00:03:00.000000,10,11,9,ten,100\n")
    source = parse_source({"kind": "bars", "format": "bars_csv", "path": str(path), "interval": "1m"}, tmp_path)
    items = iter(ReplaySchedule([source], start=START, speed=600))

    # Act
    first_three = [next(items) for _ in range(3)]

    # Assert
    assert [due - START for due, _ in first_three] == [timedelta(0), timedelta(milliseconds=100),
                                                       timedelta(milliseconds=200)]
    with pytest.raises(ReplayDataError, match=r"bars\.csv: line 5: field 'close'"):
        next(items)
