"""The submit hot path: statements on the order tables per POST /api/orders, and duplicates over real HTTP.

The router's and the risk engine's own queries are theirs to budget (routing/, risk/); this pins
what the order layer adds, so a regression (a per-event INSERT, a re-read, a permission look-up)
fails here rather than in the benchmark.
"""

import json
import threading

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from orders.models import Order, OrderEvent
from tests.orders.conftest import SPOT_KEY, publish_book
from tests.orders.factories import StrategyFactory, make_token, order_body
from tests.venues.factories import InstrumentFactory


def _statements(queries, table):
    return [q["sql"].split()[0].upper() for q in queries if f'"{table}"' in q["sql"]]


@pytest.mark.django_db
@pytest.mark.parametrize("changes", [{}, {"time_in_force": "GTD", "expire_time": "2099-01-01T00:00:00Z"}],
                         ids=["GTC", "GTD"])
def test_post_order_touches_the_order_tables_a_fixed_number_of_times(tradable, svc_client, monkeypatch,
                                                                       django_capture_on_commit_callbacks, changes):
    # Arrange: the broker takes the message (no eager run of the worker's task: its statements are
    # the worker's, not the web request's); a first order warms every cache
    from types import SimpleNamespace

    from venues import tasks

    monkeypatch.setattr(tasks.submit_order, "apply_async", lambda *a, **k: SimpleNamespace(id="stub-task-id"))
    svc_client.post("/api/orders", order_body(), format="json")
    # Act (a GTD order's expire_time is ahead: no look-up of a stored order, as for any new order)
    with CaptureQueriesContext(connection) as ctx, django_capture_on_commit_callbacks(execute=True):
        response = svc_client.post("/api/orders", order_body(**changes), format="json")
    # Assert
    assert response.status_code == 201
    queries = ctx.captured_queries
    # the strategy comes with the token, in knox's one SELECT
    assert _statements(queries, "orders_strategy") == ["SELECT"]
    assert "knox_authtoken" in next(q["sql"] for q in queries if "orders_strategy" in q["sql"])
    # the INSERT alone: the unique index is the idempotency check, and the hand-off after commit
    # writes nothing more
    assert _statements(queries, "orders_order") == ["INSERT"]
    # the three submit events in one bulk INSERT
    assert _statements(queries, "orders_orderevent") == ["INSERT"]
    assert not [q for q in queries if "auth_permission" in q["sql"] or "auth_user_groups" in q["sql"]]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(180)
def test_post_order_fifty_concurrent_duplicates_over_http_yield_one_order(live_server):
    import httpx

    # Arrange
    InstrumentFactory()
    publish_book(SPOT_KEY)
    strategy = StrategyFactory(id="http-dup")
    token = make_token(strategy.service_account)
    body = order_body(operation_id="dup-over-http")
    barrier = threading.Barrier(50)
    codes, order_ids, errors = [], [], []
    lock = threading.Lock()

    def post():
        # An idempotent client retries transport failures with the same operation_id: Django's test
        # server listens with a backlog of 5, so some of the 50 simultaneous connects are reset.
        try:
            with httpx.Client(base_url=live_server.url, timeout=60) as client:
                barrier.wait()
                for attempt in range(20):
                    try:
                        response = client.post("/api/orders", json=body, headers={"Authorization": f"Bearer {token}"})
                        break
                    except httpx.TransportError:
                        if attempt == 19:
                            raise
            with lock:
                codes.append(response.status_code)
                order_ids.append(response.json().get("order_id"))
        except Exception as exc:  # noqa: BLE001 - asserted on below
            errors.append(exc)

    threads = [threading.Thread(target=post) for _ in range(50)]
    # Act
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=150)
    # Assert: every client got the one order (one 201 — unless its response was the one lost to a
    # reset and the retry saw 200), one row, one set of events, one dispatch
    assert errors == []
    assert len(codes) == 50 and set(codes) <= {200, 201} and codes.count(201) <= 1
    assert len(set(order_ids)) == 1
    assert Order.objects.filter(strategy=strategy).count() == 1
    assert OrderEvent.objects.filter(order__strategy=strategy, type="RECEIVED").count() == 1
    order_id = order_ids[0]
    if settings.CELERY_TASK_ALWAYS_EAGER:  # embedded transports: the task ran in the request
        dispatches = OrderEvent.objects.filter(order_id=order_id, type="VENUE_RECEIVED").count()
    else:  # the command sits in Redis list "venues" (no worker runs in tests)
        queue = redis.Redis.from_url(settings.REDIS_URL).lrange("venues", 0, -1)
        dispatches = sum(order_id in json.loads(raw)["headers"]["argsrepr"] for raw in queue)
    assert dispatches == 1
