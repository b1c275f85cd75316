"""Shared machinery for the benchmarks: a throw-away database, servers, and an HTTP load generator.

Every benchmark runs against the production topology on this machine: PostgreSQL and Redis
(``BENCH_DATABASE_URL`` / ``BENCH_REDIS_URL``, defaulting to the local services), with production
settings (DEBUG off). It creates its own database, starts the servers it needs, and stops and
drops everything on exit, so ``make bench`` leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import multiprocessing as mp
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable

PG_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/odum_bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")


def production_env(**extra: str) -> dict[str, str]:
    """Return the environment of a production-settings process on the bench database."""
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "odum_live.settings",
            "DATABASE_URL": PG_URL,
            "REDIS_URL": REDIS_URL,
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": "bench-only-secret-key-0123456789abcdefghijklmnopqrstuvwxyz",
            "DJANGO_SECURE_SSL_REDIRECT": "0",  # TLS terminates in front of the app in production
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "LOG_LEVEL": "WARNING",
            "ODUM_BENCH_ENDPOINTS": "1",
            # One bench token sends thousands of requests a minute: the throttle still runs (its
            # cost is measured), with a rate the runs cannot reach.
            "API_THROTTLE_RATE": "100000000/min",
            "PYTHONPATH": str(ROOT),
        }
    )
    env.update(extra)
    return env


def recreate_database() -> None:
    """Drop and create the bench database, then migrate it (production settings)."""
    parsed = urllib.parse.urlparse(PG_URL)
    name = parsed.path.lstrip("/")
    admin_url = parsed._replace(path="/postgres").geturl()
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    subprocess.run(
        [PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=production_env(), check=True
    )


def analyze_database() -> None:
    """ANALYZE the bench database: give the planner statistics, as autovacuum keeps them in production.

    A freshly created table has none (``reltuples`` -1), and PostgreSQL then plans as if it were
    nearly empty, choosing between indexes by their size: the risk engine's repeated-order count
    (``orders.exposure``) then scanned every order of the strategy through its one-column index
    (0.5 ms at 700 orders, growing with each) instead of the order window. Autovacuum analyzes a
    new table within about a minute of its first 50 rows, so in production this lasts that minute;
    a benchmark run of a few minutes on a new database would measure it, not the steady state.
    Called after each benchmark's warm-up.
    """
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute("ANALYZE")


def drop_database() -> None:
    """Drop the bench database and flush the bench Redis database."""
    parsed = urllib.parse.urlparse(PG_URL)
    import psycopg
    import redis

    with psycopg.connect(parsed._replace(path="/postgres").geturl(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parsed.path.lstrip("/")}" WITH (FORCE)')
    redis.Redis.from_url(REDIS_URL).flushdb()


def setup_django() -> None:
    """Configure this process as a production-settings Django process on the bench database."""
    os.environ.update(production_env())
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


@dataclass
class Server:
    """A running server process group."""

    name: str
    proc: subprocess.Popen
    port: int


def _gunicorn_gthread(app: str):
    # gunicorn's gthread workers (1 thread each, keep-alive) serving the WSGI callable ``app``.
    return lambda port, workers: [
        PYTHON, "-m", "gunicorn", app, "-b", f"127.0.0.1:{port}", "-w", str(workers), "-k", "gthread",
        "--threads", "1", "--keep-alive", "75", "--log-level", "warning",
    ]


SERVER_LAYOUTS = {
    # name: (description, argv builder)
    "gunicorn-gthread": (
        "gunicorn WSGI, {workers} workers x 1 thread (keep-alive)",
        _gunicorn_gthread("odum_live.wsgi:application"),
    ),
    "gunicorn-sync": (
        "gunicorn WSGI, {workers} sync workers (no keep-alive)",
        lambda port, workers: [
            PYTHON, "-m", "gunicorn", "odum_live.wsgi:application", "-b", f"127.0.0.1:{port}",
            "-w", str(workers), "--log-level", "warning",
        ],
    ),
    # No Django at all (bench/api_ceiling.py): the ceiling of gunicorn + psycopg + PostgreSQL.
    "bare-wsgi": (
        "bare WSGI (no Django), {workers} workers x 1 thread (keep-alive)",
        _gunicorn_gthread("bench.api_ceiling:bare_app"),
    ),
    "daphne": (
        "one daphne ASGI process",
        lambda port, workers: [PYTHON, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "odum_live.asgi:application"],
    ),
    "uvicorn": (
        "uvicorn ASGI, {workers} workers",
        lambda port, workers: [
            PYTHON, "-m", "uvicorn", "odum_live.asgi:application", "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(workers), "--log-level", "warning", "--no-access-log",
        ],
    ),
}


@contextlib.contextmanager
def running_server(layout: str, *, port: int, workers: int, env: dict[str, str]) -> Iterator[Server]:
    """Start ``layout`` on ``port``, wait until it answers, and stop its process group on exit.

    Raises
    ------
    RuntimeError
        When something already listens on ``port`` (:func:`refuse_taken_port`), or the server does
        not answer within 30 s (its output is included).
    """
    _desc, argv = SERVER_LAYOUTS[layout]
    refuse_taken_port(port)
    # The server's output goes to a file: a pipe nobody drains fills up and blocks the server
    # (daphne writes an access-log line per request).
    log_path = ROOT / "bench" / "out" / f"{layout}-{port}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "wb")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen(
        argv(port, workers), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/api/health")
                conn.getresponse().read()
                conn.close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    out = log_path.read_text(errors="replace")
                    raise RuntimeError(f"{layout} did not start on port {port} (log {log_path}):\n{out[-4000:]}") from None
                time.sleep(0.1)
        yield Server(layout, proc, port)
    finally:
        stop_process_group(proc, timeout=15)
        log.close()


# --- load generation -----------------------------------------------------------------------------

BodyFn = Callable[[int], bytes]


def _client(port: int, path: str, token: str, body_fn: BodyFn, seqs: range, expect: bytes, out: mp.Queue) -> None:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    latencies: list[int] = []
    failures: list[str] = []
    started = time.perf_counter()
    for seq in seqs:
        body = body_fn(seq)
        t0 = time.perf_counter_ns()
        try:
            conn.request("POST", path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        except (http.client.HTTPException, OSError):
            # gunicorn sync workers close after each response: reconnect and retry once.
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("POST", path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        latencies.append(time.perf_counter_ns() - t0)
        if resp.status != 201 or expect not in data:
            failures.append(f"{resp.status} {data[:300]!r}")
        if resp.getheader("Connection", "").lower() == "close":
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.close()
    out.put((latencies, failures, started, time.perf_counter()))


def machine_busy_seconds() -> float:
    """CPU time all cores spent busy since boot, in seconds (``/proc/stat``: every state but idle and iowait)."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _processes() -> Iterator[tuple[Path, list[bytes]]]:
    """Each process of the machine: its ``/proc/<pid>`` folder and its argv (skipping those that exit meanwhile)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                yield entry, (entry / "cmdline").read_bytes().split(b"\0")


def process_cpu_seconds() -> dict[int, tuple[str, float]]:
    """CPU time (user + system, seconds) of each process of the machine since it started, with its group.

    Returns ``{pid: (group, seconds)}``. Groups: ``web`` (gunicorn, uvicorn, daphne), ``worker``
    (Celery: the trading worker), ``postgres``, ``redis``, ``bench`` (this process and its reaped
    children: the load clients once joined) and ``other``. Read from ``/proc/<pid>/stat``.
    """
    tick = os.sysconf("SC_CLK_TCK")
    me = os.getpid()
    found: dict[int, tuple[str, float]] = {}
    for entry, argv in _processes():
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        cmdline = b" ".join(argv).decode(errors="replace")
        fields = stat[stat.rindex(")") + 2:].split()
        # fields[11:15]: utime, stime, cutime, cstime (proc(5), counted from the state field).
        seconds = (int(fields[11]) + int(fields[12])) / tick
        pid = int(entry.name)
        if pid == me:
            group, seconds = "bench", seconds + (int(fields[13]) + int(fields[14])) / tick
        elif "postgres" in cmdline:
            group = "postgres"
        elif "redis-server" in cmdline:
            group = "redis"
        elif any(server in cmdline for server in ("gunicorn", "uvicorn", "daphne")):
            group = "web"
        elif "celery" in cmdline:
            group = "worker"
        else:
            group = "other"
        found[pid] = (group, seconds)
    return found


class CpuWindow:
    """Each process group's CPU from its creation to :meth:`close` (:func:`process_cpu_seconds`).

    Counts the processes alive at the close (from zero for those started in between). A process
    that exited in between (PostgreSQL's autovacuum workers, say) took its time with it;
    :func:`run_load` reports what the groups leave of the machine's busy time as ``unaccounted``.
    """

    def __init__(self) -> None:
        self._before, self._started = process_cpu_seconds(), time.monotonic()

    def close(self) -> tuple[dict[str, float], float]:
        """Return (CPU seconds by group, seconds elapsed) since the window opened."""
        after, elapsed = process_cpu_seconds(), time.monotonic() - self._started
        split = {"web": 0.0, "worker": 0.0, "postgres": 0.0, "redis": 0.0, "bench": 0.0, "other": 0.0}
        for pid, (group, seconds) in after.items():
            was = self._before.get(pid)
            split[group] += seconds - (was[1] if was is not None and was[0] == group else 0.0)
        return split, elapsed


@dataclass
class LoadResult:
    """Latencies in milliseconds and throughput of one load run.

    ``machine_cpu_ms`` is the CPU time the whole machine spent busy during the run (every process:
    servers, PostgreSQL, Redis, the load clients), per request: the run's CPU budget. On this
    2-core machine N requests/s can at most cost 2000 / N ms each.
    """

    connections: int
    requests: int
    seconds: float
    latencies_ms: list[float]
    failures: list[str]
    machine_cpu_ms: float = 0.0
    #: Machine CPU per request by process group (:class:`CpuWindow`); ``unaccounted`` is the
    #: machine's busy time the groups do not explain (processes that exited, the kernel's threads).
    cpu_split_ms: dict[str, float] | None = None

    def cpu_split(self) -> str:
        """The machine's CPU per request by process group, as text."""
        return ", ".join(f"{group} {ms:.2f}" for group, ms in (self.cpu_split_ms or {}).items())

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.latencies_ms)

    @property
    def p99_ms(self) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(round(0.99 * len(ordered))) - 1)]

    @property
    def per_s(self) -> float:
        return self.requests / self.seconds


