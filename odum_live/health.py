"""Health of the parts the web process depends on: database, broker, channel layer, trading node.

Each check returns ``status`` ``ok`` / ``down`` / ``unknown`` with a one-line ``detail``. The
*critical* parts are the web process's own dependencies — the database, the Celery broker and the
channel layer: without them it cannot record, dispatch or push orders, and a load balancer should
take it out of rotation (HTTP 503). The trading node is a separate process: its heartbeat is
reported (``down`` turns the overall status to ``degraded``) but does not make the web instance
unhealthy — pulling every web instance because the trading worker is away would only add an outage.

Trading node heartbeat contract
-------------------------------
The process hosting the TradingNode calls :func:`record_trading_node_heartbeat` every few
seconds; it writes ``{"ts": ISO-8601 UTC, "hostname": str, "detail": str}`` to the Django cache
under :data:`TRADING_NODE_HEARTBEAT_KEY` (Redis in production, so every web process reads it).
A heartbeat older than ``ODUM['NODE_HEARTBEAT_MAX_AGE_SECS']`` seconds counts as down.

Operator status
---------------
:func:`status_report` is the operator's view behind ``/status`` and ``manage.py status``: the
checks above plus web, Redis, Celery workers, each venue (mode, connected, market-data age),
open reconciliation findings and result-export storage, each graded green / amber / red
(:data:`GREEN`, :data:`AMBER`, :data:`RED`): green works, amber works but needs a look (stale
market data, a disabled venue, open findings, a missing optional part), red does not work.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone

from django.conf import settings
from django.core.cache import cache
from django.db import connection

#: Cache key of the trading node heartbeat (written by the venue layer, read here).
TRADING_NODE_HEARTBEAT_KEY = "odum:trading_node:heartbeat"
#: Seconds a single check may take before it counts as down.
CHECK_TIMEOUT_SECS = 2.0

OK, DOWN, UNKNOWN = "ok", "down", "unknown"


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One part's health: ``status`` ok/down/unknown, ``detail`` (safe to show to the caller),
    ``error`` (exception text, shown only to authenticated callers), ``critical``, ``latency_ms``."""

    name: str
    status: str
    detail: str
    critical: bool
    latency_ms: float | None = None
    error: str = ""


def record_trading_node_heartbeat(*, hostname: str, detail: str = "running", ts: datetime | None = None,
                                  status: dict | None = None) -> None:
    """Publish the trading node's heartbeat (called by the node host every few seconds).

    Parameters
    ----------
    hostname : str
        The worker's host name.
    detail : str
        A short state line (``running``, ``reconciling`` …).
    ts : datetime | None
        Time of the beat (UTC); default now.
    status : dict | None
        The host's JSON-ready status (:meth:`venues.node.host.TradingNodeHost.status`: ready,
        clients connected, last market data per listing, venue problems, journal counters).
    """
    ts = ts or datetime.now(timezone.utc)
    max_age = settings.ODUM["NODE_HEARTBEAT_MAX_AGE_SECS"]
    cache.set(TRADING_NODE_HEARTBEAT_KEY,
              {"ts": ts.isoformat(), "hostname": hostname, "detail": detail, "status": status or {}},
              timeout=max(60, max_age * 4))


def trading_node_status() -> dict:
    """Return the last heartbeat's status dict (``{}`` when there is none or the cache is down)."""
    try:
        beat = cache.get(TRADING_NODE_HEARTBEAT_KEY) or {}
    except Exception:  # noqa: BLE001 - unknown is shown as unknown by check_trading_node
        return {}
    return beat.get("status") or {}


def venue_problems(venue: str) -> list[str]:
    """Return what keeps ``venue`` (code) off the trading node, from its last heartbeat (``[]``: none known).

    Used where an order meets the symptom (no market data for its listing) to say the cause: a
    paper venue without replay files, a live venue without credentials (venues/node/config.py).
    """
    venues = trading_node_status().get("venues") or {}
    return list((venues.get(venue) or {}).get("problems") or [])


def _timed(fn):
    started = time.perf_counter()
    try:
        result = fn()
    finally:
        elapsed = (time.perf_counter() - started) * 1000
    return result, round(elapsed, 2)


def check_database() -> CheckResult:
    """Run ``SELECT 1`` on the default database."""

    def probe():
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()

    try:
        _, ms = _timed(probe)
    except Exception as exc:  # noqa: BLE001 - any failure is "down"
        return CheckResult("database", DOWN, "query failed", True, error=f"{type(exc).__name__}: {exc}")
    return CheckResult("database", OK, f"{connection.vendor} answered SELECT 1", True, ms)


