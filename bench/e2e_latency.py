"""Benchmark: end-to-end order latency through the production topology, and the journal writer under a TWAP storm.

Topology (as deployed, on this machine): PostgreSQL (bench database ``odum_bench``, created and
dropped), Redis (``BENCH_REDIS_URL``, DB 15: broker, cache, heartbeat, market data), the API on
gunicorn (4 gthread workers, the chosen layout of bench/api_submit.py), and one trading worker
``celery -A celery_app worker -Q venues -P solo`` hosting the TradingNode with a paper BINANCE-SPOT
venue replaying the recorded BTCUSDT quotes of ../shared/data/market (real time, looped).

Part 1 — latency (``--orders``, default 600, half LIMIT half MARKET, interleaved), sent over one
keep-alive connection at ``--rate`` orders/s (default 10: a rate the trading worker sustains on this
machine, so the figures are latency, not queueing; each request also waits for the previous 201).
An extra back-to-back run (``--burst``, default 200 orders, printed but not in the JSON) shows what
happens above that rate: orders queue for the worker.

- LIMIT orders 20 % away from the recorded mid (BUY below, SELL above) rest at the venue: they reach
  ACCEPTED. Once ``--cancel-after`` (default 10) more orders have been sent after one (~1 s), the
  script reads its row — its figures are taken from that read, which must show ACCEPTED with
  ACCEPTED as its last event — and cancels it through the API (202, PENDING_CANCEL; it must end
  CANCELED). So the paper venue holds about five resting orders at a time, as a strategy that
  replaces its quotes would, instead of every LIMIT order of the run: NautilusTrader's sandbox
  matching engine walks all resting orders on every command and every replayed quote, and with all
  300 left resting (``--cancel-after 0``, the behaviour before session 9) the venue's part of an
  order grew through the run (submitted → ACCEPTED at the bridge 0.9 → 2.7 ms, → FILLED 1.8 →
  3.8 ms, first and last hundred orders). The cancels' own work (API, worker, node, journal) runs
  in the same processes and is in the CPU figures.
- MARKET orders (alternating side, so the position stays near flat) fill at the recorded touch.

**The interval measured** is from the order's ``created_at`` — the time the API's request handler
inserted the row, inside the transaction after which the 201 is sent — to the row's ``updated_at``
once it is ACCEPTED (LIMIT) or FILLED (MARKET): the time the journal writer in the trading worker
saved that status, inside the transaction that records it (``auto_now``; the commit follows within
the same call). Both stamps are ``timezone.now()`` on this one machine. It spans: the rest of the
API transaction and its commit, the broker publish, the worker taking the task, the claim
transaction (ROUTED → SUBMITTED), the hand-off to the node's loop, the paper venue, the bridge
strategy and the journal writer's transaction. No later event touches those rows before they are
read (a LIMIT order is canceled only after its read; a MARKET order's last event is its fill), which
the script checks.
Printed beside it: the same interval split at ``submitted_at`` (the worker's claim), and measured
from the moment the client had read the 201 instead of from ``created_at``. Every order of the run,
its stamps and intervals, goes to ``bench/out/e2e_latency-orders.csv``.

Part 2 — journal writer throughput (``--twaps``, default 60): that many TWAP orders (MARKET,
``horizon_secs`` 10, ``interval_secs`` 1: ten slices each, three journal events per slice — child
created, submitted, filled — plus the parent's last slice) submitted back to back, so their slices
land together. The worker's heartbeat (every 2 s) carries the journal's counters (events applied +
ignored + failed) and queue depth; ``journal_events_per_s`` is Σ Δevents / Σ Δt over the heartbeat
intervals during which the queue was non-empty at both ends (the writer busy throughout: its
capacity). If the queue never stayed non-empty, it is the mean rate over the storm and
``journal_saturated`` is false (the offered load was below capacity). Every TWAP must end FILLED:
a slice the node denies (its own risk engine's order-rate limit) ends that TWAP CANCELED, which the
run reports as a failure.

Targets (issue #3 §7): p99 ≤ 15 ms to ACCEPTED (LIMIT) and to FILLED (MARKET).

Ends with one JSON line: ``accepted_p50_ms``, ``accepted_p99_ms``, ``filled_p50_ms``,
``filled_p99_ms``, ``journal_events_per_s`` (+ details). Any failed request, order that does not
reach its status, or journal failure fails the run.

Usage: ``python bench/e2e_latency.py [--orders 600] [--twaps 100] [--workers 4] [--keep]``
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    CpuWindow,
    analyze_database,
    delete_node_cache,
    drop_database,
    latency_row,
    percentile,
    print_json_line,
    production_env,
    recreate_database,
    running_server,
    running_trading_worker,
    seed_wide_risk_limits,
    setup_django,
    trading_worker_beat,
    wait_for,
)

INSTRUMENT = "BINANCE-SPOT:SPOT_PAIR:BTC-USDT"
DATA_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
QUOTES = "market/binance_spot_btcusdt_quotes_2021-01-08.parquet"
TRADES = "market/binance_spot_btcusdt_trades_2021-01-08.parquet"
CENT = Decimal("0.01")


def seed() -> str:
    """Create the paper venue, its listing, the strategy ``bench`` with wide limits, and return a token."""
    from django.contrib.auth import get_user_model
    from knox.models import AuthToken

    from orders.models import Strategy
    from risk.models import Scope, TradingState
    from venues.models import Instrument, Venue

    venue = Venue.objects.create(
        code="BINANCE-SPOT", name="Binance Spot (paper)", kind=Venue.Kind.NAUTILUS, adapter="binance_spot",
        mode=Venue.Mode.PAPER, maker_fee_bps=Decimal("10"), taker_fee_bps=Decimal("10"), latency_ms=Decimal("5"),
        config={"replay": {"data_dir": str(DATA_DIR), "speed": 1.0, "loop": True, "instruments": {INSTRUMENT: [
            {"kind": "quotes", "format": "binance_quotes_parquet", "path": QUOTES},
            {"kind": "trades", "format": "binance_trades_parquet", "path": TRADES}]}}},
    )
    Instrument.objects.create(
        venue=venue, instrument_key=INSTRUMENT, nautilus_instrument_id="BTCUSDT.BINANCE", venue_symbol="BTCUSDT",
        base_currency="BTC", quote_currency="USDT", settlement_currency="USDT", tick_size=Decimal("0.01"),
        lot_size=Decimal("0.000001"), min_quantity=Decimal("0.000001"), max_quantity=Decimal("9000"),
        min_notional=Decimal("10"),
    )
    user = get_user_model().objects.create_user("svc-bench")
    Strategy.objects.create(id="bench", name="Benchmark", service_account=user)
    # Every limit kind on, wide; the collar (50 %) lets LIMIT prices 20 % from the mid through.
    seed_wide_risk_limits(strategy_id="bench", price_collar_bps="5000", venues=("BINANCE-SPOT",))
    TradingState.objects.create(scope=Scope.STRATEGY, scope_key="bench", state="ACTIVE", reason="benchmark")
    _, token = AuthToken.objects.create(user=user)
    return token


class Client:
    """One keep-alive connection posting orders; every answer must be 201 with status ROUTED."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.failures: list[str] = []

    def post(self, body: dict) -> tuple[dict | None, datetime]:
        """POST one order; return (response body or None on failure, wall-clock time the 201 was read)."""
        resp, raw = self._post("/api/orders", body)
        read_at = datetime.now(UTC)
        order = json.loads(raw) if raw.startswith(b"{") else None
        if resp.status != 201 or not order or order.get("status") != "ROUTED":
            self.failures.append(f"{resp.status} {raw[:300]!r}")
            return None, read_at
        return order, read_at

    def cancel(self, order_id: str) -> None:
        """Cancel one order; the answer must be 202 (PENDING_CANCEL: sent to the venue)."""
        resp, raw = self._post(f"/api/orders/{order_id}/cancel",
                               {"reason": "benchmark: measured, canceled to keep the paper book small"})
        if resp.status != 202:
            self.failures.append(f"cancel {order_id}: {resp.status} {raw[:300]!r}")

    def _post(self, path: str, body: dict) -> tuple[http.client.HTTPResponse, bytes]:
        # One POST on the kept connection; reconnect and send again once if the server closed it.
        data = json.dumps(body).encode()
        try:
            self.conn.request("POST", path, body=data, headers=self.headers)
            resp = self.conn.getresponse()
            return resp, resp.read()
        except (http.client.HTTPException, OSError):
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            self.conn.request("POST", path, body=data, headers=self.headers)
            resp = self.conn.getresponse()
            return resp, resp.read()


