"""/status (odum_live/views_status.py) and the operator status report behind it (odum_live/health.py)."""

import re
from datetime import datetime, timedelta, timezone

import pytest
from django.utils import timezone as dj_timezone

from odum_live import health
from odum_live.health import (
    AMBER, DOWN, GREEN, RED, CheckResult, record_trading_node_heartbeat, status_report, venue_status_items,
)
from positions.models import ReconciliationFinding
from tests.orders.factories import UserFactory
from tests.orders.web_fixtures import logged_in, person_in
from tests import status_fixtures
from tests.venues.factories import InstrumentFactory, VenueFactory

pytestmark = pytest.mark.django_db
clean_cache, eager = status_fixtures.clean_cache, status_fixtures.eager
SPOT = "BINANCE-SPOT:SPOT_PAIR:BTC-USDT"
FUT = "BINANCE-FUTURES:PERPETUAL:BTC-USDT@LIN"


@pytest.fixture
def venues(db):
    """Spot and futures paper venues with one listing each."""
    InstrumentFactory()
    InstrumentFactory(venue=VenueFactory(code="BINANCE-FUTURES", adapter="binance_futures"), instrument_key=FUT)


def node_status(*, md_age_secs=1.0, hosted=("BINANCE-SPOT", "BINANCE-FUTURES"), problems=None, now=None):
    now = now or datetime.now(timezone.utc)
    return {"ready": True, "venues": {code: {"mode": "paper", "problems": (problems or {}).get(code, [])}
                                      for code in hosted},
            "market_data": {SPOT: (now - timedelta(seconds=md_age_secs)).isoformat()}}


def levels(items) -> dict[str, str]:
    return {item.component: item.level for item in items}


def items_by_component(report) -> dict:
    return {item.component: item for item in report.items}


# --- public and logged-in pages -------------------------------------------------------------------

def test_status_anonymous_sees_only_up(client):
    response = client.get("/status")

    body = response.content.decode()
    assert response.status_code == 200
    assert 'data-testid="status-up">up<' in body
    assert "database" not in body and "trading node" not in body and "kill" not in body.lower()


def test_status_anonymous_down_is_503_without_detail(client, monkeypatch):
    monkeypatch.setattr(health, "check_database",
                        lambda: CheckResult("database", DOWN, "query failed", True, error="OperationalError: secret"))

    response = client.get("/status")

    body = response.content.decode()
    assert response.status_code == 503
    assert 'data-testid="status-up">down<' in body and "secret" not in body and "query failed" not in body


def test_status_logged_in_shows_every_component_with_level_and_time(venues):
    record_trading_node_heartbeat(hostname="worker-1", status=node_status())

    response = logged_in(person_in("viewer")).get("/status")

    body = response.content.decode()
    assert response.status_code == 200
    for component in ("web", "database", "redis", "broker", "channel layer", "celery workers", "trading node",
                      "stuck orders", "BINANCE-SPOT", "BINANCE-FUTURES", "reconciliation", "storage"):
        assert f'<tr data-component="{component}">' in body, component
    assert 'hx-trigger="every 5s"' in body
    assert re.search(r"connected; market data \d+\.\d s old", body) and "no market data yet" in body
    assert 'id="kill-switches"' not in body  # viewers do not get the controls


def test_status_htmx_refresh_returns_report_partial_only(venues):
    response = logged_in(person_in("viewer")).get("/status", HTTP_HX_REQUEST="true")

    body = response.content.decode()
    assert body.lstrip().startswith('<div id="status-report"') and "<html" not in body


def test_status_htmx_refresh_without_session_reloads_the_page_instead_of_nesting_the_public_one(client):
    # Act: the page's 5 s refresh after the session ended
    response = client.get("/status", HTTP_HX_REQUEST="true")

    # Assert: a reload (the public up / down page), not a whole page inside the report
    assert response.status_code == 200 and response.content == b""
    assert response["HX-Refresh"] == "true"


def test_status_risk_manager_sees_kill_switch_controls_and_admin_link(venues):
    body = logged_in(person_in("risk manager")).get("/status").content.decode()

    assert 'id="kill-switches"' in body and "/admin/risk/tradingstate/" in body
    assert 'value="HALTED"' in body and 'value="REDUCING"' in body and 'value="ACTIVE"' in body


# --- the report ------------------------------------------------------------------------------------

def test_status_report_without_heartbeat_trading_node_and_venues_red(venues):
    report = status_report()

    by_name = levels(report.items)
    assert by_name["trading node"] == RED and by_name["BINANCE-SPOT"] == RED
    assert by_name["database"] == GREEN and by_name["web"] == GREEN
    assert report.level == RED