def check_broker() -> CheckResult:
    """Connect to the Celery broker once (no retries; ``CELERY_BROKER_CONNECTION_TIMEOUT`` bound)."""
    from celery_app import app

    if app.conf.task_always_eager:
        return CheckResult("broker", OK, "tasks run in-process (eager, embedded default)", True)

    def probe():
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=0, timeout=CHECK_TIMEOUT_SECS)
            return conn.transport_cls

    try:
        transport, ms = _timed(probe)
    except Exception as exc:  # noqa: BLE001
        return CheckResult("broker", DOWN, "broker unreachable", True, error=f"{type(exc).__name__}: {exc}")
    return CheckResult("broker", OK, f"{transport} broker connected", True, ms)


def check_channel_layer() -> CheckResult:
    """Send one message to a fresh channel and receive it back."""
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    if layer is None:
        return CheckResult("channel_layer", DOWN, "no channel layer configured", True)
    token = uuid.uuid4().hex

    async def roundtrip():
        channel = await layer.new_channel("health.")
        await layer.send(channel, {"type": "health.ping", "token": token})
        message = await asyncio.wait_for(layer.receive(channel), CHECK_TIMEOUT_SECS)
        return message.get("token") == token

    try:
        matched, ms = _timed(async_to_sync(roundtrip))
    except Exception as exc:  # noqa: BLE001
        return CheckResult("channel_layer", DOWN, f"{type(layer).__name__} round trip failed", True,
                           error=f"{type(exc).__name__}: {exc}")
    if not matched:
        return CheckResult("channel_layer", DOWN, "round trip returned another message", True, ms)
    return CheckResult("channel_layer", OK, f"{type(layer).__name__} round trip", True, ms)


def check_trading_node(now: datetime | None = None) -> CheckResult:
    """Read the trading node heartbeat from the cache (:data:`TRADING_NODE_HEARTBEAT_KEY`)."""
    now = now or datetime.now(timezone.utc)
    try:
        beat = cache.get(TRADING_NODE_HEARTBEAT_KEY)
    except Exception as exc:  # noqa: BLE001
        return CheckResult("trading_node", UNKNOWN, "cache unreachable: heartbeat unknown", False,
                           error=f"{type(exc).__name__}: {exc}")
    if not beat:
        return CheckResult("trading_node", DOWN, "no heartbeat yet", False)
    try:
        ts = datetime.fromisoformat(beat["ts"])
        age = (now - ts).total_seconds()
    except (KeyError, TypeError, ValueError):
        return CheckResult("trading_node", UNKNOWN, "heartbeat unreadable", False)
    max_age = settings.ODUM["NODE_HEARTBEAT_MAX_AGE_SECS"]
    host = beat.get("hostname", "?")
    if age > max_age:
        return CheckResult("trading_node", DOWN, f"last heartbeat {age:.0f} s ago from {host} (max {max_age} s)",
                           False)
    status = beat.get("status") or {}
    problems = [f"{code}: {'; '.join(venue['problems'])}"
                for code, venue in sorted((status.get("venues") or {}).items()) if venue.get("problems")]
    suffix = f"; venue problems: {' | '.join(problems)}" if problems else ""
    if status and not status.get("ready", True):
        return CheckResult("trading_node", DOWN, f"not ready on {host}: {status.get('error') or 'starting'}{suffix}",
                           False)
    return CheckResult("trading_node", OK,
                       f"{beat.get('detail', 'running')} on {host}, heartbeat {age:.1f} s ago{suffix}", False)


@dataclass(frozen=True, slots=True)
class HealthReport:
    """All checks; ``healthy`` when every critical one is ok; ``status`` ok / degraded / down."""

    checks: tuple[CheckResult, ...]
    ts: datetime

    @property
    def healthy(self) -> bool:
        return all(c.status == OK for c in self.checks if c.critical)

    @property
    def status(self) -> str:
        if not self.healthy:
            return "down"
        return "ok" if all(c.status == OK for c in self.checks) else "degraded"


def health_report() -> HealthReport:
    """Run every check (each bounded by :data:`CHECK_TIMEOUT_SECS` or the broker timeout)."""
    checks = (check_database(), check_broker(), check_channel_layer(), check_trading_node())
    return HealthReport(checks=checks, ts=datetime.now(timezone.utc))


# --- operator status (/status, manage.py status) ------------------------------------------------

GREEN, AMBER, RED = "green", "amber", "red"
_LEVEL_OF = {OK: GREEN, UNKNOWN: AMBER, DOWN: RED}
_RANK = {GREEN: 0, AMBER: 1, RED: 2}
#: Seconds a Celery worker has to answer the status page's control broadcast.
CELERY_PING_TIMEOUT_SECS = 1.0


