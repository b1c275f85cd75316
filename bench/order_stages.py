"""Benchmark: where one ``POST /api/orders`` spends its CPU and wall time, stage by stage, in one process.

bench/api_submit.py measures the order through a server; this script calls the same WSGI
application directly (no HTTP server, no load-client process), with the same production settings,
bench database, seed, quote feed and request bodies, and times each stage of the order path with
wrappers around the functions that carry it (``time.thread_time`` for the request thread's CPU,
``time.perf_counter`` for wall time). The stages nest as listed: a stage's figures include the
stages indented under it. It also times the *floor* (``/api/bench/floor``) the same way, and the
process's CPU per request (every thread: the channel-layer sender included).

The wrappers cost a few microseconds per stage; the whole-request figures are taken with them in
place. Each run: 300 orders of warm-up, ``ANALYZE``, then ``--orders`` timed orders and as many floor
requests. Every response must be 201 (orders ROUTED); a single failure fails the run.

Ends with one JSON line: ``order_cpu_p50_ms``, ``order_wall_p50_ms``, ``order_wall_p99_ms``,
``order_process_cpu_ms``, ``floor_cpu_p50_ms``, ``floor_wall_p50_ms``, ``floor_wall_p99_ms``, and
``stage_<name>_cpu_p50_ms`` / ``stage_<name>_wall_p50_ms`` for every stage.

Usage: ``python bench/order_stages.py [--orders 1000] [--keep]``
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    analyze_database,
    finish_run,
    percentile,
    production_env,
    recreate_database,
    setup_django,
)

#: (name, indent, "module:attribute path" of the function timed). Names are the JSON keys' middles.
STAGES = (
    ("request", 0, "django.core.handlers.wsgi:WSGIHandler.__call__"),
    ("drf_view", 1, "rest_framework.views:APIView.dispatch"),
    ("authentication", 2, "rest_framework.views:APIView.perform_authentication"),
    ("throttle", 2, "rest_framework.views:APIView.check_throttles"),
    ("validation", 2, "rest_framework.serializers:Serializer.is_valid"),
    ("order_submit", 2, "orders.api.views:order_submit"),
    ("risk_start", 3, "risk.engine:PreTradeRiskEngine.start"),
    ("route", 3, "routing.router:SmartOrderRouter.route"),
    ("risk_evaluate", 3, "risk.engine:PreTradeRiskEngine.evaluate"),
    ("inserts_sent", 3, "orders.services.submit:send_insert"),
    ("dispatch", 3, "orders.services.dispatch:order_dispatch_submit"),
    ("stream_publish", 3, "orders.services.submit:publish_orders_updated"),
    ("response_render", 1, "rest_framework.response:Response.render"),
)


class StageTimer:
    """Wrap each stage's function so that, while ``on``, every call records (thread CPU, wall) in ms."""

    def __init__(self) -> None:
        self.on = False
        self.samples: dict[str, list[tuple[float, float]]] = defaultdict(list)

    def install(self) -> None:
        import importlib

        for name, _indent, target in STAGES:
            module_name, _, path = target.partition(":")
            owner = importlib.import_module(module_name)
            *parents, attr = path.split(".")
            for part in parents:
                owner = getattr(owner, part)
            setattr(owner, attr, self._wrap(name, getattr(owner, attr)))

    def _wrap(self, name: str, fn):
        samples = self.samples[name]

        def timed(*args, **kwargs):
            if not self.on:
                return fn(*args, **kwargs)
            cpu, wall = time.thread_time(), time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                samples.append(((time.thread_time() - cpu) * 1e3, (time.perf_counter() - wall) * 1e3))

        return timed


def _caller(app, token: str):
    def call(path: str, body: bytes) -> None:
        environ = {
            "REQUEST_METHOD": "POST", "PATH_INFO": path, "SCRIPT_NAME": "", "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8091", "HTTP_HOST": "127.0.0.1", "wsgi.url_scheme": "http",
            "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body),
            "HTTP_AUTHORIZATION": f"Bearer {token}", "wsgi.errors": sys.stderr,
        }
        status: list[str] = []
        content = b"".join(app(environ, lambda s, headers, *exc: status.append(s)))
        if not status[0].startswith("201") or (path == "/api/orders" and b'"ROUTED"' not in content):
            raise RuntimeError(f"{path} answered {status[0]}: {content[:300]!r}")
    return call


