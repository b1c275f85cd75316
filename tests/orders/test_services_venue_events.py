"""order_apply_venue_event: venue facts → order status, fills, positions, timeline, publish on commit."""

import logging
from datetime import timedelta
from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from django.utils import timezone

from odum_live.groups import ORDERS_GROUP, strategy_group
from orders.models import Fill, Order, OrderEvent
from orders.services import order_apply_venue_event
from orders.services.venue_events import VenueEventError
from positions.models import Position, ReconciliationFinding
from risk.models import OpenOrderExposure
from risk.services import open_exposure_adjust
from tests.helpers import ChannelListener
from tests.orders.factories import OrderFactory, StrategyFactory
from tests.venues.factories import listing_of
from venues.events import VenueEvent, VenueEventKind

K = VenueEventKind
S = Order.Status
SPOT = "BINANCE-SPOT:SPOT_PAIR:BTC-USDT"
T0 = timezone.now().replace(microsecond=0)

pytestmark = pytest.mark.django_db


def ev(kind, order_or_coid, *, seconds=0, **fields):
    """A VenueEvent for ``order_or_coid`` on BINANCE-SPOT at T0 + ``seconds``."""
    coid = order_or_coid if isinstance(order_or_coid, str) else order_or_coid.client_order_id
    return VenueEvent(kind=kind, client_order_id=coid, venue="BINANCE-SPOT", ts_event=T0 + timedelta(seconds=seconds),
                      **fields)


def fill(order, trade_id, qty, px, *, fee="0", fee_currency="USDT", seconds=1, **fields):
    return ev(K.FILLED, order, seconds=seconds, trade_id=trade_id, last_qty=Decimal(qty), last_px=Decimal(px),
              fee=Decimal(fee), fee_currency=fee_currency, liquidity="TAKER", **fields)


def types(order):
    return list(order.events.order_by("ts", "id").values_list("type", flat=True))


@pytest.fixture
def order(listing, strategy):
    """LIMIT BUY 0.01 BTC-USDT @ 40000, already SUBMITTED by the trading worker."""
    return OrderFactory(strategy=strategy, status=S.SUBMITTED)


def test_apply_market_submitted_then_filled_without_accepted_is_filled(listing, strategy):
    # Arrange: sandbox MARKET orders go SUBMITTED → FILLED with no ACCEPTED (NAUTILUS_NOTES.md).
    order = OrderFactory(strategy=strategy, status=S.ROUTED, order_type="MARKET", price=None)

    # Act
    submitted = order_apply_venue_event(event=ev(K.SUBMITTED, order, venue_order_id="V1"))
    filled = order_apply_venue_event(event=fill(order, "T1", "0.01", "40001.5", fee="0.4"))

    # Assert
    order.refresh_from_db()
    assert submitted.applied and filled.applied
    assert (filled.status_before, filled.status_after) == (S.SUBMITTED, S.FILLED)
    assert order.status == S.FILLED and order.filled_quantity == Decimal("0.01")
    assert order.avg_fill_price == Decimal("40001.5") and order.fees == Decimal("0.4")
    assert order.venue_order_id == "V1"
    assert order.submitted_at == T0 and order.closed_at == T0 + timedelta(seconds=1) and order.accepted_at is None
    assert order.leaves_quantity == 0
    assert types(order) == [OrderEvent.Type.SUBMITTED, OrderEvent.Type.FILLED]
    assert Fill.objects.get(order=order).venue_trade_id == "T1"


def test_apply_limit_accepted_partial_fills_then_filled_exact_avg_and_fees(order):
    # Act
    order_apply_venue_event(event=ev(K.ACCEPTED, order, venue_order_id="V9"))
    first = order_apply_venue_event(event=fill(order, "T1", "0.004", "40000", fee="0.16", seconds=1))
    order.refresh_from_db()
    after_first = (order.status, order.filled_quantity, order.leaves_quantity)
    order_apply_venue_event(event=fill(order, "T2", "0.006", "40010", fee="0.24006", seconds=2))

    # Assert: avg = (0.004·40000 + 0.006·40010) / 0.01 = 40006 exactly; fees summed.
    order.refresh_from_db()
    assert first.status_after == S.PARTIALLY_FILLED
    assert after_first == (S.PARTIALLY_FILLED, Decimal("0.004"), Decimal("0.006"))
    assert order.status == S.FILLED
    assert order.filled_quantity == Decimal("0.01")
    assert order.avg_fill_price == Decimal("40006")
    assert order.fees == Decimal("0.40006")
    assert order.accepted_at == T0 and order.closed_at == T0 + timedelta(seconds=2)
    assert types(order) == [OrderEvent.Type.ACCEPTED, OrderEvent.Type.PARTIALLY_FILLED, OrderEvent.Type.FILLED]
    last = order.events.get(type=OrderEvent.Type.FILLED)
    assert last.status_before == S.PARTIALLY_FILLED and last.actor == "venue:BINANCE-SPOT"
    assert last.payload["trade_id"] == "T2" and last.payload["avg_fill_price"] == "40006.000000000000000000"


def test_apply_same_trade_id_twice_is_one_fill_and_nothing_changes(order):
    # Arrange
    order_apply_venue_event(event=fill(order, "T1", "0.004", "40000", fee="0.16"))
    order.refresh_from_db()
    position = Position.objects.get()
    before = (order.status, order.filled_quantity, order.avg_fill_price, order.fees, order.events.count(),
              position.quantity, position.realized_pnl)

    # Act
    replay = order_apply_venue_event(event=fill(order, "T1", "0.004", "40000", fee="0.16"))

    # Assert
    order.refresh_from_db()
    position.refresh_from_db()
    assert not replay.applied and "duplicate fill" in replay.reason
    assert Fill.objects.filter(order=order).count() == 1
    assert (order.status, order.filled_quantity, order.avg_fill_price, order.fees, order.events.count(),
            position.quantity, position.realized_pnl) == before


def test_apply_same_trade_id_with_other_figures_is_not_applied_and_says_so_on_the_timeline(order, caplog):
    # Arrange: the venue re-sends trade T1 with another quantity (a trade correction or a bad replay)
    order_apply_venue_event(event=fill(order, "T1", "0.004", "40000", fee="0.16"))
    order.refresh_from_db()
    position = Position.objects.get()
    before = (order.status, order.filled_quantity, order.avg_fill_price, order.fees,
              position.quantity, position.realized_pnl)

    # Act
    with caplog.at_level(logging.ERROR, logger="orders.services.venue_events"):
        corrected = order_apply_venue_event(event=fill(order, "T1", "0.003", "40001", fee="0.12"))

    # Assert: the stored fill stands, and the difference is an error on the log and the order's timeline
    order.refresh_from_db()
    position.refresh_from_db()
    assert not corrected.applied
    assert "0.004 @ 40000" in corrected.reason and "0.003 @ 40001" in corrected.reason
    assert Fill.objects.filter(order=order).count() == 1
    assert (order.status, order.filled_quantity, order.avg_fill_price, order.fees,
            position.quantity, position.realized_pnl) == before
    ignored = order.events.get(type=OrderEvent.Type.IGNORED)
    assert ignored.payload["error"] is True and ignored.payload["reason"] == corrected.reason
    assert any(r.levelno == logging.ERROR and "T1" in r.getMessage() for r in caplog.records)


def test_apply_late_accepted_after_filled_is_ignored_and_status_unchanged(order):
    # Arrange
    order_apply_venue_event(event=fill(order, "T1", "0.01", "40000"))

    # Act
    late = order_apply_venue_event(event=ev(K.ACCEPTED, order, seconds=-1))

    # Assert
    order.refresh_from_db()
    assert not late.applied and "FILLED" in late.reason
    assert order.status == S.FILLED and order.accepted_at is None
    ignored = order.events.get(type=OrderEvent.Type.IGNORED)
    assert (ignored.status_before, ignored.status_after) == (S.FILLED, S.FILLED)
    assert ignored.payload["ignored_kind"] == "ACCEPTED" and ignored.payload["reason"] == late.reason


