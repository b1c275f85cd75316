"""venues.node.config: live / testnet client configs (Binance, Bybit, OKX) and the node's risk engine rates.

Config building only: nothing connects to a venue (no internet here). One test builds a real
TradingNode from the configs to show the factories accept them and register the clients.
"""

from __future__ import annotations

import pytest
from nautilus_trader.adapters.binance import BinanceAccountType, BinanceDataClientConfig, BinanceExecClientConfig
from nautilus_trader.adapters.bybit import (
    BybitDataClientConfig,
    BybitExecClientConfig,
    BybitLiveDataClientFactory,
    BybitLiveExecClientFactory,
    BybitProductType,
)
from nautilus_trader.adapters.okx.config import OKXDataClientConfig, OKXExecClientConfig
from nautilus_trader.adapters.okx.factories import OKXLiveDataClientFactory, OKXLiveExecClientFactory
from nautilus_trader.core.nautilus_pyo3 import OKXContractType, OKXInstrumentType

from odum_live.instruments import parse_instrument_key
from tests.venues.factories import InstrumentFactory, VenueFactory
from venues.node.config import node_plan, node_risk_engine_config, trading_node_config

pytestmark = pytest.mark.django_db

BYBIT_CREDENTIALS = {"api_key_env": "H25_BYBIT_KEY", "api_secret_env": "H25_BYBIT_SECRET"}
# NautilusTrader's OKX WebSockets read these fixed names (see the mismatch test below).
OKX_CREDENTIALS = {"api_key_env": "OKX_API_KEY", "api_secret_env": "OKX_API_SECRET",
                   "api_passphrase_env": "OKX_API_PASSPHRASE"}


@pytest.fixture
def credentials(monkeypatch):
    values = {"H25_BYBIT_KEY": "bk", "H25_BYBIT_SECRET": "bs", "OKX_API_KEY": "ok", "OKX_API_SECRET": "os",
              "OKX_API_PASSPHRASE": "op", "H25_BINANCE_KEY": "nk", "H25_BINANCE_SECRET": "ns"}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


def _venue(code: str, adapter: str, mode: str, **config):
    return VenueFactory(code=code, adapter=adapter, mode=mode, config=config)


def _listing(venue, key: str):
    parsed = parse_instrument_key(key)
    return InstrumentFactory(venue=venue, instrument_key=key, nautilus_instrument_id=parsed.nautilus_instrument_id(),
                             venue_symbol=parsed.venue_symbol(), base_currency=parsed.base,
                             quote_currency=parsed.quote, settlement_currency=parsed.quote)


def _bybit_linear(mode: str = "testnet", **config):
    venue = _venue("BYBIT", "bybit", mode, **BYBIT_CREDENTIALS, **config)
    _listing(venue, "BYBIT:PERPETUAL:BTC-USDT@LIN")
    return venue


def test_node_plan_bybit_testnet_builds_adapter_configs_with_product_types_and_base_urls(credentials):
    _bybit_linear(base_url_http="http://127.0.0.1:18081", base_url_ws_private="ws://127.0.0.1:18082/private",
                  base_url_ws_trade="ws://127.0.0.1:18082/trade")

    plan = node_plan()

    assert [(v.code, v.mode, v.problems) for v in plan.venues] == [("BYBIT", "testnet", ())]
    data, exec_config = plan.data_clients["BYBIT"], plan.exec_clients["BYBIT"]
    assert isinstance(data, BybitDataClientConfig) and isinstance(exec_config, BybitExecClientConfig)
    assert data.product_types == exec_config.product_types == [BybitProductType.LINEAR]
    assert data.testnet is exec_config.testnet is True
    assert (data.api_key, data.api_secret, exec_config.api_key, exec_config.api_secret) == ("bk", "bs", "bk", "bs")
    assert data.base_url_http == exec_config.base_url_http == "http://127.0.0.1:18081"
    assert exec_config.base_url_ws_private == "ws://127.0.0.1:18082/private"
    assert exec_config.base_url_ws_trade == "ws://127.0.0.1:18082/trade"
    assert data.instrument_provider.load_ids == frozenset({"BTCUSDT-LINEAR.BYBIT"})
    assert (plan.data_factories["BYBIT"], plan.exec_factories["BYBIT"]) == (
        BybitLiveDataClientFactory, BybitLiveExecClientFactory)
    (listing,) = plan.listings
    assert (listing.nautilus_instrument_id, listing.exec_client_id, listing.data_client_id, listing.feeds) == (
        "BTCUSDT-LINEAR.BYBIT", "BYBIT", "BYBIT", ("quotes",))


