"""venues.node: a real TradingNode on the recorded Binance BTCUSDT data, driven through the venue tasks.

One node per test (a build costs a few ms, and the replay's first quote plays at the first
subscription). Tests use real commits (``transaction=True``): the journal writer and the market-data
publisher work on their own threads and connections.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from orders.models import Fill, Order, OrderEvent
from orders.services.cancel import order_cancel
from positions.models import Position
from tests.helpers import SHARED_DATA, eventually, needs_market_data, running_node_host
from tests.orders.factories import OrderFactory
from tests.venues.factories import InstrumentFactory, VenueFactory
from venues.commands import NodeOrderStatus, OrderStatusQuery
from venues.events import VenueEvent, VenueEventKind
from venues.journal import JournalWriter
from venues.marketdata import market_data
from venues.node.config import node_plan
from venues.node.host import TradingNodeHost
from venues.replay.client import resolve_sources
from venues.tasks import cancel_order, submit_order

pytestmark = [needs_market_data, pytest.mark.django_db(transaction=True)]

KEY = "BINANCE-SPOT:SPOT_PAIR:BTC-USDT"
QUOTES = {"kind": "quotes", "format": "binance_quotes_parquet",
          "path": "market/binance_spot_btcusdt_quotes_2021-01-08.parquet"}
TRADES = {"kind": "trades", "format": "binance_trades_parquet",
          "path": "market/binance_spot_btcusdt_trades_2021-01-08.parquet"}
REPLAY = {"data_dir": str(SHARED_DATA), "speed": 5.0, "loop": True, "instruments": {KEY: [QUOTES, TRADES]}}


def _listing():
    venue = VenueFactory(code="BINANCE-SPOT", config={"replay": REPLAY})
    return InstrumentFactory(venue=venue, instrument_key=KEY)


class _Recording:
    """The journal's apply, recording every event it was given (to replay one)."""

    def __init__(self):
        from orders.services.venue_events import order_apply_venue_event

        self.apply_one = order_apply_venue_event
        self.events: list[VenueEvent] = []
        self.lose: set[VenueEventKind] = set()  # kinds whose next event is lost (a write that failed)

    def __call__(self, *, event):
        self.events.append(event)
        if event.kind in self.lose:
            self.lose.discard(event.kind)
            raise RuntimeError(f"{event.kind} not written (test: the journal lost it)")
        return self.apply_one(event=event)


@pytest.fixture(scope="module")
def recorded_quotes():
    plan_config = {"venue": "BINANCE"}
    from venues.replay.client import ReplayDataClientConfig, ReplayInstrumentConfig

    config = ReplayDataClientConfig(
        **plan_config, sources=(QUOTES,), data_dir=str(SHARED_DATA),
        instrument=ReplayInstrumentConfig(symbol="BTCUSDT", base_currency="BTC", quote_currency="USDT",
                                          price_precision=2, size_precision=6, price_increment="0.01",
                                          size_increment="0.000001"))
    return list(resolve_sources(config)[0])


@pytest.fixture
def node(transactional_db):
    _listing()
    plan = node_plan()
    recording = _Recording()
    with running_node_host(plan, trader_id="TESTNODE-001", journal=JournalWriter(apply=recording),
                           first_quote_of=KEY, message="first replayed quote", md_interval_secs=0.05,
                           mark_interval_secs=0.05,
                           journal_wait_secs=0.05) as host:  # as deployed: the node waits for an idle writer
        host.recording = recording
        yield host


@pytest.fixture
def listing(node):
    return _listing()  # the row the node was planned from


def _order(**values) -> Order:
    values.setdefault("client_order_id", "OL" + uuid.uuid4().hex[:22])
    return OrderFactory(**values)


def _status(order: Order, *statuses: str) -> str | None:
    status = Order.objects.values_list("status", flat=True).get(pk=order.pk)
    return status if status in statuses else None