def test_apply_submitted_confirms_once_then_duplicate_is_ignored(order):
    # Arrange: the trading worker set SUBMITTED (no submitted_at yet) before handing the order over.

    # Act
    confirmed = order_apply_venue_event(event=ev(K.SUBMITTED, order, venue_order_id="V1"))
    duplicate = order_apply_venue_event(event=ev(K.SUBMITTED, order, seconds=1))

    # Assert
    order.refresh_from_db()
    assert confirmed.applied and not duplicate.applied
    assert order.status == S.SUBMITTED and order.submitted_at == T0 and order.venue_order_id == "V1"
    assert types(order) == [OrderEvent.Type.SUBMITTED, OrderEvent.Type.IGNORED]


@pytest.mark.parametrize("vendor_fast_path", [True, False], ids=["one-statement", "general"])
def test_apply_accepted_on_a_submitted_order_writes_the_same_whichever_path(order, vendor_fast_path, monkeypatch,
                                                                           django_capture_on_commit_callbacks):
    # PostgreSQL takes the one-statement form (orders/services/one_statement.py); both forms must
    # leave the same order row, event and publication.
    from django.db import connection

    import orders.services.venue_events as venue_events

    if not vendor_fast_path:
        monkeypatch.setattr(venue_events, "_accept_in_one_statement", lambda event, touched: None)
    elif connection.vendor != "postgresql":
        pytest.skip("the one-statement form is PostgreSQL's")
    published = []

    # Act
    with django_capture_on_commit_callbacks(execute=True):
        result = order_apply_venue_event(event=ev(K.ACCEPTED, order, seconds=2, venue_order_id="V9"),
                                         publish=published.append)

    # Assert
    order.refresh_from_db()
    event = order.events.get()
    assert result.applied and (result.order_id, result.status_before, result.status_after) == (
        order.pk, S.SUBMITTED, S.ACCEPTED)
    assert (order.status, order.accepted_at, order.venue_order_id) == (S.ACCEPTED, T0 + timedelta(seconds=2), "V9")
    assert (event.type, event.status_before, event.status_after, event.actor, event.ts) == (
        OrderEvent.Type.ACCEPTED, S.SUBMITTED, S.ACCEPTED, "venue:BINANCE-SPOT", T0 + timedelta(seconds=2))
    assert event.payload == {"kind": "ACCEPTED", "ts_event": (T0 + timedelta(seconds=2)).isoformat(),
                             "venue_order_id": "V9"}
    assert published == [{order.pk: order.strategy_id}]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_apply_accepted_outside_a_transaction_commits_in_one_statement_then_publishes(listing, strategy):
    # The journal applies a lone event outside any transaction: the common ACCEPTED is then its one
    # statement, committed on its own, and published at once; an ACCEPTED it does not fit (a
    # duplicate) takes the general path and is recorded as IGNORED.
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    order = OrderFactory(strategy=strategy, status=S.SUBMITTED)
    published = []

    # Act
    with CaptureQueriesContext(connection) as queries:
        result = order_apply_venue_event(event=ev(K.ACCEPTED, order, seconds=2, venue_order_id="V9"),
                                         publish=published.append)
    duplicate = order_apply_venue_event(event=ev(K.ACCEPTED, order, seconds=3), publish=published.append)

    # Assert
    order.refresh_from_db()
    assert result.applied and (order.status, order.accepted_at, order.venue_order_id) == (
        S.ACCEPTED, T0 + timedelta(seconds=2), "V9")
    assert len(queries) == 1 and queries[0]["sql"].startswith("WITH changed AS")
    assert not duplicate.applied and types(order) == [OrderEvent.Type.ACCEPTED, OrderEvent.Type.IGNORED]
    assert published == [{order.pk: order.strategy_id}, {order.pk: order.strategy_id}]


def test_apply_duplicate_accepted_is_ignored(order):
    order_apply_venue_event(event=ev(K.ACCEPTED, order))

    duplicate = order_apply_venue_event(event=ev(K.ACCEPTED, order, seconds=1))

    order.refresh_from_db()
    assert not duplicate.applied and order.status == S.ACCEPTED and order.accepted_at == T0
    assert types(order) == [OrderEvent.Type.ACCEPTED, OrderEvent.Type.IGNORED]


def test_apply_canceled_from_pending_cancel_is_canceled_and_closed(order):
    # Arrange
    Order.objects.filter(pk=order.pk).update(status=S.PENDING_CANCEL)

    # Act
    result = order_apply_venue_event(event=ev(K.CANCELED, order, seconds=3))

    # Assert
    order.refresh_from_db()
    assert result.applied and (result.status_before, result.status_after) == (S.PENDING_CANCEL, S.CANCELED)
    assert order.status == S.CANCELED and order.closed_at == T0 + timedelta(seconds=3)
    assert types(order) == [OrderEvent.Type.CANCELED]


def test_apply_accepted_while_pending_cancel_keeps_the_cancel_pending(order):
    Order.objects.filter(pk=order.pk).update(status=S.PENDING_CANCEL)

    result = order_apply_venue_event(event=ev(K.ACCEPTED, order))

    order.refresh_from_db()
    assert result.applied and order.status == S.PENDING_CANCEL and order.accepted_at == T0


def test_apply_first_accepted_of_a_partly_filled_algorithm_primary_is_recorded_not_ignored(listing, strategy):
    # Arrange: an ICEBERG parent whose first slice (a child) filled; the algorithm then sends the
    # primary itself as the last slice, and the venue acknowledges it.
    parent = OrderFactory(strategy=strategy, status=S.SUBMITTED, quantity=Decimal("0.03"), exec_algorithm="ICEBERG",
                          exec_algorithm_params={"display_qty": "0.01"})
    e1 = Order.objects.get(pk=order_apply_venue_event(event=_child_created(parent, 1)).order_id)
    order_apply_venue_event(event=fill(e1, "T1", "0.01", "40000"))

    # Act
    first = order_apply_venue_event(event=ev(K.ACCEPTED, parent, seconds=3, venue_order_id="V7"))
    second = order_apply_venue_event(event=ev(K.ACCEPTED, parent, seconds=4, venue_order_id="V7"))

    # Assert: the acknowledgement is on record with its time and the venue's id; the status stays;
    # a repeat of it is a duplicate.
    parent.refresh_from_db()
    assert first.applied and "0.01" in first.reason and "status unchanged" in first.reason
    assert parent.status == S.PARTIALLY_FILLED and parent.filled_quantity == Decimal("0.01")
    assert (parent.accepted_at, parent.venue_order_id) == (T0 + timedelta(seconds=3), "V7")
    accepted, ignored = parent.events.order_by("id")[len(types(parent)) - 2:]
    assert (accepted.type, accepted.status_before, accepted.status_after) == (
        OrderEvent.Type.ACCEPTED, S.PARTIALLY_FILLED, S.PARTIALLY_FILLED)
    assert accepted.payload["detail"] == first.reason
    assert not second.applied and ignored.type == OrderEvent.Type.IGNORED


def test_apply_partial_fill_then_cancel_rejected_returns_to_partially_filled(order):
    # Arrange: a cancel is pending when a partial fill arrives.
    Order.objects.filter(pk=order.pk).update(status=S.PENDING_CANCEL)
    order_apply_venue_event(event=fill(order, "T1", "0.004", "40000"))
    order.refresh_from_db()
    during = order.status

    # Act
    result = order_apply_venue_event(event=ev(K.CANCEL_REJECTED, order, seconds=2, reason="too late"))

    # Assert
    order.refresh_from_db()
    assert during == S.PENDING_CANCEL
    assert result.applied and order.status == S.PARTIALLY_FILLED
    assert order.events.last().type == OrderEvent.Type.CANCEL_REJECTED