def _mid() -> Decimal:
    from venues.marketdata import market_data

    snapshot = wait_for(lambda: market_data().get(INSTRUMENT), timeout=30, message="market data from the node")
    return (snapshot.bid + snapshot.ask) / 2


def latency_orders(count: int, mid: Decimal, run: str, *, base: int) -> list[dict]:
    """Return ``count`` order bodies: LIMIT (even) far from ``mid`` and MARKET (odd), sides alternating.

    Quantities are ``0.001 + (base + seq) × 0.000001`` BTC: distinct across runs with distinct ``base``
    (the repeated-order throttle denies an identical order within its window).
    """
    below, above = (mid * Decimal("0.8")).quantize(CENT), (mid * Decimal("1.2")).quantize(CENT)
    bodies = []
    for seq in range(count):
        qty = Decimal("0.001") + Decimal(base + seq) * Decimal("0.000001")
        buy = (seq // 2) % 2 == 0
        body = {"operation_id": f"{run}-{seq}", "instrument_key": INSTRUMENT, "side": "BUY" if buy else "SELL",
                "quantity": str(qty), "time_in_force": "GTC"}
        if seq % 2 == 0:
            body |= {"order_type": "LIMIT", "price": str(below if buy else above)}
        else:
            body |= {"order_type": "MARKET"}
        bodies.append(body)
    return bodies


def _ms(delta) -> float:
    return delta.total_seconds() * 1000


def measure_latency(client: Client, bodies: list[dict], *, timeout: float, rate: float = 0.0,
                    cancel_after: int = 0, csv_name: str | None = None) -> dict:
    """Send ``bodies`` (``rate`` per second, 0 = back to back), wait for every order's status, return the
    intervals (ms) and the achieved send rate.

    ``csv_name``: also write one row per measured order to ``bench/out/<csv_name>.csv`` (its type,
    its three stamps as Unix seconds and the intervals in ms), for a closer look at the slowest.

    ``cancel_after`` > 0: once that many more orders have been sent after a LIMIT order, the LIMIT
    order's row is read — ACCEPTED, its last event ACCEPTED: its figures are taken from that read —
    and the order is canceled, so the paper venue holds a handful of resting orders, not every LIMIT
    order of the run (the sandbox's matching engine walks all of them on every command and quote).
    One not yet ACCEPTED by then is left resting and measured at the end, as with 0.
    """
    from orders.models import Order, OrderEvent

    read_at: dict[str, datetime] = {}
    sent_limits: list[str] = []
    measured: dict[str, tuple] = {}  # LIMIT orders read ACCEPTED and then canceled: their row as read
    canceled: list[str] = []

    def rows_of(ids):
        rows = list(Order.objects.filter(pk__in=ids).values_list("id", "order_type", "status", "rejection_reason",
                                                                 "created_at", "submitted_at", "updated_at"))
        last_event = dict(OrderEvent.objects.filter(order_id__in=ids).order_by("order_id", "-ts", "-id")
                          .distinct("order_id").values_list("order_id", "type"))
        return [(*row, last_event.get(row[0])) for row in rows]

    started = time.monotonic()
    for seq, body in enumerate(bodies):
        if rate > 0:
            delay = started + seq / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        order, at = client.post(body)
        if order is not None:
            read_at[order["order_id"]] = at
            if body["order_type"] == "LIMIT":
                sent_limits.append(order["order_id"])
        if cancel_after and len(sent_limits) > cancel_after // 2:
            # LIMIT orders are every other order: this one was sent ~cancel_after orders ago.
            oldest = sent_limits.pop(0)
            (row,) = rows_of([oldest])
            if row[2] == "ACCEPTED" and row[7] == "ACCEPTED":
                measured[oldest] = row
                client.cancel(oldest)
                canceled.append(oldest)
    sent_per_s = len(bodies) / (time.monotonic() - started)
    target = {"LIMIT": "ACCEPTED", "MARKET": "FILLED"}
    ids = list(read_at)

    def done():
        pending = (Order.objects.filter(pk__in=ids).exclude(status__in=("ACCEPTED", "FILLED", "REJECTED",
                                                                           "CANCELED", "DENIED")).count())
        return pending == 0

    wait_for(done, timeout=timeout, message="every order ACCEPTED (LIMIT) or FILLED (MARKET), every cancel done",
             interval=0.2)
    rows = [measured.get(str(row[0]), row) for row in rows_of(ids)]
    out = {"LIMIT": {"total": [], "to_claim": [], "claim_to_persisted": [], "from_201": []},
           "MARKET": {"total": [], "to_claim": [], "claim_to_persisted": [], "from_201": []}}
    wrong = []
    lines = ["order_id,order_type,created_at,submitted_at,saved_at,total_ms,to_claim_ms,claim_to_saved_ms,"
             "from_201_ms"]
    for pk, order_type, status, reason, created, submitted, updated, last_event in rows:
        if status != target[order_type] or last_event != target[order_type]:
            wrong.append(f"{pk} {order_type} {status} (last event {last_event}) {reason}")
            continue
        figures = out[order_type]
        intervals = (_ms(updated - created), _ms(submitted - created), _ms(updated - submitted),
                     _ms(updated - read_at[str(pk)]))
        for name, value in zip(("total", "to_claim", "claim_to_persisted", "from_201"), intervals):
            figures[name].append(value)
        lines.append(f"{pk},{order_type},{created.timestamp():.6f},{submitted.timestamp():.6f},"
                     f"{updated.timestamp():.6f}," + ",".join(f"{value:.3f}" for value in intervals))
    if csv_name:
        path = Path(__file__).resolve().parent / "out" / f"{csv_name}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n")
    not_canceled = Order.objects.filter(pk__in=canceled).exclude(status="CANCELED").count()
    if wrong:
        client.failures.extend(f"wrong final state: {w}" for w in wrong[:20])
    if not_canceled:
        client.failures.append(f"{not_canceled} of {len(canceled)} canceled LIMIT orders not CANCELED")
    out["sent_per_s"] = sent_per_s
    out["canceled"] = len(canceled)
    out["resting"] = Order.objects.filter(pk__in=ids, status="ACCEPTED").count()
    return out