def _twap(*, quantity: str, horizon_secs: int, interval_secs: int, price: Decimal | None = None) -> Order:
    # A BUY TWAP parent: MARKET, or LIMIT at ``price`` (quote currency); quantity in BTC.
    return _order(order_type="MARKET" if price is None else "LIMIT", price=price, side="BUY",
                  quantity=Decimal(quantity), exec_algorithm="TWAP",
                  exec_algorithm_params={"horizon_secs": horizon_secs, "interval_secs": interval_secs})


def _twap_filled(**twap) -> Order:
    # A TWAP parent (as _twap) sent through the venue task and worked on the node until FILLED.
    parent = _twap(**twap)
    submit_order.apply(args=[str(parent.pk)])
    eventually(lambda: _status(parent, "FILLED"), timeout=20, message="TWAP parent filled")
    parent.refresh_from_db()
    return parent


def test_host_stop_called_while_another_stop_drains_waits_for_it_and_returns_its_outcome(transactional_db):
    # Arrange: a host (never started) whose journal is still writing an event when it is told to stop,
    # as when a lost node lease stops the host on one thread and the worker's shutdown on another
    import threading

    _listing()
    gate, written = threading.Event(), []

    def apply(*, event):
        gate.wait(30)
        written.append(event)
        return type("Applied", (), {"applied": True})()

    writer = JournalWriter(apply=apply).start()
    host = TradingNodeHost(plan=node_plan(), trader_id="TESTNODE-STOP", journal=writer, heartbeat_secs=0)
    event = VenueEvent(kind=VenueEventKind.ACCEPTED, client_order_id="OL-drain", venue="BINANCE-SPOT",
                       ts_event=timezone.now())
    writer.submit(event)
    outcomes: dict[str, tuple[bool, list]] = {}

    def stop(name):
        clean = host.stop(timeout=30)
        outcomes[name] = (clean, list(written))

    first = threading.Thread(target=stop, args=("first",))
    first.start()
    eventually(lambda: host.stopped, message="the first stop under way")

    # Act: a second stop while the first drains the journal
    second = threading.Thread(target=stop, args=("second",))
    second.start()
    second.join(1.0)  # a chance to return early, which it must not take
    gate.set()
    first.join(30)
    second.join(30)

    # Assert: the second caller got the first's outcome only once the journal had written the event
    assert outcomes["first"] == (True, [event])
    assert outcomes["second"] == (True, [event])


def test_host_hands_venue_events_to_its_journal_waiting_for_an_idle_writer_only_when_configured(transactional_db):
    # Arrange: two hosts on one writer (neither started: only their event sink is used).
    _listing()
    plan = node_plan()
    written: list[VenueEvent] = []

    def apply(*, event):
        written.append(event)
        return type("Applied", (), {"applied": True})()

    writer = JournalWriter(apply=apply).start()
    waiting = TradingNodeHost(plan=plan, trader_id="TESTNODE-W", journal=writer, heartbeat_secs=0,
                              journal_wait_secs=30)
    queuing = TradingNodeHost(plan=plan, trader_id="TESTNODE-Q", journal=writer, heartbeat_secs=0)
    first, second = (VenueEvent(kind=VenueEventKind.ACCEPTED, client_order_id=cid, venue="BINANCE-SPOT",
                                ts_event=timezone.now()) for cid in ("OL-first", "OL-second"))

    # Act
    waited = waiting._event_sink()(first)
    written_when_it_returned = list(written)
    queued = queuing._event_sink()(second)

    # Assert: the waiting sink returned once the event was written; the other only queued it.
    assert waited is True and written_when_it_returned == [first]
    assert queued is None
    eventually(lambda: len(written) == 2, message="second event written")
    assert writer.stop(timeout=10)