@dataclass(frozen=True, slots=True)
class StatusItem:
    """One component on the status page: ``level`` green/amber/red, a one-line ``detail``.

    ``section`` groups the rows (``service``, ``venues``, ``reconciliation``, ``storage``);
    ``facts`` holds the venue columns (mode, connected, market-data age in seconds) and is empty
    for other rows; ``error`` is exception text for logged-in operators only.
    """

    section: str
    component: str
    level: str
    detail: str
    checked_at: datetime
    error: str = ""
    facts: dict = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StatusReport:
    """Every :class:`StatusItem`; ``level`` is the worst of them."""

    items: tuple[StatusItem, ...]
    ts: datetime

    @property
    def level(self) -> str:
        return max((item.level for item in self.items), key=_RANK.__getitem__, default=GREEN)

    def section(self, name: str) -> list[StatusItem]:
        """Return the items of one section, in report order."""
        return [item for item in self.items if item.section == name]

    @property
    def service(self) -> list[StatusItem]:
        return self.section("service")

    @property
    def venues(self) -> list[StatusItem]:
        return self.section("venues")

    @property
    def findings_and_storage(self) -> list[StatusItem]:
        return self.section("reconciliation") + self.section("storage")


def _item(check: CheckResult, *, component: str, ts: datetime) -> StatusItem:
    detail = check.detail if check.latency_ms is None else f"{check.detail} ({check.latency_ms:.1f} ms)"
    return StatusItem("service", component, _LEVEL_OF.get(check.status, AMBER), detail, ts, check.error)


def check_web() -> CheckResult:
    """Report this web process (it answered, so it is up): host, pid, DEBUG."""
    debug = "on" if settings.DEBUG else "off"
    return CheckResult("web", OK, f"answering on {socket.gethostname()} (pid {os.getpid()}), DEBUG {debug}", True)


def check_redis() -> CheckResult:
    """``PING`` the Redis of ``REDIS_URL``; without it, report the embedded default (nothing to check)."""
    url = getattr(settings, "REDIS_URL", "")
    if not url:
        return CheckResult("redis", OK, "not used: embedded default (in-memory cache, channel layer, market data)",
                           False)
    import redis

    def probe():
        client = redis.Redis.from_url(url, socket_timeout=CHECK_TIMEOUT_SECS, socket_connect_timeout=CHECK_TIMEOUT_SECS)
        try:
            return client.ping()
        finally:
            client.close()

    try:
        _, ms = _timed(probe)
    except Exception as exc:  # noqa: BLE001
        return CheckResult("redis", DOWN, "PING failed", False, error=f"{type(exc).__name__}: {exc}")
    return CheckResult("redis", OK, "PING answered", False, ms)


def check_celery_workers(timeout: float = CELERY_PING_TIMEOUT_SECS) -> CheckResult:
    """Ask the Celery workers for their queues (one control broadcast, ``timeout`` seconds).

    Down when no worker answers; unknown (amber) when none consumes ``venues`` (the trading
    worker) or ``default``; ok otherwise. In the embedded default tasks run in-process (eager):
    there are no workers to ask.
    """
    from celery_app import app

    if app.conf.task_always_eager:
        return CheckResult("celery_workers", OK, "in-process (eager): tasks run in the web process", False)
    try:
        replies, ms = _timed(lambda: app.control.inspect(timeout=timeout).active_queues())
    except Exception as exc:  # noqa: BLE001
        return CheckResult("celery_workers", DOWN, "control broadcast failed", False,
                           error=f"{type(exc).__name__}: {exc}")
    if not replies:
        return CheckResult("celery_workers", DOWN, f"no worker answered within {timeout:g} s", False, ms)
    queues = {host: sorted(q["name"] for q in qs or []) for host, qs in sorted(replies.items())}
    detail = "; ".join(f"{host} ({', '.join(names) or 'no queue'})" for host, names in queues.items())
    consumed = {name for names in queues.values() for name in names}
    missing = [name for name in ("venues", "default") if name not in consumed]
    if missing:
        return CheckResult("celery_workers", UNKNOWN, f"{len(queues)} answered, nobody consumes "
                           f"{', '.join(missing)}: {detail}", False, ms)
    return CheckResult("celery_workers", OK, f"{len(queues)} answered: {detail}", False, ms)


def check_storage() -> CheckResult:
    """Check the result-export storage (``STORAGES['exports']``), or say it is not configured."""
    storages_setting = getattr(settings, "STORAGES", {}) or {}
    if "exports" not in storages_setting:
        return CheckResult("storage", UNKNOWN, "not configured: no result-export storage (STORAGES['exports']) "
                           "is set, so results are not exported", False)
    from django.core.files.storage import storages

    def probe():
        backend = storages["exports"]
        backend.exists(".odum-status-probe")
        return type(backend).__name__

    try:
        name, ms = _timed(probe)
    except Exception as exc:  # noqa: BLE001
        return CheckResult("storage", DOWN, "export storage unreachable", False, error=f"{type(exc).__name__}: {exc}")
    return CheckResult("storage", OK, f"{name} answered", False, ms)