def run_load(*, port: int, path: str, token: str, body_fn: BodyFn, connections: int, requests: int,
             seq_start: int, expect: bytes) -> LoadResult:
    """POST ``requests`` bodies over ``connections`` keep-alive connections (one process each).

    ``body_fn(seq)`` builds the body of request number ``seq`` (unique across connections).
    Every response must be 201 and contain ``expect``; the others are returned as failures.
    """
    ctx = mp.get_context("fork")
    out: mp.Queue = ctx.Queue()
    per_conn = requests // connections
    procs = [
        ctx.Process(
            target=_client,
            args=(port, path, token, body_fn, range(seq_start + i * per_conn, seq_start + (i + 1) * per_conn), expect, out),
        )
        for i in range(connections)
    ]
    busy_before = machine_busy_seconds()
    window = CpuWindow()
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    busy = machine_busy_seconds() - busy_before
    for p in procs:
        p.join()
    by_group, _ = window.close()
    # CLOCK_MONOTONIC is system-wide on Linux: the window spans the first start to the last end.
    elapsed = max(r[3] for r in results) - min(r[2] for r in results)
    latencies = [ns / 1e6 for lat, _, _, _ in results for ns in lat]
    failures = [f for _, fs, _, _ in results for f in fs]
    n = max(1, len(latencies))
    split = {group: seconds * 1000 / n for group, seconds in by_group.items()}
    split["unaccounted"] = busy * 1000 / n - sum(split.values())
    return LoadResult(connections, len(latencies), elapsed, latencies, failures,
                      machine_cpu_ms=busy * 1000 / n, cpu_split_ms=split)


