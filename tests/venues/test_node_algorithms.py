"""venues.algorithms on a real TradingNode: VWAP and ICEBERG on the recorded Binance BTCUSDT data.

Issue #3 §7: the execution algorithms run on the node the trading worker hosts, replaying
../shared/data/market (accelerated, x5), with parent / child attribution in the database. The
node, its listing and the recorded quotes are the fixtures of ``tests/venues/test_node_host.py``
(one node per test, real commits: the journal writer works on its own thread and connection). The
TWAP case lives there (``test_node_twap_slices_over_the_horizon_with_parent_child_attribution``).
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Context, Decimal

import pytest
from django.db import connection

from orders.models import Fill, Order, OrderEvent
from orders.services.cancel import order_cancel
from tests.helpers import eventually, needs_market_data
from tests.venues.test_node_host import (  # noqa: F401 - fixtures used by name
    KEY,
    _order,
    _status,
    _twap,
    _twap_filled,
    listing,
    node,
    recorded_quotes,
)
from venues.events import VenueEventKind
from venues.tasks import cancel_order, submit_order

pytestmark = [needs_market_data, pytest.mark.django_db(transaction=True)]

INSTRUMENT_ID = "BTCUSDT.BINANCE"
_AVG_QUANTUM = Decimal(1).scaleb(-18)  # NUMERIC(36,18), as the journal stores the average


def _recent_trade_volume(node, *, secs: int) -> Decimal:
    # Volume of the trade ticks in the node's cache stamped in the last ``secs`` (read on the loop thread).
    from nautilus_trader.model.identifiers import InstrumentId

    cache, clock = node.node.kernel.cache, node.node.kernel.clock

    def read() -> Decimal:
        since = clock.timestamp_ns() - secs * 1_000_000_000
        return sum((t.size.as_decimal() for t in cache.trade_ticks(InstrumentId.from_str(INSTRUMENT_ID))
                    if t.ts_event > since), Decimal(0))

    return node.call(read)


def _algorithm_state(node, algorithm: str, client_order_id: str) -> tuple[bool, bool]:
    # (sequence still held, slice timer still set) of the algorithm for this parent, read on the loop thread.
    from nautilus_trader.model.identifiers import ClientOrderId

    def read() -> tuple[bool, bool]:
        (algo,) = [a for a in node.node.trader.exec_algorithms() if a.id.value == algorithm]
        return (ClientOrderId(client_order_id) in algo._sequences,
                f"{algorithm}-{client_order_id}" in algo.clock.timer_names)

    return node.call(read)


def _family_figures(parent: Order) -> tuple[Decimal, Decimal]:
    # Σ quantity and quantity-weighted average price over the fills of the parent and its children,
    # as the database holds them: SQLite keeps a decimal as a REAL, which Django reads back to 15
    # significant digits (django/db/backends/sqlite3/operations.py, get_decimalfield_converter).
    fills = list(Fill.objects.filter(order=parent)) + list(Fill.objects.filter(order__parent=parent))
    filled = sum((f.quantity for f in fills), Decimal(0))
    notional = sum((f.quantity * f.price for f in fills), Decimal(0))
    avg = (notional / filled).quantize(_AVG_QUANTUM, rounding=ROUND_HALF_EVEN)
    if connection.vendor == "sqlite":
        avg = Context(prec=15).create_decimal(avg)
    return filled, avg


def _peak_shown(events, *, parent: Order) -> Decimal:
    # Largest quantity of the parent's family working at the venue at once, walking the journaled
    # events in the order the node sent them: a child counts from its creation (before it reaches
    # the venue: an over-estimate) until filled or ended; the primary from its first venue event.
    shown: dict[str, Decimal] = {}
    created: dict[str, Decimal] = {}
    peak = Decimal(0)
    for event in events:
        cid = event.client_order_id
        if event.kind == VenueEventKind.CHILD_CREATED and event.parent_client_order_id == parent.client_order_id:
            created[cid] = shown[cid] = event.quantity
        elif cid == parent.client_order_id and cid not in shown and event.kind in (
                VenueEventKind.ACCEPTED, VenueEventKind.FILLED):
            shown[cid] = parent.quantity - sum(created.values())  # the primary sent as the last slice
        if cid in shown and event.kind == VenueEventKind.FILLED:
            shown[cid] -= event.last_qty
        elif cid in shown and event.kind in (VenueEventKind.CANCELED, VenueEventKind.EXPIRED, VenueEventKind.REJECTED):
            shown[cid] = Decimal(0)
        peak = max(peak, sum(shown.values()))
    return peak


def test_node_vwap_slices_follow_the_volume_profile_with_parent_child_attribution(node, listing, recorded_quotes):
    # Arrange: a non-uniform profile over 3 intervals of 2 s (uniform would be 0.002 each). The
    # participation cap (required by the API) is 100 % of the previous interval's market volume: the
    # recording trades over 3 BTC in any 5 recorded seconds (1 s of replay), so it never binds here;
    # the first slice's cap reads the cached trades, so wait until the replay has traded enough.
    eventually(lambda: _recent_trade_volume(node, secs=1) >= Decimal("0.01"), timeout=15,
               message="recorded trades in the node's cache")
    parent = _order(order_type="MARKET", price=None, side="BUY", quantity=Decimal("0.006"), exec_algorithm="VWAP",
                    exec_algorithm_params={"horizon_secs": 6, "interval_secs": 2, "max_participation": "1",
                                           "volume_profile": ["3", "1", "2"]})

    # Act
    submit_order.apply(args=[str(parent.pk)])

    # Assert: two children, then the primary itself as the last slice, sized by the profile.
    eventually(lambda: _status(parent, "FILLED", "CANCELED", "REJECTED"), timeout=30, message="VWAP parent done")
    parent.refresh_from_db()
    assert parent.status == "FILLED", parent.rejection_reason
    children = list(Order.objects.filter(parent=parent).order_by("created_at"))
    assert [c.client_order_id for c in children] == [f"{parent.client_order_id}-E{n}" for n in (1, 2)]
    assert [c.quantity for c in children] == [Decimal("0.003"), Decimal("0.001")]
    assert all(c.status == "FILLED" and c.order_type == "MARKET" and c.side == "BUY"
               and c.strategy_id == parent.strategy_id and c.routed_instrument_key == KEY for c in children)
    own = list(Fill.objects.filter(order=parent))
    assert sum(f.quantity for f in own) == Decimal("0.002")  # the last slice: what the profile left
    for child in children:
        assert sum(f.quantity for f in Fill.objects.filter(order=child)) == child.quantity == child.filled_quantity
    # The parent's figures are its family's fills, at recorded asks.
    filled, avg = _family_figures(parent)
    assert parent.filled_quantity == filled == Decimal("0.006") and parent.avg_fill_price == avg
    family = own + list(Fill.objects.filter(order__parent=parent))
    asks = {q.ask for q in recorded_quotes}
    assert all(f.price in asks for f in family), [f.price for f in family]
    times = sorted(f.ts_event for f in family)
    assert (times[-1] - times[0]).total_seconds() >= 3  # spread over the horizon (2 intervals), not sent at once


def test_node_iceberg_shows_display_qty_at_a_time_and_refills_until_the_parent_fills(node, listing, recorded_quotes):
    # Arrange: a marketable BUY limit above every recorded ask, so each slice fills at the touch.
    limit = (max(q.ask for q in recorded_quotes) * Decimal("1.01")).quantize(Decimal("0.01"))
    display = Decimal("0.01")
    parent = _order(order_type="LIMIT", price=limit, side="BUY", quantity=Decimal("0.035"), exec_algorithm="ICEBERG",
                    exec_algorithm_params={"display_qty": str(display)})

    # Act
    submit_order.apply(args=[str(parent.pk)])

    # Assert: three display-sized children, then the primary for the 0.005 left.
    eventually(lambda: _status(parent, "FILLED", "CANCELED", "REJECTED"), timeout=30, message="ICEBERG parent done")
    parent.refresh_from_db()
    assert parent.status == "FILLED", parent.rejection_reason
    children = list(Order.objects.filter(parent=parent).order_by("created_at"))
    assert [c.client_order_id for c in children] == [f"{parent.client_order_id}-E{n}" for n in (1, 2, 3)]
    assert all(c.quantity == display and c.order_type == "LIMIT" and c.price == limit and c.status == "FILLED"
               and c.strategy_id == parent.strategy_id for c in children)
    own = list(Fill.objects.filter(order=parent))
    child_fills = list(Fill.objects.filter(order__parent=parent))
    assert sum(f.quantity for f in own) == Decimal("0.005")
    assert sum(f.quantity for f in own + child_fills) == Decimal("0.035") == parent.filled_quantity
    assert _family_figures(parent) == (parent.filled_quantity, parent.avg_fill_price)
    asks = {q.ask for q in recorded_quotes}
    assert all(f.price in asks and f.price <= limit for f in own + child_fills)
    # Never more than display_qty at the venue: each refill only after the previous slice filled.
    assert _peak_shown(node.recording.events, parent=parent) == display
    for previous, following in zip(children, children[1:], strict=False):
        last_fill = max(f.ts_event for f in Fill.objects.filter(order=previous))
        assert following.submitted_at is not None and following.submitted_at >= last_fill
    # The primary's own acknowledgement, as the last slice, is on its timeline as such, not ignored.
    assert not OrderEvent.objects.filter(order=parent, type="IGNORED").exists()
    assert OrderEvent.objects.get(order=parent, type="ACCEPTED").status_before == "PARTIALLY_FILLED"
    assert parent.accepted_at is not None


def test_node_vwap_parent_cancel_cancels_its_resting_children_and_stops_slicing(node, listing, recorded_quotes):
    # Arrange: a VWAP LIMIT parent far below the market (its slices rest) over a long horizon; wait
    # for two resting children.
    far_below = (min(q.bid for q in recorded_quotes) * Decimal("0.9")).quantize(Decimal("0.01"))
    parent = _order(order_type="LIMIT", price=far_below, side="BUY", quantity=Decimal("0.010"), exec_algorithm="VWAP",
                    exec_algorithm_params={"horizon_secs": 20, "interval_secs": 2, "max_participation": "1",
                                           "volume_profile": ["1"] * 10})
    eventually(lambda: _recent_trade_volume(node, secs=1) >= Decimal("0.01"), timeout=15,
               message="recorded trades in the node's cache")
    submit_order.apply(args=[str(parent.pk)])
    eventually(lambda: Order.objects.filter(parent=parent, status="ACCEPTED").count() >= 2, timeout=20,
               message="two VWAP children resting")
    assert _algorithm_state(node, "VWAP", parent.client_order_id) == (True, True)  # still slicing

    # Act: the production path: the cancel service, then the trading worker's cancel task.
    order_cancel(order=parent, actor="test", reason="test cancel")
    cancel_order.apply(args=[str(parent.pk)])

    # Assert: the parent and every child canceled, none filled, and the algorithm stopped slicing.
    eventually(lambda: _status(parent, "CANCELED"), timeout=15, message="VWAP parent canceled")
    eventually(lambda: not Order.objects.filter(parent=parent).exclude(status="CANCELED").exists(), timeout=15,
               message="every child canceled")
    children = list(Order.objects.filter(parent=parent))
    assert len(children) >= 2
    assert all(c.venue_order_id and c.quantity == Decimal("0.001") for c in children)
    assert not Fill.objects.filter(order__in=[parent, *children]).exists()
    assert _algorithm_state(node, "VWAP", parent.client_order_id) == (False, False)
    # The cancel command named the children the OMS knew open (the node cancels those it alone knows too).
    received = OrderEvent.objects.get(order=parent, type="VENUE_RECEIVED", payload__command="cancel")
    assert {f"{parent.client_order_id}-E{n}" for n in (1, 2)} <= set(received.payload["children"])


def test_node_iceberg_parent_cancel_cancels_its_resting_slice(node, listing, recorded_quotes):
    # Arrange: an ICEBERG parent far below the market: its first slice rests.
    far_below = (min(q.bid for q in recorded_quotes) * Decimal("0.9")).quantize(Decimal("0.01"))
    parent = _order(order_type="LIMIT", price=far_below, side="BUY", quantity=Decimal("0.03"), exec_algorithm="ICEBERG",
                    exec_algorithm_params={"display_qty": "0.01"})
    submit_order.apply(args=[str(parent.pk)])
    child = eventually(lambda: Order.objects.filter(parent=parent, status="ACCEPTED").first(),
                       message="first ICEBERG slice resting")

    # Act
    order_cancel(order=parent, actor="test", reason="test cancel")
    cancel_order.apply(args=[str(parent.pk)])

    # Assert: the parent and its one slice canceled; no refill.
    eventually(lambda: _status(parent, "CANCELED"), timeout=15, message="ICEBERG parent canceled")
    eventually(lambda: _status(child, "CANCELED"), timeout=15, message="ICEBERG slice canceled")
    slices = Order.objects.filter(parent=parent).order_by("created_at").values_list("client_order_id", flat=True)
    assert list(slices) == [f"{parent.client_order_id}-E1"]
    assert child.quantity == Decimal("0.01") and child.price == far_below
    assert not Fill.objects.filter(order__in=[parent, child]).exists()
    assert _algorithm_state(node, "ICEBERG", parent.client_order_id) == (False, False)


def _slice_step(node, algorithm: str, client_order_id: str):
    # The interval's slice step as the algorithm's timer holds it once past its checks (primary held,
    # sequence running), built on the loop thread; calling it later replays a timer that lost the race.
    import functools

    from nautilus_trader.model.identifiers import ClientOrderId

    def build():
        (algo,) = [a for a in node.node.trader.exec_algorithms() if a.id.value == algorithm]
        primary = algo.cache.order(ClientOrderId(client_order_id))
        instrument = algo.cache.instrument(primary.instrument_id)
        sequence = algo._sequences[primary.client_order_id]
        return functools.partial(algo._work_interval, primary, instrument, sequence, Decimal(0))

    return node.call(build)


def _node_orders(node, *client_order_ids: str) -> list[str]:
    # Which of these client_order_ids the node's cache holds (read on the loop thread).
    from nautilus_trader.model.identifiers import ClientOrderId

    cache = node.node.kernel.cache
    return node.call(lambda: [cid for cid in client_order_ids if cache.order(ClientOrderId(cid)) is not None])


def test_node_twap_slice_step_after_the_parent_cancel_sends_no_slice(node, listing, recorded_quotes):
    # Arrange: a TWAP LIMIT parent far below the market (its first slice rests; the next is 20 s
    # away), and the slice step its timer would run, taken while the parent is still held.
    far_below = (min(q.bid for q in recorded_quotes) * Decimal("0.9")).quantize(Decimal("0.01"))
    parent = _twap(price=far_below, quantity="0.003", horizon_secs=60, interval_secs=20)
    submit_order.apply(args=[str(parent.pk)])
    first = eventually(lambda: Order.objects.filter(parent=parent, status="ACCEPTED").first(),
                       timeout=15, message="first TWAP slice resting")
    step = _slice_step(node, "TWAP", parent.client_order_id)
    order_cancel(order=parent, actor="test", reason="test cancel")
    cancel_order.apply(args=[str(parent.pk)])
    eventually(lambda: _status(parent, "CANCELED") and _status(first, "CANCELED"), timeout=15,
               message="parent and first slice canceled")

    # Act: the timer's slice step runs after the cancel was handed to the node
    node.call(step)

    # Assert: no new slice exists on the node, nor reached the venue or the OMS
    second = f"{parent.client_order_id}-E2"
    assert _node_orders(node, second) == []
    children = Order.objects.filter(parent=parent).values_list("client_order_id", flat=True)
    assert list(children) == [first.client_order_id]
    assert _status(parent, "CANCELED")


def test_node_twap_slice_timer_works_its_slices_on_the_node_loop_thread(node, listing, monkeypatch):
    # Arrange: record the thread of every slice step. NautilusTrader's LiveClock calls timer callbacks
    # on its own thread; a step there races the bridge's cancel on the loop thread.
    import threading

    from venues.algorithms.vwap import VWAPExecAlgorithm

    threads: list[int] = []
    original = VWAPExecAlgorithm._work_interval

    def recorded(self, *args):
        threads.append(threading.get_ident())
        return original(self, *args)

    monkeypatch.setattr(VWAPExecAlgorithm, "_work_interval", recorded)
    loop_thread = node.call(threading.get_ident)

    # Act
    _twap_filled(quantity="0.002", horizon_secs=2, interval_secs=1)

    # Assert: both slices worked (the first on arrival, the last from the timer), each on the loop thread
    assert len(threads) == 2
    assert set(threads) == {loop_thread}


def _as_stored(price: Decimal | None) -> Decimal | None:
    # A price as the journal stores an average (NUMERIC(36,18); SQLite reads back 15 significant digits).
    if price is None:
        return None
    price = price.quantize(_AVG_QUANTUM, rounding=ROUND_HALF_EVEN)
    return Context(prec=15).create_decimal(price) if connection.vendor == "sqlite" else price


def _queried(node, parent: Order) -> tuple:
    from venues.commands import OrderStatusQuery

    answer = node.query(OrderStatusQuery(client_order_id=parent.client_order_id))
    return (answer.status, answer.quantity, answer.filled_quantity, answer.leaves_quantity,
            _as_stored(answer.avg_fill_price), answer.child_client_order_ids)


def test_node_query_of_a_working_then_canceled_twap_parent_gives_the_family_figures(node, listing):
    # Arrange: a TWAP parent of three slices 20 s apart: its first child fills at once, the primary is
    # held by the algorithm (NautilusTrader reduced its quantity by the slice spawned from it).
    parent = _twap(quantity="0.03", horizon_secs=60, interval_secs=20)
    submit_order.apply(args=[str(parent.pk)])
    eventually(lambda: Order.objects.filter(pk=parent.pk, status="PARTIALLY_FILLED",
                                            filled_quantity=Decimal("0.01")).exists(),
               timeout=20, message="first TWAP slice filled")
    parent.refresh_from_db()
    first = f"{parent.client_order_id}-E1"

    # Act
    working = _queried(node, parent)

    # Assert: the node's answer for the parent is its family's, as the OMS's row for the parent holds it
    assert working == ("PARTIALLY_FILLED", Decimal("0.03"), Decimal("0.01"), Decimal("0.02"),
                       parent.avg_fill_price, (first,))
    assert (parent.status, parent.filled_quantity) == ("PARTIALLY_FILLED", Decimal("0.01"))

    # Act: cancel the parent (the unsent slices with it), then query again
    order_cancel(order=parent, actor="test", reason="test cancel")
    cancel_order.apply(args=[str(parent.pk)])
    eventually(lambda: _status(parent, "CANCELED"), timeout=15, message="TWAP parent canceled")
    parent.refresh_from_db()
    canceled = _queried(node, parent)

    # Assert
    assert canceled == ("CANCELED", Decimal("0.03"), parent.filled_quantity, Decimal("0"), parent.avg_fill_price,
                        (first,))


def test_node_query_of_a_filled_twap_parent_gives_the_family_figures(node, listing):
    # Arrange: a TWAP parent of two slices: a child, then the primary itself for the rest
    parent = _twap_filled(quantity="0.02", horizon_secs=2, interval_secs=1)

    # Act
    filled = _queried(node, parent)

    # Assert: the parent's quantity, the family's fills and their average, as the OMS holds them
    assert filled == ("FILLED", Decimal("0.02"), Decimal("0.02"), Decimal("0"), parent.avg_fill_price,
                      (f"{parent.client_order_id}-E1",))
    assert _family_figures(parent) == (parent.filled_quantity, parent.avg_fill_price)


def _quote_to_node(node, *, bid: Decimal, ask: Decimal) -> None:
    # One quote for the listing, built as the replay builds its ticks and handed to the node's data
    # engine on the loop thread, as a data client's would be: the market reaches a price when the test
    # says so, not when the replay's pass does. The paper venue matches its resting orders against it
    # before the call returns (the replay's next quote comes after it, on the same loop).
    from datetime import UTC, datetime

    from nautilus_trader.model.identifiers import InstrumentId

    from venues.replay.client import quote_tick_from_record
    from venues.replay.records import QuoteRecord

    kernel = node.node.kernel
    record = QuoteRecord(ts=datetime.now(UTC), bid=bid, ask=ask, bid_size=Decimal("1"), ask_size=Decimal("1"))

    def publish() -> None:
        instrument = kernel.cache.instrument(InstrumentId.from_str(INSTRUMENT_ID))
        tick = quote_tick_from_record(record, instrument.id, instrument.price_precision, instrument.size_precision,
                                      kernel.clock.timestamp_ns())
        kernel.data_engine.process(tick)

    node.call(publish)


def test_node_twap_parent_whose_last_slice_fills_after_a_child_was_canceled_closes_canceled_with_its_fills(
        node, listing, recorded_quotes):
    # Arrange: a TWAP BUY LIMIT of two slices below every recorded ask, so no replayed quote fills
    # either slice, whenever it plays: E1 rests, the primary is sent as the last slice and rests, the
    # trader cancels E1 (nothing filled).
    price = (min(q.bid for q in recorded_quotes) * Decimal("0.9")).quantize(Decimal("0.01"))
    parent = _twap(price=price, quantity="0.002", horizon_secs=2, interval_secs=1)
    submit_order.apply(args=[str(parent.pk)])
    eventually(lambda: Order.objects.filter(pk=parent.pk, accepted_at__isnull=False).exists()
               and Order.objects.filter(parent=parent, status="ACCEPTED").exists(),
               timeout=30, message="E1 and the primary (the last slice) resting")
    first = Order.objects.get(parent=parent)
    order_cancel(order=first, actor="test", reason="trader cancels the first slice")
    cancel_order.apply(args=[str(first.pk)])
    eventually(lambda: _status(first, "CANCELED"), timeout=30, message="E1 canceled")
    assert not Fill.objects.filter(order__in=[parent, first]).exists(), "a fill came before E1's cancel"

    # Act: the market's ask comes down to the primary's price; it fills in full, and the family is
    # closed at the venue, 0.001 of 0.002 short.
    _quote_to_node(node, bid=price - Decimal("0.01"), ask=price)
    eventually(lambda: Fill.objects.filter(order=parent).exists(), timeout=30, message="the primary filled")

    # Assert: nothing of the family can fill any more: the parent is closed CANCELED with its fill, and
    # its timeline says why.
    parent.refresh_from_db()
    first.refresh_from_db()
    assert (first.status, first.filled_quantity) == ("CANCELED", Decimal("0"))
    assert parent.filled_quantity == Decimal("0.001") and parent.avg_fill_price == price
    assert parent.status == "CANCELED", parent.status
    assert parent.closed_at is not None and first.client_order_id in parent.rejection_reason
    last = OrderEvent.objects.filter(order=parent).order_by("id").last()
    assert (last.type, last.status_after) == ("CANCELED", "CANCELED")
    assert first.client_order_id in last.payload["detail"]
    # The node's answer for the parent agrees with the OMS's row.
    assert _queried(node, parent)[:4] == ("CANCELED", Decimal("0.002"), Decimal("0.001"), Decimal("0"))
