"""``manage.py status``: each component with green / amber / red; exit status 1 when anything is red."""

import io
from datetime import datetime, timedelta, timezone

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from odum_live.health import record_trading_node_heartbeat
from tests import status_fixtures
from tests.venues.factories import InstrumentFactory, VenueFactory

pytestmark = pytest.mark.django_db
clean_cache, eager = status_fixtures.clean_cache, status_fixtures.eager
SPOT = "BINANCE-SPOT:SPOT_PAIR:BTC-USDT"


@pytest.fixture
def eager_celery(eager):
    # In-process tasks (the embedded default), so no worker check depends on the run's broker.
    eager(True)


def status() -> tuple[str, CommandError | None]:
    out = io.StringIO()
    try:
        call_command("status", stdout=out)
    except CommandError as exc:
        return out.getvalue(), exc
    return out.getvalue(), None


def test_status_red_trading_node_prints_every_component_and_fails(eager_celery):
    InstrumentFactory()

    text, error = status()

    assert error is not None and error.returncode == 1 and "trading node" in str(error)
    lines = text.splitlines()
    for component in ("web", "database", "redis", "broker", "channel layer", "celery workers", "trading node",
                      "BINANCE-SPOT", "reconciliation", "storage"):
        assert any(f" {component} " in f"{line} " for line in lines), component
    assert any(line.startswith("RED    service         trading node") for line in lines)
    assert "mode paper, connected no, market data age —" in text
    assert lines[-1] == "overall: red"


def test_status_nothing_red_exits_zero(eager_celery):
    # Arrange: a live heartbeat hosting the venue with fresh market data
    InstrumentFactory()
    now = datetime.now(timezone.utc)
    record_trading_node_heartbeat(hostname="worker-1", status={
        "ready": True, "venues": {"BINANCE-SPOT": {"mode": "paper", "problems": []}},
        "market_data": {SPOT: (now - timedelta(seconds=1)).isoformat()}})

    # Act
    text, error = status()

    # Assert: storage is not configured (amber), everything else green
    assert error is None, text
    assert "GREEN  venues          BINANCE-SPOT" in text and "connected yes" in text
    assert text.splitlines()[-1] == "overall: amber"


def test_status_enabled_venue_without_adapter_is_red_naming_the_adapter_and_fails(eager_celery):
    # Arrange: the node hosts BINANCE-SPOT with fresh data; DERIBIT has no adapter in this release
    InstrumentFactory()
    VenueFactory(code="DERIBIT", kind="EXTERNAL_SDK", adapter="deribit")
    now = datetime.now(timezone.utc)
    record_trading_node_heartbeat(hostname="worker-1", status={
        "ready": True, "venues": {"BINANCE-SPOT": {"mode": "paper", "problems": []}},
        "market_data": {SPOT: (now - timedelta(seconds=1)).isoformat()}})

    # Act
    text, error = status()

    # Assert
    assert error is not None and "red: DERIBIT" in str(error)
    (line,) = [line for line in text.splitlines() if line.startswith("RED    venues          DERIBIT ")]
    assert line.endswith("mode paper, connected no, market data age —; cannot trade: adapter 'deribit' "
                         "(EXTERNAL_SDK) is not available in this release; its orders are denied")
