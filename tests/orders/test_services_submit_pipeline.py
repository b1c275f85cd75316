"""order_submit's round trips: the pipelined transaction on PostgreSQL keeps every guarantee.

On PostgreSQL the submit transaction runs in psycopg pipeline mode (statements whose results are not
read at once travel with the next one). These tests go through ``order_submit`` itself — real
commits, one connection per thread — so the risk engine's lock still precedes the reads it guards,
a duplicate operation_id still comes up as an IntegrityError (a replay), and the market data the
router read is the risk engine's reference price.
"""

from decimal import Decimal

import pytest
from django.db import transaction

from orders.models import Order, OrderEvent
from orders.services import order_submit
from risk.models import OpenOrderExposure, RiskLimit, Scope, VelocityBucket
from tests.helpers import run_concurrently
from tests.orders.conftest import typed_request
from tests.risk.factories import RiskLimitFactory
from venues.marketdata import market_data, set_market_data_store

K = RiskLimit.Kind
THREADS = 16


def _submit_all(strategy, requests):
    results, errors = run_concurrently(len(requests), lambda i: order_submit(
        strategy=strategy, actor="svc", data=requests[i]))
    assert errors == []
    return results


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_order_submit_concurrent_orders_never_jointly_breach_position_and_velocity_limits(tradable, strategy):
    # Arrange: room for 5 orders of 0.01 by position, 7 by velocity; each order alone fits
    RiskLimitFactory(scope=Scope.STRATEGY, scope_key=strategy.id, kind=K.MAX_POSITION_QUANTITY,
                     value=Decimal("0.05"))
    RiskLimitFactory(scope=Scope.GLOBAL, scope_key="", kind=K.MAX_ORDERS_PER_MINUTE, value=Decimal("7"))
    requests = [typed_request(quantity=Decimal("0.01"), price=Decimal("40000") - i) for i in range(THREADS)]

    # Act
    results = _submit_all(strategy, requests)

    # Assert: exactly the limit passed; the totals the next order reads are exact
    statuses = sorted(r.order.status for r in results)
    assert statuses.count("ROUTED") == 5 and statuses.count("DENIED") == THREADS - 5
    denied = Order.objects.filter(status="DENIED")
    assert all(o.rejection_reason.startswith("position_limit") for o in denied)
    assert VelocityBucket.objects.get().count == 5
    total = OpenOrderExposure.objects.get(strategy_id=strategy.id, side="BUY")
    assert total.leaves_quantity == Decimal("0.05")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_order_submit_concurrent_duplicates_yield_one_order_and_replays(tradable, strategy):
    # Arrange: the same operation_id and body from every thread
    request = typed_request(operation_id="dup-pipelined")

    # Act
    results = _submit_all(strategy, [request] * THREADS)

    # Assert: the unique index decided inside the pipelined transaction; the losers replay
    assert [r.created for r in results].count(True) == 1
    assert len({r.order.pk for r in results}) == 1
    assert Order.objects.filter(strategy=strategy).count() == 1
    assert OrderEvent.objects.filter(order__strategy=strategy, type="RECEIVED").count() == 1
    assert VelocityBucket.objects.count() == 0  # no velocity limit set: nothing counted twice either


@pytest.mark.django_db
def test_order_submit_reads_the_market_data_once_for_router_and_risk(tradable, strategy):
    # Arrange: a price collar needs the reference mid; count the store's reads
    RiskLimitFactory(scope=Scope.GLOBAL, scope_key="", kind=K.PRICE_COLLAR_BPS, value=Decimal("50"))
    store = market_data()
    calls = []

    class Counting:
        def get(self, key):
            calls.append(("get", key))
            return store.get(key)

        def get_many(self, keys):
            calls.append(("get_many", tuple(keys)))
            return store.get_many(keys)

    previous = set_market_data_store(Counting())
    try:
        # Act
        with transaction.atomic():
            result = order_submit(strategy=strategy, actor="svc", data=typed_request())
    finally:
        set_market_data_store(previous)

    # Assert: the router's read served the collar's reference price
    assert calls == [("get_many", ("BINANCE-SPOT:SPOT_PAIR:BTC-USDT",))]
    collar = next(c for c in result.order.risk_result["checks"] if c["check"] == "price_collar")
    assert collar["passed"] is True and "vs mid 40000.5" in collar["detail"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_order_submit_outside_a_transaction_commits_with_its_writes_then_dispatches_and_publishes(
        tradable, strategy, monkeypatch):
    # Outside a caller's transaction the pipeline encloses the submit transaction (its COMMIT goes
    # with the last writes); the hand-off and the publication run once it has committed — and not
    # for a replayed operation_id.
    import orders.services.dispatch as dispatch
    import orders.services.submit as submit
    from django.db import connection

    calls = []

    def dispatched(*, order_id, attempt):
        calls.append(("dispatch", order_id, connection.in_atomic_block,
                      Order.objects.filter(pk=order_id, status="ROUTED").exists()))

    def published(orders, *, new_rows=None):
        calls.append(("publish", orders, new_rows))

    monkeypatch.setattr(dispatch, "order_dispatch_submit", dispatched)
    monkeypatch.setattr(submit, "publish_orders_updated", published)
    request = typed_request(operation_id="merged-commit")

    # Act
    first = order_submit(strategy=strategy, actor="svc", data=request)
    again = order_submit(strategy=strategy, actor="svc", data=request)

    # Assert: dispatched once, after the commit (outside the block, the row visible), then published
    # with the new events' ids; the replay neither dispatches nor publishes
    order = first.order
    event_ids = sorted(order.events.values_list("pk", flat=True))
    assert first.created and not again.created and again.order.pk == order.pk
    assert calls[0] == ("dispatch", order.pk, False, True)
    assert calls[1][0] == "publish" and calls[1][1] == {order.pk: strategy.id}
    assert sorted(calls[1][2][order.pk][0]) == event_ids and len(event_ids) == 3
    assert len(calls) == 2
