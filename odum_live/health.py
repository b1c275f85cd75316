"""Health of the parts the web process depends on: database, broker, channel layer, trading node, venue adapters.

Each check returns ``status`` ``ok`` / ``down`` / ``unknown`` with a one-line ``detail``. The
*critical* parts are the web process's own dependencies — the database, the Celery broker and the
channel layer: without them it cannot record, dispatch or push orders, and a load balancer should
take it out of rotation (HTTP 503). The trading node is a separate process: its heartbeat is
reported (``down`` turns the overall status to ``degraded``) but does not make the web instance
unhealthy — pulling every web instance because the trading worker is away would only add an outage.
Likewise the venue adapters (:func:`check_venue_adapters`): an enabled venue that cannot trade in
this release (an ``EXTERNAL_SDK`` venue: no such adapter ships yet, :mod:`venues.availability`) is
reported ``down`` by name (``degraded``), never silently left out. And orders that wait too long
on a hand-off or a venue's answer (:func:`check_stuck_orders`: ROUTED, SUBMITTED unanswered or
PENDING_CANCEL past ``ODUM['ORDER_STUCK_AFTER_SECS']``) are reported ``down`` with their age and
the action to take (``degraded``): the trading is what is unwell there, not the web process.

Trading node heartbeat contract
-------------------------------
Every process hosting a TradingNode (a trading worker) calls :func:`record_trading_node_heartbeat`
every few seconds with its own worker id (:func:`trading_worker_id`: the Celery worker's node name
``name@host``, stable across restarts of that worker, else ``host:pid``). The beat
``{"ts": ISO-8601 UTC, "hostname", "worker", "detail", "stopped", "status"}`` goes to the Django
cache (Redis in production, so every web process reads it) under ``<TRADING_NODE_HEARTBEAT_KEY>:<worker>``
— one entry per worker, so one worker's beat never hides or overwrites another's — and the worker
id into the registry :data:`TRADING_NODE_WORKERS_KEY`. Each registered worker is judged on its own
(:func:`trading_worker_beats`):

* a beat older than ``ODUM['NODE_HEARTBEAT_MAX_AGE_SECS']`` is **down** (stale), and so is a worker
  whose node is not ready; the whole trading-node check is then down (health ``degraded``). So is
  the check when a running worker's journal writer gave up on a venue event (the OMS may miss a fill
  or a status change until a restart's reconciliation re-delivers it: :func:`journal_lost`), though
  that worker still hosts its venues;
* a worker's final beat on a clean stop says ``stopped``: it is reported **stopped**, not failing,
  for ``ODUM['NODE_STOPPED_SHOWN_SECS']`` (default 300 s), then forgotten (its entry expires). The
  check is down only when no worker runs (a lone worker that stopped: the node is gone);
* a worker that died without that beat stays down for ``ODUM['NODE_WORKER_FORGET_SECS']`` (default
  one day) after its last beat, unless it beats again (a restarted Celery worker keeps its name),
  then it is forgotten — its venues still show red on ``/status`` while no other worker hosts them.

The registry is read-modify-written only when a worker is not in it yet (its first beat), under
a short ``cache.add`` lock; workers whose beat has expired are dropped from it then.

Operator status
---------------
:func:`status_report` is the operator's view behind ``/status`` and ``manage.py status``: the
checks above plus web, Redis, Celery workers, the stuck orders by id, each venue (mode, connected,
market-data age; a venue that cannot trade in this release says why), open reconciliation findings
and result-export storage, each graded green / amber / red (:data:`GREEN`, :data:`AMBER`,
:data:`RED`): green works, amber works but needs a look (stale market data, a disabled venue, open
findings, a missing optional part), red does not work.
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

#: Cache key prefix of the trading workers' heartbeats: ``<prefix>:<worker id>`` (written by the venue layer).
TRADING_NODE_HEARTBEAT_KEY = "odum:trading_node:heartbeat"
#: Cache key of the registry of trading workers: the sorted list of the worker ids that have beaten.
TRADING_NODE_WORKERS_KEY = "odum:trading_node:workers"
_WORKERS_LOCK_KEY = "odum:trading_node:workers:lock"
#: Seconds a single check may take before it counts as down.
CHECK_TIMEOUT_SECS = 2.0

OK, DOWN, UNKNOWN = "ok", "down", "unknown"
#: A trading worker's state after a clean stop (a worker state, never a check's status).
STOPPED = "stopped"


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
    workers: tuple[WorkerBeat, ...] = ()  # the trading-node check: each worker's own state


@dataclass(frozen=True, slots=True)
class WorkerBeat:
    """One trading worker as its last heartbeat shows it (:func:`trading_worker_beats`).

    ``state`` is ok / down / unknown / stopped; ``detail`` one line naming the worker;
    ``age_secs`` the heartbeat's age in seconds (None when unreadable); ``status`` the host's
    status dict from the beat.
    """

    worker: str
    hostname: str
    state: str
    detail: str
    age_secs: float | None
    status: dict


def trading_worker_id(hostname: str | None = None) -> str:
    """Return a trading worker's heartbeat id: Celery's node name (``name@host``) when given, else ``host:pid``.

    Parameters
    ----------
    hostname : str | None
        The Celery worker's node name (``sender.hostname``), a plain host name, or None (this host).
    """
    if hostname and "@" in hostname:
        return hostname
    return f"{hostname or socket.gethostname()}:{os.getpid()}"


def trading_worker_heartbeat_key(worker: str) -> str:
    """Return the cache key of ``worker``'s heartbeat."""
    return f"{TRADING_NODE_HEARTBEAT_KEY}:{worker}"