@pytest.mark.parametrize("acknowledged", [True, False])
def test_apply_cancel_rejected_returns_an_unfilled_order_to_where_it_was(order, acknowledged):
    # Arrange: a cancel is pending on an order the venue has (or has not yet) acknowledged.
    if acknowledged:
        order_apply_venue_event(event=ev(K.ACCEPTED, order, venue_order_id="V1"))
    Order.objects.filter(pk=order.pk).update(status=S.PENDING_CANCEL)

    # Act: the venue refuses the cancel ("unknown order": the order is still in flight)
    result = order_apply_venue_event(event=ev(K.CANCEL_REJECTED, order, seconds=2, reason="unknown order"))

    # Assert: ACCEPTED only when the venue acknowledged it; SUBMITTED otherwise, so its later
    # acknowledgement or rejection still applies.
    order.refresh_from_db()
    assert result.applied and order.status == (S.ACCEPTED if acknowledged else S.SUBMITTED)


def test_apply_rejected_after_a_rejected_cancel_of_an_unacknowledged_order_closes_it(order):
    # Arrange: SUBMITTED, a cancel requested, the cancel refused before the venue acknowledged the order.
    Order.objects.filter(pk=order.pk).update(status=S.PENDING_CANCEL)
    order_apply_venue_event(event=ev(K.CANCEL_REJECTED, order, seconds=1, reason="unknown order"))

    # Act: the venue then rejects the order itself
    result = order_apply_venue_event(event=ev(K.REJECTED, order, seconds=2, reason="insufficient balance"))

    # Assert
    order.refresh_from_db()
    assert result.applied and order.status == S.REJECTED and order.accepted_at is None
    assert order.rejection_reason == "insufficient balance" and order.closed_at == T0 + timedelta(seconds=2)


def test_apply_rejected_while_a_cancel_is_pending_and_nothing_filled_closes_the_order(order):
    # Arrange: the trader asked to cancel a SUBMITTED order before the venue answered.
    Order.objects.filter(pk=order.pk).update(status=S.PENDING_CANCEL)

    # Act: the venue (or the node) rejects the order: no CANCELED or CANCEL_REJECTED will follow.
    result = order_apply_venue_event(event=ev(K.REJECTED, order, seconds=1, reason="post-only would cross"))

    # Assert
    order.refresh_from_db()
    assert result.applied and (result.status_before, result.status_after) == (S.PENDING_CANCEL, S.REJECTED)
    assert order.rejection_reason == "post-only would cross" and order.closed_at == T0 + timedelta(seconds=1)


def test_apply_submitted_while_a_cancel_is_pending_keeps_the_cancel_pending(order):
    # Arrange: the worker's claim marked the order SUBMITTED; the trader asked to cancel it before the
    # venue side's confirmation arrived.
    Order.objects.filter(pk=order.pk).update(status=S.PENDING_CANCEL)

    # Act
    first = order_apply_venue_event(event=ev(K.SUBMITTED, order, seconds=1))
    second = order_apply_venue_event(event=ev(K.SUBMITTED, order, seconds=2))

    # Assert: the confirmation is recorded, the cancel stays pending; a repeat is a duplicate.
    order.refresh_from_db()
    assert first.applied and "status unchanged" in first.reason and not second.applied
    assert order.status == S.PENDING_CANCEL and order.submitted_at == T0 + timedelta(seconds=1)


def test_apply_fill_completing_the_order_while_a_cancel_is_pending_fills_it_and_the_late_cancel_answer_is_ignored(
        order):
    # Arrange: a cancel is pending when the venue fills the whole order (the cancel lost the race)
    Order.objects.filter(pk=order.pk).update(status=S.PENDING_CANCEL)

    # Act: the fill, then the venue's answer to the cancel (too late: nothing left to cancel)
    filled = order_apply_venue_event(event=fill(order, "T1", "0.01", "40000", seconds=1))
    late = order_apply_venue_event(event=ev(K.CANCEL_REJECTED, order, seconds=2, reason="too late to cancel"))

    # Assert: FILLED and closed, not left PENDING_CANCEL; the late answer is on record and changes nothing
    order.refresh_from_db()
    assert filled.applied and order.status == S.FILLED and order.closed_at == T0 + timedelta(seconds=1)
    assert (late.status_before, late.status_after) == (S.FILLED, S.FILLED)
    assert order.status == S.FILLED and order.leaves_quantity == 0
    last = order.events.order_by("ts", "id").last()
    assert (last.type, last.payload["reason"]) == (OrderEvent.Type.CANCEL_REJECTED, "too late to cancel")


def test_apply_fill_after_canceled_is_kept_and_status_stays_canceled(order):
    # Arrange: the cancel was confirmed, but a trade executed at the venue just before it.
    order_apply_venue_event(event=ev(K.CANCELED, order, seconds=1))

    # Act
    late = order_apply_venue_event(event=fill(order, "T1", "0.004", "40000", seconds=2))

    # Assert: the trade happened, so it is in the books; the order does not reopen.
    order.refresh_from_db()
    assert late.applied and "status unchanged" in late.reason
    assert order.status == S.CANCELED and order.filled_quantity == Decimal("0.004")
    assert order.closed_at == T0 + timedelta(seconds=1)
    assert Position.objects.get().quantity == Decimal("0.004")


def test_apply_rejected_records_the_reason_and_closes(order):
    result = order_apply_venue_event(event=ev(K.REJECTED, order, reason="insufficient balance"))

    order.refresh_from_db()
    assert result.applied
    assert order.status == S.REJECTED and order.rejection_reason == "insufficient balance"
    assert order.closed_at == T0
    assert order.events.get().payload["reason"] == "insufficient balance"


@pytest.mark.parametrize("pending_cancel", [False, True])
def test_apply_rejected_after_fills_cancels_the_rest_and_keeps_the_venue_reason(listing, strategy, pending_cancel):
    # Arrange: a TWAP parent partly filled by its first child; its primary, sent as the last
    # slice, is denied by the node (PARTIALLY_FILLED → REJECTED is illegal).
    parent = OrderFactory(strategy=strategy, status=S.SUBMITTED, order_type="MARKET", price=None,
                          quantity=Decimal("0.03"), exec_algorithm="TWAP")
    e1 = Order.objects.get(pk=order_apply_venue_event(event=_child_created(parent, 1)).order_id)
    order_apply_venue_event(event=fill(e1, "T1", "0.01", "40000"))
    if pending_cancel:
        Order.objects.filter(pk=parent.pk).update(status=S.PENDING_CANCEL)
    reason = "denied by the trading node: REJECTED_ORDER_SUBMIT_RATE"

    # Act
    result = order_apply_venue_event(event=ev(K.REJECTED, parent, seconds=3, reason=reason))

    # Assert
    parent.refresh_from_db()
    assert result.applied and "the rest is canceled" in result.reason
    assert parent.status == S.CANCELED and parent.filled_quantity == Decimal("0.01")
    assert parent.rejection_reason == reason and parent.closed_at == T0 + timedelta(seconds=3)
    last = parent.events.order_by("id").last()
    assert last.type == OrderEvent.Type.CANCELED and last.payload["reason"] == reason


def test_apply_ignored_event_keeps_the_venue_reason_beside_the_refusal(order):
    # Arrange: the order is already FILLED; a late rejection arrives.
    order_apply_venue_event(event=fill(order, "T1", "0.01", "40000"))

    # Act
    result = order_apply_venue_event(event=ev(K.REJECTED, order, seconds=2, reason="late venue reject"))

    # Assert
    ignored = order.events.order_by("id").last()
    assert not result.applied and ignored.type == OrderEvent.Type.IGNORED
    assert ignored.payload["venue_reason"] == "late venue reject"
    assert "late or duplicate" in ignored.payload["reason"]


def _child_created(parent, n, qty="0.01"):
    return ev(K.CHILD_CREATED, f"{parent.client_order_id}-E{n}", parent_client_order_id=parent.client_order_id,
              side=parent.side, quantity=Decimal(qty), order_type="MARKET")


def test_apply_fill_of_unknown_client_order_id_is_logged_as_an_error_with_the_trade(order, caplog):
    # A trade the books do not hold is an error for a person to see, not a warning.
    with caplog.at_level(logging.WARNING, logger="orders.services.venue_events"):
        order_apply_venue_event(event=fill("OLnope", "T9", "0.01", "40000"))
        order_apply_venue_event(event=ev(K.ACCEPTED, "OLnope"))

    (filled, accepted) = [r for r in caplog.records if "unknown client_order_id" in r.getMessage()]
    assert filled.levelname == "ERROR" and "trade T9: 0.01 @ 40000" in filled.getMessage()
    assert accepted.levelname == "WARNING"


