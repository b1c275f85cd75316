"""Benchmark: fan-out of fills on ``/ws/orders/`` to 100 and 1,000 WebSocket subscribers.

Topology (as deployed, on this machine): PostgreSQL (bench database, created and dropped), Redis
(``BENCH_REDIS_URL``: channels_redis pub/sub channel layer and the order-stream log), ``--servers`` daphne
processes (default 2) serving ``odum_live.asgi:application`` with production settings (DEBUG off)
and ``DB_CONN_MAX_AGE=0`` as in ``docker/compose.yml``; subscribers are spread over them round-robin.

Subscribers: ``--client-procs`` asyncio processes (default 2; aiohttp's WebSocket client, whose
frame reader is compiled, so the clients take as little of this 2-core machine as they can) open
``--subs`` connections (default 100, then 1000) to ``/ws/orders/`` with ``Authorization: Bearer
<token>``. The tokens belong to persons holding ``orders.view_order`` (``--viewers`` of them,
default 10), so every subscriber takes the unfiltered ``orders`` stream and must receive every
change, with consecutive numbers. Each waits for its snapshot before the measurement starts.

Fills: this process runs a journal writer (:class:`venues.journal.JournalWriter`, as the trading
worker does) and submits ``--fills`` (default 300, after ``--warmup`` 10 not counted) FILLED venue
events to it at ``--rate`` per second (default 5), round-robin over ``--orders`` open LIMIT orders
of one strategy. The writer applies each with
:func:`orders.services.venue_events.order_apply_venue_event`, which after commit hands the changed
orders to the writer's publisher thread (:func:`orders.services.publish.publish_orders_updated`).
Each fill's **commit time** is taken in that hand-off, right after the commit.

**The interval measured** is from that commit time to the moment a subscriber's client read the
delta frame carrying the fill (``time.time()`` on both sides: one machine, one clock). Reported per
delivery (every subscriber × fill) and, per fill, until *every* subscriber had it (the slowest
subscriber's time); the JSON figures are the every-subscriber ones.

Checked: every subscriber receives, after its snapshot, exactly one delta per fill, numbered
consecutively from the stream head the snapshot gave, each carrying its fill's trade id; anything
else (a lost, repeated or out-of-order delta, a ``snapshot_required``, an error) fails the run.

Target (issue 4 §4): p99 ≤ 100 ms at 1,000 subscribers.

Ends with one JSON line: ``subs100_p99_ms``, ``subs1000_p50_ms``, ``subs1000_p99_ms`` (every
subscriber) and details.

Usage: ``python bench/ws_fanout.py [--subs 100,1000] [--fills 300] [--rate 5] [--servers 2] [--keep]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import statistics
import sys
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    drop_database,
    latency_row,
    percentile,
    print_json_line,
    production_env,
    recreate_database,
    running_servers,
    seed_listing,
    setup_django,
)

INSTRUMENT = "BINANCE-SPOT:SPOT_PAIR:BTC-USDT"
STREAM = "orders"
FILL_QTY = Decimal("0.001")
FILL_PX = Decimal("40000")


# --- seeding ---------------------------------------------------------------------------------------

def seed(*, orders: int, viewers: int) -> tuple[list[str], list[str]]:
    """Create the listing, strategy ``bench``, ``orders`` ACCEPTED LIMIT orders and ``viewers`` persons
    with ``orders.view_order``; return (their tokens, the orders' client_order_ids)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission
    from django.utils import timezone
    from knox.models import AuthToken

    from orders.models import Order, Strategy
    from orders.services import order_apply_venue_event
    from venues.events import VenueEvent, VenueEventKind

    seed_listing(instrument_key=INSTRUMENT)
    users = get_user_model().objects
    strategy = Strategy.objects.create(id="bench", name="Benchmark", service_account=users.create_user("svc-bench"))
    view_order = Permission.objects.get(content_type__app_label="orders", codename="view_order")
    tokens = []
    for i in range(viewers):
        user = users.create_user(f"bench-viewer-{i}")
        user.user_permissions.add(view_order)
        tokens.append(AuthToken.objects.create(user=user)[1])
    client_order_ids = []
    for i in range(orders):
        # The row as order_submit leaves it (ROUTED); the venue's events go through the service.
        order = Order.objects.create(
            strategy=strategy, operation_id=f"fanout-{i}", instrument_key=INSTRUMENT, routed_instrument_key=INSTRUMENT,
            venue="BINANCE-SPOT", venue_type=Order.VenueType.NAUTILUS, side=Order.Side.BUY if i % 2 == 0 else Order.Side.SELL,
            order_type=Order.OrderType.LIMIT, quantity=Decimal("1000"), price=FILL_PX, status=Order.Status.ROUTED,
        )
        for kind in (VenueEventKind.SUBMITTED, VenueEventKind.ACCEPTED):
            result = order_apply_venue_event(event=VenueEvent(
                kind=kind, client_order_id=order.client_order_id, venue="BINANCE-SPOT", ts_event=timezone.now(),
                venue_order_id=f"V{i}"))
            if not result.applied:
                raise RuntimeError(f"seed: {kind} not applied to {order.client_order_id}: {result.reason}")
        client_order_ids.append(order.client_order_id)
    return tokens, client_order_ids


# --- the journal writer's side: fills through the service, commit times ---------------------------

@dataclass
class FillStamp:
    trade_id: str
    committed: float  # time.time() right after the fill's commit, before its publication


def drive_fills(client_order_ids: list[str], *, count: int, rate: float, run: str) -> list[FillStamp]:
    """Have the journal writer apply ``count`` FILLED venue events, ``rate`` per second; return their commit stamps.

    The writer (:class:`venues.journal.JournalWriter`, as the trading worker runs it) applies each with
    :func:`orders.services.venue_events.order_apply_venue_event`; the service hands the changed
    orders to ``publish`` after commit, where the stamp is taken before the writer's publisher
    thread gets them (:meth:`~venues.journal.JournalWriter.publish_later`, the writer's own path).

    Raises
    ------
    RuntimeError
        A fill the writer did not apply, or not within 60 s.
    """
    from django.utils import timezone

    from bench.common import wait_for
    from orders.services import order_apply_venue_event
    from venues.events import Liquidity, VenueEvent, VenueEventKind
    from venues.journal import JournalWriter

    committed: dict[str, float] = {}
    writer: JournalWriter | None = None

    def apply(*, event: VenueEvent):
        def publish(orders):  # called by the service right after the commit
            committed[event.trade_id] = time.time()
            writer.publish_later(orders)

        return order_apply_venue_event(event=event, publish=publish)

    writer = JournalWriter(apply=apply, name="bench-journal").start()
    trade_ids = [f"{run}-{i}" for i in range(count)]
    try:
        started = time.monotonic()
        for i, trade_id in enumerate(trade_ids):
            delay = started + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            writer.submit(VenueEvent(
                kind=VenueEventKind.FILLED, client_order_id=client_order_ids[i % len(client_order_ids)],
                venue="BINANCE-SPOT", ts_event=timezone.now(), trade_id=trade_id, last_qty=FILL_QTY, last_px=FILL_PX,
                fee=Decimal("0.04"), fee_currency="USDT", liquidity=Liquidity.TAKER))
        wait_for(lambda: len(committed) == count or writer.stats().failed, timeout=60,
                 message=f"{count} fills committed by the journal writer")
    finally:
        writer.stop(drain=True, timeout=60)
    stats = writer.stats()
    if stats.applied != count or stats.failed or len(committed) != count:
        raise RuntimeError(f"journal writer: {stats.applied} of {count} fills applied, {stats.failed} failed "
                           f"({stats.last_error})")
    return [FillStamp(trade_id, committed[trade_id]) for trade_id in trade_ids]


# --- the subscribers' side (a separate process) ----------------------------------------------------

@dataclass
class _Sub:
    index: int
    port: int
    token: str
    ws: object = None
    snapshot_seq: int = 0
    # (receive time, seq, trade id) per delta; anything else as (receive time, None, first 300 chars)
    got: list = field(default_factory=list)
    error: str = ""
    closing: bool = False
    reconnects: int = 0  # handshakes retried
    reader: asyncio.Task | None = None


def _parse_delta(text: str) -> tuple[int, str] | None:
    # Cheap extraction from the server's compact frames ({"type":"delta","stream":…,"seq":N,"order":…,
    # "events":…,"fills":[{…"venue_trade_id":"…"}],"position":…}; the order holds its own "fills" first):
    # a full json.loads per frame would make the client the bottleneck.
    if not text.startswith('{"type":"delta"'):
        return None
    at = text.find('"seq":')
    tid = text.find('"venue_trade_id":"', text.rfind('"fills":['))
    if at < 0 or tid < 0:
        return None
    tid += len('"venue_trade_id":"')
    return int(text[at + 6:text.index(",", at)]), text[tid:text.index('"', tid)]


async def _subscribe(sub: _Sub, session, gate: asyncio.Semaphore) -> None:
    import aiohttp

    async with gate:
        for attempt in range(1, 4):
            try:
                sub.ws = await session.ws_connect(f"http://127.0.0.1:{sub.port}/ws/orders/",
                                                  headers={"Authorization": f"Bearer {sub.token}"}, compress=0,
                                                  max_msg_size=0, autoping=True)
                break
            except aiohttp.ClientOSError:
                # Reset in the handshake (the listen backlog overflowed while the server was busy):
                # a real client reconnects too.
                if attempt == 3:
                    raise
                sub.reconnects += 1
                await asyncio.sleep(attempt)
        first = json.loads(await asyncio.wait_for(sub.ws.receive_str(), timeout=120))
        if first.get("type") != "snapshot" or first.get("stream") != STREAM:
            raise RuntimeError(f"subscriber {sub.index}: expected a snapshot of {STREAM!r}, got {str(first)[:300]}")
        sub.snapshot_seq = first["seq"]
        # Read from now on: aiohttp answers the server's pings only inside receive(), and daphne
        # closes a connection whose ping goes unanswered for 30 s (the 1,000 take longer to connect).
        sub.reader = asyncio.create_task(_read(sub))


async def _read(sub: _Sub) -> None:
    from aiohttp import WSMsgType

    ws = sub.ws
    while True:
        message = await ws.receive()
        now = time.time()
        if message.type is WSMsgType.TEXT:
            parsed = _parse_delta(message.data)
            sub.got.append((now, *parsed) if parsed else (now, None, message.data[:300]))
        elif not sub.closing:
            sub.error = f"{message.type.name} {message.data!r} {message.extra!r}"
            return
        else:
            return


async def _subscribers(pipe, ports: list[int], tokens: list[str], indices: list[int], concurrency: int) -> None:
    import aiohttp

    loop = asyncio.get_running_loop()
    subs = [_Sub(i, ports[i % len(ports)], tokens[i % len(tokens)]) for i in indices]
    gate = asyncio.Semaphore(concurrency)
    started = time.monotonic()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        try:
            await asyncio.gather(*(_subscribe(s, session, gate) for s in subs))
        except Exception as exc:  # noqa: BLE001 - reported to the parent
            pipe.send(("error", f"connect: {type(exc).__name__}: {exc}"))
            return
        pipe.send(("ready", {"seconds": time.monotonic() - started, "reconnects": sum(s.reconnects for s in subs),
                             "snapshot_seqs": sorted({s.snapshot_seq for s in subs})}))
        _cmd, expected, timeout = await loop.run_in_executor(None, pipe.recv)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(len(s.got) < expected and not s.error for s in subs):
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)  # anything extra (a repeated delta) arrives too
        for s in subs:
            s.closing = True
            await s.ws.close()
        await asyncio.gather(*(s.reader for s in subs), return_exceptions=True)
    pipe.send(("done", [(s.index, s.snapshot_seq, s.got, s.error) for s in subs]))