def record_trading_node_heartbeat(*, hostname: str, detail: str = "running", ts: datetime | None = None,
                                  status: dict | None = None, worker: str | None = None,
                                  stopped: bool = False) -> None:
    """Publish one trading worker's heartbeat (called by the node host every few seconds).

    Parameters
    ----------
    hostname : str
        The worker's host name (the Celery node name in a worker).
    detail : str
        A short state line (``running``, ``not ready …``, ``stopped``).
    ts : datetime | None
        Time of the beat (UTC); default now.
    status : dict | None
        The host's JSON-ready status (:meth:`venues.node.host.TradingNodeHost.status`: ready,
        clients connected, last market data per listing, venue problems, journal counters).
    worker : str | None
        The worker's id; default :func:`trading_worker_id` of ``hostname``.
    stopped : bool
        The worker's final beat on a clean stop: shown as stopped for ``NODE_STOPPED_SHOWN_SECS``.
    """
    worker = worker or trading_worker_id(hostname)
    ts = ts or datetime.now(timezone.utc)
    odum = settings.ODUM
    keep = odum["NODE_STOPPED_SHOWN_SECS"] if stopped else odum["NODE_WORKER_FORGET_SECS"]
    cache.set(trading_worker_heartbeat_key(worker),
              {"ts": ts.isoformat(), "hostname": hostname, "worker": worker, "detail": detail, "stopped": stopped,
               "status": status or {}},
              timeout=keep)
    _register_trading_worker(worker)


def _register_trading_worker(worker: str) -> None:
    # Read-modify-write only when the worker is missing; a busy lock means another worker registers
    # now: this one is added by its next beat.
    if worker in (cache.get(TRADING_NODE_WORKERS_KEY) or ()):
        return
    if not cache.add(_WORKERS_LOCK_KEY, worker, timeout=5):
        return
    try:
        known = list(cache.get(TRADING_NODE_WORKERS_KEY) or ())
        beating = cache.get_many([trading_worker_heartbeat_key(w) for w in known])
        kept = {w for w in known if trading_worker_heartbeat_key(w) in beating}  # expired beats: forgotten
        cache.set(TRADING_NODE_WORKERS_KEY, sorted(kept | {worker}), timeout=None)
    finally:
        cache.delete(_WORKERS_LOCK_KEY)