def refuse_taken_port(port: int) -> None:
    """Raise RuntimeError when something already accepts connections on 127.0.0.1:``port``.

    A server left running by an earlier run that was killed (its process group outlives the
    script) would otherwise answer this run's requests: the new server fails to bind, the old one
    passes the readiness check, and the figures are of the wrong code.
    """
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        raise RuntimeError(f"port {port} is already in use: a server left running by an earlier run? "
                           f"stop it (e.g. pkill -f 'gunicorn odum_live') or choose another --port")


def refuse_stray_trading_workers(prefix: str = "bench-trading") -> None:
    """Raise RuntimeError when a benchmark trading worker (``-n <prefix>…``) is already running.

    A worker left by an earlier run that was killed keeps consuming the ``venues`` queue of the
    bench Redis: it would take half of this run's orders, on its own node.
    """
    strays = [entry.name for entry, argv in _processes()
              if b"celery" in b" ".join(argv) and any(arg.startswith(prefix.encode()) for arg in argv)]
    if strays:
        raise RuntimeError(f"trading worker(s) of an earlier benchmark run still running (pid {', '.join(strays)}): "
                           "they would consume this run's orders; stop them first (e.g. pkill -f 'celery -A celery_app')")


def stop_process_group(proc: subprocess.Popen, *, timeout: float) -> None:
    """SIGTERM the process group of ``proc`` (started with ``start_new_session``); SIGKILL after ``timeout`` s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def seed_wide_risk_limits(*, strategy_id: str, price_collar_bps: str, venues: tuple[str, ...] = ()) -> None:
    """Set every risk-limit kind, wide, globally and for ``strategy_id``, and ACTIVE kill switches.

    The benchmarks' orders must all pass while every check still runs (velocity limits would deny a
    burst of hundreds of orders otherwise). ``price_collar_bps`` as a decimal string; ``venues``: the
    venue scopes that get an ACTIVE trading state besides GLOBAL.
    """
    from decimal import Decimal

    from risk.models import RiskLimit, Scope, TradingState

    wide = {
        RiskLimit.Kind.MAX_ORDER_QUANTITY: "100",
        RiskLimit.Kind.MAX_ORDER_NOTIONAL: "10000000",
        RiskLimit.Kind.PRICE_COLLAR_BPS: price_collar_bps,
        RiskLimit.Kind.MAX_ORDERS_PER_SECOND: "100000",
        RiskLimit.Kind.MAX_ORDERS_PER_MINUTE: "10000000",
        RiskLimit.Kind.MAX_POSITION_QUANTITY: "1000000",
        RiskLimit.Kind.MAX_POSITION_NOTIONAL: "100000000000",
        RiskLimit.Kind.MAX_GROSS_EXPOSURE: "100000000000",
        RiskLimit.Kind.REPEATED_ORDER_WINDOW_SECS: "1",
    }
    for scope, key in ((Scope.GLOBAL, ""), (Scope.STRATEGY, strategy_id)):
        for kind, value in wide.items():
            RiskLimit.objects.create(scope=scope, scope_key=key, kind=kind, value=Decimal(value))
    for scope, key in ((Scope.GLOBAL, ""), *((Scope.VENUE, v) for v in venues)):
        TradingState.objects.create(scope=scope, scope_key=key, state="ACTIVE", reason="benchmark")


def clean_up(*, keep: bool) -> None:
    """Close this process's database connections and drop the bench database (unless ``keep``)."""
    from django.db import connections

    connections.close_all()
    if not keep:
        drop_database()


