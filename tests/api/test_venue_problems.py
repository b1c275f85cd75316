"""A paper venue without market data, through the real chain (issue #3 §2): the node's plan finds the
problem, a real TradingNode host reports it in its heartbeat, ``/api/health`` shows it and the order
API denies the venue's MARKET orders naming it. Elsewhere each link is tested on its own
(``tests/venues/test_node_host.py``, ``tests/risk/test_engine_checks.py``, ``tests/api/test_health.py``).
"""

from __future__ import annotations

import pytest

from orders.models import Order
from tests.helpers import eventually, running_node_host
from venues.node.config import node_plan

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def node_without_market_data(listing):
    """A real node for the paper BINANCE-SPOT listing, whose venue names no replay data."""
    plan = node_plan()
    (problem,) = plan.venues[0].problems
    with running_node_host(plan, trader_id="TESTNODE-002", heartbeat_secs=0.1) as host:
        yield host, problem


def test_paper_venue_without_market_data_shows_in_health_and_its_market_orders_are_denied_naming_it(
        node_without_market_data, svc_client):
    # Arrange: the node runs, its heartbeat carries the venue's problem
    host, problem = node_without_market_data
    assert "no replay source configured" in problem
    eventually(lambda: problem in str(svc_client.get("/api/health").json()), timeout=10,
               message="the venue's problem in /api/health")
    # Act
    response = svc_client.post("/api/orders", {
        "operation_id": "no-data-1", "instrument_key": "BINANCE-SPOT:SPOT_PAIR:BTC-USDT", "side": "BUY",
        "order_type": "MARKET", "quantity": "0.01"}, format="json")
    # Assert: a recorded denial whose reason gives the cause, not only the symptom
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "DENIED"
    assert f"(venue BINANCE-SPOT: {problem})" in body["rejection_reason"]
    assert Order.objects.get(operation_id="no-data-1").status == "DENIED"
    assert host.is_ready()  # the node itself runs: only this venue's listing has no market data
