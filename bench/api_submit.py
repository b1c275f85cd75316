"""Benchmark: POST /api/orders against a running server on PostgreSQL + Redis (production settings).

Measures order submission (validation, idempotency, routing, pre-trade risk, order + events,
dispatch to the ``venues`` queue) with distinct operation_ids that all pass risk, over 1 and 4
keep-alive connections, and beside it the *floor*: the same server's minimal authenticated DRF
endpoint doing one INSERT (``/api/bench/floor``). Every response is checked (201, status ROUTED);
a single failure fails the run.

Targets (issue #2): p99 ≤ 5 ms at 1 connection, ≥ 600 orders/s at 4 connections, c1 p99 ≤ 1.5 ×
floor c1 p99. Ends with one JSON line: c1_p50_ms, c1_p99_ms, c4_orders_per_s, floor_c1_p99_ms,
floor_ratio (+ details).

Usage: ``python bench/api_submit.py [--layout gunicorn-gthread] [--workers 4] [--requests 3000]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    SERVER_LAYOUTS,
    analyze_database,
    finish_run,
    production_env,
    recreate_database,
    run_load,
    running_server,
    seed_wide_risk_limits,
    setup_django,
)

INSTRUMENT = "BINANCE-SPOT:SPOT_PAIR:BTC-USDT"
MID = Decimal("40000.00")


def seed() -> tuple[str, str]:
    """Create the venue, instrument, strategy, generous limits and a token; return (token, floor order id)."""
    from django.contrib.auth import get_user_model
    from knox.models import AuthToken

    from orders.models import Order, Strategy
    from venues.models import Instrument, Venue

    venue = Venue.objects.create(
        code="BINANCE-SPOT", kind=Venue.Kind.NAUTILUS, adapter="binance_spot", mode=Venue.Mode.PAPER,
        maker_fee_bps=Decimal("10"), taker_fee_bps=Decimal("10"), latency_ms=Decimal("5"),
    )
    Instrument.objects.create(
        venue=venue, instrument_key=INSTRUMENT, nautilus_instrument_id="BTCUSDT.BINANCE", venue_symbol="BTCUSDT",
        base_currency="BTC", quote_currency="USDT", settlement_currency="USDT", tick_size=Decimal("0.01"),
        lot_size=Decimal("0.000001"), min_quantity=Decimal("0.000001"), max_quantity=Decimal("9000"),
        min_notional=Decimal("10"),
    )
    user = get_user_model().objects.create_user("svc-bench")
    strategy = Strategy.objects.create(id="bench", name="Benchmark", service_account=user)
    seed_wide_risk_limits(strategy_id="bench", price_collar_bps="500")  # every limit kind on, wide
    _, token = AuthToken.objects.create(user=user)
    floor_order = Order.objects.create(
        strategy=strategy, operation_id="bench-floor", instrument_key=INSTRUMENT, side="BUY", order_type="LIMIT",
        quantity=Decimal("0.001"), price=MID, status="DENIED", rejection_reason="benchmark floor anchor",
    )
    return token, str(floor_order.id)


class QuoteFeeder(threading.Thread):
    """Keep a fresh BTC-USDT quote in the Redis market-data store, as the venue layer will."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stop = threading.Event()

    def run(self) -> None:
        from django.utils import timezone

        from venues.marketdata import BookLevel, MarketSnapshot, market_data

        store = market_data()
        while not self.stop.is_set():
            bid, ask = MID - Decimal("0.01"), MID + Decimal("0.01")
            store.publish(MarketSnapshot(
                instrument_key=INSTRUMENT, ts=timezone.now(), bid=bid, ask=ask, bid_size=Decimal("5"),
                ask_size=Decimal("5"), bids=(BookLevel(bid, Decimal("5")),), asks=(BookLevel(ask, Decimal("5")),),
            ))
            self.stop.wait(0.5)