def test_node_plan_bybit_live_spot_is_not_testnet_and_uses_the_venue_urls(credentials):
    venue = _venue("BYBIT", "bybit", "live", **BYBIT_CREDENTIALS)
    _listing(venue, "BYBIT:SPOT_PAIR:BTC-USDT")

    plan = node_plan()

    data, exec_config = plan.data_clients["BYBIT"], plan.exec_clients["BYBIT"]
    assert exec_config.product_types == [BybitProductType.SPOT] and exec_config.testnet is False
    assert data.base_url_http is None and exec_config.base_url_ws_private is None
    assert plan.listings[0].nautilus_instrument_id == "BTCUSDT-SPOT.BYBIT"


def test_node_plan_bybit_mixing_spot_and_derivatives_is_a_problem(credentials):
    venue = _bybit_linear()
    _listing(venue, "BYBIT:SPOT_PAIR:BTC-USDT")

    plan = node_plan()

    (problem,) = plan.venues[0].problems
    assert "cannot mix SPOT with LINEAR" in problem
    assert plan.listings == [] and plan.data_clients == {} and plan.exec_clients == {}


def test_node_plan_bybit_public_websocket_override_is_refused_not_ignored(credentials):
    _bybit_linear(base_url_ws="ws://127.0.0.1:18083")

    plan = node_plan()

    (problem,) = plan.venues[0].problems
    assert "base_url_ws is not honoured" in problem and "base_url_ws_private" in problem
    assert plan.data_clients == {}


def test_node_plan_bybit_without_credentials_reports_the_variable_names(monkeypatch):
    monkeypatch.delenv("H25_BYBIT_KEY", raising=False)
    monkeypatch.setenv("H25_BYBIT_SECRET", "bs")
    _bybit_linear()

    plan = node_plan()

    (problem,) = plan.venues[0].problems
    assert problem.startswith("credentials missing") and "api_key_env (H25_BYBIT_KEY)" in problem
    assert "H25_BYBIT_SECRET" not in problem  # only what is missing is named
    assert plan.listings == [] and plan.exec_clients == {}  # its orders are refused by the node with the reason


def test_node_plan_okx_testnet_is_demo_with_instrument_and_contract_types(credentials):
    venue = _venue("OKX", "okx", "testnet", **OKX_CREDENTIALS, base_url_http="http://127.0.0.1:18091",
                   base_url_ws="ws://127.0.0.1:18092")
    _listing(venue, "OKX:PERPETUAL:BTC-USDT@LIN")
    _listing(venue, "OKX:SPOT_PAIR:BTC-USDT")

    plan = node_plan()

    assert plan.venues[0].problems == ()
    data, exec_config = plan.data_clients["OKX"], plan.exec_clients["OKX"]
    assert isinstance(data, OKXDataClientConfig) and isinstance(exec_config, OKXExecClientConfig)
    assert set(data.instrument_types) == set(exec_config.instrument_types) == {
        OKXInstrumentType.SWAP, OKXInstrumentType.SPOT}
    assert data.contract_types == (OKXContractType.LINEAR,) and data.instrument_families == ("BTC-USDT",)
    assert data.is_demo is exec_config.is_demo is True
    assert (exec_config.api_key, exec_config.api_secret, exec_config.api_passphrase) == ("ok", "os", "op")
    assert data.base_url_http == exec_config.base_url_http == "http://127.0.0.1:18091"
    assert data.base_url_ws == exec_config.base_url_ws == "ws://127.0.0.1:18092"
    assert data.instrument_provider.load_ids == frozenset({"BTC-USDT-SWAP.OKX", "BTC-USDT.OKX"})
    assert (plan.data_factories["OKX"], plan.exec_factories["OKX"]) == (
        OKXLiveDataClientFactory, OKXLiveExecClientFactory)


