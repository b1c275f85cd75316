"""Equity-curve history: snapshots from fills and marks, the bounded publish after marks, the curve,
the position book's notional and totals, and the SVG chart geometry."""

from datetime import timedelta
from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from django.db import transaction
from django.utils import timezone

from odum_live.groups import POSITIONS_GROUP, POSITIONS_UPDATED
from positions import services
from positions.charts import equity_chart
from positions.models import PositionSnapshot
from positions.selectors import EquityPoint, equity_curve, position_book
from positions.services import position_apply_fill, position_mark, position_snapshot_record
from tests.helpers import ChannelListener, eventually
from tests.orders.factories import StrategyFactory
from tests.positions.factories import PositionFactory
from tests.venues.factories import InstrumentFactory, VenueFactory, listing_of

D = Decimal
SPOT = "BINANCE-SPOT:SPOT_PAIR:BTC-USDT"
INV = "DERIBIT:PERPETUAL:BTC-USD@INV"
T0 = timezone.now().replace(microsecond=0) - timedelta(hours=1)


def fill(strategy_id, side, quantity, price, *, ts=T0, key=SPOT, venue="BINANCE-SPOT", **kwargs):
    with transaction.atomic():
        return position_apply_fill(strategy_id=strategy_id, venue=venue, instrument_key=key, side=side,
                                   quantity=D(quantity), price=D(price), fee=D(0), ts=ts, **kwargs)


def mark(price, *, ts, key=SPOT, venue="BINANCE-SPOT"):
    return position_mark(instrument_key=key, venue=venue, mark_price=D(price), ts=ts)


@pytest.fixture
def strategy(db):
    InstrumentFactory()
    return StrategyFactory(id="s-snap")


@pytest.fixture(autouse=True)
def _publish_state(settings):
    """Every test starts with no publish in the interval and no trailing send pending."""
    settings.ODUM = {**settings.ODUM, "EQUITY_SNAPSHOT_SECS": 60.0, "POSITIONS_PUBLISH_SECS": 1.0}
    services._publish_state.update(last=float("-inf"), timer=None)
    yield
    timer = services._publish_state["timer"]
    if timer is not None:
        timer.cancel()


# --- recording ------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_position_apply_fill_each_fill_records_snapshot_with_new_figures(strategy):
    # Act: buy 2 @ 100, sell 1 @ 110 (realizes 10)
    fill(strategy.id, "BUY", "2", "100")
    fill(strategy.id, "SELL", "1", "110", ts=T0 + timedelta(seconds=1))

    # Assert
    rows = list(PositionSnapshot.objects.values_list("ts", "quantity", "realized_pnl"))
    assert rows == [(T0, D(2), D(0)), (T0 + timedelta(seconds=1), D(1), D(10))]


@pytest.mark.django_db
def test_position_mark_within_interval_records_one_snapshot_then_next_after_interval(strategy):
    # Arrange: a position opened before the interval starts
    fill(strategy.id, "BUY", "1", "100", ts=T0 - timedelta(minutes=5))

    # Act: marks at +0 s, +30 s (inside EQUITY_SNAPSHOT_SECS = 60), +61 s
    mark("105", ts=T0)
    mark("106", ts=T0 + timedelta(seconds=30))
    mark("107", ts=T0 + timedelta(seconds=61))

    # Assert: the fill, the first mark and the one after the interval
    rows = list(PositionSnapshot.objects.values_list("mark_price", "unrealized_pnl"))
    assert rows == [(None, D(0)), (D(105), D(5)), (D(107), D(7))]


@pytest.mark.django_db
def test_equity_curve_fill_booked_after_a_later_mark_shows_in_the_latest_point(strategy):
    # Arrange: long 1 @ 100, marked at 110 at +80 s; then the journal, behind the marks (or a fill
    # replayed at node start), books a sell of the whole position @ 120 that the venue made at +70 s.
    fill(strategy.id, "BUY", "1", "100", ts=T0)
    mark("110", ts=T0 + timedelta(seconds=80))

    # Act
    position = fill(strategy.id, "SELL", "1", "120", ts=T0 + timedelta(seconds=70))
    last = equity_curve(strategy_ids=None, since=T0 - timedelta(minutes=1))["USDT"][-1]

    # Assert: the curve ends where the position is (flat, realized 20), not on the mark taken without the sell
    assert (position.quantity, position.realized_pnl, position.unrealized_pnl) == (D(0), D(20), D(0))
    assert (last.realized_pnl, last.unrealized_pnl) == (D(20), D(0))