def order_body(run: str):
    def body(seq: int) -> bytes:
        # Distinct operation_id and quantity (the repeated-order throttle keys on quantity).
        qty = Decimal("0.001") + Decimal(seq % 500000) * Decimal("0.000001")
        return json.dumps({
            "operation_id": f"{run}-{seq}", "instrument_key": INSTRUMENT, "side": "BUY" if seq % 2 else "SELL",
            "order_type": "LIMIT", "quantity": str(qty), "price": str(MID - 5 if seq % 2 else MID + 5),
            "time_in_force": "GTC",
        }).encode()
    return body


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layout", default="gunicorn-gthread", choices=sorted(SERVER_LAYOUTS))
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--requests", type=int, default=3000, help="requests per measured run")
    parser.add_argument("--port", type=int, default=8091)
    parser.add_argument("--keep", action="store_true", help="keep the bench database afterwards")
    args = parser.parse_args()

    recreate_database()
    setup_django()
    token, floor_order = seed()
    feeder = QuoteFeeder()
    feeder.start()
    desc = SERVER_LAYOUTS[args.layout][0].format(workers=args.workers)
    print(f"server layout: {desc}; {args.requests} requests per run", flush=True)
    floor_body = lambda seq: json.dumps({"order_id": floor_order}).encode()  # noqa: E731
    figures: dict = {}
    try:
        with running_server(args.layout, port=args.port, workers=args.workers, env=production_env()) as srv:
            common = {"port": srv.port, "token": token}
            # Warm-up: every worker process imports, connects and fills its caches.
            run_load(path="/api/orders", body_fn=order_body("warm"), connections=4, requests=400, seq_start=0,
                     expect=b'"ROUTED"', **common)
            run_load(path="/api/bench/floor", body_fn=floor_body, connections=4, requests=400, seq_start=0,
                     expect=b'"id"', **common)
            analyze_database()  # planner statistics, as in production (bench.common.analyze_database)
            runs = {
                "c1": run_load(path="/api/orders", body_fn=order_body("c1"), connections=1, requests=args.requests,
                               seq_start=1_000_000, expect=b'"ROUTED"', **common),
                "c4": run_load(path="/api/orders", body_fn=order_body("c4"), connections=4, requests=args.requests,
                               seq_start=2_000_000, expect=b'"ROUTED"', **common),
                "floor_c1": run_load(path="/api/bench/floor", body_fn=floor_body, connections=1,
                                     requests=args.requests, seq_start=0, expect=b'"id"', **common),
                "floor_c4": run_load(path="/api/bench/floor", body_fn=floor_body, connections=4,
                                     requests=args.requests, seq_start=0, expect=b'"id"', **common),
            }
    finally:
        feeder.stop.set()

    failures = [f for r in runs.values() for f in r.failures]
    from orders.models import Order

    routed = Order.objects.filter(strategy_id="bench", status="ROUTED", operation_id__regex=r"^c[14]-").count()
    print(f"{'run':<10}{'conns':>6}{'requests':>10}{'p50 ms':>10}{'p99 ms':>10}{'req/s':>10}{'machine CPU ms/req':>20}")
    for name, r in runs.items():
        print(f"{name:<10}{r.connections:>6}{r.requests:>10}{r.p50_ms:>10.2f}{r.p99_ms:>10.2f}{r.per_s:>10.0f}"
              f"{r.machine_cpu_ms:>20.2f}")
    print("machine CPU ms per request by process group:")
    for name, r in runs.items():
        print(f"  {name:<10}{r.cpu_split()}")
    cores = os.cpu_count() or 1
    print(f"CPU budget: {cores} cores at 600 orders/s leave {cores * 1000 / 600:.2f} ms of machine CPU per order "
          f"(servers, PostgreSQL, Redis and clients together); c4 used {runs['c4'].machine_cpu_ms:.2f}, "
          f"the floor's c4 {runs['floor_c4'].machine_cpu_ms:.2f}")
    print(f"orders stored ROUTED: {routed} of {runs['c1'].requests + runs['c4'].requests}; failures: {len(failures)}")
    for f in failures[:5]:
        print("  failure:", f)
    figures = {
        "c1_p50_ms": runs["c1"].p50_ms,
        "c1_p99_ms": runs["c1"].p99_ms,
        "c4_orders_per_s": runs["c4"].per_s,
        "c4_p99_ms": runs["c4"].p99_ms,
        "floor_c1_p99_ms": runs["floor_c1"].p99_ms,
        "floor_c4_per_s": runs["floor_c4"].per_s,
        "floor_ratio": runs["c1"].p99_ms / runs["floor_c1"].p99_ms,
        "c4_machine_cpu_ms_per_order": runs["c4"].machine_cpu_ms,
        "floor_c4_machine_cpu_ms_per_request": runs["floor_c4"].machine_cpu_ms,
        "layout": args.layout,
        "workers": args.workers,
        "failures": len(failures),
    }
    return finish_run(figures, failures=failures, keep=args.keep)


if __name__ == "__main__":
    sys.exit(main())