def test_apply_fill_of_unknown_client_order_id_with_its_listing_is_an_external_fill_finding_once(order):
    # Arrange: a fill from the node of an order the OMS holds no record of (e.g. a child whose CHILD_CREATED
    # was lost), carrying its listing and side as the bridge sends them.
    lost = fill("OLnope-E1", "T10", "0.01", "40000", instrument_key=SPOT, side="SELL")

    # Act: delivered twice
    results = [order_apply_venue_event(event=lost), order_apply_venue_event(event=lost)]

    # Assert: not booked, but recorded once for a person to see.
    assert [r.applied for r in results] == [False, False]
    (finding,) = ReconciliationFinding.objects.all()
    assert (finding.kind, finding.venue, finding.instrument_key, finding.side, finding.quantity, finding.trade_id,
            finding.client_order_id) == ("EXTERNAL_FILL", "BINANCE-SPOT", SPOT, "SELL", Decimal("0.01"), "T10",
                                         "OLnope-E1")
    assert "unknown client_order_id" in finding.detail
    assert not Fill.objects.exists() and not Position.objects.exists()


def test_apply_external_fill_of_an_order_the_oms_holds_is_booked_as_its_fill_not_a_finding(order):
    # Arrange: the node took one of our orders for EXTERNAL (its record lost in a restart without a persisted
    # cache, the venue then reported a late fill of it): the OMS knows the order, so the trade is ours.
    late = ev(K.EXTERNAL_FILL, order, seconds=1, trade_id="T11", last_qty=Decimal("0.004"),
              last_px=Decimal("40000"), side=order.side, instrument_key=order.routed_instrument_key,
              reason="order of strategy EXTERNAL on the trading node, not of the OMS")

    # Act: delivered twice
    results = [order_apply_venue_event(event=late), order_apply_venue_event(event=late)]

    # Assert: one fill of the order, its position booked; no finding.
    assert [r.applied for r in results] == [True, False]
    order.refresh_from_db()
    assert order.status == S.PARTIALLY_FILLED and order.filled_quantity == Decimal("0.004")
    assert list(Fill.objects.filter(order=order).values_list("venue_trade_id", flat=True)) == ["T11"]
    assert Position.objects.get(strategy=order.strategy).quantity == Decimal("0.004")
    assert not ReconciliationFinding.objects.exists()


def test_apply_unknown_client_order_id_writes_nothing(order, django_capture_on_commit_callbacks):
    # Arrange
    counts = (Order.objects.count(), OrderEvent.objects.count(), Fill.objects.count(), Position.objects.count())

    # Act
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        results = [order_apply_venue_event(event=ev(K.ACCEPTED, "OLnope")),
                   order_apply_venue_event(event=fill("OLnope", "T1", "0.01", "40000")),
                   order_apply_venue_event(event=ev(K.CHILD_CREATED, "OLnope-E1", parent_client_order_id="OLnope",
                                                    side="BUY", quantity=Decimal("0.01"), order_type="MARKET"))]

    # Assert
    assert [r.applied for r in results] == [False, False, False]
    assert all("unknown client_order_id" in r.reason for r in results)
    assert counts == (Order.objects.count(), OrderEvent.objects.count(), Fill.objects.count(),
                      Position.objects.count())
    assert callbacks == []


def test_apply_fills_update_the_position_with_realized_pnl_net_of_fees(listing, strategy):
    # Arrange: buy 0.01 @ 40000 (fee 0.4 USDT), then sell 0.004 @ 41000 (fee 0.164 USDT).
    buy = OrderFactory(strategy=strategy, status=S.SUBMITTED)
    sell = OrderFactory(strategy=strategy, status=S.SUBMITTED, side="SELL", price=Decimal("41000"),
                        quantity=Decimal("0.004"))

    # Act
    order_apply_venue_event(event=fill(buy, "T1", "0.01", "40000", fee="0.4"))
    order_apply_venue_event(event=fill(sell, "T2", "0.004", "41000", fee="0.164", seconds=2))

    # Assert: realized = 0.004 × (41000 − 40000) − 0.4 − 0.164 = 3.436 USDT.
    position = Position.objects.get(strategy_id=strategy.id, instrument_key=SPOT)
    assert position.venue == "BINANCE-SPOT"
    assert position.quantity == Decimal("0.006")
    assert position.avg_entry_price == Decimal("40000")
    assert position.realized_pnl == Decimal("3.436")
    assert position.fees == Decimal("0.564")


def test_apply_maker_fill_with_a_rebate_is_booked_with_a_negative_fee(order):
    # Arrange: a venue that pays makers reports a negative commission (a rebate) on the fill.
    rebate = fill(order, "T1", "0.01", "40000", fee="-0.02")

    # Act
    result = order_apply_venue_event(event=rebate)

    # Assert: the trade is in the books; the rebate lowers the order's fees and raises realized PnL.
    order.refresh_from_db()
    position = Position.objects.get()
    assert result.applied and order.status == S.FILLED
    assert Fill.objects.get(order=order).fee == Decimal("-0.02") and order.fees == Decimal("-0.02")
    assert (position.quantity, position.fees, position.realized_pnl) == (
        Decimal("0.01"), Decimal("-0.02"), Decimal("0.02"))


def test_apply_fill_fee_in_base_currency_is_converted_for_the_position(order):
    # Binance spot charges a buyer's fee in the base asset: 0.00001 BTC at 40000 = 0.4 USDT.
    order_apply_venue_event(event=fill(order, "T1", "0.01", "40000", fee="0.00001", fee_currency="BTC"))

    order.refresh_from_db()
    assert order.fees == Decimal("0.00001")
    assert Fill.objects.get().fee_currency == "BTC"
    assert Position.objects.get().fees == Decimal("0.4")


def test_apply_over_fill_is_recorded_as_error_and_not_applied(order, caplog):
    # Arrange
    order_apply_venue_event(event=fill(order, "T1", "0.008", "40000"))

    # Act
    with caplog.at_level(logging.ERROR, logger="orders.services.venue_events"):
        result = order_apply_venue_event(event=fill(order, "T2", "0.003", "40000", seconds=2))

    # Assert
    order.refresh_from_db()
    assert not result.applied and "over-fill" in result.reason
    assert order.filled_quantity == Decimal("0.008") and order.status == S.PARTIALLY_FILLED
    assert not Fill.objects.filter(venue_trade_id="T2").exists()
    assert Position.objects.get().quantity == Decimal("0.008")
    ignored = order.events.get(type=OrderEvent.Type.IGNORED)
    assert ignored.payload["error"] is True and ignored.payload["trade_id"] == "T2"
    assert any("over-fill" in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)


def test_apply_fill_without_listing_fails_and_writes_nothing(strategy):
    # No venues.Instrument for the routed listing: the multiplier is unknown.
    order = OrderFactory(strategy=strategy, status=S.SUBMITTED)

    with pytest.raises(VenueEventError, match="no venues.Instrument listing"):
        order_apply_venue_event(event=fill(order, "T1", "0.01", "40000"))

    order.refresh_from_db()
    assert order.filled_quantity == 0 and not Fill.objects.exists() and not order.events.exists()


def test_apply_fill_releases_open_order_exposure(listing, strategy):
    # Arrange: an order the risk engine counted (0.01 at 40000 open).
    order = OrderFactory(strategy=strategy, status=S.ACCEPTED, risk_result={"recorded": True})
    open_exposure_adjust(strategy_id=strategy.id, instrument_key=SPOT, side="BUY", leaves_delta=Decimal("0.01"),
                         priced_delta=Decimal("0.01"), value_delta=Decimal("400"))

    # Act
    order_apply_venue_event(event=fill(order, "T1", "0.004", "40000"))

    # Assert
    total = OpenOrderExposure.objects.get(strategy_id=strategy.id, instrument_key=SPOT, side="BUY")
    assert total.leaves_quantity == Decimal("0.006") and total.priced_value == Decimal("240")


