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
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
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
