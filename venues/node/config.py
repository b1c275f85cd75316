"""The TradingNode's configuration, built from the enabled NAUTILUS ``Venue`` rows and settings.

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

  ``data_dir`` is relative to the project root. A listing without a readable replay source is
  reported in :attr:`VenuePlan.problems` (health shows it; risk denies its orders for missing
  market data) — never silently.
- ``live`` / ``testnet`` — NautilusTrader's own adapters (Binance spot / USD-M futures), with
  credentials read from the environment variables the config names (``api_key_env``,
  ``api_secret_env``) and base-URL overrides (``base_url_http``, ``base_url_ws``) honoured;
  instruments are loaded from the venue.

Client keys are ``<FACTORY>`` names without ``-`` (the node builder takes the factory name as the
part of the key before the first ``-``): ``REPLAY_<n>``, ``SANDBOX_<VENUE>``, ``BINANCE_SPOT``,
``BINANCE_FUTURES``; the bridge routes every subscription and order with the explicit client id,
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

from venues.algorithms import exec_algorithm_configs
from venues.node.instruments import UnsupportedListing, decimals, nautilus_instrument
from venues.node.paper import PaperExecutionClientConfig, SandboxLiveExecClientFactory
from venues.replay.client import (
    ReplayDataClientConfig,
    ReplayDataClientFactory,
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
    """One venue: its mode and anything that keeps it from working (shown in health)."""

    code: str
    mode: str
    problems: tuple[str, ...] = ()


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


def _data_dir(path: str) -> Path:
    candidate = Path(path)
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


def _paper_venue(plan: NodePlan, venue, listings, ts_ns: int, paper_venues: dict[str, dict]) -> None:
    problems: list[str] = []
    replay = venue.config.get("replay") or {}
    feeds_by_key = replay.get("instruments") or {}
    for listing in listings:
        try:
            instrument = nautilus_instrument(listing, maker_fee_bps=venue.maker_fee_bps,
                                             taker_fee_bps=venue.taker_fee_bps, ts_ns=ts_ns)
        except UnsupportedListing as exc:
            problems.append(str(exc))
            continue
        nautilus_venue = instrument.id.venue.value
        exec_key = f"SANDBOX_{_key_part(nautilus_venue)}"
        shared = paper_venues.setdefault(nautilus_venue, {"balances": [], "touch_sizes": {}, "key": exec_key})
        paper = venue.config.get("paper") or {}
        for balance in paper.get("starting_balances") or DEFAULT_STARTING_BALANCES:
            if balance not in shared["balances"]:
                shared["balances"].append(balance)
        shared["touch_sizes"].update(paper.get("touch_sizes") or {})
        plan.instruments.append(instrument)

        sources = feeds_by_key.get(listing.instrument_key) or []
        data_key = ""
        feeds: tuple[str, ...] = ()
        if not sources:
            problems.append(f"{listing.instrument_key}: no replay source configured (config['replay']['instruments'])")
        else:
            data_key = f"REPLAY_{_key_part(listing.instrument_key)}"
            data_config = ReplayDataClientConfig(
                venue=nautilus_venue, instrument=_replay_instrument(listing, venue),
                sources=tuple(sources), data_dir=str(_data_dir(replay.get("data_dir", "../shared/data"))),
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
                feeds = tuple(sorted({source["kind"] for source in sources}))
        plan.listings.append(ListingPlan(
            instrument_key=listing.instrument_key, venue=venue.code,
            nautilus_instrument_id=listing.nautilus_instrument_id, exec_client_id=nautilus_venue,
            data_client_id=data_key, feeds=feeds,
        ))
        plan.exec_factories[exec_key] = SandboxLiveExecClientFactory
    plan.venues.append(VenuePlan(code=venue.code, mode=venue.mode, problems=tuple(problems)))


def _env(venue, name: str) -> str | None:
    variable = venue.config.get(name)
    return os.environ.get(variable) if variable else None


def _live_venue(plan: NodePlan, venue, listings) -> None:
    from nautilus_trader.adapters.binance import (
        BinanceAccountType,
        BinanceDataClientConfig,
        BinanceExecClientConfig,
        BinanceLiveDataClientFactory,
        BinanceLiveExecClientFactory,
    )

    problems: list[str] = []
    account = _LIVE_ADAPTERS.get(venue.adapter)
    if account is None:
        plan.venues.append(VenuePlan(code=venue.code, mode=venue.mode, problems=(
            f"adapter {venue.adapter!r} has no {venue.mode} mode here (supported: {', '.join(sorted(_LIVE_ADAPTERS))})",)))
        return
    api_key, api_secret = _env(venue, "api_key_env"), _env(venue, "api_secret_env")
    if not (api_key and api_secret):
        problems.append(f"credentials missing: set the environment variables named by config "
                        f"api_key_env ({venue.config.get('api_key_env')}) and api_secret_env "
                        f"({venue.config.get('api_secret_env')})")
        plan.venues.append(VenuePlan(code=venue.code, mode=venue.mode, problems=tuple(problems)))
        return
    key = _key_part(venue.code)
    common = dict(
        api_key=api_key, api_secret=api_secret, account_type=BinanceAccountType[account],
        testnet=venue.mode == "testnet", base_url_http=venue.config.get("base_url_http"),
        base_url_ws=venue.config.get("base_url_ws"),
    )
    ids = frozenset(listing.nautilus_instrument_id for listing in listings)
    plan.data_clients[key] = BinanceDataClientConfig(
        **common, instrument_provider=InstrumentProviderConfig(load_ids=ids))
    plan.exec_clients[key] = BinanceExecClientConfig(
        **common, instrument_provider=InstrumentProviderConfig(load_ids=ids))
    plan.data_factories[key] = BinanceLiveDataClientFactory
    plan.exec_factories[key] = BinanceLiveExecClientFactory
    for listing in listings:
        plan.listings.append(ListingPlan(
            instrument_key=listing.instrument_key, venue=venue.code,
            nautilus_instrument_id=listing.nautilus_instrument_id, exec_client_id=key, data_client_id=key,
            feeds=("quotes",),
        ))
    plan.venues.append(VenuePlan(code=venue.code, mode=venue.mode, problems=tuple(problems)))


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
        )
    return plan


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
        is an unconditional sleep on every stop, NAUTILUS_NOTES.md).
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
        risk_engine=LiveRiskEngineConfig(bypass=False),
        timeout_connection=10.0,
        timeout_reconciliation=10.0,
        timeout_portfolio=10.0,
        timeout_disconnection=2.0,
        timeout_post_stop=0.5,
    )