def test_node_plan_paper_venue_has_replay_and_sandbox_clients(listing):
    plan = node_plan()

    assert [v.code for v in plan.venues] == ["BINANCE-SPOT"] and plan.venues[0].problems == ()
    (lp,) = plan.listings
    assert (lp.instrument_key, lp.nautilus_instrument_id, lp.exec_client_id) == (KEY, "BTCUSDT.BINANCE", "BINANCE")
    assert lp.feeds == ("quotes", "trades") and lp.data_client_id in plan.data_clients
    assert set(plan.exec_clients) == {"SANDBOX_BINANCE"}
    assert str(plan.instruments[0].id) == "BTCUSDT.BINANCE"


def test_node_plan_reports_a_paper_venue_without_replay_data(listing):
    listing.venue.config = {"replay": {**REPLAY, "data_dir": "/nonexistent/data"}}
    listing.venue.save()

    plan = node_plan()

    (venue,) = plan.venues
    assert "replay data unavailable" in venue.problems[0] and "not found" in venue.problems[0]
    assert plan.listings[0].data_client_id == "" and plan.data_clients == {}


def test_node_market_order_larger_than_the_recorded_touch_fills_completely_at_recorded_asks(
        node, listing, recorded_quotes):
    order = _order(order_type="MARKET", price=None, side="BUY", quantity=Decimal("20"))

    submit_order.apply(args=[str(order.pk)])

    eventually(lambda: _status(order, "FILLED", "REJECTED"), timeout=15, message="order filled")
    order.refresh_from_db()
    assert order.status == "FILLED", order.rejection_reason
    fills = list(Fill.objects.filter(order=order))
    assert sum(f.quantity for f in fills) == Decimal("20") == order.filled_quantity
    asks = {q.ask for q in recorded_quotes}
    assert all(f.price in asks for f in fills), [f.price for f in fills]
    assert max(q.ask_size for q in recorded_quotes) < Decimal("20")  # larger than any recorded touch
    assert all(f.fee_currency == "USDT" and f.fee == (f.price * f.quantity * Decimal("0.001")) for f in fills)
    position = Position.objects.get(instrument_key=KEY, venue="BINANCE-SPOT", strategy=order.strategy)
    assert position.quantity == Decimal("20")
    types = list(OrderEvent.objects.filter(order=order).values_list("type", flat=True))
    assert types[:1] == ["SUBMITTED"] and types[-1] == "FILLED" and "ACCEPTED" not in types


def test_node_limit_order_rests_then_cancels(node, listing, recorded_quotes):
    far_below = (min(q.bid for q in recorded_quotes) * Decimal("0.9")).quantize(Decimal("0.01"))
    order = _order(order_type="LIMIT", price=far_below, side="BUY", quantity=Decimal("0.01"))

    submit_order.apply(args=[str(order.pk)])
    eventually(lambda: _status(order, "ACCEPTED"), message="limit order accepted")
    order.refresh_from_db()
    assert order.venue_order_id
    order_cancel(order=order, actor="test", reason="test cancel")
    cancel_order.apply(args=[str(order.pk)])

    eventually(lambda: _status(order, "CANCELED"), message="limit order canceled")
    assert not Fill.objects.filter(order=order).exists()


def test_host_call_started_before_its_timeout_waits_for_the_outcome_and_one_not_started_never_runs(node):
    import threading
    import time

    from venues.commands import VenueCommandError

    # Act: a command the loop starts within the timeout but that outlasts it (it may be sending an
    # order): it runs until a full timeout past the caller's deadline, whenever the loop starts it
    timeout = 1.0
    until = time.monotonic() + 2 * timeout
    started = node.call(lambda: (time.sleep(max(0.0, until - time.monotonic())), "sent")[1], timeout=timeout)
    # ... and one the loop cannot start in time (the loop is held in a blocking call until it was refused)
    ran = []
    blocker = threading.Event()
    node.loop.call_soon_threadsafe(blocker.wait, 30)
    try:
        with pytest.raises(VenueCommandError, match="did not take the command"):
            node.call(lambda: ran.append(True), timeout=0.05)
    finally:
        blocker.set()
    node.call(lambda: None, timeout=5)  # queued after it: once this ran, the refused one had its turn

    # Assert: never "not taken" for a command that ran; a refused one never runs
    assert started == "sent" and ran == []


