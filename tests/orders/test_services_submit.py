import threading
from decimal import Decimal

import pytest
from django.db import connection, connections
from django.utils import timezone

from orders.models import Order, OrderEvent
from orders.services import IdempotencyConflict, StrategyDisabled, order_submit
from orders.services import submit as submit_module
from risk.models import RiskLimit, Scope
from tests.helpers import eventually
from tests.orders.conftest import publish_book, typed_request
from tests.orders.factories import StrategyFactory
from tests.risk.factories import RiskLimitFactory
from tests.venues.factories import InstrumentFactory

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


def test_order_submit_dispatch_happens_only_after_commit(tradable, strategy, django_capture_on_commit_callbacks):
    # Arrange / Act
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        result = order_submit(strategy=strategy, actor="alice", data=typed_request())
    # Assert: nothing dispatched inside the transaction
    assert len(callbacks) == 1
    assert not OrderEvent.objects.filter(order=result.order, type="DISPATCHED").exists()
    assert Order.objects.get(pk=result.order.pk).dispatched_at is None
    # Act: commit
    callbacks[0]()
    # Assert
    order = Order.objects.get(pk=result.order.pk)
    assert order.status == "ROUTED" and order.dispatched_at is not None
    dispatched = OrderEvent.objects.get(order=order, type="DISPATCHED")
    assert dispatched.payload["command"] == "submit" and dispatched.payload["queue"] == "venues"


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
    assert callbacks == []  # a denied order goes nowhere


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


def test_order_submit_lost_race_on_unique_constraint_returns_the_winner(tradable, strategy, monkeypatch):
    # Arrange: the winner is stored, but this submit's look-up misses it (as a concurrent one would)
    request = typed_request()
    winner = order_submit(strategy=strategy, actor="alice", data=request)
    real = submit_module._stored_order
    calls = []

    def miss_first(strategy_, operation_id):
        calls.append(operation_id)
        return None if len(calls) == 1 else real(strategy_, operation_id)

    monkeypatch.setattr(submit_module, "_stored_order", miss_first)
    # Act
    result = order_submit(strategy=strategy, actor="alice", data=request)
    # Assert
    assert result.created is False and result.order.pk == winner.order.pk
    assert len(calls) == 2
    assert Order.objects.count() == 1
    assert OrderEvent.objects.filter(order=winner.order).count() == 3  # the loser's events rolled back


def test_order_submit_lost_race_with_other_body_raises_conflict(tradable, strategy, monkeypatch):
    request = typed_request()
    order_submit(strategy=strategy, actor="alice", data=request)
    real = submit_module._stored_order
    calls = []
    monkeypatch.setattr(submit_module, "_stored_order",
                        lambda s, op: (calls.append(op), None)[1] if not calls else real(s, op))
    with pytest.raises(IdempotencyConflict):
        order_submit(strategy=strategy, actor="alice",
                     data=typed_request(operation_id=request.operation_id, side="SELL"))


# --- concurrency (PostgreSQL: real transactions across threads) ---------------------------------
def _run_threads(n, target):
    barrier = threading.Barrier(n)
    results, errors = [None] * n, []

    def run(i):
        try:
            barrier.wait()
            results[i] = target(i)
        except Exception as exc:  # noqa: BLE001 - collected and asserted on
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results, errors


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_order_submit_fifty_concurrent_duplicates_yield_one_order():
    # Arrange
    InstrumentFactory()
    publish_book()
    strategy = StrategyFactory(id="dup")
    request = typed_request()
    # Act
    results, errors = _run_threads(50, lambda i: order_submit(strategy=strategy, actor=f"t{i}", data=request))
    # Assert
    assert errors == []
    assert sum(r.created for r in results) == 1
    assert len({r.order.pk for r in results}) == 1
    assert Order.objects.filter(strategy=strategy).count() == 1
    order = Order.objects.get(strategy=strategy)
    assert OrderEvent.objects.filter(order=order, type="RECEIVED").count() == 1
    # one dispatch for the one order (eventually: on-commit runs in the winning thread)
    eventually(lambda: OrderEvent.objects.filter(order=order, type__in=["DISPATCHED", "DISPATCH_FAILED"]).count() == 1,
               timeout=10, message="the single dispatch of the order")
    assert OrderEvent.objects.filter(order=order, type__in=["DISPATCHED", "DISPATCH_FAILED"]).count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_order_submit_concurrent_orders_never_jointly_breach_a_velocity_limit():
    # Arrange: at most 5 orders per minute for the strategy; 20 distinct orders at once
    InstrumentFactory()
    publish_book()
    strategy = StrategyFactory(id="fast")
    RiskLimitFactory(scope=Scope.STRATEGY, scope_key=strategy.id, kind=RiskLimit.Kind.MAX_ORDERS_PER_MINUTE,
                     value=Decimal("5"))
    # Keep the burst inside one fixed minute window (the engine counts fixed windows).
    eventually(lambda: timezone.now().second < 45, timeout=20, interval=0.2, message="start of a minute window")
    # Act
    results, errors = _run_threads(20, lambda i: order_submit(strategy=strategy, actor=f"t{i}",
                                                              data=typed_request(operation_id=f"v-{i}")))
    # Assert
    assert errors == []
    statuses = [r.order.status for r in results]
    assert statuses.count("ROUTED") == 5
    assert statuses.count("DENIED") == 15
    assert Order.objects.filter(strategy=strategy, status="ROUTED").count() == 5
    denied = Order.objects.filter(strategy=strategy, status="DENIED").first()
    assert "5" in denied.rejection_reason
    assert connection.vendor == "postgresql"