def finish_run(figures: dict, *, failures: list, keep: bool) -> int:
    """End a benchmark: :func:`clean_up`, print the JSON line of ``figures``; return the exit status
    (1 when any request failed)."""
    clean_up(keep=keep)
    print_json_line(figures)
    return 1 if failures else 0


def print_json_line(figures: dict) -> None:
    """Print the benchmark's closing JSON line (rounded figures)."""
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in figures.items()}), flush=True)


# --- the trading worker (bench/e2e_latency.py) ---------------------------------------------------

def wait_for(predicate: Callable[[], object], *, timeout: float, message: str, interval: float = 0.05):
    """Poll ``predicate`` until it returns a truthy value and return it.

    Raises
    ------
    RuntimeError
        When ``timeout`` seconds pass first (the message says what was awaited).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"not within {timeout:.0f} s: {message}")
        time.sleep(interval)


@dataclass
class TradingWorker:
    """A running ``celery -A celery_app worker -Q venues -P solo`` process (it hosts the TradingNode)."""

    name: str
    proc: subprocess.Popen
    log_path: Path

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@contextlib.contextmanager
def running_trading_worker(*, env: dict[str, str], name: str = "bench-trading",
                           timeout: float = 90.0) -> Iterator[TradingWorker]:
    """Start the trading worker, wait for its node's ready heartbeat, and stop it (SIGTERM) on exit.

    ``env`` is a production environment (:func:`production_env`) with ``TRADING_NODE=worker``; this
    process must be set up with :func:`setup_django` on the same Redis (the heartbeat is read from
    the Django cache). The worker's output goes to ``bench/out/<name>.log``.

    Raises
    ------
    RuntimeError
        When a trading worker of an earlier run is still running (:func:`refuse_stray_trading_workers`),
        or the worker exits or its node is not ready within ``timeout`` seconds (log tail included).
    """
    refuse_stray_trading_workers()
    log_path = ROOT / "bench" / "out" / f"{name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "wb")  # noqa: SIM115 - closed in finally
    argv = [PYTHON, "-m", "celery", "-A", "celery_app", "worker", "-Q", "venues", "-P", "solo", "-c", "1",
            "-n", f"{name}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "WARNING"]
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    worker = TradingWorker(name, proc, log_path)
    try:
        def ready():
            if proc.poll() is not None:
                raise RuntimeError(f"trading worker exited ({proc.returncode}):\n{worker.tail()}")
            beat = trading_worker_beat(name)
            return beat if beat.get("status", {}).get("ready") else None

        try:
            wait_for(ready, timeout=timeout, message=f"trading worker {name}: node ready", interval=0.1)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}\n{worker.tail()}") from None
        yield worker
    finally:
        stop_process_group(proc, timeout=45)
        log.close()


def trading_worker_beat(name: str) -> dict:
    """Return the last heartbeat (the raw cache value) of the trading worker started as ``name``, or {}.

    Each trading worker beats under its own key (:func:`odum_live.health.trading_worker_heartbeat_key`),
    its id being Celery's node name ``name@host``.
    """
    from django.core.cache import cache

    from odum_live.health import trading_worker_beats, trading_worker_heartbeat_key

    for beat in trading_worker_beats():
        if beat.worker.startswith(name + "@"):
            return cache.get(trading_worker_heartbeat_key(beat.worker)) or {}
    return {}


def delete_node_cache(trader_id: str) -> None:
    """Delete the keys of a TradingNode's persisted cache (NautilusTrader keeps them in Redis DB 0)."""
    import redis

    parsed = urllib.parse.urlparse(REDIS_URL)
    client = redis.Redis(host=parsed.hostname or "127.0.0.1", port=parsed.port or 6379, db=0)
    keys = list(client.scan_iter(match=f"trader-{trader_id}:*", count=1000))
    if keys:
        client.delete(*keys)