def test_node_stop_with_a_cancel_in_flight_journals_the_venues_answer(monkeypatch, recorded_quotes):
    # Arrange: a paper venue that answers a cancel 50 ms after it is sent (a real venue's round trip);
    # a LIMIT order resting on it, canceled through the OMS.
    from nautilus_trader.model.identifiers import ClientOrderId

    from venues.node.paper import PaperExecutionClient

    answer_cancel = PaperExecutionClient.cancel_order
    monkeypatch.setattr(PaperExecutionClient, "cancel_order",
                        lambda self, command: self._loop.call_later(0.05, answer_cancel, self, command))
    _listing()
    recording = _Recording()
    far_below = (min(q.bid for q in recorded_quotes) * Decimal("0.9")).quantize(Decimal("0.01"))
    order = _order(order_type="LIMIT", price=far_below, side="BUY", quantity=Decimal("0.01"))
    with running_node_host(node_plan(), trader_id="TESTNODE-STOP", journal=JournalWriter(apply=recording),
                           first_quote_of=KEY, md_interval_secs=0.05, mark_interval_secs=3600) as host:
        submit_order.apply(args=[str(order.pk)])
        eventually(lambda: _status(order, "ACCEPTED"), message="limit order resting")
        order_cancel(order=order, actor="test", reason="test cancel")

        # Act: the worker hands the cancel to the node; its warm shutdown (SIGTERM) then stops the
        # node while the venue's answer is still on its way (running_node_host stops it on exit).
        cancel_order.apply(args=[str(order.pk)])

    # Assert: the venue canceled the order while the node was stopping, and the journal has it.
    cached = host.node.kernel.cache.order(ClientOrderId(order.client_order_id))
    journaled = [str(e.kind) for e in recording.events if e.client_order_id == order.client_order_id]
    assert cached.status_string() == "CANCELED"
    assert _status(order, "CANCELED"), journaled


def test_node_query_answers_the_node_state_of_a_resting_then_canceled_order_and_none_for_an_unknown_one(
        node, listing, recorded_quotes):
    # Arrange: a far limit order resting at the paper venue
    far_below = (min(q.bid for q in recorded_quotes) * Decimal("0.9")).quantize(Decimal("0.01"))
    order = _order(order_type="LIMIT", price=far_below, side="BUY", quantity=Decimal("0.01"))
    submit_order.apply(args=[str(order.pk)])
    eventually(lambda: _status(order, "ACCEPTED"), message="limit order accepted")
    order.refresh_from_db()
    # Act: query it on the node (also asking the venue: the sandbox answers no report)
    resting = node.query(OrderStatusQuery(client_order_id=order.client_order_id, ask_venue=True))
    unknown = node.query(OrderStatusQuery(client_order_id="OL" + uuid.uuid4().hex[:22]))
    # Assert: the node's view matches the order the OMS holds
    assert resting == NodeOrderStatus(
        client_order_id=order.client_order_id, venue_order_id=order.venue_order_id, status="ACCEPTED",
        quantity=Decimal("0.010000"), filled_quantity=Decimal("0.000000"), leaves_quantity=Decimal("0.010000"),
        avg_fill_price=None)
    assert unknown is None
    # Act: cancel it, then query again
    order_cancel(order=order, actor="test", reason="test cancel")
    cancel_order.apply(args=[str(order.pk)])
    eventually(lambda: _status(order, "CANCELED"), message="limit order canceled")
    canceled = node.query(OrderStatusQuery(client_order_id=order.client_order_id))
    # Assert
    assert (canceled.status, canceled.leaves_quantity) == ("CANCELED", Decimal("0"))