def twap_storm(client: Client, count: int, *, worker: str, horizon: int, interval: int, run: str) -> dict:
    """Submit ``count`` TWAPs back to back; sample the heartbeat of trading worker ``worker`` until they are done."""
    from orders.models import Order

    def beat() -> dict:
        value = trading_worker_beat(worker)
        journal = value.get("status", {}).get("journal", {})
        return {"ts": datetime.fromisoformat(value["ts"]) if value.get("ts") else None,
                "handled": journal.get("applied", 0) + journal.get("ignored", 0) + journal.get("failed", 0),
                "failed": journal.get("failed", 0), "queue": journal.get("queue_depth", 0)}

    samples = [beat()]
    parents = []
    started = time.monotonic()
    for seq in range(count):
        qty = Decimal("0.01") + Decimal(seq) * Decimal("0.000001")
        order, _ = client.post({
            "operation_id": f"{run}-{seq}", "instrument_key": INSTRUMENT, "side": "BUY" if seq % 2 == 0 else "SELL",
            "order_type": "MARKET", "quantity": str(qty), "time_in_force": "GTC", "exec_algorithm": "TWAP",
            "exec_algorithm_params": {"horizon_secs": horizon, "interval_secs": interval}})
        if order is not None:
            parents.append(order["order_id"])
        if samples[-1]["ts"] != (current := beat())["ts"]:
            samples.append(current)
    submit_secs = time.monotonic() - started
    deadline = time.monotonic() + horizon + 180
    progress, progress_at = None, time.monotonic()
    while True:
        current = beat()
        if current["ts"] != samples[-1]["ts"]:
            samples.append(current)
        open_parents = Order.objects.filter(pk__in=parents).exclude(status__in=("FILLED", "CANCELED", "REJECTED")).count()
        if open_parents == 0 and current["queue"] == 0 and len(samples) > 2:
            break
        if (open_parents, current["handled"]) != progress:
            progress, progress_at = (open_parents, current["handled"]), time.monotonic()
        stuck = time.monotonic() - progress_at > horizon + 30 and current["queue"] == 0
        if stuck or time.monotonic() > deadline:
            client.failures.append(f"TWAP storm: {open_parents} parents still open "
                                   f"({'no progress for ' + str(horizon + 30) + ' s' if stuck else 'deadline'})")
            break
        time.sleep(0.25)
    statuses = list(Order.objects.filter(pk__in=parents).values_list("status", flat=True))
    not_filled = [s for s in statuses if s != "FILLED"]
    if not_filled:
        client.failures.append(f"TWAP storm: {len(not_filled)} parents not FILLED: {sorted(set(not_filled))}")
    children = Order.objects.filter(parent_id__in=parents).count()
    busy_events = busy_secs = 0.0
    intervals = []
    for a, b in zip(samples, samples[1:]):
        if a["ts"] is None or b["ts"] is None:
            continue
        dt = (b["ts"] - a["ts"]).total_seconds()
        if dt <= 0:
            continue
        rate = (b["handled"] - a["handled"]) / dt
        intervals.append((round(dt, 2), b["handled"] - a["handled"], a["queue"], b["queue"], round(rate, 1)))
        if a["queue"] > 0 and b["queue"] > 0:
            busy_events += b["handled"] - a["handled"]
            busy_secs += dt
    storm_events = samples[-1]["handled"] - samples[0]["handled"]
    active = [(a, b) for a, b in zip(samples, samples[1:]) if b["handled"] > a["handled"] and a["ts"] and b["ts"]]
    active_secs = sum((b["ts"] - a["ts"]).total_seconds() for a, b in active)
    saturated = busy_secs > 0
    return {
        "parents": len(parents), "children": children, "submit_secs": submit_secs, "events": storm_events,
        "failed": samples[-1]["failed"] - samples[0]["failed"], "max_queue": max(s["queue"] for s in samples),
        "saturated": saturated, "intervals": intervals,
        "events_per_s": busy_events / busy_secs if saturated else (storm_events / active_secs if active_secs else 0.0),
        "mean_events_per_s": storm_events / active_secs if active_secs else 0.0,
    }