def _subscribers_main(pipe, ports: list[int], tokens: list[str], indices: list[int], concurrency: int) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(_subscribers(pipe, ports, tokens, indices, concurrency))


# --- one case: N subscribers, the fills, the checks ------------------------------------------------

@dataclass
class CaseResult:
    subs: int
    fills: int
    connect_secs: float
    delivery_ms: list[float]
    every_ms: list[float]
    first_ms: list[float]
    failures: list[str]


def _all(pipes, *, timeout: float, what: str) -> list:
    # One answer from each client process: (status, payload) pairs, or RuntimeError.
    answers = []
    for pipe in pipes:
        if not pipe.poll(timeout):
            raise RuntimeError(f"subscriber process: {what} not within {timeout:.0f} s")
        status, payload = pipe.recv()
        if status == "error":
            raise RuntimeError(f"subscriber process failed: {payload}")
        answers.append(payload)
    return answers


def run_case(*, ports: list[int], tokens: list[str], client_order_ids: list[str], subs: int, fills: int,
             warmup: int, rate: float, run: str, client_procs: int) -> CaseResult:
    """Connect ``subs`` subscribers, apply ``warmup + fills`` fills, check and time every delivery."""
    from orders.services.publish import order_stream_head

    ctx = mp.get_context("spawn")
    pipes, procs = [], []
    for p in range(client_procs):
        pipe, child = ctx.Pipe()
        procs.append(ctx.Process(target=_subscribers_main, daemon=True,
                                 args=(child, ports, tokens, list(range(p, subs, client_procs)), 25)))
        pipes.append(pipe)
        procs[-1].start()
    try:
        ready = _all(pipes, timeout=240, what="connecting")
        connect_secs = max(r["seconds"] for r in ready)
        print(f"  {subs} subscribers connected, snapshots taken in {connect_secs:.1f} s "
              f"({sum(r['reconnects'] for r in ready)} handshakes retried); {warmup + fills} fills follow", flush=True)
        head = order_stream_head(stream=STREAM)
        seqs = sorted({seq for r in ready for seq in r["snapshot_seqs"]})
        if seqs != [head]:
            raise RuntimeError(f"snapshots at {seqs}, stream head {head}")
        stamps = drive_fills(client_order_ids, count=warmup + fills, rate=rate, run=run)
        for pipe in pipes:
            pipe.send(("expect", len(stamps), 60))
        received = sorted(sub for done in _all(pipes, timeout=180, what="reporting") for sub in done)
    finally:
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()
    return _check(received, stamps, head=head, warmup=warmup, subs=subs, connect_secs=connect_secs)


