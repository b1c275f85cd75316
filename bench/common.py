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


SERVER_LAYOUTS = {
    # name: (description, argv builder)
    "gunicorn-gthread": (
        "gunicorn WSGI, {workers} workers x 1 thread (keep-alive)",
        lambda port, workers: [
            PYTHON, "-m", "gunicorn", "odum_live.wsgi:application", "-b", f"127.0.0.1:{port}",
            "-w", str(workers), "-k", "gthread", "--threads", "1", "--keep-alive", "75",
            "--log-level", "warning",
        ],
    ),
    "gunicorn-sync": (
        "gunicorn WSGI, {workers} sync workers (no keep-alive)",
        lambda port, workers: [
            PYTHON, "-m", "gunicorn", "odum_live.wsgi:application", "-b", f"127.0.0.1:{port}",
            "-w", str(workers), "--log-level", "warning",
        ],
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
        When the server does not answer within 30 s (its output is included).
    """
    _desc, argv = SERVER_LAYOUTS[layout]
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
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
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


@dataclass
class LoadResult:
    """Latencies in milliseconds and throughput of one load run."""

    connections: int
    requests: int
    seconds: float
    latencies_ms: list[float]
    failures: list[str]

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
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    # CLOCK_MONOTONIC is system-wide on Linux: the window spans the first start to the last end.
    elapsed = max(r[3] for r in results) - min(r[2] for r in results)
    latencies = [ns / 1e6 for lat, _, _, _ in results for ns in lat]
    failures = [f for _, fs, _, _ in results for f in fs]
    return LoadResult(connections, len(latencies), elapsed, latencies, failures)


def print_json_line(figures: dict) -> None:
    """Print the benchmark's closing JSON line (rounded figures)."""
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in figures.items()}), flush=True)