@pytest.mark.parametrize(("status_kwargs", "expected", "detail"), [
    ({}, {"BINANCE-SPOT": GREEN, "BINANCE-FUTURES": RED}, "no market data yet"),
    ({"md_age_secs": 60}, {"BINANCE-SPOT": AMBER}, "stale after 10 s"),
    ({"hosted": ("BINANCE-FUTURES",)}, {"BINANCE-SPOT": RED}, "does not host this venue"),
    ({"problems": {"BINANCE-SPOT": ["replay data missing"]}}, {"BINANCE-SPOT": RED}, "replay data missing"),
])
def test_venue_status_items_grades_each_venue(venues, settings, status_kwargs, expected, detail):
    settings.ODUM = {**settings.ODUM, "MARKET_DATA_MAX_AGE_SECS": 10}
    now = datetime.now(timezone.utc)

    items = venue_status_items(now=now, node_status=node_status(now=now, **status_kwargs))

    assert {k: v for k, v in levels(items).items() if k in expected} == expected
    assert any(detail in item.detail for item in items)


def test_venue_status_items_facts_and_disabled_and_node_down(venues):
    now = datetime.now(timezone.utc)
    VenueFactory(code="OKX", adapter="okx", enabled=False)

    up = {item.component: item for item in venue_status_items(now=now, node_status=node_status(now=now))}
    down = levels(venue_status_items(now=now, node_status={}))

    assert up["BINANCE-SPOT"].facts == {"mode": "paper", "connected": True, "market_data_age_secs": 1.0}
    assert up["OKX"].level == AMBER and up["OKX"].detail.startswith("disabled")
    assert down == {"BINANCE-FUTURES": RED, "BINANCE-SPOT": RED, "OKX": AMBER}


NO_DERIBIT_ADAPTER = "adapter 'deribit' (EXTERNAL_SDK) is not available in this release"


@pytest.mark.parametrize("node", ["up", "down"])
def test_venue_status_items_enabled_venue_without_adapter_is_red_naming_the_adapter(venues, node):
    # Arrange: an enabled Deribit venue, which no trading node can host in this release
    VenueFactory(code="DERIBIT", kind="EXTERNAL_SDK", adapter="deribit")
    now = datetime.now(timezone.utc)

    # Act
    items = {item.component: item for item in
             venue_status_items(now=now, node_status=node_status(now=now) if node == "up" else {})}

    # Assert: the cause, whatever the node's state, not "the trading node does not host this venue"
    deribit = items["DERIBIT"]
    assert deribit.level == RED
    assert deribit.detail == f"cannot trade: {NO_DERIBIT_ADAPTER}; its orders are denied"
    assert deribit.facts["connected"] is False
    assert items["BINANCE-SPOT"].level == (GREEN if node == "up" else RED)  # the others as before


def test_venue_status_items_disabled_venue_without_adapter_is_amber_naming_the_adapter(venues):
    VenueFactory(code="DERIBIT", kind="EXTERNAL_SDK", adapter="deribit", enabled=False)
    now = datetime.now(timezone.utc)

    items = {item.component: item for item in venue_status_items(now=now, node_status=node_status(now=now))}

    assert items["DERIBIT"].level == AMBER
    assert items["DERIBIT"].detail == f"disabled; {NO_DERIBIT_ADAPTER}"


def test_status_page_lists_a_venue_without_adapter_with_its_state(venues):
    VenueFactory(code="DERIBIT", kind="EXTERNAL_SDK", adapter="deribit")
    record_trading_node_heartbeat(hostname="worker-1", status=node_status())

    body = logged_in(person_in("viewer")).get("/status").content.decode()

    row = body.split('<tr data-component="DERIBIT">', 1)[1].split("</tr>", 1)[0]
    assert "st-red" in row and "cannot trade: adapter &#x27;deribit&#x27; (EXTERNAL_SDK) is not available" in row


def test_status_report_open_reconciliation_finding_is_amber_and_listed(venues):
    ReconciliationFinding.objects.create(kind="POSITION_MISMATCH", venue="BINANCE-SPOT", instrument_key=SPOT,
                                         oms_quantity="1.5", venue_quantity="1", found_at=dj_timezone.now())

    item = status_report().section("reconciliation")[0]

    assert item.level == AMBER and "1 open finding" in item.detail and "OMS 1.5 vs venue 1" in item.detail


def test_status_report_stuck_orders_are_red_and_listed_longest_waiting_first(venues, settings):
    # Arrange: a cancel unanswered for 20 minutes, an order unacknowledged for 10, a fresh one
    from orders.models import Order
    from tests.orders.factories import OrderFactory

    settings.ODUM = {**settings.ODUM, "ORDER_STUCK_AFTER_SECS": 300}
    now = dj_timezone.now()
    for client_order_id, status, age in (("O-ACK", "SUBMITTED", 600), ("O-CXL", "PENDING_CANCEL", 1200),
                                         ("O-NEW", "SUBMITTED", 10)):
        order = OrderFactory(client_order_id=client_order_id, status=status)
        Order.objects.filter(pk=order.pk).update(submitted_at=now - timedelta(seconds=age),
                                                 updated_at=now - timedelta(seconds=age))
    # Act
    item = items_by_component(status_report())["stuck orders"]
    # Assert: red, with the check's summary, then each stuck order (never the fresh one)
    assert item.level == RED and item.section == "service"
    assert item.detail.startswith("2 orders stuck for more than 300 s: 1 SUBMITTED (oldest 6")
    assert re.search(r"orders: O-CXL PENDING_CANCEL \d+ s, O-ACK SUBMITTED \d+ s$", item.detail), item.detail
    assert "O-NEW" not in item.detail


