from datetime import datetime, timedelta, timezone

import pytest
from django.utils import timezone as dj_timezone

from odum_live.health import record_trading_node_heartbeat, trading_worker_heartbeat_key, trading_worker_id
from orders.models import Order
from tests.orders.factories import OrderFactory
from tests.orders.test_services_dispatch import _Broker
from tests.venues.factories import VenueFactory
from venues.models import Venue

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
    assert set(body["checks"]) == {"database", "broker", "channel_layer", "trading_node", "venue_adapters",
                                   "stuck_orders"}
    for name in ("database", "broker", "channel_layer"):
        assert body["checks"][name]["status"] == "ok" and body["checks"][name]["critical"] is True
    assert body["checks"]["trading_node"] == {**body["checks"]["trading_node"], "status": "down",
                                              "detail": "no heartbeat yet", "critical": False}


def test_health_fresh_heartbeat_is_ok(client):
    record_trading_node_heartbeat(hostname="trader-1")
    body = client.get(URL).json()
    assert body["status"] == "ok"
    assert body["checks"]["trading_node"]["status"] == "ok" and "trader-1" in body["checks"]["trading_node"]["detail"]


def test_health_enabled_venue_without_adapter_is_down_naming_it_and_degrades(client):
    # Arrange: the node beats, but an enabled Deribit venue has no adapter in this release
    VenueFactory()
    VenueFactory(code="DERIBIT", kind=Venue.Kind.EXTERNAL_SDK, adapter="deribit")
    record_trading_node_heartbeat(hostname="trader-1")
    # Act
    response = client.get(URL)
    # Assert: reported, not critical (the web process itself is fine)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    check = body["checks"]["venue_adapters"]
    assert check["status"] == "down" and check["critical"] is False
    assert check["detail"] == ("1 enabled venue cannot trade: DERIBIT: adapter 'deribit' (EXTERNAL_SDK) is not "
                               "available in this release")


def test_health_disabled_venue_without_adapter_is_ok(client):
    VenueFactory()
    VenueFactory(code="DERIBIT", kind=Venue.Kind.EXTERNAL_SDK, adapter="deribit", enabled=False)
    record_trading_node_heartbeat(hostname="trader-1")

    body = client.get(URL).json()

    assert body["status"] == "ok"
    assert body["checks"]["venue_adapters"]["status"] == "ok"


def test_health_stale_heartbeat_is_down(client):
    record_trading_node_heartbeat(hostname="trader-1", ts=datetime.now(timezone.utc) - timedelta(minutes=5))
    node = client.get(URL).json()["checks"]["trading_node"]
    assert node["status"] == "down" and "ago" in node["detail"]


def test_health_unreadable_heartbeat_is_unknown(client):
    from django.core.cache import cache

    record_trading_node_heartbeat(hostname="trader-1")
    cache.set(trading_worker_heartbeat_key(trading_worker_id("trader-1")), {"ts": "yesterday"})
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


def _workers(body) -> dict[str, dict]:
    return {w["worker"]: w for w in body["checks"]["trading_node"]["workers"]}


def test_health_fresh_beat_of_one_worker_does_not_hide_another_workers_stale_beat(client):
    # Arrange: trading-2 stopped beating 5 minutes ago (died); trading-1 beats now, after it
    record_trading_node_heartbeat(hostname="trading-2@h2", ts=datetime.now(timezone.utc) - timedelta(minutes=5))
    record_trading_node_heartbeat(hostname="trading-1@h1")

    # Act
    body = client.get(URL).json()

    # Assert: each worker reported; the dead one makes the node check down (degraded, still 200)
    assert body["status"] == "degraded"
    node = body["checks"]["trading_node"]
    assert node["status"] == "down"
    assert "trading-2@h2" in node["detail"] and "300 s ago" in node["detail"]
    workers = _workers(body)
    assert set(workers) == {"trading-1@h1", "trading-2@h2"}
    assert workers["trading-1@h1"]["status"] == "ok" and workers["trading-2@h2"]["status"] == "down"
    assert workers["trading-2@h2"]["heartbeat_age_secs"] >= 300


def test_health_worker_that_stopped_cleanly_is_reported_stopped_not_failing(client):
    # Arrange: trading-2's final beat says it stopped; trading-1 runs
    record_trading_node_heartbeat(hostname="trading-1@h1")
    record_trading_node_heartbeat(hostname="trading-2@h2", detail="stopped", stopped=True,
                                  status={"ready": False, "error": "trading node stopped"})

    # Act
    body = client.get(URL).json()

    # Assert
    assert body["status"] == "ok"
    assert body["checks"]["trading_node"]["status"] == "ok"
    workers = _workers(body)
    assert workers["trading-2@h2"]["status"] == "stopped" and "stopped" in workers["trading-2@h2"]["detail"]
    assert workers["trading-1@h1"]["status"] == "ok"


