from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.utils import timezone

from orders.models import Order, OrderEvent
from orders.services import IdempotencyConflict, OrderRequestInvalid, StrategyDisabled, order_submit
from orders.services.request import OrderRequestExpired
from risk.models import RiskLimit, Scope
from tests.orders.conftest import typed_request
from tests.orders.factories import StrategyFactory
from tests.risk.factories import RiskLimitFactory

pytestmark = pytest.mark.django_db


def _event_types(order):
    return list(OrderEvent.objects.filter(order=order).order_by("ts", "id").values_list("type", flat=True))


def test_order_submit_tradable_order_is_routed_with_its_events(tradable, strategy, django_capture_on_commit_callbacks):
    # Arrange
    request = typed_request()
    # Act
    with django_capture_on_commit_callbacks(execute=False):
        result = order_submit(strategy=strategy, actor="alice", data=request)
    # Assert
    order = Order.objects.get(pk=result.order.pk)
    assert result.created is True
    assert order.status == "ROUTED"
    assert (order.venue, order.routed_instrument_key, order.venue_type) == (
        "BINANCE-SPOT", "BINANCE-SPOT:SPOT_PAIR:BTC-USDT", "NAUTILUS")
    assert order.request_fingerprint == request.fingerprint()
    assert order.risk_result["passed"] is True and order.routing_decision["routed"] is True
    assert order.created_by == "alice"
    assert _event_types(order) == ["RECEIVED", "RISK_PASSED", "ROUTED"]


def test_order_submit_dispatch_happens_only_after_commit(
    tradable, strategy, django_capture_on_commit_callbacks, monkeypatch
):
    # Arrange: record publishes to the venues queue
    from venues import tasks as venue_tasks

    published = []
    monkeypatch.setattr(venue_tasks.submit_order, "apply_async",
                        lambda args, queue, **options: published.append((args, queue)) or type("R", (), {"id": "t-1"})())
    # Act
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        result = order_submit(strategy=strategy, actor="alice", data=typed_request())
    # Assert: nothing published inside the transaction
    assert len(callbacks) == 2 and published == []  # the publication to the order stream, then the dispatch
    # Act: commit
    for callback in callbacks:
        callback()
    # Assert
    assert published == [([str(result.order.pk)], "venues")]
    order = Order.objects.get(pk=result.order.pk)
    assert order.status == "ROUTED" and order.dispatched_at is not None
    assert not OrderEvent.objects.filter(order=order, type="DISPATCH_FAILED").exists()


def test_order_submit_same_operation_same_body_returns_stored_order_and_sends_nothing(
    tradable, strategy, django_capture_on_commit_callbacks
):
    # Arrange
    request = typed_request()
    with django_capture_on_commit_callbacks(execute=True):
        first = order_submit(strategy=strategy, actor="alice", data=request)
    events_before = OrderEvent.objects.count()
    # Act
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        again = order_submit(strategy=strategy, actor="alice", data=typed_request(operation_id=request.operation_id))
    # Assert
    assert again.created is False and again.order.pk == first.order.pk
    assert callbacks == []
    assert OrderEvent.objects.count() == events_before
    assert Order.objects.filter(strategy=strategy).count() == 1


def test_order_submit_same_operation_different_body_raises_conflict(tradable, strategy):
    # Arrange
    request = typed_request()
    first = order_submit(strategy=strategy, actor="alice", data=request)
    # Act / Assert
    with pytest.raises(IdempotencyConflict) as exc:
        order_submit(strategy=strategy, actor="alice",
                     data=typed_request(operation_id=request.operation_id, quantity=Decimal("0.02")))
    assert exc.value.operation_id == request.operation_id and exc.value.order_id == first.order.pk
    assert Order.objects.count() == 1


def test_order_submit_same_operation_other_strategy_is_a_new_order(tradable, strategy, other_strategy):
    request = typed_request()
    a = order_submit(strategy=strategy, actor="a", data=request)
    b = order_submit(strategy=other_strategy, actor="b", data=request)
    assert a.created and b.created and a.order.pk != b.order.pk