def test_apply_fill_without_open_exposure_total_logs_drift_and_applies(listing, strategy, caplog):
    # Arrange: an order the risk engine counted, whose running total is missing (drift). On
    # PostgreSQL the fill's writes travel in a pipeline: the drift check runs once they are read.
    order = OrderFactory(strategy=strategy, status=S.ACCEPTED, risk_result={"recorded": True})

    # Act
    with caplog.at_level(logging.ERROR, logger="risk.services"):
        applied = order_apply_venue_event(event=fill(order, "T1", "0.004", "40000"))

    # Assert: the fill is applied, the drift is reported, no total is invented
    order.refresh_from_db()
    assert applied.applied and order.filled_quantity == Decimal("0.004")
    assert "open exposure drift: no total for alpha BUY" in caplog.text
    assert not OpenOrderExposure.objects.exists()


def test_apply_fill_trade_id_of_another_order_fails_whole(listing, strategy, caplog):
    # Arrange: the venue reports a trade id already stored for another order of the same listing
    # (a venue or mapping error).
    first = OrderFactory(strategy=strategy, status=S.ACCEPTED)
    second = OrderFactory(strategy=strategy, status=S.ACCEPTED)
    order_apply_venue_event(event=fill(first, "T1", "0.004", "40000"))

    # Act: the duplicate check sees T1 as the first order's; nothing of the second's fill is written
    with caplog.at_level(logging.ERROR, logger="orders.services.venue_events"):
        result = order_apply_venue_event(event=fill(second, "T1", "0.004", "40000"))

    # Assert: refused and logged as an error naming both orders
    second.refresh_from_db()
    assert not result.applied and "duplicate fill" in result.reason
    assert f"replayed for order {second.client_order_id} but stored for order {first.pk}" in caplog.text
    assert second.filled_quantity == 0 and second.status == S.ACCEPTED and not second.fills.exists()
    assert Fill.objects.count() == 1 and Position.objects.get().quantity == Decimal("0.004")


def _self_trade(strategy):
    # A BUY of ``strategy`` and a SELL of another strategy, both resting on BTC-USDT: they may trade with each other.
    other = StrategyFactory()
    buy = OrderFactory(strategy=strategy, status=S.ACCEPTED)
    sell = OrderFactory(strategy=other, status=S.ACCEPTED, side="SELL")
    return buy, sell


def test_apply_self_trade_books_both_sides_of_one_trade_id(listing, strategy, caplog):
    # Arrange: our BUY and our SELL traded with each other; Binance reports the same trade id to both.
    buy, sell = _self_trade(strategy)
    order_apply_venue_event(event=fill(buy, "T7", "0.004", "40000", fee="0.16"))

    # Act
    with caplog.at_level(logging.ERROR, logger="orders.services.venue_events"):
        result = order_apply_venue_event(event=fill(sell, "T7", "0.004", "40000", fee="0.16", seconds=2))

    # Assert: two fills of one trade, one per side; both orders and both positions moved; no error
    buy.refresh_from_db()
    sell.refresh_from_db()
    assert result.applied and result.fill_id is not None
    assert sorted(Fill.objects.filter(venue_trade_id="T7").values_list("order_id", "side")) == sorted(
        [(buy.pk, "BUY"), (sell.pk, "SELL")])
    assert (buy.status, buy.filled_quantity) == (S.PARTIALLY_FILLED, Decimal("0.004"))
    assert (sell.status, sell.filled_quantity) == (S.PARTIALLY_FILLED, Decimal("0.004"))
    assert dict(Position.objects.values_list("strategy_id", "quantity")) == {
        buy.strategy_id: Decimal("0.004"), sell.strategy_id: Decimal("-0.004")}
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_apply_replay_of_either_side_of_a_self_trade_is_ignored(listing, strategy):
    # Arrange: both sides of trade T7 booked
    buy, sell = _self_trade(strategy)
    order_apply_venue_event(event=fill(buy, "T7", "0.004", "40000"))
    order_apply_venue_event(event=fill(sell, "T7", "0.004", "40000", seconds=2))
    before = sorted(Position.objects.values_list("strategy_id", "quantity", "realized_pnl"))

    # Act: node-start reconciliation replays both
    replays = [order_apply_venue_event(event=fill(buy, "T7", "0.004", "40000")),
               order_apply_venue_event(event=fill(sell, "T7", "0.004", "40000", seconds=2))]

    # Assert: each replay is a no-op for its own order
    assert [(r.applied, r.order_id) for r in replays] == [(False, buy.pk), (False, sell.pk)]
    assert all("duplicate fill" in r.reason for r in replays)
    assert Fill.objects.count() == 2
    assert sorted(Position.objects.values_list("strategy_id", "quantity", "realized_pnl")) == before
    for order in (buy, sell):
        order.refresh_from_db()
        assert order.filled_quantity == Decimal("0.004")


def test_apply_self_trade_side_with_other_figures_is_a_trade_correction_not_applied(listing, strategy, caplog):
    # Arrange: both sides of T7 booked; then the SELL side's report comes again with another quantity
    buy, sell = _self_trade(strategy)
    order_apply_venue_event(event=fill(buy, "T7", "0.004", "40000"))
    order_apply_venue_event(event=fill(sell, "T7", "0.004", "40000", seconds=2))

    # Act
    with caplog.at_level(logging.ERROR, logger="orders.services.venue_events"):
        corrected = order_apply_venue_event(event=fill(sell, "T7", "0.003", "40000", seconds=3))

    # Assert: the SELL's stored fill stands and the difference is on its timeline, not the BUY's
    assert not corrected.applied and corrected.order_id == sell.pk
    assert "0.004 @ 40000" in corrected.reason and "0.003 @ 40000" in corrected.reason
    assert sell.events.filter(type=OrderEvent.Type.IGNORED).count() == 1
    assert not buy.events.filter(type=OrderEvent.Type.IGNORED).exists()
    assert Fill.objects.count() == 2


def test_apply_same_trade_id_and_side_on_another_order_is_a_logged_duplicate(listing, strategy, caplog):
    # Arrange: both sides of T7 booked; a third order (a SELL) is then reported with T7 as well
    buy, sell = _self_trade(strategy)
    order_apply_venue_event(event=fill(buy, "T7", "0.004", "40000"))
    order_apply_venue_event(event=fill(sell, "T7", "0.004", "40000", seconds=2))
    third = OrderFactory(strategy=strategy, status=S.ACCEPTED, side="SELL")

    # Act
    with caplog.at_level(logging.ERROR, logger="orders.services.venue_events"):
        result = order_apply_venue_event(event=fill(third, "T7", "0.004", "40000", seconds=3))

    # Assert: a trade has one seller: refused, logged as an error naming the SELL that holds it
    third.refresh_from_db()
    assert not result.applied and "duplicate fill" in result.reason
    assert f"replayed for order {third.client_order_id} but stored for order {sell.pk}" in caplog.text
    assert third.filled_quantity == 0 and not third.fills.exists()
    assert Fill.objects.count() == 2


def _btc_and_eth_orders(strategy):
    # An accepted BTC-USDT order (the ``listing`` fixture's) and an accepted ETH-USDT order of the same venue.
    eth_key = "BINANCE-SPOT:SPOT_PAIR:ETH-USDT"
    listing_of(eth_key)
    btc = OrderFactory(strategy=strategy, status=S.ACCEPTED)
    eth = OrderFactory(strategy=strategy, status=S.ACCEPTED, instrument_key=eth_key, routed_instrument_key=eth_key,
                       quantity=Decimal("0.5"), price=Decimal("2000"))
    return btc, eth, eth_key