def _check(received, stamps: list[FillStamp], *, head: int, warmup: int, subs: int, connect_secs: float) -> CaseResult:
    failures: list[str] = []
    expected = [(head + 1 + i, s.trade_id) for i, s in enumerate(stamps)]
    per_fill: list[list[float]] = [[] for _ in stamps]
    for index, _snapshot_seq, got, error in received:
        if error:
            failures.append(f"subscriber {index}: connection failed: {error}")
        keys = [(seq, tid) for _t, seq, tid in got]
        if keys != expected:
            wrong = next((k for k, (a, b) in enumerate(zip(keys, expected)) if a != b), min(len(keys), len(expected)))
            failures.append(f"subscriber {index}: {len(keys)} messages for {len(expected)} fills; first wrong at #{wrong}: "
                            f"got {keys[wrong] if wrong < len(keys) else 'nothing'}, expected "
                            f"{expected[wrong] if wrong < len(expected) else 'nothing'}")
            continue
        for i, (t, _seq, _tid) in enumerate(got):
            per_fill[i].append((t - stamps[i].committed) * 1000)
    measured = [(s, d) for s, d in zip(stamps[warmup:], per_fill[warmup:]) if d]
    out = Path(__file__).resolve().parent / "out" / f"ws_fanout-{subs}.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w") as f:  # per fill, for a closer look: when it committed and how long until each subscriber had it
        f.write("trade_id,committed,first_ms,median_ms,every_ms\n")
        for s, d in measured:
            f.write(f"{s.trade_id},{s.committed:.6f},{min(d):.2f},{statistics.median(d):.2f},{max(d):.2f}\n")
    return CaseResult(
        subs=subs, fills=len(stamps) - warmup, connect_secs=connect_secs,
        delivery_ms=[ms for _s, d in measured for ms in d],
        every_ms=[max(d) for _s, d in measured if len(d) == subs],
        first_ms=[min(d) for _s, d in measured],
        failures=failures,
    )