@pytest.mark.django_db
def test_equity_curve_fills_booked_out_of_time_order_all_show_in_the_latest_point(strategy):
    # Arrange: long 2 @ 100; the venue's sell @ 130 at +10 s is booked before its sell @ 120 at +5 s.
    fill(strategy.id, "BUY", "2", "100", ts=T0)
    fill(strategy.id, "SELL", "1", "130", ts=T0 + timedelta(seconds=10))

    # Act
    position = fill(strategy.id, "SELL", "1", "120", ts=T0 + timedelta(seconds=5))
    last = equity_curve(strategy_ids=None, since=T0 - timedelta(minutes=1))["USDT"][-1]

    # Assert: each snapshot holds every fill booked before it, so a later one never hides an earlier booking
    rows = list(PositionSnapshot.objects.order_by("ts", "id").values_list("quantity", "realized_pnl"))
    assert rows == [(D(2), D(0)), (D(1), D(30)), (D(0), D(50))]
    assert (position.quantity, position.realized_pnl) == (D(0), D(50))
    assert last.realized_pnl == D(50)


@pytest.mark.django_db
def test_position_snapshot_record_unknown_source_or_naive_ts_raises_naming_field(strategy):
    position = fill(strategy.id, "BUY", "1", "100")
    with pytest.raises(ValueError, match="source"):
        position_snapshot_record(positions=[position], ts=T0, source="tick")
    with pytest.raises(ValueError, match="ts"):
        position_snapshot_record(positions=[position], ts=T0.replace(tzinfo=None), source="fill")


# --- publish after marks --------------------------------------------------------------------------

def _after_listening(act, *reads: float) -> list:
    """Subscribe a test channel to the positions group, run ``act`` (sync, on the database thread),
    then read one message per timeout in ``reads`` (a read that times out gives ``TimeoutError``).

    One event loop throughout: channels_redis' pub/sub layer keeps a subscription in its loop."""

    async def scenario():
        listener = await ChannelListener.subscribed(get_channel_layer(), POSITIONS_GROUP)
        try:
            await sync_to_async(act)()
            got = []
            for timeout in reads:
                try:
                    got.append(await listener.receive(timeout))
                except TimeoutError as exc:
                    got.append(exc)
            return got
        finally:
            await listener.close()

    return async_to_sync(scenario)()


@pytest.mark.django_db
def test_position_mark_sends_positions_updated_after_commit(strategy, django_capture_on_commit_callbacks):
    # Arrange
    fill(strategy.id, "BUY", "1", "100")
    captured = []

    def act():
        # the send waits for the commit
        with django_capture_on_commit_callbacks() as callbacks:
            mark("101", ts=T0)
        captured.extend(callbacks)
        callbacks[0]()

    # Act
    (message,) = _after_listening(act, 5.0)

    # Assert
    assert len(captured) == 1
    assert message == {"type": POSITIONS_UPDATED, "group": POSITIONS_GROUP}


@pytest.mark.django_db
def test_position_mark_without_positions_sends_nothing(db, django_capture_on_commit_callbacks):
    listing_of(SPOT)
    with django_capture_on_commit_callbacks() as callbacks:
        mark("101", ts=T0)
    assert callbacks == []


@pytest.mark.django_db
def test_positions_publish_updated_inside_interval_sends_one_trailing_message(settings):
    # Arrange: a short interval, so the trailing send comes soon
    settings.ODUM = {**settings.ODUM, "POSITIONS_PUBLISH_SECS": 0.3}

    def burst():
        for _ in range(3):
            services.positions_publish_updated()

    # Act: three calls in a burst; then a read at once, one after the interval, one more
    first, trailing, none = _after_listening(burst, 5.0, 5.0, 0.5)

    # Assert: one at once, one trailing at the end of the interval, nothing more
    assert first["type"] == POSITIONS_UPDATED and trailing["type"] == POSITIONS_UPDATED
    assert isinstance(none, TimeoutError)
    eventually(lambda: services._publish_state["timer"] is None, message="trailing send done")