def test_apply_same_trade_id_on_two_listings_of_a_venue_books_both_fills(listing, strategy, caplog):
    # Arrange: Binance numbers trades per symbol (executionReport ``t``), so a BTCUSDT fill and an
    # ETHUSDT fill on the same venue may carry the same trade id: two different executions.
    btc, eth, eth_key = _btc_and_eth_orders(strategy)
    order_apply_venue_event(event=fill(btc, "123456", "0.004", "40000"))

    # Act
    with caplog.at_level(logging.ERROR, logger="orders.services.venue_events"):
        result = order_apply_venue_event(event=fill(eth, "123456", "0.2", "2000", seconds=2))

    # Assert: both fills booked, each on its listing; both positions moved; nothing logged as an error
    eth.refresh_from_db()
    assert result.applied and result.fill_id is not None
    assert eth.status == S.PARTIALLY_FILLED and eth.filled_quantity == Decimal("0.2")
    assert sorted(Fill.objects.filter(venue_trade_id="123456").values_list("order_id", "instrument_key")) == sorted(
        [(btc.pk, SPOT), (eth.pk, eth_key)])
    assert dict(Position.objects.values_list("instrument_key", "quantity")) == {
        SPOT: Decimal("0.004"), eth_key: Decimal("0.2")}
    assert "replayed for order" not in caplog.text


def test_apply_replay_of_a_fill_whose_trade_id_another_listing_shares_is_ignored(listing, strategy):
    # Arrange: trade id 123456 booked on BTC-USDT and on ETH-USDT (per-symbol numbering)
    btc, eth, eth_key = _btc_and_eth_orders(strategy)
    order_apply_venue_event(event=fill(btc, "123456", "0.004", "40000"))
    order_apply_venue_event(event=fill(eth, "123456", "0.2", "2000", seconds=2))

    # Act: node-start reconciliation replays both fills
    replays = [order_apply_venue_event(event=fill(btc, "123456", "0.004", "40000")),
               order_apply_venue_event(event=fill(eth, "123456", "0.2", "2000", seconds=2))]

    # Assert: each replay is a no-op for its own order
    assert [(r.applied, r.order_id) for r in replays] == [(False, btc.pk), (False, eth.pk)]
    assert all("duplicate fill" in r.reason for r in replays)
    assert Fill.objects.count() == 2
    assert dict(Position.objects.values_list("instrument_key", "quantity")) == {
        SPOT: Decimal("0.004"), eth_key: Decimal("0.2")}


def test_apply_twap_children_fill_the_parent_from_children(listing, strategy):
    # Arrange: TWAP 0.03 in three slices: children E1, E2, then the primary itself (NAUTILUS_NOTES.md).
    parent = OrderFactory(strategy=strategy, status=S.SUBMITTED, order_type="MARKET", price=None,
                          quantity=Decimal("0.03"), exec_algorithm="TWAP")
    created = [order_apply_venue_event(event=_child_created(parent, n)) for n in (1, 2)]
    e1, e2 = (Order.objects.get(pk=c.order_id) for c in created)

    # Act / Assert: first slice.
    order_apply_venue_event(event=ev(K.SUBMITTED, e1))
    order_apply_venue_event(event=fill(e1, "T1", "0.01", "40000", fee="0.4"))
    parent.refresh_from_db()
    assert (parent.status, parent.filled_quantity, parent.leaves_quantity) == (
        S.PARTIALLY_FILLED, Decimal("0.01"), Decimal("0.02"))

    # second slice, then the primary's own last slice
    order_apply_venue_event(event=ev(K.SUBMITTED, e2, seconds=2))
    order_apply_venue_event(event=fill(e2, "T2", "0.01", "40030", fee="0.4", seconds=2))
    order_apply_venue_event(event=fill(parent, "T3", "0.01", "40060", fee="0.4", seconds=4))

    # Assert
    parent.refresh_from_db()
    e1.refresh_from_db()
    assert [c.applied for c in created] == [True, True]
    assert e1.parent_id == parent.pk and e1.strategy_id == strategy.id and e1.status == S.FILLED
    assert e1.client_order_id == f"{parent.client_order_id}-E1" and e1.routed_instrument_key == SPOT
    assert parent.status == S.FILLED and parent.filled_quantity == Decimal("0.03")
    assert parent.avg_fill_price == Decimal("40030") and parent.fees == Decimal("1.2")
    assert parent.closed_at == T0 + timedelta(seconds=4)
    assert Position.objects.get().quantity == Decimal("0.03")
    assert types(parent) == [OrderEvent.Type.PARTIALLY_FILLED, OrderEvent.Type.PARTIALLY_FILLED,
                             OrderEvent.Type.FILLED]
    assert types(e1) == [OrderEvent.Type.RECEIVED, OrderEvent.Type.SUBMITTED, OrderEvent.Type.FILLED]


def test_apply_slice_fills_record_the_parents_fees_per_currency(listing, strategy):
    # Arrange: a TWAP whose first slice pays its fee in USDT and whose second pays in BNB
    parent = OrderFactory(strategy=strategy, status=S.SUBMITTED, order_type="MARKET", price=None,
                          quantity=Decimal("0.03"), exec_algorithm="TWAP")
    e1, e2 = (Order.objects.get(pk=order_apply_venue_event(event=_child_created(parent, n)).order_id) for n in (1, 2))
    order_apply_venue_event(event=fill(e1, "T1", "0.01", "40000", fee="0.4"))

    # Act
    order_apply_venue_event(event=fill(e2, "T2", "0.01", "40030", fee="0.00001", fee_currency="BNB", seconds=2))

    # Assert: the parent's entry for the second slice totals each currency apart (its fees, 0.40001, adds them)
    entries = [e.payload for e in parent.events.order_by("ts", "id") if e.payload.get("source") == "children"]
    assert [e["fee_totals"] for e in entries] == [
        [{"currency": "USDT", "amount": "0.4"}],
        [{"currency": "USDT", "amount": "0.4"}, {"currency": "BNB", "amount": "0.00001"}]]
    assert Decimal(entries[-1]["fees"]) == Decimal("0.40001")


def test_apply_child_fill_beyond_parent_quantity_is_an_over_fill(listing, strategy):
    # Arrange: children of 0.02 + 0.02 under a 0.03 parent (a buggy algorithm).
    parent = OrderFactory(strategy=strategy, status=S.SUBMITTED, quantity=Decimal("0.03"), exec_algorithm="TWAP")
    e1, e2 = (Order.objects.get(pk=order_apply_venue_event(event=_child_created(parent, n, "0.02")).order_id)
              for n in (1, 2))
    order_apply_venue_event(event=fill(e1, "T1", "0.02", "40000"))

    # Act
    result = order_apply_venue_event(event=fill(e2, "T2", "0.02", "40000"))

    # Assert
    parent.refresh_from_db()
    assert not result.applied and parent.client_order_id in result.reason
    assert parent.filled_quantity == Decimal("0.02")


def test_apply_duplicate_child_created_is_ignored(listing, strategy):
    parent = OrderFactory(strategy=strategy, status=S.SUBMITTED, quantity=Decimal("0.03"))
    order_apply_venue_event(event=_child_created(parent, 1))

    again = order_apply_venue_event(event=_child_created(parent, 1))

    assert not again.applied and "duplicate" in again.reason
    assert parent.children.count() == 1


def test_apply_publishes_orders_updated_on_commit(order, django_capture_on_commit_callbacks):
    # One event loop for the whole exchange: channels_redis' pub/sub layer keeps a channel's
    # subscription in the loop that made it. The database work runs back on this thread (thread_sensitive).
    layer = get_channel_layer()
    captured = []

    def apply_accepted():
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            order_apply_venue_event(event=ev(K.ACCEPTED, order))
        captured.extend(callbacks)

    def commit():
        for callback in captured:
            callback()

    async def exchange():
        # Arrange: a test channel subscribed to both groups.
        listener = await ChannelListener.subscribed(layer, ORDERS_GROUP, strategy_group(order.strategy_id))
        # Act: nothing is sent before commit.
        await sync_to_async(apply_accepted)()
        before_commit = await listener.drain()
        await sync_to_async(commit)()
        after_commit = await listener.drain()
        await listener.close()
        # This order's messages only: a publication of an earlier test may still reach the group.
        return [[m for m in messages if m.get("order_id") == str(order.pk)]
                for messages in (before_commit, after_commit)]

    before_commit, after_commit = async_to_sync(exchange)()

    # Assert: one numbered message per stream (= group), carrying ids only
    assert before_commit == []
    assert len(captured) == 1
    assert sorted(m["stream"] for m in after_commit) == sorted([ORDERS_GROUP, strategy_group(order.strategy_id)])
    event = order.events.get()
    for message in after_commit:
        assert message["type"] == "orders.updated" and message["order_id"] == str(order.pk)
        assert message["strategy_id"] == order.strategy_id and isinstance(message["seq"], int)
        assert message["event_ids"] == [event.pk] and message["fill_ids"] == []