def test_node_query_of_a_filled_market_order_gives_its_fills_quantity_and_average_price(node, listing):
    # Arrange
    order = _order(order_type="MARKET", price=None, side="BUY", quantity=Decimal("0.03"))
    submit_order.apply(args=[str(order.pk)])
    eventually(lambda: _status(order, "FILLED"), message="order filled")
    order.refresh_from_db()
    # Act
    filled = node.query(OrderStatusQuery(client_order_id=order.client_order_id))
    # Assert: the node's filled quantity and average price are the journal's
    assert filled.status == "FILLED"
    assert filled.filled_quantity == order.filled_quantity == Decimal("0.03")
    assert filled.avg_fill_price == order.avg_fill_price


def test_node_submit_delivered_twice_reaches_the_venue_once(node, listing):
    order = _order(order_type="MARKET", price=None, side="SELL", quantity=Decimal("0.01"))

    submit_order.apply(args=[str(order.pk)])
    submit_order.apply(args=[str(order.pk)])

    eventually(lambda: _status(order, "FILLED"), message="order filled")
    assert Fill.objects.filter(order=order).count() == 1
    assert OrderEvent.objects.filter(order=order, type="IGNORED", payload__command="submit").count() == 1


def test_node_fill_event_replayed_changes_nothing(node, listing):
    order = _order(order_type="MARKET", price=None, side="BUY", quantity=Decimal("0.02"))
    submit_order.apply(args=[str(order.pk)])
    eventually(lambda: _status(order, "FILLED"), message="order filled")
    (fill_event,) = [e for e in node.recording.events
                     if e.client_order_id == order.client_order_id and e.kind == VenueEventKind.FILLED]
    position = Position.objects.get(instrument_key=KEY, strategy=order.strategy)
    events_before = OrderEvent.objects.filter(order=order).count()

    node.journal.submit(fill_event)
    marker = _order(status="CANCELED")  # a later event on the same queue: when it is applied, the replay was too
    node.journal.submit(VenueEvent(kind=VenueEventKind.CANCELED, client_order_id=marker.client_order_id,
                                   venue="BINANCE-SPOT", ts_event=timezone.now()))
    eventually(lambda: OrderEvent.objects.filter(order=marker).exists(), message="marker applied")

    assert Fill.objects.filter(order=order).count() == 1
    assert OrderEvent.objects.filter(order=order).count() == events_before
    position_after = Position.objects.get(pk=position.pk)
    assert (position_after.quantity, position_after.realized_pnl) == (position.quantity, position.realized_pnl)


def test_node_order_for_a_listing_it_does_not_trade_is_rejected_with_the_reason(node, listing):
    order = _order(routed_instrument_key="BINANCE-SPOT:SPOT_PAIR:ETH-USDT", instrument_key="BINANCE-SPOT:SPOT_PAIR:ETH-USDT")

    submit_order.apply(args=[str(order.pk)])

    order.refresh_from_db()
    assert order.status == "REJECTED"
    assert "not sent to the venue" in order.rejection_reason and "not traded by this trading node" in order.rejection_reason


def test_node_publishes_recorded_quotes_to_the_market_data_store_and_marks_positions(node, listing, recorded_quotes):
    order = _order(order_type="MARKET", price=None, side="BUY", quantity=Decimal("0.01"))
    submit_order.apply(args=[str(order.pk)])
    eventually(lambda: _status(order, "FILLED"), message="order filled")

    snapshot = market_data().get(KEY)
    assert snapshot is not None
    assert (snapshot.bid, snapshot.ask) in {(q.bid, q.ask) for q in recorded_quotes}
    marked = eventually(lambda: Position.objects.filter(instrument_key=KEY, strategy=order.strategy,
                                                        mark_price__isnull=False).first(), message="position marked")
    mids = {(q.bid + q.ask) / 2 for q in recorded_quotes}
    assert marked.mark_price in mids


def test_node_status_reports_clients_connected_and_market_data(node, listing):
    status = node.status()

    assert status["ready"] is True
    assert status["clients"] and all(status["clients"].values()), status["clients"]
    assert KEY in status["market_data"]
    assert status["venues"]["BINANCE-SPOT"] == {"mode": "paper", "problems": [], "notes": []}