def _timed_requests(call, path: str, bodies) -> tuple[list[float], list[float], float]:
    cpu, wall = [], []
    process_cpu = time.process_time()
    for body in bodies:
        c, w = time.thread_time(), time.perf_counter()
        call(path, body)
        cpu.append((time.thread_time() - c) * 1e3)
        wall.append((time.perf_counter() - w) * 1e3)
    return cpu, wall, (time.process_time() - process_cpu) * 1e3 / max(1, len(cpu))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1000, help="timed orders (and floor requests)")
    parser.add_argument("--keep", action="store_true", help="keep the bench database afterwards")
    args = parser.parse_args()

    os.environ.update(production_env())
    recreate_database()
    setup_django()
    from bench.api_submit import QuoteFeeder, order_body, seed

    token, floor_order = seed()
    feeder = QuoteFeeder()
    feeder.start()
    failures: list[str] = []
    figures: dict = {}
    try:
        from django.core.wsgi import get_wsgi_application

        timer = StageTimer()
        timer.install()
        call = _caller(get_wsgi_application(), token)
        floor_body = json.dumps({"order_id": floor_order}).encode()
        body = order_body("stages")
        for seq in range(300):  # warm-up: imports, connections, prepared statements, caches
            call("/api/orders", body(seq))
            call("/api/bench/floor", floor_body)
        analyze_database()
        timer.on = True
        order_cpu, order_wall, order_process = _timed_requests(
            call, "/api/orders", (body(seq) for seq in range(1_000_000, 1_000_000 + args.orders)))
        timer.on = False
        floor_cpu, floor_wall, floor_process = _timed_requests(
            call, "/api/bench/floor", (floor_body for _ in range(args.orders)))
    except RuntimeError as exc:
        failures.append(str(exc))
    finally:
        feeder.stop.set()
    if failures:
        print("failure:", failures[0])
        return finish_run({"failures": len(failures)}, failures=failures, keep=args.keep)

    print(f"{args.orders} orders, then {args.orders} floor requests, in one process (ms per call, p50 / p99)")
    print(f"{'stage':<28}{'calls/order':>12}{'CPU p50':>10}{'CPU p99':>10}{'wall p50':>10}{'wall p99':>10}")
    for name, indent, _target in STAGES:
        samples = timer.samples[name]
        cpu = [c for c, _ in samples]
        wall = [w for _, w in samples]
        print(f"{'  ' * indent + name:<28}{len(samples) / args.orders:>12.1f}{percentile(cpu, 0.5):>10.3f}"
              f"{percentile(cpu, 0.99):>10.3f}{percentile(wall, 0.5):>10.3f}{percentile(wall, 0.99):>10.3f}")
        figures[f"stage_{name}_cpu_p50_ms"] = percentile(cpu, 0.5)
        figures[f"stage_{name}_wall_p50_ms"] = percentile(wall, 0.5)
    print(f"order: request thread CPU p50 {percentile(order_cpu, 0.5):.3f}, wall p50 {percentile(order_wall, 0.5):.3f} "
          f"p99 {percentile(order_wall, 0.99):.3f}; process CPU per order {order_process:.3f} (every thread)")
    print(f"floor: request thread CPU p50 {percentile(floor_cpu, 0.5):.3f}, wall p50 {percentile(floor_wall, 0.5):.3f} "
          f"p99 {percentile(floor_wall, 0.99):.3f}; process CPU per request {floor_process:.3f}")
    figures = {
        "order_cpu_p50_ms": percentile(order_cpu, 0.5),
        "order_wall_p50_ms": percentile(order_wall, 0.5),
        "order_wall_p99_ms": percentile(order_wall, 0.99),
        "order_process_cpu_ms": order_process,
        "floor_cpu_p50_ms": percentile(floor_cpu, 0.5),
        "floor_wall_p50_ms": percentile(floor_wall, 0.5),
        "floor_wall_p99_ms": percentile(floor_wall, 0.99),
        **figures,
        "orders": args.orders,
        "failures": 0,
    }
    return finish_run(figures, failures=failures, keep=args.keep)


if __name__ == "__main__":
    sys.exit(main())