def test_order_submit_over_quantity_limit_is_denied_and_recorded(tradable, strategy, django_capture_on_commit_callbacks):
    # Arrange
    RiskLimitFactory(scope=Scope.STRATEGY, scope_key=strategy.id, kind=RiskLimit.Kind.MAX_ORDER_QUANTITY,
                     value=Decimal("0.001"))
    # Act
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        result = order_submit(strategy=strategy, actor="alice", data=typed_request(quantity=Decimal("0.01")))
    # Assert
    order = Order.objects.get(pk=result.order.pk)
    assert result.created is True
    assert order.status == "DENIED" and order.closed_at is not None
    assert "0.001" in order.rejection_reason and "0.01" in order.rejection_reason
    assert order.risk_result["passed"] is False
    assert _event_types(order) == ["RECEIVED", "DENIED"]
    assert len(callbacks) == 1  # the publication to the order stream only: a denied order goes nowhere
    assert not OrderEvent.objects.filter(order=order, type="DISPATCHED").exists()


def test_order_submit_unlisted_instrument_is_denied_with_the_routers_reason(tradable, strategy):
    result = order_submit(strategy=strategy, actor="alice",
                          data=typed_request(instrument_key="BINANCE-SPOT:SPOT_PAIR:ETH-USDT"))
    order = result.order
    assert order.status == "DENIED"
    assert order.venue == ""
    assert order.routing_decision["routed"] is False
    assert "not listed" in order.rejection_reason


def test_order_submit_disabled_strategy_is_refused(tradable):
    strategy = StrategyFactory(id="sleepy", enabled=False)
    with pytest.raises(StrategyDisabled):
        order_submit(strategy=strategy, actor="alice", data=typed_request())
    assert Order.objects.count() == 0


def test_order_submit_disabled_strategy_replay_still_returns_the_stored_order(tradable, strategy):
    request = typed_request()
    first = order_submit(strategy=strategy, actor="alice", data=request)
    strategy.enabled = False
    strategy.save()
    again = order_submit(strategy=strategy, actor="alice", data=request)
    assert again.created is False and again.order.pk == first.order.pk


def test_order_submit_replay_rolls_back_its_risk_usage(tradable, strategy):
    # Arrange: a velocity limit, so every evaluation that passes records usage
    from risk.models import RiskLimit, Scope, VelocityBucket
    from tests.risk.factories import RiskLimitFactory

    RiskLimitFactory(scope=Scope.GLOBAL, scope_key="", kind=RiskLimit.Kind.MAX_ORDERS_PER_MINUTE, value=1000)
    request = typed_request()
    winner = order_submit(strategy=strategy, actor="alice", data=request)
    usage = sorted(VelocityBucket.objects.values_list("scope_key", "count"))
    # Act: the replay is evaluated, fails the unique index, and its transaction rolls back
    result = order_submit(strategy=strategy, actor="alice", data=request)
    # Assert
    assert result.created is False and result.order.pk == winner.order.pk
    assert Order.objects.count() == 1
    assert OrderEvent.objects.filter(order=winner.order).count() == 3  # the replay's events rolled back
    assert sorted(VelocityBucket.objects.values_list("scope_key", "count")) == usage


def test_order_submit_replay_with_other_body_raises_conflict_and_writes_nothing(tradable, strategy):
    request = typed_request()
    first = order_submit(strategy=strategy, actor="alice", data=request)
    with pytest.raises(IdempotencyConflict):
        order_submit(strategy=strategy, actor="alice",
                     data=typed_request(operation_id=request.operation_id, side="SELL"))
    assert Order.objects.count() == 1
    assert OrderEvent.objects.filter(order=first.order).count() == 3


# -- GTD orders after their expire_time: a replay gets the stored order, a new order is refused ------------------
def _expired_request(**fields):
    # What order_request_build gives once the expire_time has passed: the request inside OrderRequestExpired.
    with pytest.raises(OrderRequestExpired) as exc:
        typed_request(**fields)
    return exc.value.request


def test_order_submit_gtd_replay_after_expire_time_returns_the_stored_order(tradable, strategy):
    # Arrange: a GTD order accepted while its expire_time was ahead
    expire = timezone.now() + timedelta(minutes=1)
    first = order_submit(strategy=strategy, actor="alice", data=typed_request(time_in_force="GTD", expire_time=expire))
    fields = {"operation_id": first.order.operation_id, "time_in_force": "GTD", "expire_time": expire}
    # Act: the client's retry arrives after the expire_time
    with mock.patch("orders.services.request.dj_timezone", **{"now.return_value": expire + timedelta(seconds=5)}):
        again = order_submit(strategy=strategy, actor="alice", data=_expired_request(**fields))
    # Assert
    assert again.created is False and again.order.pk == first.order.pk
    assert Order.objects.count() == 1