def test_node_plan_okx_live_without_passphrase_reports_it(credentials, monkeypatch):
    monkeypatch.delenv("OKX_API_PASSPHRASE")
    venue = _venue("OKX", "okx", "live", **OKX_CREDENTIALS)
    _listing(venue, "OKX:PERPETUAL:BTC-USD@INV")

    plan = node_plan()

    (problem,) = plan.venues[0].problems
    assert "api_passphrase_env (OKX_API_PASSPHRASE)" in problem and plan.exec_clients == {}


def test_node_plan_okx_credentials_under_other_names_than_its_websockets_read_are_a_problem(credentials, monkeypatch):
    monkeypatch.setenv("H25_OKX_KEY", "another-key")
    venue = _venue("OKX", "okx", "testnet", **{**OKX_CREDENTIALS, "api_key_env": "H25_OKX_KEY"})
    _listing(venue, "OKX:PERPETUAL:BTC-USDT@LIN")

    plan = node_plan()

    (problem,) = plan.venues[0].problems
    assert "fixed environment variables" in problem and "OKX_API_KEY (config api_key_env names H25_OKX_KEY)" in problem
    assert "OKX_API_SECRET" not in problem and plan.exec_clients == {}


def test_node_plan_binance_futures_testnet_keeps_account_type_and_base_urls(credentials):
    venue = _venue("BINANCE-FUTURES", "binance_futures", "testnet", api_key_env="H25_BINANCE_KEY",
                   api_secret_env="H25_BINANCE_SECRET", base_url_http="http://127.0.0.1:18071")
    _listing(venue, "BINANCE-FUTURES:PERPETUAL:BTC-USDT@LIN")

    plan = node_plan()

    data, exec_config = plan.data_clients["BINANCE_FUTURES"], plan.exec_clients["BINANCE_FUTURES"]
    assert isinstance(data, BinanceDataClientConfig) and isinstance(exec_config, BinanceExecClientConfig)
    assert exec_config.account_type == BinanceAccountType.USDT_FUTURES and exec_config.testnet is True
    assert exec_config.base_url_http == "http://127.0.0.1:18071" and exec_config.base_url_ws is None
    assert plan.listings[0].nautilus_instrument_id == "BTCUSDT-PERP.BINANCE"


def test_node_plan_live_adapter_without_a_nautilus_mode_is_a_problem(credentials):
    venue = _venue("KRAKEN", "kraken", "live", **BYBIT_CREDENTIALS)
    _listing(venue, "KRAKEN:SPOT_PAIR:BTC-USDT")

    plan = node_plan()

    assert "adapter 'kraken' has no live mode here" in plan.venues[0].problems[0]


def test_trading_node_config_carries_bybit_and_okx_clients_and_the_node_builds_them(credentials):
    from nautilus_trader.live.node import TradingNode

    from venues.node.host import _without_signal_handlers

    _bybit_linear()
    _listing(_venue("OKX", "okx", "testnet", **OKX_CREDENTIALS), "OKX:PERPETUAL:BTC-USDT@LIN")
    plan = node_plan()
    config = trading_node_config(plan, trader_id="TRADER-H25", log_level="ERROR")
    assert set(config.data_clients) == set(config.exec_clients) == {"BYBIT", "OKX"}

    import asyncio

    loop = asyncio.new_event_loop()
    with _without_signal_handlers():
        node = TradingNode(config=config, loop=loop)
    try:
        for name, factory in plan.data_factories.items():
            node.add_data_client_factory(name, factory)
        for name, factory in plan.exec_factories.items():
            node.add_exec_client_factory(name, factory)
        node.build()  # creates the clients; nothing connects before run()

        assert {c.value for c in node.kernel.data_engine.registered_clients} == {"BYBIT", "OKX"}
        assert {c.value for c in node.kernel.exec_engine.registered_clients} == {"BYBIT", "OKX"}
    finally:
        node.dispose()
        loop.close()