# --- the curve ------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_equity_curve_sums_latest_snapshot_of_each_position_per_time(strategy):
    # Arrange: a second strategy on the same listing, snapshots at three times
    other = StrategyFactory(id="s-other")
    fill(strategy.id, "BUY", "1", "100", ts=T0)
    fill(other.id, "BUY", "1", "100", ts=T0 + timedelta(seconds=10))
    mark("110", ts=T0 + timedelta(seconds=80))  # past the interval after the last fill

    # Act
    series = equity_curve(strategy_ids=None, since=T0 - timedelta(minutes=1))

    # Assert: one USDT series; at +80 s both positions are marked (10 each)
    points = series["USDT"]
    assert [(p.ts, p.equity) for p in points] == [
        (T0, D(0)), (T0 + timedelta(seconds=10), D(0)), (T0 + timedelta(seconds=80), D(20))]


@pytest.mark.django_db
def test_equity_curve_scope_and_start_value_from_before_window(strategy):
    # Arrange: the visible strategy's position was marked before the window; another strategy's later
    other = StrategyFactory(id="s-hidden")
    fill(strategy.id, "BUY", "1", "100", ts=T0 - timedelta(hours=2))
    mark("150", ts=T0 - timedelta(hours=1))
    fill(other.id, "BUY", "5", "100", ts=T0 + timedelta(seconds=5))

    # Act: only strategy s-snap, window starting at T0
    series = equity_curve(strategy_ids=[strategy.id], since=T0)

    # Assert: starts at its value before the window (unrealized 50); the hidden position is absent
    assert [(p.ts, p.unrealized_pnl) for p in series["USDT"]] == [(T0, D(50))]


@pytest.mark.django_db
def test_equity_curve_separates_currencies_and_thins_to_max_points(strategy):
    # Arrange: an inverse listing (PnL in BTC) beside the spot one, and 30 spot fills
    InstrumentFactory(venue=VenueFactory(code="DERIBIT", kind="EXTERNAL_SDK", adapter="deribit"), instrument_key=INV,
                      venue_symbol="BTC-PERPETUAL", base_currency="BTC", quote_currency="USD",
                      settlement_currency="BTC", contract_multiplier=D(10), is_inverse=True, tick_size=D("0.5"),
                      lot_size=D(1))
    fill(strategy.id, "SELL", "10", "50000", key=INV, venue="DERIBIT", multiplier=D(10), inverse=True)
    for i in range(30):
        fill(strategy.id, "BUY", "1", "100", ts=T0 + timedelta(seconds=i))

    # Act
    series = equity_curve(strategy_ids=None, since=T0 - timedelta(minutes=1), max_points=10)

    # Assert
    assert sorted(series) == ["BTC", "USDT"]
    assert len(series["USDT"]) == 10
    assert (series["USDT"][0].ts, series["USDT"][-1].ts) == (T0, T0 + timedelta(seconds=29))


@pytest.mark.django_db
def test_equity_curve_sums_are_exact_beyond_28_digits(strategy):
    # Arrange: two positions whose realized PnL adds up to 31 significant digits
    for holder, realized in ((strategy, "1000000000000"), (StrategyFactory(id="s-small"), "0.000000000000000001")):
        position = PositionFactory(strategy=holder, quantity=D(1), avg_entry_price=D(100), realized_pnl=D(realized))
        position_snapshot_record(positions=[position], ts=T0, source="fill")

    # Act
    series = equity_curve(strategy_ids=None, since=T0 - timedelta(minutes=1))

    # Assert: not 1000000000000.000000000000000 (28 digits)
    assert [p.realized_pnl for p in series["USDT"]] == [D("1000000000000.000000000000000001")]

def test_equity_curve_max_points_below_two_raises():
    with pytest.raises(ValueError, match="max_points"):
        equity_curve(strategy_ids=None, since=T0, max_points=1)