def trading_worker_beats(now: datetime | None = None) -> list[WorkerBeat]:
    """Return every registered trading worker that still has a heartbeat, judged on its own, by id.

    Raises
    ------
    Exception
        Whatever the cache raises when it is unreachable (callers report "unknown").
    """
    now = now or datetime.now(timezone.utc)
    workers = list(cache.get(TRADING_NODE_WORKERS_KEY) or ())
    beats = cache.get_many([trading_worker_heartbeat_key(w) for w in workers])
    return [_judge_beat(w, beats[trading_worker_heartbeat_key(w)], now) for w in sorted(workers)
            if trading_worker_heartbeat_key(w) in beats]


def _judge_beat(worker: str, beat, now: datetime) -> WorkerBeat:
    try:
        age = (now - datetime.fromisoformat(beat["ts"])).total_seconds()
    except (KeyError, TypeError, ValueError):
        return WorkerBeat(worker, "?", UNKNOWN, f"heartbeat of {worker} unreadable", None, {})
    status = beat.get("status") or {}
    host = beat.get("hostname", "?")
    problems = [f"{code}: {'; '.join(venue['problems'])}"
                for code, venue in sorted((status.get("venues") or {}).items()) if venue.get("problems")]
    suffix = f"; venue problems: {' | '.join(problems)}" if problems else ""
    if beat.get("stopped"):
        state, detail = STOPPED, f"stopped on {worker} {age:.0f} s ago: {status.get('error') or 'trading node stopped'}"
    elif age > settings.ODUM["NODE_HEARTBEAT_MAX_AGE_SECS"]:
        max_age = settings.ODUM["NODE_HEARTBEAT_MAX_AGE_SECS"]
        state, detail = DOWN, f"last heartbeat {age:.0f} s ago from {worker} (max {max_age} s)"
    elif status and not status.get("ready", True):
        state, detail = DOWN, f"not ready on {worker}: {status.get('error') or 'starting'}{suffix}"
    else:
        lost = f", but {lost}" if (lost := journal_lost(status)) else ""
        lease = status.get("lease") or {}
        lease = f", node lease {lease.get('key')} held by {lease.get('token')}" if lease.get("held") else ""
        state, detail = OK, (f"{beat.get('detail', 'running')} on {worker}, heartbeat {age:.1f} s ago"
                             f"{lease}{lost}{suffix}")
    return WorkerBeat(worker, host, state, detail, round(age, 1), status)


def journal_lost(status: dict) -> str:
    """Return what a trading worker's journal writer gave up on, from its heartbeat ``status`` ("" when nothing).

    From ``status["journal"]`` (:meth:`venues.journal.JournalWriter.stats`: ``failed``, ``last_error``):
    the count, the last error, and the remedy.
    """
    journal = status.get("journal") or {}
    failed = journal.get("failed") or 0
    if not failed:
        return ""
    return (f"{failed} venue event{'' if failed == 1 else 's'} not written by the journal (last: "
            f"{journal.get('last_error') or '?'}): the OMS may miss fills or status changes; restart the trading "
            "worker (its start-up reconciliation re-delivers them from the venue)")


def trading_node_status(now: datetime | None = None) -> dict:
    """Return the status of the trading workers that are up (fresh beat, ready), merged (``{}``: none).

    One such worker: its status dict as it beat it. Several: ``ready`` True, ``venues`` each from
    the worker hosting it, ``market_data`` the newest time per listing, ``workers`` their ids. In
    both, ``venues_down`` maps a venue that only a down worker hosts to that worker's detail.
    ``{}`` too when the cache is unreachable.
    """
    try:
        beats = trading_worker_beats(now)
    except Exception:  # noqa: BLE001 - unknown is shown as unknown by check_trading_node
        return {}
    up = [b for b in beats if b.state == OK]
    if not up:
        return {}
    merged = dict(up[0].status) if len(up) == 1 else {"ready": True, "venues": {}, "market_data": {},
                                                      "workers": [b.worker for b in up]}
    if len(up) > 1:
        for beat in up:
            for code, venue in (beat.status.get("venues") or {}).items():
                merged["venues"].setdefault(code, venue)
            for key, ts in (beat.status.get("market_data") or {}).items():
                merged["market_data"][key] = max(merged["market_data"].get(key, ts), ts, key=_iso_key)
    hosted = merged.get("venues") or {}
    merged["venues_down"] = {code: beat.detail for beat in beats if beat.state in (DOWN, UNKNOWN)
                             for code in (beat.status.get("venues") or {}) if code not in hosted}
    return merged