def test_node_twap_slices_over_the_horizon_with_parent_child_attribution(node, listing):
    # Act: three slices, a second apart
    parent = _twap_filled(quantity="0.03", horizon_secs=3, interval_secs=1)

    # Assert
    children = list(Order.objects.filter(parent=parent).order_by("created_at"))
    assert [c.client_order_id for c in children] == [f"{parent.client_order_id}-E{n}" for n in (1, 2)]
    assert all(c.status == "FILLED" and c.strategy_id == parent.strategy_id for c in children)
    own = list(Fill.objects.filter(order=parent))  # the last slice is the primary itself
    child_fills = list(Fill.objects.filter(order__parent=parent))
    assert sum(f.quantity for f in own + child_fills) == Decimal("0.03") == parent.filled_quantity
    assert len(child_fills) == 2 and len(own) == 1
    times = sorted(f.ts_event for f in own + child_fills)
    assert (times[-1] - times[0]).total_seconds() >= 1.5  # spread over the horizon, not sent at once


def test_node_heartbeat_after_a_stop_reports_the_node_down(transactional_db):
    # Arrange: a running node whose one heartbeat (written at start; the next is an hour away) says "running"
    from odum_live.health import DOWN, OK, check_trading_node
    from tests.helpers import forget_trading_node_heartbeats

    _listing()
    forget_trading_node_heartbeats()
    try:
        with running_node_host(node_plan(), trader_id="TESTNODE-BEAT", heartbeat_secs=3600) as host:
            eventually(lambda: check_trading_node().status == OK, message="first heartbeat recorded")

        # Act: the worker's warm shutdown stopped the node (running_node_host stops it on exit)
        result = check_trading_node()

        # Assert: health says the node is gone now, not once the "running" beat has aged out
        assert host.stopped
        assert result.status == DOWN, result.detail
        assert result.detail.startswith(f"stopped on {host.worker_id}")
    finally:
        forget_trading_node_heartbeats()


def test_node_status_with_its_loop_blocked_reports_not_ready(node):
    # Arrange: the node's loop stuck in a blocking call (its thread and strategy still "running")
    import threading

    blocker = threading.Event()
    node.loop.call_soon_threadsafe(blocker.wait, 30)
    try:
        # Act
        status = node.status()
    finally:
        blocker.set()

    # Assert: the heartbeat says what a command would meet — not ready, and why
    assert status["ready"] is False, status
    assert "unresponsive" in status["error"]
    assert "did not take the command" in status["clients"]["error"]


def test_node_gtd_limit_order_resting_past_its_expire_time_expires(node, listing, recorded_quotes):
    # Arrange: a GTD LIMIT far below the market (it rests), expiring shortly
    far_below = (min(q.bid for q in recorded_quotes) * Decimal("0.9")).quantize(Decimal("0.01"))
    expire = timezone.now() + timedelta(seconds=2)
    order = _order(order_type="LIMIT", price=far_below, side="BUY", quantity=Decimal("0.01"),
                   time_in_force="GTD", expire_time=expire)

    # Act
    submit_order.apply(args=[str(order.pk)])

    # Assert: accepted, then EXPIRED by the paper venue once its clock passes the expire_time
    eventually(lambda: _status(order, "EXPIRED"), timeout=15, message="GTD order expired")
    order.refresh_from_db()
    assert order.closed_at is not None
    events = list(OrderEvent.objects.filter(order=order).values_list("type", flat=True))
    assert OrderEvent.Type.ACCEPTED in events and events[-1] == OrderEvent.Type.EXPIRED, events


def _worker_takes_cancel(order: Order) -> None:
    # The trading worker takes the order's cancel: run here with a broker; in the embedded default
    # (eager Celery) the task already ran on the cancel's commit.
    from celery_app import app

    if not app.conf.task_always_eager:
        cancel_order.apply(args=[str(order.pk)])