def test_node_risk_engine_config_reads_the_rates_from_settings(settings):
    settings.ODUM = {**settings.ODUM, "NODE_MAX_ORDER_SUBMIT_RATE": "250/00:00:01",
                     "NODE_MAX_ORDER_MODIFY_RATE": "40/00:00:02"}

    config = node_risk_engine_config()

    assert (config.max_order_submit_rate, config.max_order_modify_rate, config.bypass) == (
        "250/00:00:01", "40/00:00:02", False)
    assert trading_node_config(node_plan(), trader_id="TRADER-H25").risk_engine == config


def test_node_risk_engine_default_is_above_nautilus_default_of_100_per_second():
    config = node_risk_engine_config()

    limit = int(config.max_order_submit_rate.split("/")[0])
    assert config.max_order_submit_rate.endswith("/00:00:01") and limit > 100


@pytest.mark.parametrize("rate", ["100", "0/00:00:01", "10/00:00:00", "ten/00:00:01", "10/1s"])
def test_node_risk_engine_config_refuses_a_malformed_rate_naming_the_setting(rate):
    with pytest.raises(ValueError, match="NODE_MAX_ORDER_SUBMIT_RATE must look like"):
        node_risk_engine_config(max_order_submit_rate=rate)


# --- paper venues with market data from the venue ----------------------------------------------------

BINANCE_CREDENTIALS = {"api_key_env": "H25_BINANCE_KEY", "api_secret_env": "H25_BINANCE_SECRET"}


@pytest.fixture
def binance_ping():
    """A local HTTP server answering Binance's connectivity test (``GET /api/v3/ping`` → ``{}``); yields its base URL."""
    import http.server
    import threading

    seen: list[str] = []

    class Ping(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            seen.append(self.path)
            ok = self.path in ("/api/v3/ping", "/fapi/v1/ping")
            self.send_response(200 if ok else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b"{}" if ok else b'{"code":-1,"msg":"not emulated"}')

        def log_message(self, *args):  # quiet
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ping)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_node_plan_paper_venue_with_market_data_from_the_venue_builds_its_data_client_and_the_sandbox(
        credentials, binance_ping):
    # Arrange: paper BINANCE-SPOT whose market data comes from the venue (here a local server)
    base, seen = binance_ping
    venue = _venue("BINANCE-SPOT", "binance_spot", "paper", **BINANCE_CREDENTIALS, paper={"market_data": "venue"},
                   base_url_http=base, base_url_ws=base.replace("http", "ws"))
    _listing(venue, "BINANCE-SPOT:SPOT_PAIR:BTC-USDT")
    # Act
    plan = node_plan()
    # Assert: NautilusTrader's Binance data client (not testnet, the venue's URLs, our credentials), the
    # sandbox for execution, the listing subscribed through that client; the venue was probed first
    data = plan.data_clients["BINANCE_SPOT"]
    assert isinstance(data, BinanceDataClientConfig)
    assert (data.account_type, data.testnet, data.base_url_http) == (BinanceAccountType.SPOT, False, base)
    assert (data.api_key, data.api_secret) == ("nk", "ns")
    assert data.instrument_provider.load_ids == frozenset({"BTCUSDT.BINANCE"})
    assert set(plan.exec_clients) == {"SANDBOX_BINANCE"} and not any(k.startswith("REPLAY") for k in plan.data_clients)
    (listing,) = plan.listings
    assert (listing.data_client_id, listing.feeds, listing.exec_client_id) == ("BINANCE_SPOT", ("quotes",), "BINANCE")
    assert plan.venues[0].problems == () and seen == ["/api/v3/ping"]
    assert plan.instruments == []  # the data client loads the venue's own definition, which the sandbox uses


