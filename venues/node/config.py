"""The TradingNode's configuration, built from the enabled NAUTILUS ``Venue`` rows and settings.

``EXTERNAL_SDK`` venues are never in the plan: no external SDK adapter ships in this release, and
:mod:`venues.availability` (the rule of which venues can trade) makes the router refuse them with
that reason, and health and ``/status`` report them.

:func:`node_plan` reads the database once (on the caller's thread, before the node starts) and
returns a :class:`NodePlan`: plain data plus NautilusTrader client configs, so the node thread never
touches the database. :func:`trading_node_config` turns a plan into a ``TradingNodeConfig``.

Per venue mode (``Venue.mode``):

- ``paper`` — market data from the replay client (:mod:`venues.replay.client`) for each listing
  named in ``config["replay"]["instruments"]``; execution by :class:`venues.node.paper.PaperExecutionClient`,
  one per NautilusTrader venue (``BINANCE-SPOT`` and ``BINANCE-FUTURES`` share the ``BINANCE``
  sandbox, as their instrument ids share the venue). Instruments come from the ``Instrument``
  table and are added to the node's cache before start. Venue config::

      "replay": {"data_dir": "../shared/data", "speed": 1.0, "loop": true,
                 "instruments": {"BINANCE-SPOT:SPOT_PAIR:BTC-USDT": [
                     {"kind": "quotes", "format": "binance_quotes_parquet", "path": "market/…parquet"},
                     {"kind": "trades", "format": "binance_trades_parquet", "path": "market/…parquet"}]}},
      "paper": {"starting_balances": ["1000000 USDT", "100 BTC"],
                "touch_sizes": {"BTCUSDT.BINANCE": "0.5"}}

  ``data_dir`` is relative to the project root. A listing without a readable replay source, or a
  ``replay`` block in an older shape (per-file keys such as ``bars_1m``), is reported in
  :attr:`VenuePlan.problems` (health shows it; risk denies its orders for missing market data) —
  never silently. A bars-only listing (the paper BINANCE-FUTURES perpetual replays
  ``btc_perp_1m_bars_2022-01.csv``) subscribes quotes as well: the replay client derives one quote
  per bar (bid = ask = close) for the OMS and the paper venue (:mod:`venues.node.paper` runs the bars
  through bar execution). A source that rounds recorded prices onto the tick (``"price_rounding":
  "half_even"``) is stated in :attr:`VenuePlan.notes`.

  ``"paper": {"market_data": "venue"}`` (Binance adapters) takes the market data from the venue's own
  public data client instead (NautilusTrader's ``BinanceDataClientConfig``: ``api_key_env`` /
  ``api_secret_env`` named as for live, since its client signs its instrument calls; ``base_url_http`` /
  ``base_url_ws`` honoured; ``"paper": {"testnet": true}`` for the testnet's data), execution still by
  the sandbox. The venue is probed first (``GET /api/v3/ping`` or ``/fapi/v1/ping``, 2 s): with
  neither replay data nor network the venue's problem says so, its listings get no data client and
  risk denies their orders for missing market data, while the other venues start.
- ``live`` / ``testnet`` — NautilusTrader's own adapters, credentials read from the environment
  variables the config names, instruments loaded from the venue for our listings only
  (``InstrumentProviderConfig(load_ids=...)``):

  ========================  ==========================================  ===============================
  adapter                   client configs (testnet flag)               base-URL overrides honoured
  ========================  ==========================================  ===============================
  ``binance_spot`` /        ``BinanceData/ExecClientConfig``,           ``base_url_http``, ``base_url_ws``
  ``binance_futures``       account SPOT / USDT_FUTURES (``testnet``)
  ``bybit``                 ``BybitData/ExecClientConfig``, product     ``base_url_http``; exec also
                            types from the ids' suffix (``testnet``)    ``base_url_ws_private``,
                                                                        ``base_url_ws_trade``
  ``okx``                   ``OKXData/ExecClientConfig``, instrument    ``base_url_http``, ``base_url_ws``
                            / contract types and families from the
                            listings (``is_demo``)
  ========================  ==========================================  ===============================

  Credentials: ``api_key_env``, ``api_secret_env`` (+ ``api_passphrase_env`` for OKX). Problems,
  each stopping that venue only: a variable unset, another ``base_url_*`` key (the client would
  silently reach the real venue), Bybit spot mixed with derivatives (one execution client runs a
  CASH *or* a MARGIN account), OKX credentials under other names than ``OKX_API_KEY`` /
  ``OKX_API_SECRET`` / ``OKX_API_PASSPHRASE`` (its WebSockets read those, whatever the config
  says; its business WebSocket URL follows the process variable ``OKX_BASE_URL_WS_BUSINESS``).

Client keys are ``<FACTORY>`` names without ``-`` (the node builder takes the factory name as the
part of the key before the first ``-``): ``REPLAY_<n>``, ``SANDBOX_<VENUE>``, and for live / testnet
venues the venue code (``BINANCE_SPOT``, ``BINANCE_FUTURES``, ``BYBIT``, ``OKX``); the bridge routes every subscription and order with the explicit client id,
because two clients of one NautilusTrader venue would otherwise overwrite each other's routing.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.conf import settings
from nautilus_trader.config import (
    CacheConfig,
    DatabaseConfig,
    InstrumentProviderConfig,
    LiveExecEngineConfig,
    LiveRiskEngineConfig,
    LoggingConfig,
    TradingNodeConfig,
)
from nautilus_trader.model.identifiers import TraderId

from odum_live.instruments import parse_instrument_key
from venues.algorithms import exec_algorithm_configs
from venues.node.instruments import UnsupportedListing, decimals, nautilus_instrument
from venues.node.paper import PaperExecutionClientConfig, SandboxLiveExecClientFactory
from venues.replay.client import (
    ReplayDataClientConfig,
    ReplayDataClientFactory,
    VENUE_REPLAY_KEYS,
    ReplayInstrumentConfig,
    resolve_sources,
)
from venues.replay.errors import ReplayDataError

DEFAULT_STARTING_BALANCES = ("1000000 USDT", "100 BTC")
_LIVE_ADAPTERS = {"binance_spot": "SPOT", "binance_futures": "USDT_FUTURES"}


@dataclass(frozen=True, slots=True)
class ListingPlan:
    """One listing the node trades.

    Attributes
    ----------
    instrument_key : str
        Canonical key.
    venue : str
        Our venue code.
    nautilus_instrument_id : str
        NautilusTrader instrument id.
    exec_client_id : str
        Client id orders and cancels are sent with.
    data_client_id : str
        Client id market-data subscriptions go to ("" when the listing has no data source).
    feeds : tuple[str, ...]
        Market data kinds to subscribe (``quotes``, ``trades``, ``bars``, ``book``).
    """

    instrument_key: str
    venue: str
    nautilus_instrument_id: str
    exec_client_id: str
    data_client_id: str
    feeds: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class VenuePlan:
    """One venue: its mode, anything that keeps it from working (shown in health), and notes.

    ``notes`` are facts an operator should know that stop nothing, e.g. that a replay source
    rounds recorded prices onto the listing's tick.
    """

    code: str
    mode: str
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass
class NodePlan:
    """Everything the host needs to build the node, read from the database beforehand."""

    venues: list[VenuePlan] = field(default_factory=list)
    listings: list[ListingPlan] = field(default_factory=list)
    instruments: list[Any] = field(default_factory=list)  # NautilusTrader instruments for the cache
    data_clients: dict[str, Any] = field(default_factory=dict)
    exec_clients: dict[str, Any] = field(default_factory=dict)
    data_factories: dict[str, type] = field(default_factory=dict)
    exec_factories: dict[str, type] = field(default_factory=dict)

    def listing_for(self, nautilus_instrument_id: str) -> ListingPlan | None:
        """Return the listing of a NautilusTrader instrument id, or None."""
        for listing in self.listings:
            if listing.nautilus_instrument_id == nautilus_instrument_id:
                return listing
        return None


def _key_part(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").upper()


#: A paper venue's ``config["replay"]["data_dir"]`` when it names none (relative to the project root).
DEFAULT_REPLAY_DATA_DIR = "../shared/data"


def replay_data_dir(replay: dict) -> Path:
    """Return the directory a paper venue's replay block reads its files from.

    ``replay["data_dir"]`` (default :data:`DEFAULT_REPLAY_DATA_DIR`), absolute or relative to the
    project root (``settings.BASE_DIR``).
    """
    candidate = Path(replay.get("data_dir", DEFAULT_REPLAY_DATA_DIR))
    return candidate if candidate.is_absolute() else Path(settings.BASE_DIR) / candidate


def _replay_instrument(listing, venue) -> ReplayInstrumentConfig:
    iid = listing.nautilus_instrument_id
    symbol = iid.rsplit(".", 1)[0]
    bps = Decimal(10_000)
    return ReplayInstrumentConfig(
        symbol=symbol, base_currency=listing.base_currency, quote_currency=listing.quote_currency,
        price_precision=decimals(listing.tick_size), size_precision=decimals(listing.lot_size),
        price_increment=format(listing.tick_size.normalize(), "f"), size_increment=format(listing.lot_size.normalize(), "f"),
        maker_fee=str(venue.maker_fee_bps / bps), taker_fee=str(venue.taker_fee_bps / bps),
    )


def _bars_only(sources) -> bool:
    # The replay client's rule (ReplayDataClient.quotes_from_bars): bars are the top of book too.
    kinds = {source["kind"] for source in sources}
    return "bars" in kinds and not kinds & {"quotes", "book"}


def _feeds(sources) -> tuple[str, ...]:
    kinds = {source["kind"] for source in sources} | ({"quotes"} if _bars_only(sources) else set())
    return tuple(sorted(kinds))


def _paper_venue(plan: NodePlan, venue, listings, ts_ns: int, paper_venues: dict[str, dict]) -> None:
    problems: list[str] = []
    notes: list[str] = []
    replay = venue.config.get("replay") or {}
    feeds_by_key = replay.get("instruments") or {}
    paper = venue.config.get("paper") or {}
    market_data = paper.get("market_data", "replay")
    venue_data_key = ""
    if market_data == "venue":
        venue_data_key = _paper_venue_data(plan, venue, listings, paper, problems)
    elif market_data != "replay":
        problems.append(f"config['paper']['market_data'] is {market_data!r}: 'replay' (the default) or 'venue'")
    old_keys = sorted(set(replay) - VENUE_REPLAY_KEYS) if market_data == "replay" else []
    if old_keys:
        problems.append(f"config['replay'] has key(s) {old_keys} of an older shape, which the replay client does "
                        f"not read: name each file as a source under config['replay']['instruments'] "
                        f"(manage.py seed_demo migrates the demo venues)")
    for listing in listings:
        try:
            instrument = nautilus_instrument(listing, maker_fee_bps=venue.maker_fee_bps,
                                             taker_fee_bps=venue.taker_fee_bps, ts_ns=ts_ns)
        except UnsupportedListing as exc:
            problems.append(str(exc))
            continue
        nautilus_venue = instrument.id.venue.value
        exec_key = f"SANDBOX_{_key_part(nautilus_venue)}"
        shared = paper_venues.setdefault(nautilus_venue, {"balances": [], "touch_sizes": {}, "key": exec_key,
                                                          "bar_instruments": []})
        for balance in paper.get("starting_balances") or DEFAULT_STARTING_BALANCES:
            if balance not in shared["balances"]:
                shared["balances"].append(balance)
        shared["touch_sizes"].update(paper.get("touch_sizes") or {})
        if market_data == "replay":
            plan.instruments.append(instrument)
        # else the venue's data client loads the venue's own definition (load_ids), which the sandbox
        # then fills against: ours next to it would differ in precision (Binance sends 8 decimals for
        # a 0.01 tick) and the sandbox would refuse its own fill, which ends the process.

        sources = feeds_by_key.get(listing.instrument_key) or []
        data_key = ""
        feeds: tuple[str, ...] = ()
        if market_data != "replay":
            data_key, feeds = venue_data_key, ("quotes",) if venue_data_key else ()
        elif not sources:
            problems.append(f"{listing.instrument_key}: no replay source configured (config['replay']['instruments'])")
        else:
            data_key = f"REPLAY_{_key_part(listing.instrument_key)}"
            data_config = ReplayDataClientConfig(
                venue=nautilus_venue, instrument=_replay_instrument(listing, venue),
                sources=tuple(sources), data_dir=str(replay_data_dir(replay)),
                speed=float(replay.get("speed", 1.0)), loop=bool(replay.get("loop", True)),
                loop_gap_secs=float(replay.get("loop_gap_secs", 1.0)),
                align_sources=bool(replay.get("align_sources", False)),
            )
            try:
                resolve_sources(data_config)  # files present and readable: fail here, not on the node
            except (ReplayDataError, ValueError, OSError) as exc:
                problems.append(f"{listing.instrument_key}: replay data unavailable: {exc}")
                data_key = ""
            else:
                plan.data_clients[data_key] = data_config
                plan.data_factories[data_key] = ReplayDataClientFactory
                feeds = _feeds(sources)
                if _bars_only(sources):
                    shared["bar_instruments"].append(listing.nautilus_instrument_id)
                if any(source.get("price_rounding") == "half_even" for source in sources):
                    notes.append(f"{listing.instrument_key}: recorded prices off the {listing.tick_size.normalize()} "
                                 f"tick are rounded half-even onto it (replay source price_rounding)")
        plan.listings.append(ListingPlan(
            instrument_key=listing.instrument_key, venue=venue.code,
            nautilus_instrument_id=listing.nautilus_instrument_id, exec_client_id=nautilus_venue,
            data_client_id=data_key, feeds=feeds,
        ))
        plan.exec_factories[exec_key] = SandboxLiveExecClientFactory
    plan.venues.append(VenuePlan(code=venue.code, mode=venue.mode, problems=tuple(problems), notes=tuple(notes)))


#: The REST path each Binance account type answers ``{}`` on (GET, no key needed): the probe of a
#: paper venue's market data from the venue (Binance Spot / USD-M Futures API, "Test connectivity").
_BINANCE_PING = {"SPOT": "/api/v3/ping", "USDT_FUTURES": "/fapi/v1/ping"}
PAPER_VENUE_DATA_PROBE_SECS = 2.0


def _unreachable(url: str) -> str:
    # "" when ``url`` answers 200 within the probe timeout; otherwise why not.
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=PAPER_VENUE_DATA_PROBE_SECS) as response:  # noqa: S310 - http(s) only
            return "" if response.status == 200 else f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"


def _paper_venue_data(plan: NodePlan, venue, listings, paper: dict, problems: list[str]) -> str:
    # A paper venue's market data from the venue's own public data client (NautilusTrader's adapter),
    # execution still by the sandbox. Returns the data client key, or "" with the reason in problems.
    if venue.adapter not in _LIVE_ADAPTERS:
        problems.append(f"config['paper']['market_data'] = 'venue' is supported for the Binance adapters "
                        f"({', '.join(sorted(_LIVE_ADAPTERS))}), not {venue.adapter!r}: replay recorded data instead")
        return ""
    missing = _missing_credentials(venue, "binance")
    if missing:
        problems.append("market data from the venue: NautilusTrader's Binance data client needs API credentials "
                        f"even for public data (read-only keys suffice): set the environment variables named by "
                        f"config {', '.join(missing)}")
        return ""
    url_problem = _base_url_problem(venue, "binance")
    if url_problem:
        problems.append(url_problem)
        return ""
    from nautilus_trader.adapters.binance import BinanceAccountType
    from nautilus_trader.adapters.binance.common.urls import get_http_base_url

    testnet = bool(paper.get("testnet", False))
    account = _LIVE_ADAPTERS[venue.adapter]
    credentials, urls = _credentials_and_urls(venue, "binance")
    base = (urls.get("base_url_http") or get_http_base_url(BinanceAccountType[account], testnet, False)).rstrip("/")
    probe = base + _BINANCE_PING[account]
    why = _unreachable(probe)
    if why:
        # Without this check an unreachable venue would keep the whole node from starting (NautilusTrader
        # waits for every client to connect); here only this venue's listings go without market data.
        problems.append(f"market data from the venue unavailable: {probe} unreachable ({why}); no replay data "
                        "is configured instead, so its orders are denied for missing market data until the venue "
                        "answers and the trading worker restarts")
        return ""
    clients = _binance_clients(venue, listings, credentials, urls, testnet=testnet)
    key = _key_part(venue.code)
    plan.data_clients[key], plan.data_factories[key] = clients.data, clients.data_factory
    return key


def _env(venue, name: str) -> str | None:
    variable = venue.config.get(name)
    return os.environ.get(variable) if variable else None


@dataclass(frozen=True, slots=True)
class _LiveClients:
    """What one adapter family builds for a live / testnet venue (or why it cannot)."""

    data: Any = None
    exec: Any = None
    data_factory: type | None = None
    exec_factory: type | None = None
    problems: tuple[str, ...] = ()


# Credentials each adapter family needs: config key naming the environment variable → adapter field.
_CREDENTIALS = {
    "binance": {"api_key_env": "api_key", "api_secret_env": "api_secret"},
    "bybit": {"api_key_env": "api_key", "api_secret_env": "api_secret"},
    "okx": {"api_key_env": "api_key", "api_secret_env": "api_secret", "api_passphrase_env": "api_passphrase"},
}
# Base-URL overrides each adapter honours in nautilus_trader 1.221 (NAUTILUS_NOTES.md "Real adapters
# on loopback"; the adapters' config classes). Any other ``base_url_*`` key in a venue's config is a
# problem, not ignored: a loopback setup must never fall through to the real venue unnoticed.
_BASE_URLS = {
    "binance": frozenset({"base_url_http", "base_url_ws"}),
    "bybit": frozenset({"base_url_http", "base_url_ws_private", "base_url_ws_trade"}),
    "okx": frozenset({"base_url_http", "base_url_ws"}),
}


def _missing_credentials(venue, family: str) -> list[str]:
    # The credential config keys of ``family`` whose environment variable is unset: "key (VARIABLE)".
    return [f"{name} ({venue.config.get(name) or 'not named'})" for name in _CREDENTIALS[family]
            if not _env(venue, name)]


def _base_url_problem(venue, family: str) -> str:
    # "" unless the config has a ``base_url_*`` key the adapter does not honour (then it would
    # silently reach the real venue): the problem, naming the keys it does take.
    ignored = sorted(k for k in venue.config if k.startswith("base_url") and k not in _BASE_URLS[family])
    if not ignored:
        return ""
    return (f"config {', '.join(ignored)} is not honoured by NautilusTrader's {family} adapter "
            f"(it takes {', '.join(sorted(_BASE_URLS[family]))}): remove it, or the client would "
            "connect to the real venue's URL")


def _credentials_and_urls(venue, family: str) -> tuple[dict[str, str], dict[str, str]]:
    # The adapter's credential fields from the named variables, and the base-URL overrides set.
    credentials = {field_name: _env(venue, name) for name, field_name in _CREDENTIALS[family].items()}
    return credentials, {k: venue.config[k] for k in _BASE_URLS[family] if venue.config.get(k)}


def _adapter_family(adapter: str) -> str | None:
    if adapter in _LIVE_ADAPTERS:
        return "binance"
    return adapter if adapter in ("bybit", "okx") else None


def _load_ids(listings) -> InstrumentProviderConfig:
    # Only the listings we have: the provider loads these from the venue on connect.
    return InstrumentProviderConfig(load_ids=frozenset(listing.nautilus_instrument_id for listing in listings))


def _binance_clients(venue, listings, credentials: dict[str, str], urls: dict[str, str], *,
                     testnet: bool | None = None) -> _LiveClients:
    from nautilus_trader.adapters.binance import (
        BinanceAccountType,
        BinanceDataClientConfig,
        BinanceExecClientConfig,
        BinanceLiveDataClientFactory,
        BinanceLiveExecClientFactory,
    )

    common = dict(**credentials, account_type=BinanceAccountType[_LIVE_ADAPTERS[venue.adapter]],
                  testnet=venue.mode == "testnet" if testnet is None else testnet, **urls)
    return _LiveClients(
        data=BinanceDataClientConfig(**common, instrument_provider=_load_ids(listings)),
        exec=BinanceExecClientConfig(**common, instrument_provider=_load_ids(listings)),
        data_factory=BinanceLiveDataClientFactory, exec_factory=BinanceLiveExecClientFactory,
    )


_BYBIT_PRODUCTS = {"SPOT": "SPOT", "LINEAR": "LINEAR", "INVERSE": "INVERSE", "OPTION": "OPTION"}


def _bybit_clients(venue, listings, credentials: dict[str, str], urls: dict[str, str]) -> _LiveClients:
    from nautilus_trader.adapters.bybit import (
        BybitDataClientConfig,
        BybitExecClientConfig,
        BybitLiveDataClientFactory,
        BybitLiveExecClientFactory,
        BybitProductType,
    )

    # The product type is the suffix of the NautilusTrader symbol (BTCUSDT-LINEAR.BYBIT: BybitSymbol).
    products = sorted({listing.nautilus_instrument_id.rsplit(".", 1)[0].rsplit("-", 1)[-1] for listing in listings})
    unknown = [p for p in products if p not in _BYBIT_PRODUCTS]
    if unknown:
        return _LiveClients(problems=(f"listings with unknown Bybit product type(s) {unknown} (expected the "
                                      f"instrument id suffix -SPOT, -LINEAR, -INVERSE or -OPTION)",))
    if "SPOT" in products and len(products) > 1:
        # BybitExecutionClient runs a CASH account for SPOT only and a MARGIN account otherwise.
        return _LiveClients(problems=(f"Bybit execution cannot mix SPOT with {', '.join(p for p in products if p != 'SPOT')} "
                                      "in one client (BybitExecClientConfig.product_types): list spot and "
                                      "derivatives on separate venues",))
    product_types = [BybitProductType[_BYBIT_PRODUCTS[p]] for p in products]
    testnet = venue.mode == "testnet"
    data = BybitDataClientConfig(**credentials, product_types=product_types, testnet=testnet,
                                 base_url_http=urls.get("base_url_http"), instrument_provider=_load_ids(listings))
    exec_config = BybitExecClientConfig(**credentials, product_types=product_types, testnet=testnet, **urls,
                                        instrument_provider=_load_ids(listings))
    return _LiveClients(data=data, exec=exec_config, data_factory=BybitLiveDataClientFactory,
                        exec_factory=BybitLiveExecClientFactory)


def _okx_clients(venue, listings, credentials: dict[str, str], urls: dict[str, str]) -> _LiveClients:
    from nautilus_trader.adapters.okx.config import OKXDataClientConfig, OKXExecClientConfig
    from nautilus_trader.adapters.okx.factories import OKXLiveDataClientFactory, OKXLiveExecClientFactory
    from nautilus_trader.core.nautilus_pyo3 import OKXContractType, OKXInstrumentType

    # OKXExecutionClient opens its private / business WebSockets with OKXWebSocketClient.with_credentials,
    # which reads OKX_API_KEY / OKX_API_SECRET / OKX_API_PASSPHRASE from the environment and ignores the
    # config's credentials (nautilus_trader 1.221 adapters/okx/execution.py): they must hold the same.
    mismatched = [f"{fixed} (config {name} names {venue.config.get(name)})" for name, fixed in _OKX_WS_ENV.items()
                  if os.environ.get(fixed) != credentials[_CREDENTIALS["okx"][name]]]
    if mismatched:
        return _LiveClients(problems=(
            "NautilusTrader's OKX execution client reads its WebSocket credentials from fixed environment "
            f"variables: set {', '.join(mismatched)} to the same values, or name those variables in config",))
    kinds = {"SPOT_PAIR": OKXInstrumentType.SPOT, "PERPETUAL": OKXInstrumentType.SWAP,
             "FUTURE": OKXInstrumentType.FUTURES, "OPTION": OKXInstrumentType.OPTION}
    instrument_types, contract_types, families = [], [], []
    for listing in listings:
        key = parse_instrument_key(listing.instrument_key)
        kind = kinds.get(key.instrument_type)
        if kind is None:
            return _LiveClients(problems=(f"{listing.instrument_key}: OKX has no {key.instrument_type} instruments",))
        if kind not in instrument_types:
            instrument_types.append(kind)
        if kind != OKXInstrumentType.SPOT:
            # OKX instFamily (BTC-USD, BTC-USDT): required for options, narrows swap / futures loading.
            contract = OKXContractType.INVERSE if key.settlement == "INV" else OKXContractType.LINEAR
            if contract not in contract_types:
                contract_types.append(contract)
            if f"{key.base}-{key.quote}" not in families:
                families.append(f"{key.base}-{key.quote}")
    common = dict(**credentials, instrument_types=tuple(instrument_types),
                  contract_types=tuple(contract_types) or None, instrument_families=tuple(families) or None,
                  is_demo=venue.mode == "testnet", **urls)
    return _LiveClients(
        data=OKXDataClientConfig(**common, instrument_provider=_load_ids(listings)),
        exec=OKXExecClientConfig(**common, instrument_provider=_load_ids(listings)),
        data_factory=OKXLiveDataClientFactory, exec_factory=OKXLiveExecClientFactory,
    )


_OKX_WS_ENV = {"api_key_env": "OKX_API_KEY", "api_secret_env": "OKX_API_SECRET",
               "api_passphrase_env": "OKX_API_PASSPHRASE"}
_LIVE_BUILDERS = {"binance": _binance_clients, "bybit": _bybit_clients, "okx": _okx_clients}


def _live_venue(plan: NodePlan, venue, listings) -> None:
    def refuse(*problems: str) -> None:
        plan.venues.append(VenuePlan(code=venue.code, mode=venue.mode, problems=problems))

    family = _adapter_family(venue.adapter)
    if family is None:
        supported = ", ".join(sorted([*_LIVE_ADAPTERS, "bybit", "okx"]))
        return refuse(f"adapter {venue.adapter!r} has no {venue.mode} mode here (supported: {supported})")
    if not listings:
        return refuse(f"no enabled listings: the {venue.adapter} instrument provider would load nothing")
    missing = _missing_credentials(venue, family)
    if missing:
        return refuse(f"credentials missing: set the environment variables named by config {', '.join(missing)}")
    url_problem = _base_url_problem(venue, family)
    if url_problem:
        return refuse(url_problem)
    credentials, urls = _credentials_and_urls(venue, family)
    clients = _LIVE_BUILDERS[family](venue, listings, credentials, urls)
    if clients.problems:
        return refuse(*clients.problems)
    key = _key_part(venue.code)
    plan.data_clients[key], plan.exec_clients[key] = clients.data, clients.exec
    plan.data_factories[key], plan.exec_factories[key] = clients.data_factory, clients.exec_factory
    for listing in listings:
        plan.listings.append(ListingPlan(
            instrument_key=listing.instrument_key, venue=venue.code,
            nautilus_instrument_id=listing.nautilus_instrument_id, exec_client_id=key, data_client_id=key,
            feeds=("quotes",),
        ))
    plan.venues.append(VenuePlan(code=venue.code, mode=venue.mode))


def node_plan(*, venue_codes: list[str] | None = None, ts_ns: int = 0) -> NodePlan:
    """Read the enabled NAUTILUS venues and their enabled listings into a :class:`NodePlan`.

    Parameters
    ----------
    venue_codes : list[str] | None
        Restrict to these venue codes (a trading worker owning a subset); None = all enabled.
    ts_ns : int
        Timestamp (UNIX ns) stamped on the instruments built for paper venues.

    Returns
    -------
    NodePlan
        Problems (missing credentials, missing replay files, unsupported listings) are recorded
        per venue, never raised: one broken venue must not stop the others.
    """
    from venues.models import Instrument, Venue

    plan = NodePlan()
    venues = Venue.objects.filter(kind=Venue.Kind.NAUTILUS, enabled=True).order_by("code")
    if venue_codes is not None:
        venues = venues.filter(code__in=venue_codes)
    paper_venues: dict[str, dict] = {}
    for venue in venues:
        listings = list(Instrument.objects.filter(venue=venue, enabled=True).order_by("instrument_key"))
        if venue.mode == Venue.Mode.PAPER:
            _paper_venue(plan, venue, listings, ts_ns, paper_venues)
        else:
            _live_venue(plan, venue, listings)
    for nautilus_venue, shared in paper_venues.items():
        plan.exec_clients[shared["key"]] = PaperExecutionClientConfig(
            venue=nautilus_venue, starting_balances=list(shared["balances"]), account_type="MARGIN",
            oms_type="NETTING", book_type="L1_MBP", bar_execution=True, trade_execution=False,
            use_random_ids=True, touch_sizes=dict(shared["touch_sizes"]) or None,
            bar_instruments=tuple(shared["bar_instruments"]),
        )
    return plan


_RATE = re.compile(r"^([1-9][0-9]*)/([0-9]{2}):([0-5][0-9]):([0-5][0-9])$")


def node_risk_engine_config(*, max_order_submit_rate: str | None = None,
                            max_order_modify_rate: str | None = None) -> LiveRiskEngineConfig:
    """Return the node's ``LiveRiskEngineConfig``, its rate limits set deliberately.

    NautilusTrader's risk engine defaults to 100 submits and 100 modifies per second and **denies**
    (``OrderDenied "Exceeded MAX_ORDER_SUBMIT_RATE"``), never queues, what goes beyond
    (NAUTILUS_NOTES.md). It is not our throttle: our pre-trade risk engine (``risk/engine.py``)
    is authoritative and enforces velocity per strategy and service-wide (``MAX_ORDERS_PER_SECOND``
    / ``_PER_MINUTE``) before an order reaches the node. The node's limit is a safety net against a
    runaway loop inside the node, sized above the peak the node legitimately sees: parent orders
    (at most the service-wide velocity limit, 50/s in the seeded limits) plus the execution
    algorithms' children — each working TWAP / VWAP parent sends at most one slice per
    ``interval_secs`` (>= 1 s), so N parents working at once send up to N slices per second (the
    e2e benchmark's TWAP storm runs 60 at once, after a burst of 200 orders). The default,
    1000 per second, leaves an order of magnitude above that, so the node never denies what our own
    limits let through; a node denial is journaled as REJECTED with the node's reason.

    Parameters
    ----------
    max_order_submit_rate, max_order_modify_rate : str | None
        ``"N/HH:MM:SS"`` (N orders per interval), e.g. ``"1000/00:00:01"``; None reads
        ``settings.ODUM["NODE_MAX_ORDER_SUBMIT_RATE"]`` / ``["NODE_MAX_ORDER_MODIFY_RATE"]``.

    Raises
    ------
    ValueError
        A rate not in that form (the message names the setting), or an interval of zero.
    """
    rates = {}
    for name, value in (("NODE_MAX_ORDER_SUBMIT_RATE", max_order_submit_rate),
                        ("NODE_MAX_ORDER_MODIFY_RATE", max_order_modify_rate)):
        text = str(settings.ODUM[name] if value is None else value).strip()
        match = _RATE.match(text)
        if not match or not any(int(part) for part in match.groups()[1:]):
            raise ValueError(f"{name} must look like 'N/HH:MM:SS' with N >= 1 and a non-zero interval "
                             f"(e.g. '1000/00:00:01'), got {text!r}")
        rates[name] = text
    return LiveRiskEngineConfig(bypass=False, max_order_submit_rate=rates["NODE_MAX_ORDER_SUBMIT_RATE"],
                                max_order_modify_rate=rates["NODE_MAX_ORDER_MODIFY_RATE"])


def trading_node_config(plan: NodePlan, *, trader_id: str, log_level: str = "INFO",
                        cache_redis_url: str | None = None) -> TradingNodeConfig:
    """Return the ``TradingNodeConfig`` of a plan.

    Parameters
    ----------
    plan : NodePlan
        From :func:`node_plan`.
    trader_id : str
        NautilusTrader trader id (``NAME-TAG``, e.g. ``ODUM-001``); a restart with the same id
        resumes the cache persisted in Redis.
    log_level : str
        NautilusTrader log level (process-global: the first node's config wins).
    cache_redis_url : str | None
        Persist the node's cache (orders, positions, client order id counters) in this Redis, so a
        restart resumes (issue #3 §6); None keeps it in memory.

    Returns
    -------
    TradingNodeConfig
        Timeouts suit a worker: connection / reconciliation 10 s, post-stop 0.5 s (the default 10 s
        is an unconditional sleep on every stop, NAUTILUS_NOTES.md); the risk engine's rates from
        settings (:func:`node_risk_engine_config`).

    Raises
    ------
    ValueError
        ``NODE_MAX_ORDER_SUBMIT_RATE`` / ``NODE_MAX_ORDER_MODIFY_RATE`` malformed.
    """
    cache = None
    if cache_redis_url:
        from urllib.parse import urlparse

        url = urlparse(cache_redis_url)
        cache = CacheConfig(
            database=DatabaseConfig(type="redis", host=url.hostname or "127.0.0.1", port=url.port or 6379,
                                    username=url.username or None, password=url.password or None,
                                    ssl=url.scheme == "rediss"),
            encoding="msgpack", buffer_interval_ms=None, flush_on_start=False,
        )
    return TradingNodeConfig(
        trader_id=TraderId(trader_id),
        logging=LoggingConfig(log_level=log_level, bypass_logging=False),
        cache=cache,
        data_clients=dict(plan.data_clients),
        exec_clients=dict(plan.exec_clients),
        exec_algorithms=exec_algorithm_configs(),
        exec_engine=LiveExecEngineConfig(reconciliation=True, generate_missing_orders=False),
        risk_engine=node_risk_engine_config(),
        timeout_connection=10.0,
        timeout_reconciliation=10.0,
        timeout_portfolio=10.0,
        timeout_disconnection=2.0,
        timeout_post_stop=0.5,
    )
