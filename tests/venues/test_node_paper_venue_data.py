"""venues.node: a paper venue taking its market data from the venue (``"paper": {"market_data": "venue"}``).

The venue is a Binance Spot emulator on loopback (:mod:`tests.venues.binance_emulator`: the real
REST and market-data WebSocket protocol, the recorded BTCUSDT quotes as ``bookTicker`` messages).
NautilusTrader's own ``BinanceSpotDataClient`` feeds the node; execution stays with our sandbox
(:mod:`venues.node.paper`). Without the venue (its port closed) the plan says so, builds no data
client, and pre-trade risk names that problem when it denies a MARKET order.

Node tests use real commits (``transaction=True``): the journal writer and the market-data
publisher work on their own threads and connections (as tests/venues/test_node_host.py).
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.helpers import SHARED_DATA, eventually, needs_market_data, running_node_host

pytest.importorskip("aiohttp", reason="the Binance emulator serves HTTP and WebSocket with aiohttp")

from orders.models import Fill  # noqa: E402
from tests.orders.factories import StrategyFactory  # noqa: E402
from tests.risk.conftest import FixedClock, only_check  # noqa: E402
from tests.risk.factories import order_intent  # noqa: E402
from tests.venues.binance_emulator import BinanceSpotEmulator  # noqa: E402
from tests.venues.factories import InstrumentFactory, VenueFactory  # noqa: E402
from tests.venues.test_node_host import KEY, _order, _status  # noqa: E402
from venues.marketdata import MemoryMarketDataStore, market_data  # noqa: E402
from venues.node.config import node_plan  # noqa: E402
from venues.node.host import TradingNodeHost  # noqa: E402
from venues.tasks import submit_order  # noqa: E402

BINANCE_PAYLOADS = SHARED_DATA / "venue_payloads" / "binance" / "spot" / "http_json"
needs_binance_payloads = pytest.mark.skipif(
    not BINANCE_PAYLOADS.is_dir(),
    reason=f"Binance spot payloads not found at {BINANCE_PAYLOADS} (CI provides ../shared/data)")

pytestmark = [needs_market_data, needs_binance_payloads, pytest.mark.django_db(transaction=True)]

KEY_ENV, SECRET_ENV = "ODUM_TEST_EMULATED_BINANCE_KEY", "ODUM_TEST_EMULATED_BINANCE_SECRET"
DATA_CLIENT = "BINANCE_SPOT"


@pytest.fixture
def credentials(monkeypatch):
    monkeypatch.setenv(KEY_ENV, "emulator-api-key")
    monkeypatch.setenv(SECRET_ENV, "emulator-api-secret")


@pytest.fixture
def emulator():
    emulator = BinanceSpotEmulator(SHARED_DATA, interval_secs=0.2).start()
    yield emulator
    assert emulator.stop()


@pytest.fixture
def closed_port():
    """The URL of an emulator that has stopped: nothing listens on its port any more."""
    emulator = BinanceSpotEmulator(SHARED_DATA).start()
    assert emulator.stop()
    return emulator.base_url_http, emulator.base_url_ws


def _listing(base_url_http: str, base_url_ws: str):
    # The listing fields of test_node_host's _listing (InstrumentFactory: the recorded Binance rules);
    # the venue is paper with its market data from the venue instead of a replay.
    venue = VenueFactory(code="BINANCE-SPOT", adapter="binance_spot", mode="paper", config={
        "paper": {"market_data": "venue"}, "api_key_env": KEY_ENV, "api_secret_env": SECRET_ENV,
        "base_url_http": base_url_http, "base_url_ws": base_url_ws})
    return InstrumentFactory(venue=venue, instrument_key=KEY)


@pytest.fixture
def node(transactional_db, credentials, emulator):
    _listing(emulator.base_url_http, emulator.base_url_ws)
    plan = node_plan()
    with running_node_host(plan, trader_id="TESTNODE-001", first_quote_of=KEY, message="first quote from the venue",
                           md_interval_secs=0.05, mark_interval_secs=0.05, journal_wait_secs=0.05) as host:
        yield host


def _sent_quote(emulator: BinanceSpotEmulator, snapshot):
    # The bookTicker message the snapshot was made from (None if the emulator never sent it).
    return next((q for q in emulator.sent if (q.bid, q.bid_size, q.ask, q.ask_size)
                 == (snapshot.bid, snapshot.bid_size, snapshot.ask, snapshot.ask_size)), None)


# --- plan ------------------------------------------------------------------------------------------
def test_node_plan_paper_venue_market_data_from_the_venue_builds_binance_data_client_and_keeps_the_sandbox(
        transactional_db, credentials, emulator):
    from nautilus_trader.adapters.binance import BinanceAccountType, BinanceLiveDataClientFactory
    from nautilus_trader.adapters.binance.config import BinanceDataClientConfig

    # Arrange
    _listing(emulator.base_url_http, emulator.base_url_ws)

    # Act
    plan = node_plan()

    # Assert: the venue's own data client, the sandbox executes, the venue was probed first.
    (venue,) = plan.venues
    assert (venue.code, venue.mode, venue.problems) == ("BINANCE-SPOT", "paper", ())
    (lp,) = plan.listings
    assert (lp.instrument_key, lp.nautilus_instrument_id, lp.data_client_id, lp.feeds, lp.exec_client_id) == (
        KEY, "BTCUSDT.BINANCE", DATA_CLIENT, ("quotes",), "BINANCE")
    assert set(plan.data_clients) == {DATA_CLIENT}
    data = plan.data_clients[DATA_CLIENT]
    assert isinstance(data, BinanceDataClientConfig)
    assert plan.data_factories[DATA_CLIENT] is BinanceLiveDataClientFactory
    assert (data.account_type, data.base_url_http, data.base_url_ws, data.testnet) == (
        BinanceAccountType.SPOT, emulator.base_url_http, emulator.base_url_ws, False)
    assert (data.api_key, data.api_secret) == ("emulator-api-key", "emulator-api-secret")
    assert {str(i) for i in data.instrument_provider.load_ids} == {"BTCUSDT.BINANCE"}
    assert set(plan.exec_clients) == {"SANDBOX_BINANCE"}
    assert emulator.requests == ["GET /api/v3/ping"]


def test_node_plan_paper_venue_market_data_from_the_venue_unreachable_reports_the_url_and_builds_no_data_client(
        transactional_db, credentials, closed_port):
    # Arrange: the venue's port is closed (no network to the venue)
    base_url_http, base_url_ws = closed_port
    _listing(base_url_http, base_url_ws)

    # Act
    plan = node_plan()

    # Assert
    (venue,) = plan.venues
    (problem,) = venue.problems
    assert problem.startswith("market data from the venue unavailable: ")
    assert f"{base_url_http}/api/v3/ping unreachable" in problem
    assert plan.data_clients == {} and plan.data_factories == {}
    (lp,) = plan.listings
    assert (lp.data_client_id, lp.feeds) == ("", ())
    assert set(plan.exec_clients) == {"SANDBOX_BINANCE"}  # execution is still planned: the sandbox


@pytest.fixture
def heartbeat():
    """Record a trading-node heartbeat for the test; removed afterwards (the cache outlives tests)."""
    from odum_live.health import record_trading_node_heartbeat
    from tests.helpers import forget_trading_node_heartbeats

    yield record_trading_node_heartbeat
    forget_trading_node_heartbeats()


def test_risk_market_order_on_a_paper_venue_without_its_market_data_is_denied_naming_the_venue_problem(
        transactional_db, credentials, closed_port, heartbeat):
    from django.db import transaction

    from risk.engine import PreTradeRiskEngine

    # Arrange: the node planned without the venue and said so in its heartbeat (the host's own status).
    listing = _listing(*closed_port)
    StrategyFactory(id="demo")
    plan = node_plan()
    (problem,) = plan.venues[0].problems
    host = TradingNodeHost(plan=plan, trader_id="TESTNODE-001", heartbeat_secs=0)  # not started: its status only
    heartbeat(hostname=host.hostname, status=host.status())
    engine = PreTradeRiskEngine(market_data_store=MemoryMarketDataStore(), clock=FixedClock())

    # Act
    with transaction.atomic():
        result = engine.evaluate(intent=order_intent(instrument=KEY, order_type="MARKET", price=None),
                                 listing=listing, venue=listing.venue)

    # Assert: the denial gives the cause (the venue unreachable, with its URL), not only the symptom.
    check = only_check(result, "reference_price")
    assert not result.passed and not check.passed
    assert check.detail == f"missing: no market data for {KEY} (venue BINANCE-SPOT: {problem})"
    assert f"{closed_port[0]}/api/v3/ping unreachable" in check.detail


# --- node ------------------------------------------------------------------------------------------
def test_node_paper_venue_market_data_from_the_venue_becomes_ready_with_the_venue_data_client_connected(node):
    status = node.status()

    assert status["ready"] is True
    assert status["clients"].get(DATA_CLIENT) is True, status["clients"]
    assert all(status["clients"].values()), status["clients"]
    assert status["venues"]["BINANCE-SPOT"] == {"mode": "paper", "problems": [], "notes": []}


def test_node_paper_venue_market_data_from_the_venue_publishes_the_venue_quotes_to_the_market_data_store(
        node, emulator):
    # Act: the quotes the emulator pushes go through NautilusTrader's Binance data client to our store.
    snapshot = eventually(lambda: market_data().get(KEY), message="snapshot in the market-data store")

    # Assert: bid, ask and their sizes are those of one bookTicker message the emulator sent.
    sent = _sent_quote(emulator, snapshot)
    assert sent is not None, (snapshot, emulator.sent[-3:])
    assert sent.stream == "btcusdt@bookTicker"
    assert snapshot.bid < snapshot.ask


def _node_instrument(host: TradingNodeHost, instrument_id: str):
    # The instrument the node's cache holds (read on the node's loop thread).
    from nautilus_trader.model.identifiers import InstrumentId

    return host.call(lambda: host.node.kernel.cache.instrument(InstrumentId.from_str(instrument_id)))


def test_node_paper_venue_market_data_from_the_venue_market_buy_fills_at_an_ask_the_venue_quoted(node, emulator):
    # Arrange
    order = _order(order_type="MARKET", price=None, side="BUY", quantity=Decimal("0.05"))
    # The venue's data client loads its own instrument (Binance sends 8-decimal filters: precision 8)
    # into the cache the sandbox executes from. If it differs from the one the plan put there for the
    # sandbox, the sandbox's first fill raises "Invalid price precision for fill" and NautilusTrader's
    # ExecEngine ends the whole process ("System will terminate immediately"): fail here instead.
    planned = next((i for i in node.plan.instruments if str(i.id) == "BTCUSDT.BINANCE"), None)
    cached = _node_instrument(node, "BTCUSDT.BINANCE")
    if planned is not None:
        assert (cached.price_precision, cached.size_precision) == (planned.price_precision, planned.size_precision), (
            f"the node's cache holds the venue's BTCUSDT.BINANCE (price / size precision {cached.price_precision} / "
            f"{cached.size_precision}), the plan gave the sandbox {planned.price_precision} / "
            f"{planned.size_precision}: a sandbox fill would exit the process")

    # Act: through the venue task, as any order (execution by the sandbox, venues/node/paper.py)
    submit_order.apply(args=[str(order.pk)])

    # Assert
    eventually(lambda: _status(order, "FILLED", "REJECTED"), timeout=15, message="order filled")
    order.refresh_from_db()
    assert order.status == "FILLED", order.rejection_reason
    fills = list(Fill.objects.filter(order=order))
    assert fills and sum(f.quantity for f in fills) == Decimal("0.05") == order.filled_quantity
    quoted_asks = {q.ask for q in emulator.sent}
    assert all(f.price in quoted_asks for f in fills), ([f.price for f in fills], sorted(quoted_asks)[:5])
    assert all(f.fee_currency == "USDT" for f in fills)


def test_node_paper_venue_market_data_from_the_venue_makes_only_calls_the_emulator_serves(node, emulator):
    # Arrange: quotes have flowed, so the client has connected and subscribed.
    eventually(lambda: len(emulator.sent) >= 3, message="three quotes sent")

    # Assert: the data client's connect (fees, instruments) and its quote subscription; nothing else.
    assert emulator.unexpected == []
    requests = emulator.requests
    assert {"GET /sapi/v1/asset/tradeFee", "GET /api/v3/exchangeInfo", "WS stream btcusdt@bookTicker"} <= set(requests)
    assert requests[0] == "GET /api/v3/ping"  # the plan's probe, before the node was built