def test_node_plan_paper_venue_without_network_reports_it_and_builds_no_data_client(credentials):
    # Arrange: the venue's URL answers nothing, and no replay data is configured
    base = f"http://127.0.0.1:{_closed_port()}"
    venue = _venue("BINANCE-FUTURES", "binance_futures", "paper", **BINANCE_CREDENTIALS,
                   paper={"market_data": "venue"}, base_url_http=base)
    _listing(venue, "BINANCE-FUTURES:PERPETUAL:BTC-USDT@LIN")
    # Act
    plan = node_plan()
    # Assert: the problem names the probed URL; the listing is still traded (sandbox) without market data
    (problem,) = plan.venues[0].problems
    assert problem.startswith(f"market data from the venue unavailable: {base}/fapi/v1/ping unreachable (")
    assert "no replay data" in problem and plan.data_clients == {}
    assert [(lp.instrument_key, lp.data_client_id) for lp in plan.listings] == [
        ("BINANCE-FUTURES:PERPETUAL:BTC-USDT@LIN", "")]


def test_node_plan_paper_venue_market_data_from_the_venue_needs_credentials_and_a_binance_adapter(monkeypatch):
    # Arrange: Binance without its variables set; Bybit (not supported for paper venue data)
    monkeypatch.delenv("H25_BINANCE_KEY", raising=False)
    binance = _venue("BINANCE-SPOT", "binance_spot", "paper", **BINANCE_CREDENTIALS, paper={"market_data": "venue"})
    _listing(binance, "BINANCE-SPOT:SPOT_PAIR:BTC-USDT")
    bybit = _venue("BYBIT", "bybit", "paper", paper={"market_data": "venue"})
    _listing(bybit, "BYBIT:SPOT_PAIR:BTC-USDT")
    odd = _venue("OKX", "okx", "paper", paper={"market_data": "ticker-tape"})
    _listing(odd, "OKX:SPOT_PAIR:BTC-USDT")
    # Act
    problems = {v.code: v.problems for v in node_plan().venues}
    # Assert
    assert "needs API credentials even for public data" in problems["BINANCE-SPOT"][0]
    assert "api_key_env (H25_BINANCE_KEY)" in problems["BINANCE-SPOT"][0]
    assert "supported for the Binance adapters" in problems["BYBIT"][0]
    assert problems["OKX"][0] == "config['paper']['market_data'] is 'ticker-tape': 'replay' (the default) or 'venue'"


@pytest.mark.django_db(transaction=True)
def test_node_host_whose_venue_client_cannot_connect_is_never_ready_and_start_raises(credentials):
    # Arrange: a live Binance venue whose URLs answer nothing: its clients never connect, so
    # NautilusTrader never starts the trader and the bridge strategy never runs
    from venues.journal import JournalWriter
    from venues.node.host import NodeStartError, TradingNodeHost

    dead = f"127.0.0.1:{_closed_port()}"
    venue = _venue("BINANCE-SPOT", "binance_spot", "testnet", **BINANCE_CREDENTIALS,
                   base_url_http=f"http://{dead}", base_url_ws=f"ws://{dead}")
    _listing(venue, "BINANCE-SPOT:SPOT_PAIR:BTC-USDT")
    host = TradingNodeHost(plan=node_plan(), trader_id="TESTNODE-DEAD", journal=JournalWriter(), heartbeat_secs=0,
                           log_level="ERROR")
    # Act / Assert: start gives up with the reason, and the host takes no command
    with pytest.raises(NodeStartError, match="bridge strategy not running after 3 s"):
        host.start(timeout=3)
    assert host.is_ready() is False and host.stopped
    from venues.commands import OrderStatusQuery, VenueCommandError

    with pytest.raises(VenueCommandError, match="not running|not ready"):
        host.query(OrderStatusQuery(client_order_id="OL0"))
