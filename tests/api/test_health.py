from datetime import datetime, timedelta, timezone

import pytest

from odum_live.health import TRADING_NODE_HEARTBEAT_KEY, record_trading_node_heartbeat
from tests.orders.test_services_dispatch import _Broker

pytestmark = pytest.mark.django_db
URL = "/api/health"


@pytest.fixture
def broker():
    controller = _Broker()
    yield controller
    controller.up()


def test_health_anonymous_gets_every_check_without_heartbeat_yet(client):
    # Act
    response = client.get(URL)
    # Assert: critical parts ok → 200; the node has not beaten yet → degraded, not unhealthy
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert set(body["checks"]) == {"database", "broker", "channel_layer", "trading_node"}
    for name in ("database", "broker", "channel_layer"):
        assert body["checks"][name]["status"] == "ok" and body["checks"][name]["critical"] is True
    assert body["checks"]["trading_node"] == {**body["checks"]["trading_node"], "status": "down",
                                              "detail": "no heartbeat yet", "critical": False}


def test_health_fresh_heartbeat_is_ok(client):
    record_trading_node_heartbeat(hostname="trader-1")
    body = client.get(URL).json()
    assert body["status"] == "ok"
    assert body["checks"]["trading_node"]["status"] == "ok" and "trader-1" in body["checks"]["trading_node"]["detail"]


def test_health_stale_heartbeat_is_down(client):
    record_trading_node_heartbeat(hostname="trader-1", ts=datetime.now(timezone.utc) - timedelta(minutes=5))
    node = client.get(URL).json()["checks"]["trading_node"]
    assert node["status"] == "down" and "ago" in node["detail"]


def test_health_unreadable_heartbeat_is_unknown(client):
    from django.core.cache import cache

    cache.set(TRADING_NODE_HEARTBEAT_KEY, {"ts": "yesterday"})
    assert client.get(URL).json()["checks"]["trading_node"]["status"] == "unknown"


@pytest.mark.timeout(60)
def test_health_broker_down_is_503_and_hides_errors_from_anonymous(client, svc_client, broker):
    # Arrange
    broker.down()
    # Act
    anonymous = client.get(URL)
    authenticated = svc_client.get(URL)
    # Assert
    assert anonymous.status_code == authenticated.status_code == 503
    assert anonymous.json()["status"] == "down"
    assert anonymous.json()["checks"]["broker"]["status"] == "down"
    assert "error" not in anonymous.json()["checks"]["broker"]
    assert "Connection refused" in authenticated.json()["checks"]["broker"]["error"]
