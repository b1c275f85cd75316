"""Kill switches and venue circuits seen through POST /api/orders: recorded DENIED, never sent."""

import uuid

import pytest

from orders.models import Order, OrderEvent
from risk.models import Scope, TradingState
from risk.services import trading_state_set
from tests.orders.factories import order_body
from venues.circuit import record_venue_failure, reset_circuit_breakers

pytestmark = pytest.mark.django_db


@pytest.fixture
def own_circuits(settings):
    """A private circuit namespace for the test, and a fresh breaker registry after it."""
    settings.ODUM = {**settings.ODUM, "CIRCUIT_PREFIX": f"odum:test:circuit:{uuid.uuid4().hex}", "CIRCUIT_FAIL_MAX": 2}
    yield
    reset_circuit_breakers()


def test_post_order_global_kill_switch_denies_and_records(tradable, svc_client, django_capture_on_commit_callbacks):
    # Arrange
    trading_state_set(scope=Scope.GLOBAL, scope_key="", state=TradingState.State.HALTED, reason="incident 42",
                      actor="risk-manager")
    # Act
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = svc_client.post("/api/orders", order_body(), format="json")
    # Assert
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "DENIED" and "kill_switch" in body["rejection_reason"]
    assert len(callbacks) == 1  # the publication to the order stream only
    assert not OrderEvent.objects.filter(type="DISPATCHED").exists()


def test_post_order_kill_switch_lifted_routes_again(tradable, svc_client):
    trading_state_set(scope=Scope.GLOBAL, scope_key="", state=TradingState.State.HALTED, reason="x", actor="rm")
    trading_state_set(scope=Scope.GLOBAL, scope_key="", state=TradingState.State.ACTIVE, reason="resolved", actor="rm")
    assert svc_client.post("/api/orders", order_body(), format="json").json()["status"] == "ROUTED"


def test_post_order_venue_circuit_open_is_denied_with_the_routers_reason(tradable, svc_client, own_circuits):
    # Arrange: the venue failed twice (CIRCUIT_FAIL_MAX)
    for _ in range(2):
        record_venue_failure("BINANCE-SPOT", ConnectionError("venue down"))
    # Act
    body = svc_client.post("/api/orders", order_body(), format="json").json()
    # Assert
    assert body["status"] == "DENIED"
    assert body["routing_decision"]["routed"] is False
    assert "circuit" in body["rejection_reason"]
    assert Order.objects.get().venue == ""