def test_apply_publish_failure_is_logged_not_raised(order, django_capture_on_commit_callbacks, monkeypatch, caplog):
    # Arrange: a channel layer that is down.
    class DownLayer:
        async def group_send(self, group, message):
            raise ConnectionError("channel layer down")

    monkeypatch.setattr("orders.services.publish.get_channel_layer", lambda: DownLayer())

    # Act
    with caplog.at_level(logging.ERROR), django_capture_on_commit_callbacks(execute=True):
        result = order_apply_venue_event(event=ev(K.ACCEPTED, order))

    # Assert
    order.refresh_from_db()
    assert result.applied and order.status == S.ACCEPTED
    assert any("publish" in r.getMessage() and r.exc_info for r in caplog.records)


def test_venue_event_refuses_bad_fields():
    with pytest.raises(ValueError, match="ts_event"):
        VenueEvent(kind=K.ACCEPTED, client_order_id="X", venue="V", ts_event=T0.replace(tzinfo=None))
    with pytest.raises(ValueError, match="last_qty"):
        VenueEvent(kind=K.FILLED, client_order_id="X", venue="V", ts_event=T0, trade_id="T", last_qty=0.1,
                   last_px=Decimal("1"))
    with pytest.raises(ValueError, match="fee"):
        VenueEvent(kind=K.FILLED, client_order_id="X", venue="V", ts_event=T0, trade_id="T",
                   last_qty=Decimal("1"), last_px=Decimal("1"), fee=Decimal("NaN"))
    with pytest.raises(ValueError, match="trade_id"):
        VenueEvent(kind=K.FILLED, client_order_id="X", venue="V", ts_event=T0, last_qty=Decimal("1"),
                   last_px=Decimal("1"))
    with pytest.raises(ValueError, match="price"):
        VenueEvent(kind=K.CHILD_CREATED, client_order_id="X-E1", venue="V", ts_event=T0, parent_client_order_id="X",
                   side="BUY", quantity=Decimal("1"), order_type="LIMIT")


# --- an algorithm's family that ends short of the parent's quantity ----------------------------

def _twap_limit_parent(strategy, *, quantity="0.03", recorded=True):
    # A TWAP LIMIT BUY @ 40000 the risk engine counted: its whole quantity open in the running totals.
    parent = OrderFactory(strategy=strategy, status=S.SUBMITTED, quantity=Decimal(quantity), exec_algorithm="TWAP",
                          exec_algorithm_params={"horizon_secs": 30, "interval_secs": 10},
                          risk_result={"recorded": True} if recorded else {})
    if recorded:
        open_exposure_adjust(strategy_id=strategy.id, instrument_key=SPOT, side="BUY", leaves_delta=Decimal(quantity),
                             priced_delta=Decimal(quantity), value_delta=Decimal(quantity) * 40000)
    return parent


def _resting_child(parent, n, qty="0.01", *, seconds=0, accepted=True):
    created = order_apply_venue_event(event=_child_created(parent, n, qty))
    child = Order.objects.get(pk=created.order_id)
    order_apply_venue_event(event=ev(K.SUBMITTED, child, seconds=seconds))
    if accepted:
        order_apply_venue_event(event=ev(K.ACCEPTED, child, seconds=seconds))
    return child


def _open_total(strategy):
    return OpenOrderExposure.objects.get(strategy_id=strategy.id, instrument_key=SPOT, side="BUY").leaves_quantity


@pytest.mark.parametrize("ended", [K.CANCELED, K.EXPIRED, K.REJECTED])
def test_apply_primary_filling_its_last_slice_after_a_child_ended_unfilled_closes_the_parent_canceled(
        listing, strategy, ended):
    # Arrange: TWAP 0.03: E1 filled, E2 ended at the venue without a fill after the primary was sent as
    # the last slice (the sequence had finished: the algorithm does not abort), the primary resting.
    parent = _twap_limit_parent(strategy)
    e1 = _resting_child(parent, 1)
    order_apply_venue_event(event=fill(e1, "T1", "0.01", "40000"))
    e2 = _resting_child(parent, 2, seconds=1, accepted=ended != K.REJECTED)  # a venue rejects before accepting
    order_apply_venue_event(event=ev(K.ACCEPTED, parent, seconds=2))
    order_apply_venue_event(event=ev(ended, e2, seconds=3, reason="venue: self-trade prevention"))

    # Act: the primary fills its 0.01 in full: nothing of the family can fill any more
    result = order_apply_venue_event(event=fill(parent, "T3", "0.01", "39990", seconds=4))

    # Assert: CANCELED with its fills, the rest released from the open totals, the reason named
    parent.refresh_from_db()
    e2.refresh_from_db()
    assert result.applied and e2.status == ended.value
    assert parent.status == S.CANCELED and parent.filled_quantity == Decimal("0.02")
    assert parent.avg_fill_price == Decimal("39995") and parent.closed_at == T0 + timedelta(seconds=4)
    assert e2.client_order_id in parent.rejection_reason and ended.value in parent.rejection_reason
    assert "0.02 of 0.03" in parent.rejection_reason
    last = parent.events.order_by("id").last()
    assert (last.type, last.status_before, last.status_after) == (
        OrderEvent.Type.CANCELED, S.PARTIALLY_FILLED, S.CANCELED)
    assert last.payload["detail"] == parent.rejection_reason and last.payload["leaves_quantity"] == "0"
    assert _open_total(strategy) == 0
    assert Position.objects.get().quantity == Decimal("0.02")


@pytest.mark.parametrize("pending_cancel", [False, True])
def test_apply_child_ending_after_the_primary_filled_its_last_slice_closes_the_parent_canceled(
        listing, strategy, pending_cancel):
    # Arrange: TWAP 0.03: E1 resting, the primary sent as the last slice filled its 0.02 (the parent
    # rightly stays open: E1 may still fill); optionally the trader has asked to cancel the parent.
    parent = _twap_limit_parent(strategy)
    e1 = _resting_child(parent, 1)
    order_apply_venue_event(event=fill(parent, "T2", "0.02", "40000", seconds=2))
    parent.refresh_from_db()
    assert parent.status == S.PARTIALLY_FILLED and _open_total(strategy) == Decimal("0.01")
    if pending_cancel:
        Order.objects.filter(pk=parent.pk).update(status=S.PENDING_CANCEL)

    # Act: E1 is canceled with nothing filled
    order_apply_venue_event(event=ev(K.CANCELED, e1, seconds=3))

    # Assert
    parent.refresh_from_db()
    assert parent.status == S.CANCELED and parent.filled_quantity == Decimal("0.02")
    assert parent.closed_at == T0 + timedelta(seconds=3) and e1.client_order_id in parent.rejection_reason
    assert parent.events.order_by("id").last().type == OrderEvent.Type.CANCELED
    assert _open_total(strategy) == 0


def test_apply_last_fill_of_a_child_closing_a_short_family_closes_the_parent_canceled(listing, strategy):
    # Arrange: TWAP 0.03: E1 and E2 resting, the primary filled its 0.01; E2 canceled.
    parent = _twap_limit_parent(strategy)
    e1, e2 = _resting_child(parent, 1), _resting_child(parent, 2, seconds=1)
    order_apply_venue_event(event=fill(parent, "T3", "0.01", "40000", seconds=2))
    order_apply_venue_event(event=ev(K.CANCELED, e2, seconds=3))
    parent.refresh_from_db()
    assert parent.status == S.PARTIALLY_FILLED  # E1 may still fill

    # Act: E1 fills, in two parts
    order_apply_venue_event(event=fill(e1, "T4", "0.004", "40000", seconds=4))
    parent.refresh_from_db()
    assert parent.status == S.PARTIALLY_FILLED
    order_apply_venue_event(event=fill(e1, "T5", "0.006", "40000", seconds=5))

    # Assert
    parent.refresh_from_db()
    assert parent.status == S.CANCELED and parent.filled_quantity == Decimal("0.02")
    assert e2.client_order_id in parent.rejection_reason and parent.closed_at == T0 + timedelta(seconds=5)
    assert types(parent)[-2:] == [OrderEvent.Type.PARTIALLY_FILLED, OrderEvent.Type.CANCELED]
    assert _open_total(strategy) == 0