def _iso_key(ts: str):
    try:
        return datetime.fromisoformat(ts)
    except (TypeError, ValueError):
        return datetime.min.replace(tzinfo=timezone.utc)


def venue_problems(venue: str) -> list[str]:
    """Return what keeps ``venue`` (code) off the trading node, from the workers' last heartbeats (``[]``: none known).

    Used where an order meets the symptom (no market data for its listing) to say the cause: a
    paper venue without replay files, a live venue without credentials (venues/node/config.py).
    Every worker that still has a heartbeat counts, whatever its age (the problems are its plan's).
    """
    try:
        beats = trading_worker_beats()
    except Exception:  # noqa: BLE001 - the cause is then unknown; the symptom is still reported
        return []
    problems: list[str] = []
    for beat in beats:
        for problem in ((beat.status.get("venues") or {}).get(venue) or {}).get("problems") or []:
            if problem not in problems:
                problems.append(problem)
    return problems


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
    """Judge every trading worker's heartbeat (:func:`trading_worker_beats`); ``workers`` lists each.

    Ok when every worker still beating is up (stopped ones aside) and at least one is; down when
    one is stale or not ready, or its journal lost venue events (:func:`journal_lost`), or none runs
    (only stopped ones, or no heartbeat at all); unknown
    when the cache is unreachable or a beat unreadable. One worker: its own detail line.
    """
    try:
        beats = tuple(trading_worker_beats(now))
    except Exception as exc:  # noqa: BLE001
        return CheckResult("trading_node", UNKNOWN, "cache unreachable: heartbeat unknown", False,
                           error=f"{type(exc).__name__}: {exc}")
    if not beats:
        return CheckResult("trading_node", DOWN, "no heartbeat yet", False)
    lost = any(b.state == OK and journal_lost(b.status) for b in beats)
    if len(beats) == 1:
        (beat,) = beats
        return CheckResult("trading_node", DOWN if beat.state == STOPPED or lost else beat.state, beat.detail, False,
                           workers=beats)
    running = [b for b in beats if b.state != STOPPED]
    states = {b.state for b in running}
    status = DOWN if not running or DOWN in states or lost else UNKNOWN if UNKNOWN in states else OK
    up = sum(1 for b in running if b.state == OK)
    detail = f"{up} of {len(beats)} trading workers up: " + "; ".join(b.detail for b in beats)
    return CheckResult("trading_node", status, detail, False, workers=beats)


def check_venue_adapters() -> CheckResult:
    """Name every enabled venue that cannot trade in this release (:mod:`venues.availability`).

    Down when there is one (e.g. ``DERIBIT: adapter 'deribit' (EXTERNAL_SDK) is not available in
    this release``), ok otherwise; not critical. Unknown when the venues cannot be read (the
    database check says why). One query.
    """
    from venues.availability import venue_unavailable_reason
    from venues.models import Venue

    try:
        venues = list(Venue.objects.filter(enabled=True).order_by("code").values_list("code", "kind", "adapter"))
    except Exception as exc:  # noqa: BLE001 - reported as unknown
        return CheckResult("venue_adapters", UNKNOWN, "could not read the venues", False,
                           error=f"{type(exc).__name__}: {exc}")
    blocked = [f"{code}: {why}" for code, kind, adapter in venues
               if (why := venue_unavailable_reason(kind=kind, adapter=adapter))]
    if blocked:
        venue_s = "venue cannot" if len(blocked) == 1 else "venues cannot"
        return CheckResult("venue_adapters", DOWN, f"{len(blocked)} enabled {venue_s} trade: {'; '.join(blocked)}",
                           False)
    return CheckResult("venue_adapters", OK, f"every enabled venue ({len(venues)}) has its adapter in this release",
                       False)