def test_node_cancel_resent_for_an_order_the_node_closed_redelivers_the_lost_answer(node, listing, recorded_quotes):
    # Arrange: a resting LIMIT order canceled at the venue, whose CANCELED the journal failed to write:
    # the OMS holds it PENDING_CANCEL, the node holds it CANCELED
    far_below = (min(q.bid for q in recorded_quotes) * Decimal("0.9")).quantize(Decimal("0.01"))
    order = _order(order_type="LIMIT", price=far_below, side="BUY", quantity=Decimal("0.01"))
    submit_order.apply(args=[str(order.pk)])
    eventually(lambda: _status(order, "ACCEPTED"), message="limit order accepted")
    node.recording.lose.add(VenueEventKind.CANCELED)
    order_cancel(order=order, actor="test", reason="test cancel")
    _worker_takes_cancel(order)
    eventually(lambda: VenueEventKind.CANCELED not in node.recording.lose and node.journal.wait_handled(timeout=5),
               message="the venue's CANCELED lost by the journal")
    assert _status(order, "PENDING_CANCEL")

    # Act: the cancel sent again (the sweeper's re-send of a stale cancel), taken by the trading worker
    cancel_order.apply(args=[str(order.pk)])

    # Assert: the node answers the repeated cancel with the order's closing event: CANCELED in the OMS
    eventually(lambda: _status(order, "CANCELED"), message="the lost CANCELED redelivered")
    assert not Fill.objects.filter(order=order).exists()


def test_node_cancel_the_venue_never_answers_is_closed_by_the_node_saying_the_venue_did_not_confirm(
        node, listing, recorded_quotes, monkeypatch):
    # Arrange: a resting LIMIT order; from now on the venue takes cancels and never answers them
    from venues.node.paper import PaperExecutionClient

    far_below = (min(q.bid for q in recorded_quotes) * Decimal("0.9")).quantize(Decimal("0.01"))
    order = _order(order_type="LIMIT", price=far_below, side="BUY", quantity=Decimal("0.01"))
    submit_order.apply(args=[str(order.pk)])
    eventually(lambda: _status(order, "ACCEPTED"), message="limit order accepted")
    monkeypatch.setattr(PaperExecutionClient, "cancel_order", lambda self, command: None)

    # Act
    order_cancel(order=order, actor="test", reason="test cancel")
    _worker_takes_cancel(order)

    # Assert: NautilusTrader's in-flight check gives up after its retries (~40 s with LiveExecEngineConfig's
    # defaults) and closes the order CANCELED itself; the timeline says the venue never confirmed it
    eventually(lambda: _status(order, "CANCELED"), timeout=120, message="pending cancel resolved by the node")
    canceled = OrderEvent.objects.get(order=order, type=OrderEvent.Type.CANCELED)
    assert canceled.payload["reason"].startswith("not confirmed by the venue")


def test_node_order_the_venue_never_acknowledges_is_rejected_by_the_node_saying_the_venue_did_not_confirm(
        node, listing, recorded_quotes, monkeypatch):
    # Arrange: the venue takes orders (the node records them SUBMITTED, as an adapter does on sending)
    # and never answers them
    from venues.node.paper import PaperExecutionClient

    def swallow(self, command):
        self._client.generate_order_submitted(command.strategy_id, command.instrument_id,
                                              command.order.client_order_id, self._clock.timestamp_ns())

    monkeypatch.setattr(PaperExecutionClient, "submit_order", swallow)
    far_below = (min(q.bid for q in recorded_quotes) * Decimal("0.9")).quantize(Decimal("0.01"))
    order = _order(order_type="LIMIT", price=far_below, side="BUY", quantity=Decimal("0.01"))

    # Act
    submit_order.apply(args=[str(order.pk)])

    # Assert: the node's in-flight check gives up after its retries and rejects it, saying the venue confirmed
    # nothing (it may have reached the venue)
    eventually(lambda: _status(order, "REJECTED"), timeout=120, message="unacknowledged order resolved by the node")
    order.refresh_from_db()
    assert order.rejection_reason.startswith("not confirmed by the venue") and "(UNKNOWN)" in order.rejection_reason