def venue_status_items(*, now: datetime, node_status: dict | None = None) -> list[StatusItem]:
    """Grade each venue: mode, connected (hosted by a ready node without problems), market-data age.

    Red: the node does not host the venue, is down or not ready, or reports a problem for it, or
    none of its listings has had market data. Amber: disabled, or its freshest market data is
    older than ``ODUM['MARKET_DATA_MAX_AGE_SECS']``. Green otherwise.

    Parameters
    ----------
    now : datetime
        Time of the check (UTC).
    node_status : dict | None
        The heartbeat's status (:func:`trading_node_status`); read when None. An empty dict means
        no live heartbeat.
    """
    from venues.models import Instrument, Venue

    node = trading_node_status() if node_status is None else node_status
    node_live = check_trading_node(now).status == OK if node_status is None else bool(node)
    hosted = node.get("venues") or {}
    seen = {}
    for key, ts in (node.get("market_data") or {}).items():
        try:
            seen[key] = datetime.fromisoformat(ts)
        except (TypeError, ValueError):
            continue
    listings: dict[str, list[str]] = {}
    for code, key in Instrument.objects.filter(enabled=True).values_list("venue_id", "instrument_key"):
        listings.setdefault(code, []).append(key)
    max_age = settings.ODUM["MARKET_DATA_MAX_AGE_SECS"]
    items = []
    for venue in Venue.objects.order_by("code"):
        times = [seen[key] for key in listings.get(venue.code, []) if key in seen]
        age = round((now - max(times)).total_seconds(), 1) if times else None
        problems = (hosted.get(venue.code) or {}).get("problems") or []
        connected = node_live and bool(node.get("ready", True)) and venue.code in hosted and not problems
        age_text = "no market data yet" if age is None else f"market data {age:.1f} s old"
        if not venue.enabled:
            level, detail = AMBER, f"disabled; {age_text}"
        elif not node_live:
            level, detail = RED, "not connected: the trading node is down (no live heartbeat)"
        elif venue.code not in hosted:
            level, detail = RED, "not connected: the trading node does not host this venue"
        elif problems:
            level, detail = RED, f"problems: {'; '.join(problems)}"
        elif age is None:
            level, detail = RED, f"connected; {age_text}"
        elif age > max_age:
            level, detail = AMBER, f"connected; {age_text} (stale after {max_age} s)"
        else:
            level, detail = GREEN, f"connected; {age_text}"
        items.append(StatusItem("venues", venue.code, level, detail, now,
                                facts={"mode": venue.mode, "connected": connected, "market_data_age_secs": age}))
    return items


def reconciliation_status_item(*, now: datetime) -> StatusItem:
    """Grade the open reconciliation findings: none → green, any → amber (listed, for review).

    Findings are differences recorded for a person to resolve (``positions.ReconciliationFinding``);
    trading goes on, so they are amber, not red.
    """
    from positions.models import ReconciliationFinding

    findings = list(ReconciliationFinding.objects.filter(resolved_at__isnull=True).order_by("-found_at", "id")[:20])
    if not findings:
        return StatusItem("reconciliation", "reconciliation", GREEN, "no open findings", now)
    listed = "; ".join(f"{f.venue} {f.instrument_key}: OMS {f.oms_quantity.normalize():f} vs venue "
                       f"{f.venue_quantity.normalize():f} since {f.found_at:%Y-%m-%d %H:%M:%S}Z" for f in findings)
    return StatusItem("reconciliation", "reconciliation", AMBER, f"{len(findings)} open finding(s): {listed}", now)


def status_report() -> StatusReport:
    """Run every check for the operator (see "Operator status" above); bounded by the checks' timeouts.

    Returns
    -------
    StatusReport
        Sections ``service`` (web, database, redis, broker, channel layer, Celery workers,
        trading node), ``venues`` (one row per venue), ``reconciliation`` and ``storage``.
    """
    now = datetime.now(timezone.utc)
    checks = (("web", check_web()), ("database", check_database()), ("redis", check_redis()),
              ("broker", check_broker()), ("channel layer", check_channel_layer()),
              ("celery workers", check_celery_workers()), ("trading node", check_trading_node(now)))
    items = [_item(check, component=name, ts=now) for name, check in checks]
    node_live = checks[-1][1].status == OK
    try:
        items.extend(venue_status_items(now=now, node_status=trading_node_status() if node_live else {}))
        items.append(reconciliation_status_item(now=now))
    except Exception as exc:  # noqa: BLE001 - the database check above already says why
        items.append(StatusItem("venues", "venues", RED, "could not read venues and findings", now,
                                f"{type(exc).__name__}: {exc}"))
    storage = check_storage()
    items.append(StatusItem("storage", "storage", _LEVEL_OF[storage.status], storage.detail, now, storage.error))
    return StatusReport(items=tuple(items), ts=now)