#: What an operator does about an order stuck in each status (:func:`check_stuck_orders`).
STUCK_ORDER_ACTIONS = {
    "ROUTED": "never handed to the trading worker, and the outbox sweeper has not rejected it: check that celery "
              "beat runs orders.tasks.redispatch_stale_orders and a worker consumes queue default",
    "SUBMITTED": "no venue acknowledgement: look the order up in the trading node's log and at the venue; "
                 "restarting the trading worker reconciles it with the venue",
    "PENDING_CANCEL": "the venue has not answered the cancel (re-sent every DISPATCH_RETRY_AFTER_SECS): look the "
                      "order up at the venue; restarting the trading worker reconciles it with the venue",
}


def _stuck_orders_check(now: datetime):
    # (the check, the stuck orders or None when they could not be read): check_stuck_orders and the status row.
    from orders.selectors import orders_stuck

    after = settings.ODUM["ORDER_STUCK_AFTER_SECS"]
    try:
        stuck = orders_stuck(now=now, older_than_secs=after)
    except Exception as exc:  # noqa: BLE001 - reported as unknown; the database check says why
        return CheckResult("stuck_orders", UNKNOWN, "could not read the orders", False,
                           error=f"{type(exc).__name__}: {exc}"), None
    total = sum(stuck.counts.values())
    if not total:
        return CheckResult("stuck_orders", OK, f"no order stuck for more than {after} s", False), stuck
    parts = [f"{stuck.counts[status]} {status} (oldest {(now - stuck.oldest[status]).total_seconds():.0f} s: "
             f"{action})" for status, action in STUCK_ORDER_ACTIONS.items() if status in stuck.counts]
    detail = f"{total} order{'' if total == 1 else 's'} stuck for more than {after} s: {'; '.join(parts)}"
    return CheckResult("stuck_orders", DOWN, detail, False), stuck


