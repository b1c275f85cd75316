"""venues.node.publisher: ticks coalesced per listing, published once per round, marks at a bounded rate.

Issue #3 §3 / §5: the node publishes the latest quote of each listing into the market-data store
at a bounded rate (one round every ``interval_secs``) and marks positions at most every
``mark_interval_secs``. The publisher is driven directly, without a TradingNode: ticks through
:meth:`MarketDataPublisher.on_quote`, rounds through :meth:`MarketDataPublisher.publish_pending`
(the thread's round), time through an injected clock. The store is the real one of the run
(memory on the embedded default, Redis under a prefix of its own when ``REDIS_URL`` is set),
wrapped to record each publish.
"""

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from nautilus_trader.model.data import QuoteTick
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.objects import Price, Quantity

from positions.models import Position
from tests.helpers import position_row_held
from tests.positions.factories import PositionFactory
from tests.venues.factories import listing_of
from venues.marketdata import MarketSnapshot, MemoryMarketDataStore, RedisMarketDataStore, set_market_data_store
from venues.node.publisher import MarketDataPublisher

SPOT = "BINANCE-SPOT:SPOT_PAIR:BTC-USDT"
SPOT_ID = "BTCUSDT.BINANCE"
PERP = "BINANCE-FUTURES:PERPETUAL:BTC-USDT@LIN"
PERP_ID = "BTCUSDT-PERP.BINANCE"
T0_NS = 1_700_000_000_000_000_000
T0 = datetime.fromtimestamp(T0_NS // 1_000_000_000, UTC)
MS = 1_000_000  # nanoseconds


class RecordingStore:
    """A market-data store that records every snapshot published before passing it on."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.published: list[MarketSnapshot] = []

    def publish(self, snapshot: MarketSnapshot) -> None:
        self.published.append(snapshot)
        self.inner.publish(snapshot)

    def get(self, instrument_key: str) -> MarketSnapshot | None:
        return self.inner.get(instrument_key)

    def get_many(self, instrument_keys: list[str]) -> dict[str, MarketSnapshot]:
        return self.inner.get_many(instrument_keys)

    def clear(self) -> None:
        self.inner.clear()


class FakeClock:
    """Monotonic seconds that move only when the test says so."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, secs: float) -> None:
        self.now += secs


class ScriptedStop:
    """Stands in for the publisher thread's stop event: each ``wait`` is one interval passing.

    During interval *i* the *i*-th feed runs (the ticks that arrive in it); the last feed's wait
    returns True, as if ``stop()`` had been called. ``timeouts`` keeps what each wait was asked
    for, ``marks`` how many snapshots the store had when each interval began.
    """

    def __init__(self, store: RecordingStore, feeds: list) -> None:
        self._store = store
        self._feeds = list(feeds)
        self.timeouts: list[float] = []
        self.marks: list[int] = []

    def wait(self, timeout: float) -> bool:
        self.timeouts.append(timeout)
        self.marks.append(len(self._store.published))
        self._feeds.pop(0)()
        return not self._feeds

    def set(self) -> None:
        pass

    def clear(self) -> None:
        pass


@pytest.fixture
def store():
    """The run's kind of market-data store, empty, installed as the process's store for the test."""
    if settings.REDIS_URL:
        inner = RedisMarketDataStore(settings.REDIS_URL, f"test:md:{uuid.uuid4().hex}")
    else:
        inner = MemoryMarketDataStore()
    recording = RecordingStore(inner)
    previous = set_market_data_store(recording)
    yield recording
    set_market_data_store(previous)
    inner.clear()


def quote(instrument_id: str, bid: str, ask: str, ts_ns: int) -> QuoteTick:
    return QuoteTick(InstrumentId.from_str(instrument_id), Price.from_str(bid), Price.from_str(ask),
                     Quantity.from_str("1.50"), Quantity.from_str("2.25"), ts_ns, ts_ns)


def at(ms: int) -> datetime:
    return T0 + timedelta(milliseconds=ms)


@pytest.fixture
def listings():
    """The spot and perpetual listings (linear, multiplier 1) whose positions the publisher marks."""
    return listing_of(SPOT, nautilus_instrument_id=SPOT_ID), listing_of(PERP, nautilus_instrument_id=PERP_ID)


# --- publishing ----------------------------------------------------------------------------------
@pytest.mark.django_db
def test_publisher_round_publishes_each_listing_once_with_its_latest_quote(store):
    # Arrange
    publisher = MarketDataPublisher(interval_secs=0.25, clock=FakeClock())
    for i in range(100):
        publisher.on_quote(SPOT, quote(SPOT_ID, f"{40000 + i}.00", f"{40000 + i}.02", T0_NS + i * MS))
    for i in range(3):
        publisher.on_quote(PERP, quote(PERP_ID, f"{41000 + i}.0", f"{41000 + i}.1", T0_NS + i * MS))
    published_by_ticks = list(store.published)

    # Act
    count = publisher.publish_pending()

    # Assert
    assert published_by_ticks == []  # a tick only replaces the pending value: no I/O on the node's loop
    assert count == 2 and publisher.published == 2
    assert Counter(s.instrument_key for s in store.published) == {SPOT: 1, PERP: 1}
    spot, perp = store.get(SPOT), store.get(PERP)
    assert (spot.bid, spot.ask, spot.ts) == (Decimal("40099.00"), Decimal("40099.02"), at(99))
    assert (spot.bid_size, spot.ask_size) == (Decimal("1.50"), Decimal("2.25"))
    assert (perp.bid, perp.ask, perp.ts) == (Decimal("41002.0"), Decimal("41002.1"), at(2))
    assert publisher.last_market_data() == {SPOT: at(99).isoformat(), PERP: at(2).isoformat()}


@pytest.mark.django_db
def test_publisher_round_without_new_quotes_publishes_nothing_and_the_next_quote_is_published(store):
    # Arrange
    publisher = MarketDataPublisher(interval_secs=0.25, clock=FakeClock())
    publisher.on_quote(SPOT, quote(SPOT_ID, "40000.00", "40000.02", T0_NS))
    publisher.publish_pending()

    # Act
    idle = publisher.publish_pending()
    publisher.on_quote(SPOT, quote(SPOT_ID, "40010.00", "40010.02", T0_NS + 500 * MS))
    after = publisher.publish_pending()

    # Assert
    assert (idle, after) == (0, 1)  # nothing is re-published; the newer quote is
    assert [(s.bid, s.ts) for s in store.published] == [(Decimal("40000.00"), T0), (Decimal("40010.00"), at(500))]
    assert store.get(SPOT).bid == Decimal("40010.00")
    assert publisher.published == 2


# transaction=True: the loop closes the database connections of its thread (here the test's) as
# the real thread does, which a test inside one transaction could not survive.
@pytest.mark.django_db(transaction=True)
def test_publisher_thread_waits_interval_secs_between_rounds_and_publishes_at_most_once_per_listing(store, listings):
    # Arrange
    publisher = MarketDataPublisher(interval_secs=0.25, clock=FakeClock())

    def first_interval():
        for i in range(50):
            publisher.on_quote(SPOT, quote(SPOT_ID, f"{40000 + i}.00", f"{40000 + i}.02", T0_NS + i * MS))
        publisher.on_quote(PERP, quote(PERP_ID, "41000.0", "41000.1", T0_NS))
        publisher.on_quote(PERP, quote(PERP_ID, "41001.0", "41001.1", T0_NS + MS))

    def quiet_interval():
        pass

    def third_interval():
        publisher.on_quote(SPOT, quote(SPOT_ID, "40100.00", "40100.02", T0_NS + 750 * MS))

    def last_interval():  # ends with stop(): what is pending is published once more
        publisher.on_quote(SPOT, quote(SPOT_ID, "40200.00", "40200.02", T0_NS + 900 * MS))

    stop = ScriptedStop(store, [first_interval, quiet_interval, third_interval, last_interval])
    publisher._stop = stop

    # Act
    publisher._run()  # the publishing thread's body, on this thread

    # Assert
    assert stop.timeouts == [0.25] * 4
    bounds = [*stop.marks, len(store.published)]
    rounds = [[(s.instrument_key, s.bid) for s in store.published[a:b]] for a, b in zip(bounds, bounds[1:])]
    assert store.published[:stop.marks[0]] == []
    assert sorted(rounds[0]) == [(PERP, Decimal("41001.0")), (SPOT, Decimal("40049.00"))]
    assert rounds[1:] == [[], [(SPOT, Decimal("40100.00"))], [(SPOT, Decimal("40200.00"))]]
    assert publisher.marks == 2  # each listing once: the fake clock never reaches the mark interval
    assert publisher.errors == 0


# --- marks ---------------------------------------------------------------------------------------
@pytest.fixture
def open_positions(listings):
    """A long BTC-USDT spot position and a short perpetual one of one strategy, never marked."""
    spot = PositionFactory(quantity=Decimal("1"), avg_entry_price=Decimal("40000"))
    perp = PositionFactory(strategy=spot.strategy, venue="BINANCE-FUTURES", instrument_key=PERP,
                           equivalence_key="PERPETUAL:BTC-USDT@LIN", quantity=Decimal("-2"),
                           avg_entry_price=Decimal("41000"))
    return spot, perp


def mark_of(position: Position) -> tuple[Decimal | None, datetime | None]:
    position.refresh_from_db()
    return position.mark_price, position.marked_at


def publisher_marked_at_t0() -> tuple[MarketDataPublisher, FakeClock]:
    """A publisher (mark interval 1 s, on a fake clock at t = 0) that has published and marked one
    spot quote (bid 40000.00, ask 40000.02, at T0)."""
    clock = FakeClock()
    publisher = MarketDataPublisher(interval_secs=0.25, mark_interval_secs=1.0, clock=clock)
    publisher.on_quote(SPOT, quote(SPOT_ID, "40000.00", "40000.02", T0_NS))
    publisher.publish_pending()
    return publisher, clock


@pytest.mark.django_db
def test_publisher_marks_a_listing_at_most_once_per_mark_interval(store, open_positions):
    # Arrange
    spot, perp = open_positions
    publisher, clock = publisher_marked_at_t0()
    first_mark = mark_of(spot)

    # Act
    clock.advance(0.5)
    publisher.on_quote(SPOT, quote(SPOT_ID, "40100.00", "40100.02", T0_NS + 500 * MS))
    publisher.on_quote(PERP, quote(PERP_ID, "41000.0", "41000.2", T0_NS + 500 * MS))
    count = publisher.publish_pending()

    # Assert
    assert first_mark == (Decimal("40000.01"), T0)
    assert count == 2 and store.get(SPOT).bid == Decimal("40100.00")  # the quote is published ...
    assert mark_of(spot) == first_mark  # ... but the spot positions keep their mark within the interval
    assert mark_of(perp) == (Decimal("41000.1"), at(500))  # the bound is per listing
    assert publisher.marks == 2 and publisher.errors == 0


@pytest.mark.django_db
def test_publisher_marks_again_with_the_latest_mid_once_the_mark_interval_has_passed(store, open_positions):
    # Arrange
    spot, _ = open_positions
    publisher, clock = publisher_marked_at_t0()
    clock.advance(0.5)
    publisher.on_quote(SPOT, quote(SPOT_ID, "40100.00", "40100.02", T0_NS + 500 * MS))
    publisher.publish_pending()  # within the interval: published, not marked

    # Act
    clock.advance(0.5)  # t = 1.0: one mark interval after the last mark
    publisher.on_quote(SPOT, quote(SPOT_ID, "40200.00", "40200.02", T0_NS + 900 * MS))
    publisher.on_quote(SPOT, quote(SPOT_ID, "40300.00", "40300.02", T0_NS + 1000 * MS))
    publisher.publish_pending()

    # Assert
    assert mark_of(spot) == (Decimal("40300.01"), at(1000))  # the latest mid, not a coalesced-away one
    assert spot.unrealized_pnl == Decimal("300.01")  # long 1 BTC from 40000
    assert publisher.marks == 2
    assert [s.bid for s in store.published] == [Decimal("40000.00"), Decimal("40100.00"), Decimal("40300.00")]


@pytest.mark.django_db
def test_publisher_marks_a_quote_skipped_by_the_mark_bound_once_the_interval_has_passed_without_new_quotes(
        store, open_positions):
    # Arrange: a mark at t = 0, then a last quote at t = 0.5 (within the interval: not marked then)
    spot, _perp = open_positions
    publisher, clock = publisher_marked_at_t0()
    clock.advance(0.5)
    publisher.on_quote(SPOT, quote(SPOT_ID, "40200.00", "40200.02", T0_NS + 500 * MS))
    publisher.publish_pending()
    skipped = mark_of(spot)
    # Act: the quotes stop; rounds go on
    clock.advance(0.25)
    publisher.publish_pending()  # t = 0.75: still within the interval
    within = mark_of(spot)
    clock.advance(0.5)
    published = publisher.publish_pending()  # t = 1.25: past it
    # Assert: the position ends on the last quote's mid, marked once, with nothing re-published
    assert skipped == within == (Decimal("40000.01"), T0)
    assert mark_of(spot) == (Decimal("40200.01"), at(500))
    assert published == 0 and publisher.marks == 2 and publisher.errors == 0
    clock.advance(2)
    publisher.publish_pending()
    assert publisher.marks == 2  # marked once: nothing left to mark


@pytest.mark.django_db
def test_publisher_marks_a_position_opened_after_the_last_quote_once_the_mark_interval_has_passed(
        store, open_positions):
    # Arrange: the listing marked at t = 0 from its last quote; then a fill opens another strategy's
    # position there (never marked), and the quotes stop
    spot, _perp = open_positions
    publisher, clock = publisher_marked_at_t0()
    late = PositionFactory(quantity=Decimal("2"), avg_entry_price=Decimal("39990"))

    # Act: rounds go on without quotes
    clock.advance(0.5)
    publisher.publish_pending()  # t = 0.5: within the mark interval
    within = mark_of(late)
    clock.advance(0.75)
    published = publisher.publish_pending()  # t = 1.25: past it

    # Assert: the new position ends on the listing's latest mid too, with nothing re-published
    assert within == (None, None)
    assert mark_of(late) == (Decimal("40000.01"), T0)
    assert late.unrealized_pnl == Decimal("20.02")  # long 2 from 39990
    assert mark_of(spot) == (Decimal("40000.01"), T0)
    assert published == 0 and publisher.marks == 2 and publisher.errors == 0
    clock.advance(2)
    publisher.publish_pending()
    assert publisher.marks == 2  # every position is on the mark: nothing left to mark


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_publisher_marks_a_position_a_fill_held_locked_during_the_last_mark_once_the_interval_has_passed(
        store, listings):
    # Arrange: two strategies long spot; a fill holds the first one's row while the last quote is marked
    held_row = PositionFactory(quantity=Decimal("1"), avg_entry_price=Decimal("40000"))
    free_row = PositionFactory(quantity=Decimal("3"), avg_entry_price=Decimal("40000"))
    with position_row_held(pk=held_row.pk):
        publisher, clock = publisher_marked_at_t0()  # skips the held row
    skipped = mark_of(held_row)

    # Act: the fill has committed; the quotes have stopped; rounds go on
    clock.advance(1.25)
    publisher.publish_pending()

    # Assert
    assert skipped == (None, None) and mark_of(free_row) == (Decimal("40000.01"), T0)
    assert mark_of(held_row) == (Decimal("40000.01"), T0)
    assert held_row.unrealized_pnl == Decimal("0.01")
    assert publisher.marks == 2 and publisher.errors == 0


@pytest.mark.django_db
def test_publisher_mark_that_fails_retries_the_latest_quote_next_cycle_and_logs_the_failure(
        store, open_positions, monkeypatch, caplog):
    # Arrange: the database refuses the first mark (as an outage would), then recovers
    import positions.services
    from django.db import OperationalError

    spot, _perp = open_positions
    real_mark = positions.services.position_mark
    calls: list[str] = []

    def mark_failing_once(**kwargs):
        calls.append(kwargs["instrument_key"])
        if len(calls) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return real_mark(**kwargs)

    monkeypatch.setattr(positions.services, "position_mark", mark_failing_once)
    clock = FakeClock()
    publisher = MarketDataPublisher(interval_secs=0.25, mark_interval_secs=1.0, clock=clock)
    publisher.on_quote(SPOT, quote(SPOT_ID, "40000.00", "40000.02", T0_NS))
    with caplog.at_level("WARNING", logger="venues.node.publisher"):
        publisher.publish_pending()  # published; its mark fails
    failed = mark_of(spot)

    # Act: the instrument stays quiet (no new quote); the rounds go on past one mark interval
    clock.advance(1.0)
    published = publisher.publish_pending()

    # Assert: the same quote marked on the next cycle; the failure logged with what and why
    assert failed == (None, None)
    assert mark_of(spot) == (Decimal("40000.01"), T0)
    assert published == 0 and publisher.marks == 1 and publisher.errors == 1
    (record,) = [r for r in caplog.records if r.name == "venues.node.publisher"]
    assert record.levelname == "ERROR"
    assert SPOT in record.getMessage() and "OperationalError" in record.getMessage()
    assert "retr" in record.getMessage()


@pytest.mark.django_db
def test_publisher_publish_that_fails_republishes_the_latest_quote_next_round_and_marks_it(store, open_positions):
    # Arrange: the market-data store refuses the first publish (e.g. Redis restarting), then recovers
    spot, _perp = open_positions
    real_publish = store.publish
    refusals: list[MarketSnapshot] = []

    def publish_failing_once(snapshot: MarketSnapshot) -> None:
        if not refusals:
            refusals.append(snapshot)
            raise ConnectionError("Connection refused")
        real_publish(snapshot)

    store.publish = publish_failing_once
    clock = FakeClock()
    publisher = MarketDataPublisher(interval_secs=0.25, mark_interval_secs=1.0, clock=clock)
    publisher.on_quote(SPOT, quote(SPOT_ID, "40000.00", "40000.02", T0_NS))
    refused = publisher.publish_pending()

    # Act: the instrument stays quiet (no new quote); the next round
    clock.advance(0.25)
    published = publisher.publish_pending()

    # Assert: that quote published and marked, not dropped until the next quote
    assert refused == 0 and published == 1 and publisher.errors == 1
    assert store.get(SPOT).bid == Decimal("40000.00")
    assert publisher.last_market_data() == {SPOT: T0.isoformat()}
    assert mark_of(spot) == (Decimal("40000.01"), T0)