def test_health_only_worker_stopped_is_down_saying_it_stopped(client):
    record_trading_node_heartbeat(hostname="trading-1@h1", detail="stopped", stopped=True,
                                  status={"ready": False, "error": "trading node stopped"})

    node = client.get(URL).json()["checks"]["trading_node"]

    assert node["status"] == "down"
    assert node["detail"].startswith("stopped on trading-1@h1") and "trading node stopped" in node["detail"]


def test_health_stopped_worker_is_forgotten_after_node_stopped_shown_secs(client, settings):
    # Arrange: a stopped worker is shown for NODE_STOPPED_SHOWN_SECS (1 s here), then forgotten
    from tests.helpers import eventually

    settings.ODUM = {**settings.ODUM, "NODE_STOPPED_SHOWN_SECS": 1}
    record_trading_node_heartbeat(hostname="trading-1@h1")
    record_trading_node_heartbeat(hostname="trading-2@h2", detail="stopped", stopped=True)
    assert set(_workers(client.get(URL).json())) == {"trading-1@h1", "trading-2@h2"}

    # Act / Assert
    eventually(lambda: set(_workers(client.get(URL).json())) == {"trading-1@h1"}, timeout=10,
               message="the stopped worker forgotten")


# -- orders stuck in a non-terminal status (no change for ORDER_STUCK_AFTER_SECS) ---------------------------------

def _order_aged(status: str, *, age_secs: float, **fields) -> Order:
    # An order ``status`` whose time in that status (created / submitted / last change) is ``age_secs`` old.
    order = OrderFactory(status=status, **fields)
    then = dj_timezone.now() - timedelta(seconds=age_secs)
    Order.objects.filter(pk=order.pk).update(created_at=then, updated_at=then,
                                             submitted_at=None if status == "ROUTED" else then)
    return order


@pytest.mark.parametrize(("status", "action"), [
    ("ROUTED", "orders.tasks.redispatch_stale_orders"),
    ("SUBMITTED", "no venue acknowledgement"),
    ("PENDING_CANCEL", "the venue has not answered the cancel"),
])
def test_health_order_stuck_past_the_stuck_age_is_down_with_its_age_and_the_action(client, settings, status, action):
    # Arrange: the node beats; one order has sat in ``status`` for 10 minutes
    record_trading_node_heartbeat(hostname="trader-1")
    settings.ODUM = {**settings.ODUM, "ORDER_STUCK_AFTER_SECS": 300}
    _order_aged(status, age_secs=600)
    # Act
    response = client.get(URL)
    # Assert: reported (degraded), not critical, with the status, the age and what to do; no order id
    assert response.status_code == 200
    body = response.json()
    check = body["checks"]["stuck_orders"]
    assert body["status"] == "degraded"
    assert check["status"] == "down" and check["critical"] is False
    assert check["detail"].startswith(f"1 order stuck for more than 300 s: 1 {status} (oldest 60")
    assert action in check["detail"]


def test_health_orders_recent_or_working_are_not_stuck(client, settings):
    # Arrange: a SUBMITTED order a minute old, a resting GTC order ACCEPTED an hour ago, a FILLED one
    record_trading_node_heartbeat(hostname="trader-1")
    settings.ODUM = {**settings.ODUM, "ORDER_STUCK_AFTER_SECS": 300}
    _order_aged("SUBMITTED", age_secs=60)
    _order_aged("ACCEPTED", age_secs=3600)
    _order_aged("FILLED", age_secs=3600)
    # Act
    check = client.get(URL).json()["checks"]["stuck_orders"]
    # Assert
    assert check["status"] == "ok" and check["detail"] == "no order stuck for more than 300 s"


def test_health_algorithm_parent_submitted_while_its_slices_work_is_not_stuck(client, settings):
    # An algorithm's parent stays SUBMITTED while its slices work over the horizon; its slices are checked.
    record_trading_node_heartbeat(hostname="trader-1")
    settings.ODUM = {**settings.ODUM, "ORDER_STUCK_AFTER_SECS": 300}
    _order_aged("SUBMITTED", age_secs=600, exec_algorithm="TWAP")

    assert client.get(URL).json()["checks"]["stuck_orders"]["status"] == "ok"


def test_health_worker_whose_journal_lost_venue_events_is_down_saying_what_to_do(client):
    # Arrange: a running, ready worker whose journal writer gave up on two venue events (a fill, a cancel …)
    record_trading_node_heartbeat(hostname="trader-1", status={
        "ready": True, "journal": {"applied": 10, "ignored": 0, "failed": 2, "queue_depth": 0,
                                   "last_error": "OperationalError: server closed the connection"}})
    # Act
    check = client.get(URL).json()["checks"]["trading_node"]
    # Assert: the OMS may be missing what the venue did: reported, with the cause and the remedy
    assert check["status"] == "down"
    assert "2 venue events not written by the journal (last: OperationalError: server closed the connection)" \
        in check["detail"]
    assert "restart the trading worker" in check["detail"]