# --- the book ------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_position_book_notional_at_mark_entry_or_face_value_and_totals_per_currency(strategy):
    # Arrange: spot long 2 marked at 110; futures short 1 never marked (entry 100); inverse short 10 contracts
    InstrumentFactory(venue=VenueFactory(code="BINANCE-FUTURES", adapter="binance_futures"),
                      instrument_key="BINANCE-FUTURES:PERPETUAL:BTC-USDT@LIN", venue_symbol="BTCUSDT")
    InstrumentFactory(venue=VenueFactory(code="DERIBIT", kind="EXTERNAL_SDK", adapter="deribit"), instrument_key=INV,
                      venue_symbol="BTC-PERPETUAL", base_currency="BTC", quote_currency="USD",
                      settlement_currency="BTC", contract_multiplier=D(10), is_inverse=True, tick_size=D("0.5"),
                      lot_size=D(1))
    fill(strategy.id, "BUY", "2", "100")
    mark("110", ts=T0 + timedelta(seconds=1))
    fill(strategy.id, "SELL", "1", "100", key="BINANCE-FUTURES:PERPETUAL:BTC-USDT@LIN", venue="BINANCE-FUTURES")
    fill(strategy.id, "SELL", "10", "50000", key=INV, venue="DERIBIT", multiplier=D(10), inverse=True)

    # Act
    book = position_book(strategy_ids=None)

    # Assert: notional linear |q|·mark (else entry)·multiplier, inverse |q|·face value
    notionals = {vp.instrument_key: vp.notional for agg in book.instruments for vp in agg.venues}
    assert notionals == {SPOT: D(220), "BINANCE-FUTURES:PERPETUAL:BTC-USDT@LIN": D(100), INV: D(100)}
    totals = {t.currency: (t.unrealized_pnl, t.notional) for t in book.totals}
    assert totals == {"BTC": (D(0), D(0)), "USD": (D(0), D(100)), "USDT": (D(20), D(320))}
    assert book.unpriced == []


@pytest.mark.django_db
def test_position_book_venue_filter_and_unpriced_listing(strategy):
    # Arrange: a position with no price at all (a row written directly, read-side only)
    PositionFactory(strategy=strategy, venue="OKX", instrument_key="OKX:SPOT_PAIR:ETH-USDT",
                    equivalence_key="SPOT_PAIR:ETH-USDT", quantity=D(3))
    fill(strategy.id, "BUY", "1", "100")

    # Act
    everything = position_book(strategy_ids=None)
    okx = position_book(strategy_ids=None, venue="OKX")

    # Assert
    assert everything.unpriced == ["OKX:SPOT_PAIR:ETH-USDT"]
    assert [agg.instrument_key for agg in okx.instruments] == ["ANY:SPOT_PAIR:ETH-USDT"]
    assert okx.instruments[0].venues[0].quantity == D(3) and okx.instruments[0].notional is None


# --- the chart -----------------------------------------------------------------------------------

def test_equity_chart_points_stay_inside_plot_and_extend_to_now():
    # Arrange
    points = [EquityPoint(ts=T0, realized_pnl=D(0), unrealized_pnl=D(-5)),
              EquityPoint(ts=T0 + timedelta(minutes=1), realized_pnl=D(10), unrealized_pnl=D(5))]

    # Act
    chart = equity_chart(currency="USDT", points=points, now=T0 + timedelta(minutes=2))

    # Assert: three points (held to now), all inside the plot area; last values as labels
    equity = chart.lines[0]
    coords = [tuple(map(float, p.split(","))) for p in equity.points.split()]
    assert len(coords) == 3
    assert all(chart.plot_left <= x <= chart.plot_right and chart.plot_top <= y <= chart.plot_bottom for x, y in coords)
    assert coords[-1][0] == chart.plot_right and coords[-1][1] == coords[-2][1]
    assert (equity.last, chart.lines[1].last) == ("15.00", "10.00")


def test_equity_chart_no_points_raises():
    with pytest.raises(ValueError, match="points"):
        equity_chart(currency="USDT", points=[])