def _row(name: str, values: list[float]) -> str:
    return latency_row(name, values)


#: Seconds of idle before the latency run whose CPU is the processes' background rate.
IDLE_SECS = 5.0


def latency_cpu_text(idle: dict[str, float], idle_secs: float, run: dict[str, float], run_secs: float,
                     orders: int) -> str:
    """Each group's CPU in the run beyond its idle rate, per order in ms, as text (``web 3.10, ...``)."""
    parts = []
    for group, seconds in run.items():
        beyond = seconds - idle.get(group, 0.0) / idle_secs * run_secs
        parts.append(f"{group} {beyond * 1000 / max(1, orders):.2f}")
    return ", ".join(parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=600, help="orders in the latency run (half LIMIT, half MARKET)")
    parser.add_argument("--rate", type=float, default=10.0,
                        help="orders per second of the latency run (0: back to back)")
    parser.add_argument("--burst", type=int, default=200,
                        help="orders of the extra back-to-back run (printed, not in the JSON; 0: skip)")
    parser.add_argument("--warmup", type=int, default=40, help="orders sent first and not measured")
    parser.add_argument("--cancel-after", type=int, default=10,
                        help="read and cancel each LIMIT order once this many more orders were sent after it "
                             "(0: leave every LIMIT order resting)")
    parser.add_argument("--twaps", type=int, default=60, help="TWAP orders in the storm")
    parser.add_argument("--twap-horizon", type=int, default=10, help="TWAP horizon_secs")
    parser.add_argument("--twap-interval", type=int, default=1, help="TWAP interval_secs")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--port", type=int, default=8092)
    parser.add_argument("--keep", action="store_true", help="keep the bench database afterwards")
    args = parser.parse_args()
    if not (DATA_DIR / QUOTES).is_file():
        print(f"recorded market data not found at {DATA_DIR / QUOTES}: the paper venue has nothing to replay")
        return 1

    recreate_database()
    setup_django()
    import redis

    from bench.common import REDIS_URL

    redis.Redis.from_url(REDIS_URL).flushdb()  # no task, heartbeat or quote of an earlier run
    token = seed()
    trader_id = f"BENCH-{uuid.uuid4().hex[:8].upper()}"
    api_env = production_env(API_THROTTLE_RATE="1000000/min")
    worker_env = production_env(TRADING_NODE="worker", NODE_TRADER_ID=trader_id, NODE_LOG_LEVEL="WARNING")
    figures: dict = {}
    failures: list[str] = []
    try:
        with running_trading_worker(env=worker_env, name=f"bench-trading-{trader_id[-8:].lower()}") as worker, \
                running_server("gunicorn-gthread", port=args.port, workers=args.workers, env=api_env) as srv:
            mid = _mid()
            client = Client(srv.port, token)
            print(f"trading worker ready (node {trader_id}); API: gunicorn, {args.workers} gthread workers; "
                  f"recorded mid {mid:.2f}", flush=True)
            measure_latency(client, latency_orders(args.warmup, mid, "warm", base=0), timeout=120, rate=args.rate,
                            cancel_after=args.cancel_after)
            analyze_database()  # planner statistics, as in production (bench.common.analyze_database)
            # The processes' CPU while idle (the node replays market data, heartbeats, marks), then
            # during the latency run: what the orders cost beyond the idle rate.
            idle_window = CpuWindow()
            time.sleep(IDLE_SECS)
            idle, idle_secs = idle_window.close()
            timeout = 120 + args.orders * 0.2
            run_window = CpuWindow()
            latency = measure_latency(client, latency_orders(args.orders, mid, "lat", base=5_000), timeout=timeout,
                                      rate=args.rate, cancel_after=args.cancel_after, csv_name="e2e_latency-orders")
            run_cpu, run_secs = run_window.close()
            burst = (measure_latency(client, latency_orders(args.burst, mid, "burst", base=12_000),
                                     timeout=120 + args.burst * 0.5, cancel_after=args.cancel_after)
                     if args.burst else None)
            storm = twap_storm(client, args.twaps, worker=worker.name, horizon=args.twap_horizon,
                               interval=args.twap_interval, run="storm")
            failures = client.failures
    finally:
        from django.db import connections

        connections.close_all()
        delete_node_cache(trader_id)

    runs = [(f"latency run: {args.orders} orders at {latency['sent_per_s']:.1f}/s over 1 connection", latency)]
    if burst:
        runs.append((f"back-to-back run (not in the JSON): {args.burst} orders at {burst['sent_per_s']:.1f}/s", burst))
    for title, data in runs:
        print(f"\n{title} (ms; LIMIT orders read and canceled {data['canceled']}, left resting {data['resting']}):")
        print(f"{'interval':<34}{'n':>8}{'p50':>10}{'p99':>10}{'max':>10}")
        for order_type, label in (("LIMIT", "ACCEPTED"), ("MARKET", "FILLED")):
            print(_row(f"{order_type}: created_at -> {label} saved", data[order_type]["total"]))
            print(_row("   created_at -> worker claim", data[order_type]["to_claim"]))
            print(_row(f"   worker claim -> {label} saved", data[order_type]["claim_to_persisted"]))
            print(_row(f"   201 read -> {label} saved", data[order_type]["from_201"]))
    print(f"\nCPU per order of the latency run beyond each process group's idle rate (ms; the idle rate "
          f"measured over {IDLE_SECS:g} s before it):\n  {latency_cpu_text(idle, idle_secs, run_cpu, run_secs, args.orders)}"
          f"\n  idle rate, ms of CPU per second: "
          + ", ".join(f"{group} {seconds * 1000 / idle_secs:.1f}" for group, seconds in idle.items()))
    print(f"\nTWAP storm: {storm['parents']} TWAPs (horizon {args.twap_horizon} s, interval {args.twap_interval} s) "
          f"submitted in {storm['submit_secs']:.1f} s, {storm['children']} children, {storm['events']} journal "
          f"events, {storm['failed']} failed, max queue depth {storm['max_queue']}")
    print("heartbeat intervals (s, events, queue at start, queue at end, events/s):")
    for interval in storm["intervals"]:
        if interval[1] or interval[2] or interval[3]:
            print("  ", interval)
    print(f"journal writer: {storm['events_per_s']:.1f} events/s "
          f"({'busy throughout: capacity' if storm['saturated'] else 'never saturated: the offered rate'}); "
          f"mean over the storm {storm['mean_events_per_s']:.1f} events/s")
    print(f"failures: {len(failures)}")
    for failure in failures[:10]:
        print("  failure:", failure)
    limit, market = latency["LIMIT"]["total"], latency["MARKET"]["total"]
    figures = {
        "accepted_p50_ms": statistics.median(limit) if limit else None,
        "accepted_p99_ms": percentile(limit, 0.99) if limit else None,
        "filled_p50_ms": statistics.median(market) if market else None,
        "filled_p99_ms": percentile(market, 0.99) if market else None,
        "journal_events_per_s": storm["events_per_s"],
        "journal_saturated": storm["saturated"],
        "latency_rate_per_s": latency["sent_per_s"],
        "journal_max_queue": storm["max_queue"],
        "orders": len(limit) + len(market),
        "cancel_after": args.cancel_after,
        "twaps": storm["parents"],
        "failures": len(failures),
    }
    if not args.keep:
        drop_database()
    print_json_line(figures)
    return 1 if failures or storm["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