def _row(name: str, values: list[float]) -> str:
    return latency_row(name, values, name_width=44, n_width=9, width=9)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subs", default="100,1000", help="subscriber counts, one case each (comma-separated)")
    parser.add_argument("--fills", type=int, default=300, help="measured fills per case")
    parser.add_argument("--warmup", type=int, default=10, help="fills per case sent first, checked, not timed")
    parser.add_argument("--rate", type=float, default=5.0, help="fills per second")
    parser.add_argument("--orders", type=int, default=20, help="open orders the fills go to (round-robin)")
    parser.add_argument("--viewers", type=int, default=10, help="persons whose tokens the subscribers use")
    parser.add_argument("--servers", type=int, default=2, help="daphne processes")
    parser.add_argument("--client-procs", type=int, default=2, help="subscriber processes (asyncio, one each)")
    parser.add_argument("--port", type=int, default=8120, help="first daphne port")
    parser.add_argument("--db-conn-max-age", default="0",
                        help="DB_CONN_MAX_AGE of the daphne processes (docker/compose.yml: 0)")
    parser.add_argument("--keep", action="store_true", help="keep the bench database afterwards")
    args = parser.parse_args()
    counts = [int(c) for c in args.subs.split(",") if c]

    recreate_database()
    setup_django()
    import redis

    from bench.common import REDIS_URL

    redis.Redis.from_url(REDIS_URL).flushdb()  # no stream, group or message of an earlier run
    tokens, client_order_ids = seed(orders=args.orders, viewers=args.viewers)
    env = production_env(DB_CONN_MAX_AGE=args.db_conn_max_age)
    ports = [args.port + i for i in range(args.servers)]
    results: list[CaseResult] = []
    try:
        with running_servers("daphne", ports=ports, workers=1, env=env):
            print(f"{args.servers} daphne processes on ports {ports[0]}-{ports[-1]}; {args.fills} fills "
                  f"(+{args.warmup} warm-up) at {args.rate:g}/s over {args.orders} orders; person tokens "
                  "(orders.view_order), stream 'orders'", flush=True)
            for n, subs in enumerate(counts):
                result = run_case(ports=ports, tokens=tokens, client_order_ids=client_order_ids, subs=subs,
                                  fills=args.fills, warmup=args.warmup, rate=args.rate, run=f"c{n}",
                                  client_procs=args.client_procs)
                results.append(result)
                print(f"  {subs} subscribers: {len(result.failures)} failures", flush=True)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            with contextlib.suppress(Exception):
                drop_database()

    print("\ncommit of the fill -> delta read by the subscriber (ms):")
    print(f"{'':<44}{'n':>9}{'p50':>9}{'p99':>9}{'max':>9}")
    for r in results:
        print(_row(f"{r.subs} subs: per delivery", r.delivery_ms))
        print(_row(f"{r.subs} subs: per fill, every subscriber", r.every_ms))
        print(_row(f"{r.subs} subs: per fill, first subscriber", r.first_ms))
    failures = [f for r in results for f in r.failures]
    print(f"failures: {len(failures)}")
    for failure in failures[:20]:
        print("  failure:", failure)
    figures: dict = {}
    for r in results:
        if r.every_ms:
            figures[f"subs{r.subs}_p50_ms"] = statistics.median(r.every_ms)
            figures[f"subs{r.subs}_p99_ms"] = percentile(r.every_ms, 0.99)
            figures[f"subs{r.subs}_delivery_p50_ms"] = statistics.median(r.delivery_ms)
            figures[f"subs{r.subs}_delivery_p99_ms"] = percentile(r.delivery_ms, 0.99)
    figures |= {"servers": args.servers, "fills": args.fills, "rate_per_s": args.rate, "failures": len(failures)}
    print_json_line(figures)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