@pytest.mark.parametrize("stored", [None, "other body"])
def test_order_submit_gtd_new_order_after_expire_time_raises_invalid_naming_expire_time(tradable, strategy, stored):
    # Arrange: nothing stored under the operation_id, or an order with another body
    expire = timezone.now() + timedelta(minutes=1)
    if stored:
        order_submit(strategy=strategy, actor="alice", data=typed_request(operation_id="op-gtd", quantity=Decimal("1")))
    # Act
    with mock.patch("orders.services.request.dj_timezone", **{"now.return_value": expire + timedelta(seconds=5)}):
        request = _expired_request(operation_id="op-gtd", time_in_force="GTD", expire_time=expire)
        with pytest.raises(OrderRequestInvalid) as exc:
            order_submit(strategy=strategy, actor="alice", data=request)
    # Assert
    assert exc.value.errors == {"expire_time": [f"must be in the future, got {expire.isoformat()}"]}
    assert Order.objects.count() == (1 if stored else 0)


def test_order_submit_replay_of_an_order_stored_with_the_legacy_fingerprint_returns_it(tradable, strategy):
    # Arrange: an order stored before integral floats were canonicalised: metadata {"size": 1.0} was
    # fingerprinted as a float then (the value below, computed by 5a3a87e)
    request = typed_request(metadata={"size": 1.0})
    first = order_submit(strategy=strategy, actor="alice", data=request)
    legacy = "bd13034160647a97701ca1b12a2d838283eea793d5838516207dd79ef5c48182"
    Order.objects.filter(pk=first.order.pk).update(request_fingerprint=legacy)
    # Act: the client's retry with the very same body
    again = order_submit(strategy=strategy, actor="alice",
                         data=typed_request(operation_id=request.operation_id, metadata={"size": 1.0}))
    # Assert
    assert again.created is False and again.order.pk == first.order.pk


@pytest.mark.parametrize(
    ("display_qty", "check", "observed"),
    [
        ("0.0000015", "lot_size", "0.0000015"),  # not a whole number of lots: the node would show 0.000001
        ("0.0002", "min_notional", "8"),  # each clip 8 USDT, below the listing's 10: the node would deny it
    ],
)
def test_order_submit_iceberg_display_qty_breaking_a_listing_rule_is_denied_naming_it(
        tradable, strategy, display_qty, check, observed):
    # Arrange: ICEBERG LIMIT BUY 0.01 @ 40000 (400 USDT: the order itself passes every listing rule)
    request = typed_request(exec_algorithm="ICEBERG", exec_algorithm_params={"display_qty": display_qty})

    # Act
    result = order_submit(strategy=strategy, actor="alice", data=request)

    # Assert: DENIED before it is routed, the reason naming the rule, display_qty and the observed value
    order = Order.objects.get(pk=result.order.pk)
    assert order.status == "DENIED"
    assert order.rejection_reason.startswith(f"{check}: observed {observed}")
    assert "display_qty" in order.rejection_reason
    assert _event_types(order) == ["RECEIVED", "DENIED"]


def test_order_submit_iceberg_display_qty_within_the_listing_rules_is_routed(tradable, strategy):
    # Arrange: 0.001 BTC clips (40 USDT)
    request = typed_request(exec_algorithm="ICEBERG", exec_algorithm_params={"display_qty": "0.001"})

    # Act
    result = order_submit(strategy=strategy, actor="alice", data=request)

    # Assert: every display_qty rule passed, listed beside the order's own
    order = Order.objects.get(pk=result.order.pk)
    assert order.status == "ROUTED", order.rejection_reason
    display_checks = [c for c in order.risk_result["checks"] if "display_qty" in c["detail"]]
    assert {c["check"] for c in display_checks} == {"lot_size", "min_quantity", "max_quantity", "min_notional"}
    assert all(c["passed"] for c in display_checks)