def test_apply_child_ended_while_the_primary_is_held_leaves_the_parent_to_the_primary_cancel(listing, strategy):
    # Arrange: TWAP 0.03: E1 filled, E2 canceled while the algorithm still holds the primary (0.01 unsent):
    # the algorithm aborts and cancels the primary, whose own CANCELED closes the parent.
    parent = _twap_limit_parent(strategy)
    e1 = _resting_child(parent, 1)
    order_apply_venue_event(event=fill(e1, "T1", "0.01", "40000"))
    e2 = _resting_child(parent, 2, seconds=1)

    # Act / Assert: the child's end alone does not close the parent (the primary is not done)
    order_apply_venue_event(event=ev(K.CANCELED, e2, seconds=2))
    parent.refresh_from_db()
    assert parent.status == S.PARTIALLY_FILLED

    # Act: the primary's cancel
    order_apply_venue_event(event=ev(K.CANCELED, parent, seconds=2))

    # Assert: CANCELED once, by the primary's own event, with its fills and the slice that stopped it
    parent.refresh_from_db()
    assert parent.status == S.CANCELED and parent.filled_quantity == Decimal("0.01")
    assert types(parent).count(OrderEvent.Type.CANCELED) == 1 and e2.client_order_id in parent.rejection_reason
    assert _open_total(strategy) == 0


@pytest.mark.parametrize("ended, reason", [(K.REJECTED, "venue: insufficient balance"), (K.EXPIRED, ""),
                                            (K.CANCELED, "")])
def test_apply_primary_cancel_by_the_algorithm_after_a_slice_ended_short_names_the_slice(
        listing, strategy, ended, reason):
    # Arrange: TWAP 0.03: E1 filled; E2 ended at the venue while the algorithm still held the primary
    # (0.01 unsent), so the algorithm aborted and canceled the primary — no cancel was requested.
    parent = _twap_limit_parent(strategy)
    e1 = _resting_child(parent, 1)
    order_apply_venue_event(event=fill(e1, "T1", "0.01", "40000"))
    e2 = _resting_child(parent, 2, seconds=1, accepted=ended != K.REJECTED)
    order_apply_venue_event(event=ev(ended, e2, seconds=2, **({"reason": reason} if reason else {})))

    # Act: the primary's cancel by the algorithm (NautilusTrader's OrderCanceled carries no reason)
    order_apply_venue_event(event=ev(K.CANCELED, parent, seconds=2))

    # Assert: the parent says why it stopped short — the slice, how it ended, its reason, the figures
    parent.refresh_from_db()
    assert parent.status == S.CANCELED and parent.filled_quantity == Decimal("0.01")
    assert e2.client_order_id in parent.rejection_reason and ended.value in parent.rejection_reason
    assert reason in parent.rejection_reason and "0.01 of 0.03 filled" in parent.rejection_reason
    assert "not requested" in parent.rejection_reason
    last = parent.events.order_by("id").last()
    assert (last.type, last.status_after) == (OrderEvent.Type.CANCELED, S.CANCELED)
    assert last.payload["detail"] == parent.rejection_reason


def test_apply_primary_cancel_by_the_algorithm_with_no_slice_short_says_the_algorithm_stopped(listing, strategy):
    # Arrange: VWAP-like: E1 filled, then the algorithm canceled the unsent rest (its participation cap
    # held it back past the horizon): no slice ended short.
    parent = _twap_limit_parent(strategy)
    e1 = _resting_child(parent, 1)
    order_apply_venue_event(event=fill(e1, "T1", "0.01", "40000"))

    # Act
    order_apply_venue_event(event=ev(K.CANCELED, parent, seconds=3))

    # Assert
    parent.refresh_from_db()
    assert parent.status == S.CANCELED
    assert "not requested" in parent.rejection_reason and "0.01 of 0.03 filled" in parent.rejection_reason
    assert "0.02 unsent" in parent.rejection_reason and "node's log" in parent.rejection_reason


def test_apply_requested_cancel_of_an_algorithm_parent_records_no_stop_reason(listing, strategy):
    # Arrange: the trader's cancel is pending on a TWAP parent whose first slice filled
    parent = _twap_limit_parent(strategy)
    e1 = _resting_child(parent, 1)
    order_apply_venue_event(event=fill(e1, "T1", "0.01", "40000"))
    Order.objects.filter(pk=parent.pk).update(status=S.PENDING_CANCEL)

    # Act
    order_apply_venue_event(event=ev(K.CANCELED, parent, seconds=3))

    # Assert: CANCELED as asked; the cancel's own event says who and why, not an algorithm stop
    parent.refresh_from_db()
    assert parent.status == S.CANCELED and parent.rejection_reason == ""


def test_apply_primary_filled_while_a_child_still_works_keeps_the_parent_open(listing, strategy):
    parent = _twap_limit_parent(strategy)
    _resting_child(parent, 1)

    order_apply_venue_event(event=fill(parent, "T2", "0.02", "40000", seconds=2))

    parent.refresh_from_db()
    assert parent.status == S.PARTIALLY_FILLED and parent.closed_at is None
    assert _open_total(strategy) == Decimal("0.01")


def test_apply_replayed_primary_fill_closes_a_family_left_open_short(listing, strategy):
    # Arrange: a family that ended short (E1 canceled unfilled, the primary filled its 0.02) whose
    # parent was left PARTIALLY_FILLED (a journal that did not close short families).
    parent = _twap_limit_parent(strategy)
    e1 = _resting_child(parent, 1)
    Order.objects.filter(pk=e1.pk).update(status=S.CANCELED)
    Order.objects.filter(pk=parent.pk).update(status=S.PARTIALLY_FILLED)
    Fill.objects.create(order=parent, venue="BINANCE-SPOT", instrument_key=SPOT, venue_trade_id="T2", side="BUY",
                        price=Decimal("40000"), quantity=Decimal("0.02"), fee=Decimal("0"), fee_currency="USDT",
                        ts_event=T0)
    Order.objects.filter(pk=parent.pk).update(filled_quantity=Decimal("0.02"), avg_fill_price=Decimal("40000"))
    open_exposure_adjust(strategy_id=strategy.id, instrument_key=SPOT, side="BUY", leaves_delta=Decimal("-0.02"),
                         priced_delta=Decimal("-0.02"), value_delta=Decimal("-800"))

    # Act: reconciliation replays the primary's fill
    result = order_apply_venue_event(event=fill(parent, "T2", "0.02", "40000", seconds=2))

    # Assert: no fill added, the parent closed CANCELED with its fill
    parent.refresh_from_db()
    assert result.applied and "no fill added" in result.reason
    assert parent.status == S.CANCELED and parent.filled_quantity == Decimal("0.02") and parent.fills.count() == 1
    assert e1.client_order_id in parent.rejection_reason
    assert _open_total(strategy) == 0


def test_apply_replayed_fill_of_a_working_primary_changes_nothing(listing, strategy):
    parent = _twap_limit_parent(strategy)
    _resting_child(parent, 1)
    order_apply_venue_event(event=fill(parent, "T2", "0.02", "40000", seconds=2))

    result = order_apply_venue_event(event=fill(parent, "T2", "0.02", "40000", seconds=2))

    parent.refresh_from_db()
    assert not result.applied and "duplicate fill" in result.reason
    assert parent.status == S.PARTIALLY_FILLED and _open_total(strategy) == Decimal("0.01")