def test_status_report_worker_whose_journal_lost_events_is_red_while_its_venues_stay_connected(venues):
    # Arrange: a live worker hosting both venues with fresh data, whose journal gave up on one venue event
    status = {**node_status(), "journal": {"failed": 1, "last_error": "OperationalError: connection lost"}}
    record_trading_node_heartbeat(hostname="worker-1", status=status)
    # Act
    by_name = items_by_component(status_report())
    # Assert: the trading node is red, saying what was lost and what to do; the venue is still connected
    node = by_name["trading node"]
    assert node.level == RED and "1 venue event not written by the journal" in node.detail
    assert "restart the trading worker" in node.detail
    assert by_name["BINANCE-SPOT"].level == GREEN


def test_status_report_without_stuck_orders_is_green(venues):
    item = items_by_component(status_report())["stuck orders"]

    assert item.level == GREEN and item.detail.startswith("no order stuck for more than")


def test_check_storage_not_configured_is_amber_configured_is_green(settings, tmp_path):
    assert health.check_storage().status == health.UNKNOWN

    settings.STORAGES = {**settings.STORAGES, "exports": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}}}

    check = health.check_storage()
    assert (check.status, check.detail) == (health.OK, "FileSystemStorage answered")


def test_check_redis_unreachable_is_down(settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"

    check = health.check_redis()

    assert check.status == DOWN and "ConnectionError" in check.error


def test_check_celery_workers_eager_is_in_process(eager):
    eager(True)

    check = health.check_celery_workers()

    assert (check.status, check.detail.startswith("in-process (eager)")) == (health.OK, True)


@pytest.mark.redis
def test_check_celery_workers_no_worker_answers_is_down(eager):
    # This run's broker is its own Redis database: no worker consumes it.
    eager(False)

    check = health.check_celery_workers(timeout=0.5)

    assert check.status == DOWN and "no worker answered" in check.detail


def test_status_page_requires_no_login_but_detail_does(client):
    user = UserFactory(username="plain")

    assert "celery workers" not in client.get("/status").content.decode()
    assert "celery workers" in logged_in(user).get("/status").content.decode()


# --- several trading workers --------------------------------------------------------------------------

def test_venue_status_items_two_workers_each_hosting_a_venue_keep_their_own_detail(venues):
    # Arrange: trading-1 hosts spot, trading-2 futures, each with its own fresh market data
    now = datetime.now(timezone.utc)
    fresh = (now - timedelta(seconds=1)).isoformat()
    record_trading_node_heartbeat(hostname="trading-1@h1", status={
        "ready": True, "venues": {"BINANCE-SPOT": {"mode": "paper", "problems": []}}, "market_data": {SPOT: fresh}})
    record_trading_node_heartbeat(hostname="trading-2@h2", status={
        "ready": True, "venues": {"BINANCE-FUTURES": {"mode": "paper", "problems": []}}, "market_data": {FUT: fresh}})

    # Act
    items = {item.component: item for item in venue_status_items(now=now)}

    # Assert: neither worker's beat overwrote the other's venues
    assert items["BINANCE-SPOT"].level == GREEN and items["BINANCE-SPOT"].facts["connected"] is True
    assert items["BINANCE-FUTURES"].level == GREEN and items["BINANCE-FUTURES"].facts["connected"] is True


def test_status_report_lists_each_worker_and_a_stale_one_is_red_while_the_live_ones_venues_stay_connected(venues):
    # Arrange: trading-2 (futures) died 5 minutes ago; trading-1 (spot) runs
    now = datetime.now(timezone.utc)
    record_trading_node_heartbeat(hostname="trading-2@h2", ts=now - timedelta(minutes=5), status={
        "ready": True, "venues": {"BINANCE-FUTURES": {"mode": "paper", "problems": []}},
        "market_data": {FUT: (now - timedelta(minutes=5)).isoformat()}})
    record_trading_node_heartbeat(hostname="trading-1@h1", status=node_status(hosted=("BINANCE-SPOT",)))

    # Act
    report = status_report()

    # Assert
    by_name = {item.component: item for item in report.items}
    assert by_name["trading node"].level == RED and "trading-2@h2" in by_name["trading node"].detail
    assert by_name["trading node trading-1@h1"].level == GREEN
    assert by_name["trading node trading-2@h2"].level == RED
    assert by_name["BINANCE-SPOT"].level == GREEN
    assert by_name["BINANCE-FUTURES"].level == RED and "trading-2@h2" in by_name["BINANCE-FUTURES"].detail