def check_stuck_orders(now: datetime | None = None) -> CheckResult:
    """Report orders waiting too long on a hand-off or a venue's answer (:func:`orders.selectors.orders_stuck`).

    Down (health ``degraded``; not critical: the web process itself is fine) when an order has been
    ROUTED, SUBMITTED without a venue answer, or PENDING_CANCEL for more than
    ``ODUM['ORDER_STUCK_AFTER_SECS']`` seconds: the detail gives the count per status, the age of the
    oldest, and the action to take (:data:`STUCK_ORDER_ACTIONS`), never an order's id (the check is
    public); the status page lists them (:func:`stuck_orders_status_item`). Unknown when the orders
    cannot be read. Two queries.
    """
    return _stuck_orders_check(now or datetime.now(timezone.utc))[0]


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
    checks = (check_database(), check_broker(), check_channel_layer(), check_trading_node(), check_venue_adapters(),
              check_stuck_orders())
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

    Red: the venue cannot trade in this release (its adapter is not available,
    :mod:`venues.availability`: the detail says so whatever the node's state), or the node does
    not host the venue, is down or not ready, or reports a problem for it, or none of its listings
    has had market data. Amber: disabled (with the missing adapter named, if so), or its freshest
    market data is older than ``ODUM['MARKET_DATA_MAX_AGE_SECS']``. Green otherwise.

    Parameters
    ----------
    now : datetime
        Time of the check (UTC).
    node_status : dict | None
        The up workers' merged status (:func:`trading_node_status`); read when None. An empty dict
        means no live heartbeat.
    """
    from venues.availability import venue_unavailable_reason
    from venues.models import Instrument, Venue

    node = trading_node_status(now) if node_status is None else node_status
    node_live = bool(node)
    hosted = node.get("venues") or {}
    venues_down = node.get("venues_down") or {}
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
        unavailable = venue_unavailable_reason(kind=venue.kind, adapter=venue.adapter)
        if not venue.enabled:
            level, detail = AMBER, f"disabled; {unavailable or age_text}"
        elif unavailable:
            level, detail = RED, f"cannot trade: {unavailable}; its orders are denied"
        elif not node_live:
            level, detail = RED, "not connected: the trading node is down (no live heartbeat)"
        elif venue.code in venues_down:
            level, detail = RED, f"not connected: its trading worker is down ({venues_down[venue.code]})"
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
    trading goes on, so they are amber, not red. Each is listed with the listing's position break
    (OMS vs venue); an external fill (kind EXTERNAL_FILL) also with its side, quantity @ price,
    trade id, the venue's client order id and time.
    """
    from positions.models import ReconciliationFinding

    findings = list(ReconciliationFinding.objects.filter(resolved_at__isnull=True).order_by("-found_at", "id")[:20])
    if not findings:
        return StatusItem("reconciliation", "reconciliation", GREEN, "no open findings", now)
    listed = "; ".join(f"{f.venue} {f.instrument_key}: OMS {f.oms_quantity.normalize():f} vs venue "
                       f"{f.venue_quantity.normalize():f} since {f.found_at:%Y-%m-%d %H:%M:%S}Z"
                       + (f" ({f.external_fill_text()})" if f.kind == ReconciliationFinding.Kind.EXTERNAL_FILL else "")
                       for f in findings)
    return StatusItem("reconciliation", "reconciliation", AMBER, f"{len(findings)} open finding(s): {listed}", now)


def stuck_orders_status_item(*, now: datetime) -> StatusItem:
    """Grade the stuck orders (:func:`check_stuck_orders`): none → green, any → red, each listed.

    The detail is the check's summary (count, oldest age and action per status), then the
    longest-waiting orders (at most 20) by client_order_id with their status and seconds waiting
    (the page is for logged-in operators).
    """
    check, stuck = _stuck_orders_check(now)
    item = _item(check, component="stuck orders", ts=now)
    if stuck is None or not stuck.orders:
        return item
    listed = ", ".join(f"{cid} {status} {(now - since).total_seconds():.0f} s" for cid, status, since in stuck.orders)
    return StatusItem(item.section, item.component, item.level, f"{item.detail} — orders: {listed}", now, item.error)


def status_report() -> StatusReport:
    """Run every check for the operator (see "Operator status" above); bounded by the checks' timeouts.

    Returns
    -------
    StatusReport
        Sections ``service`` (web, database, redis, broker, channel layer, Celery workers,
        trading node, and with several trading workers one ``trading node <worker>`` row each: a
        stopped one green, shown until it is forgotten; stuck orders), ``venues`` (one row per venue),
        ``reconciliation`` and ``storage``.
    """
    now = datetime.now(timezone.utc)
    node_check = check_trading_node(now)
    checks = (("web", check_web()), ("database", check_database()), ("redis", check_redis()),
              ("broker", check_broker()), ("channel layer", check_channel_layer()),
              ("celery workers", check_celery_workers()), ("trading node", node_check))
    items = [_item(check, component=name, ts=now) for name, check in checks]
    if len(node_check.workers) > 1:
        items.extend(StatusItem("service", f"trading node {beat.worker}", GREEN if beat.state == STOPPED
                                else RED if journal_lost(beat.status) else _LEVEL_OF.get(beat.state, AMBER),
                                beat.detail, now)
                     for beat in node_check.workers)
    try:
        items.append(stuck_orders_status_item(now=now))
        items.extend(venue_status_items(now=now, node_status=trading_node_status(now)))
        items.append(reconciliation_status_item(now=now))
    except Exception as exc:  # noqa: BLE001 - the database check above already says why
        items.append(StatusItem("venues", "venues", RED, "could not read stuck orders, venues and findings", now,
                                f"{type(exc).__name__}: {exc}"))
    storage = check_storage()
    items.append(StatusItem("storage", "storage", _LEVEL_OF[storage.status], storage.detail, now, storage.error))
    return StatusReport(items=tuple(items), ts=now)