def latency_row(name: str, values: list[float], *, name_width: int = 34, n_width: int = 8, width: int = 10) -> str:
    """Return one table row: ``name``, count, p50, p99 and max of ``values`` (ms, one decimal)."""
    if not values:
        return f"{name:<{name_width}}{'-':>{n_width}}"
    return (f"{name:<{name_width}}{len(values):>{n_width}}{statistics.median(values):>{width}.1f}"
            f"{percentile(values, 0.99):>{width}.1f}{max(values):>{width}.1f}")


def percentile(values: list[float], q: float) -> float:
    """Return the nearest-rank ``q`` percentile (0 < q ≤ 1) of ``values``."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, int(round(q * len(ordered))) - 1))]


# --- several servers, the paper listing, WebSocket subscribers (bench/ws_fanout.py) ---------------

@contextlib.contextmanager
def running_servers(layout: str, *, ports: list[int], workers: int, env: dict[str, str]) -> Iterator[list[Server]]:
    """Start one ``layout`` server per port (:func:`running_server`) and stop them all on exit."""
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(running_server(layout, port=port, workers=workers, env=env)) for port in ports]


def seed_listing(*, instrument_key: str = "BINANCE-SPOT:SPOT_PAIR:BTC-USDT", config: dict | None = None):
    """Create the paper BINANCE-SPOT venue and its BTC-USDT listing (recorded Binance rules); return the listing."""
    from decimal import Decimal

    from venues.models import Instrument, Venue

    venue = Venue.objects.create(
        code="BINANCE-SPOT", name="Binance Spot (paper)", kind=Venue.Kind.NAUTILUS, adapter="binance_spot",
        mode=Venue.Mode.PAPER, maker_fee_bps=Decimal("10"), taker_fee_bps=Decimal("10"), latency_ms=Decimal("5"),
        config=config or {},
    )
    return Instrument.objects.create(
        venue=venue, instrument_key=instrument_key, nautilus_instrument_id="BTCUSDT.BINANCE", venue_symbol="BTCUSDT",
        base_currency="BTC", quote_currency="USDT", settlement_currency="USDT", tick_size=Decimal("0.01"),
        lot_size=Decimal("0.000001"), min_quantity=Decimal("0.000001"), max_quantity=Decimal("9000"),
        min_notional=Decimal("10"),
    )
