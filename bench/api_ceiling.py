"""Benchmark: the best this machine's web stack can do for a one-INSERT endpoint (the ceiling of POST /api/orders).

Issue #2 asks POST /api/orders for p99 ≤ 5 ms at 1 connection and ≥ 600 orders/s at 4 connections.
Order submission does everything the project's one-INSERT *floor* endpoint does plus its pipeline,
so it cannot be faster than that endpoint; this benchmark measures the floor and two ever-leaner
versions of it, to show what Django+DRF (and the server, HTTP and PostgreSQL alone) cost here at
best. Same load generator (``bench.common.run_load``), bench database and seed (bench/api_submit.py's
``seed()``), gunicorn layout (gthread, 4 workers x 1 thread, keep-alive) and request body as
bench/api_submit.py; 1 and 4 keep-alive connections, each after a warm-up:

- ``floor``: ``POST /api/bench/floor`` (knox Bearer auth, throttle, DRF serializer, one ORM INSERT)
  under production settings, exactly as bench/api_submit.py serves it.
- ``floor_lean``: the same endpoint under bench/lean_settings.py: no middleware, no throttle.
- ``bare_wsgi``: :func:`bare_app` below, no Django at all: parse the JSON body, one
  ``INSERT ... RETURNING id`` with psycopg (one autocommit connection per worker process), 201
  ``{"id": ...}``. No authentication: strictly less work than any authenticated endpoint, so an
  upper bound on what gunicorn + psycopg + PostgreSQL give on this machine.

Every response is checked (201 and an ``"id"``); a single failure fails the run. Ends with one JSON
line: ``<variant>_c1_p50_ms``, ``<variant>_c1_p99_ms``, ``<variant>_c4_p99_ms``, ``<variant>_c4_per_s``
for ``floor``, ``floor_lean`` and ``bare`` (+ the targets and details).

Usage: ``python bench/api_ceiling.py [--workers 4] [--requests 2000] [--port 8094]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import psycopg
from psycopg.types.json import Jsonb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.api_submit import seed  # noqa: E402
from bench.common import (  # noqa: E402
    PG_URL,
    SERVER_LAYOUTS,
    LoadResult,
    clean_up,
    finish_run,
    production_env,
    recreate_database,
    run_load,
    running_server,
    setup_django,
)

TARGET_C1_P99_MS = 5.0  # issue #2
TARGET_C4_PER_S = 600.0  # issue #2
FLOOR_PATH = "/api/bench/floor"
WARMUP_REQUESTS = 400

# --- the bare WSGI app (served by gunicorn as bench.api_ceiling:bare_app) -----------------------

_INSERT = "INSERT INTO bench_ceiling (payload) VALUES (%s) RETURNING id"
_conn: psycopg.Connection | None = None  # this worker process's connection, opened after gunicorn forks


def _db() -> psycopg.Connection:
    global _conn
    if _conn is None or _conn.closed:
        _conn = psycopg.connect(os.environ["DATABASE_URL"], autocommit=True)
    return _conn


def _respond(start_response, status: str, body: bytes) -> list[bytes]:
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def bare_app(environ, start_response):
    """WSGI, no framework: POST (any path) inserts the JSON body and returns 201 ``{"id": ...}``; GET answers 200.

    gunicorn runs it with 1 thread per worker, so each worker's one connection serves one request
    at a time (psycopg serialises a connection's use across threads anyway).
    """
    if environ["REQUEST_METHOD"] != "POST":  # GET /api/health from the start-up check
        return _respond(start_response, "200 OK", b'{"status":"ok"}')
    try:
        payload = json.loads(environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)))
    except ValueError:
        return _respond(start_response, "400 Bad Request", b'{"detail":"invalid JSON"}')
    (row_id,) = _db().execute(_INSERT, (Jsonb(payload),)).fetchone()
    return _respond(start_response, "201 Created", json.dumps({"id": row_id}).encode())


# --- the benchmark --------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--requests", type=int, default=2000, help="requests per measured run")
    parser.add_argument("--port", type=int, default=8094, help="first port (one per variant)")
    parser.add_argument("--keep", action="store_true", help="keep the bench database afterwards")
    args = parser.parse_args()

    recreate_database()
    try:
        setup_django()
        token, floor_order = seed()
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute("CREATE TABLE bench_ceiling (id bigserial PRIMARY KEY, payload jsonb NOT NULL)")
        desc = SERVER_LAYOUTS["gunicorn-gthread"][0].format(workers=args.workers)
        print(f"server layout: {desc}; {args.requests} requests per run after {WARMUP_REQUESTS} warm-up", flush=True)

        body = lambda seq: json.dumps({"order_id": floor_order}).encode()  # noqa: E731 - same body for every variant
        variants = {
            "floor": lambda port: running_server("gunicorn-gthread", port=port, workers=args.workers,
                                                 env=production_env()),
            "floor_lean": lambda port: running_server(
                "gunicorn-gthread", port=port, workers=args.workers,
                env=production_env(DJANGO_SETTINGS_MODULE="bench.lean_settings"),
            ),
            "bare_wsgi": lambda port: running_server("bare-wsgi", port=port, workers=args.workers,
                                                     env=production_env()),
        }
        runs: dict[tuple[str, int], LoadResult] = {}
        sent = dict.fromkeys(variants, 0)
        failures: list[str] = []
        for i, (name, start) in enumerate(variants.items()):
            with start(args.port + i) as srv:
                common = {"port": srv.port, "token": token, "path": FLOOR_PATH, "body_fn": body, "expect": b'"id"'}
                # Warm-up: every worker process imports, connects and fills its caches.
                warm = run_load(connections=4, requests=WARMUP_REQUESTS, seq_start=0, **common)
                sent[name] += warm.requests
                failures += warm.failures
                for conns in (1, 4):
                    r = run_load(connections=conns, requests=args.requests, seq_start=0, **common)
                    runs[name, conns] = r
                    sent[name] += r.requests
                    failures += r.failures

        from orders.models import OrderEvent

        floor_rows = OrderEvent.objects.filter(payload__bench="floor").count()
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            (bare_rows,) = conn.execute("SELECT count(*) FROM bench_ceiling").fetchone()

        print(f"{'variant':<12}{'conns':>6}{'requests':>10}{'p50 ms':>10}{'p99 ms':>10}{'req/s':>10}")
        for (name, conns), r in runs.items():
            print(f"{name:<12}{conns:>6}{r.requests:>10}{r.p50_ms:>10.2f}{r.p99_ms:>10.2f}{r.per_s:>10.0f}")
        print(f"targets (issue #2, POST /api/orders): c1 p99 <= {TARGET_C1_P99_MS:g} ms, "
              f"c4 >= {TARGET_C4_PER_S:g} req/s")
        for name in variants:
            c1_ok = runs[name, 1].p99_ms <= TARGET_C1_P99_MS
            c4_ok = runs[name, 4].per_s >= TARGET_C4_PER_S
            print(f"  {name:<12} c1 p99 {'meets' if c1_ok else 'misses'}, c4 req/s {'meets' if c4_ok else 'misses'}")
        print(f"rows inserted: floor events {floor_rows} of {sent['floor'] + sent['floor_lean']}, "
              f"bench_ceiling {bare_rows} of {sent['bare_wsgi']}; failures: {len(failures)}")
        for f in failures[:5]:
            print("  failure:", f)

        figures: dict = {}
        for name, key in (("floor", "floor"), ("floor_lean", "floor_lean"), ("bare_wsgi", "bare")):
            c1, c4 = runs[name, 1], runs[name, 4]
            figures |= {
                f"{key}_c1_p50_ms": c1.p50_ms,
                f"{key}_c1_p99_ms": c1.p99_ms,
                f"{key}_c1_per_s": c1.per_s,
                f"{key}_c4_p99_ms": c4.p99_ms,
                f"{key}_c4_per_s": c4.per_s,
            }
        figures |= {
            "target_c1_p99_ms": TARGET_C1_P99_MS,
            "target_c4_per_s": TARGET_C4_PER_S,
            "layout": "gunicorn-gthread",
            "workers": args.workers,
            "requests": args.requests,
            "failures": len(failures),
        }
    except BaseException:
        clean_up(keep=args.keep)
        raise
    return finish_run(figures, failures=failures, keep=args.keep)


if __name__ == "__main__":
    sys.exit(main())
