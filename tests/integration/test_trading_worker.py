"""The production topology end to end: PostgreSQL, Redis, a real trading worker process and the HTTP API.

- The API runs in this process over real HTTP (pytest-django's ``live_server``) on the test database.
- The trading worker is a real ``celery -A celery_app worker -Q venues -P solo`` subprocess with
  production settings (``odum_live.settings``) on the same test database and the same Redis DB
  (broker, cache, heartbeat, market data), hosting the TradingNode (``TRADING_NODE=worker``) with a
  paper BINANCE-SPOT venue replaying the recorded BTCUSDT quotes (``seed_demo``).
- Each test uses its own ``NODE_TRADER_ID``: the node's own cache is persisted in Redis under that
  id (``NODE_CACHE_REDIS``; NautilusTrader keeps it in Redis DB 0 whatever ``REDIS_URL`` names), so
  nothing leaks between runs; the node's cache keys are deleted afterwards. The Redis DB of
  ``REDIS_URL`` is **flushed** at the start of each test (stale ``venues`` task messages of other
  tests, old heartbeats and quotes) and again at its end (its heartbeat and quotes would otherwise
  reach the tests after it): give the test run a Redis DB of its own.
- The worker's output goes to a file; on failure its last lines are printed.

Issue #3 §7: submit through HTTP and see FILLED and the position in the database; kill -9 the worker
in the middle of a TWAP, start it again, and show no lost or duplicated fills and an order/position
state that matches the venue's (reconciliation, issue #3 §6). "The venue's" state is what the node's
persisted cache holds after the restart (the paper venue itself keeps nothing), read back from Redis
with NautilusTrader's own cache adapter: the OMS must hold exactly the fills it holds.

The third test makes the kill land while the journal writer is behind the node (deterministically:
the test holds the parent order's row lock, which recording a new child needs), so a child's fill
exists only in the node's cache at the kill.
"""

from __future__ import annotations

import contextlib

import io
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote, urlparse

import pytest
import requests
from django.conf import settings
from django.core.management import call_command
from django.db import transaction
from django.db.models import Q

from odum_live.health import trading_worker_beats
from orders.models import Fill, Order, OrderEvent, Strategy
from orders.state import OPEN_STATUSES, OrderStatus
from positions.models import Position, ReconciliationFinding
from tests.helpers import SHARED_DATA, eventually, needs_market_data
from tests.orders.factories import make_token
from venues.marketdata import market_data
from venues.models import Venue

pytestmark = [
    needs_market_data,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(480),
]

ROOT = Path(__file__).resolve().parents[2]
KEY = "BINANCE-SPOT:SPOT_PAIR:BTC-USDT"
VENUE = "BINANCE-SPOT"
STRATEGY = "demo"
#: Statuses the contract of reconciliation (issue #3 §6) compares with the venue.
RECONCILED_STATUSES = {OrderStatus.SUBMITTED, OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED,
                       OrderStatus.PENDING_CANCEL}


# --- the trading worker process -------------------------------------------------------------------

def _database_url() -> str:
    # The test database pytest-django created (settings point at it inside a test).
    db = settings.DATABASES["default"]
    auth = quote(db["USER"] or "", safe="")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"], safe="")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@dataclass
class WorkerProcess:
    """One ``celery -A celery_app worker -Q venues -P solo`` process, its output in ``log_path``."""

    env: dict[str, str]
    log_path: Path
    name: str
    proc: subprocess.Popen | None = None
    started_at: datetime | None = None

    def start(self) -> WorkerProcess:
        argv = [sys.executable, "-m", "celery", "-A", "celery_app", "worker", "-Q", "venues", "-P", "solo",
                "-c", "1", "-n", f"{self.name}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat",
                "-l", "INFO"]
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== start {self.name}: {' '.join(argv)}\n".encode())
            log.flush()
            # Own session: kill -9 / SIGTERM reach the worker and nothing else.
            self.proc = subprocess.Popen(argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        self.started_at = datetime.now(UTC)
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill_hard(self) -> None:
        """kill -9: no shutdown hook runs, the journal's queue and the node's memory are lost."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self, timeout: float = 45.0) -> int | None:
        """SIGTERM (Celery warm shutdown: the node stops, the journal drains); SIGKILL after ``timeout``."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
            return None
        except ProcessLookupError:
            return self.proc.wait(timeout=5)

    def tail(self, lines: int = 120) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Topology:
    """The running system as a test sees it."""

    url: str
    token: str
    trader_id: str
    env: dict[str, str]
    log_path: Path
    workers: list[WorkerProcess] = field(default_factory=list)

    def start_worker(self) -> WorkerProcess:
        worker = WorkerProcess(env=self.env, log_path=self.log_path,
                               name=f"trading-{len(self.workers) + 1}-{uuid.uuid4().hex[:6]}").start()
        self.workers.append(worker)
        return worker

    def wait_ready(self, worker: WorkerProcess, *, timeout: float = 90.0) -> dict:
        """Wait for this worker's heartbeat saying ready, then for fresh market data; return the status."""
        def ready():
            assert worker.alive, f"trading worker {worker.name} exited:\n{worker.tail()}"
            for beat in trading_worker_beats():
                if beat.worker.startswith(worker.name + "@") and beat.status.get("ready"):
                    return beat.status
            return None

        status = eventually(ready, timeout=timeout, interval=0.1, message=f"heartbeat of {worker.name}: ready")

        def fresh_quote():
            assert worker.alive, f"trading worker {worker.name} exited:\n{worker.tail()}"
            snapshot = market_data().get(KEY)
            return snapshot if snapshot is not None and snapshot.ts > worker.started_at else None

        eventually(fresh_quote, timeout=30, interval=0.1, message=f"market data for {KEY} from {worker.name}")
        return status

    def post_order(self, **body) -> dict:
        response = requests.post(f"{self.url}/api/orders", json=body, timeout=30,
                                 headers={"Authorization": f"Bearer {self.token}"})
        assert response.status_code == 201, response.text
        order = response.json()
        assert order["status"] == "ROUTED", (order["status"], order["rejection_reason"])
        return order


def _node_cache_keys(redis_url: str, trader_id: str) -> list[bytes]:
    # NautilusTrader's Redis cache takes host / port only (DatabaseConfig has no DB number): DB 0.
    import redis

    parsed = urlparse(redis_url)
    client = redis.Redis(host=parsed.hostname or "127.0.0.1", port=parsed.port or 6379, db=0)
    return list(client.scan_iter(match=f"trader-{trader_id}:*", count=1000))


def _node_cache_fills(redis_url: str, trader_id: str) -> dict[str, list[str]]:
    """Return client_order_id → trade ids of the fills the node's persisted cache holds (the venue's record)."""
    import msgspec
    from nautilus_trader.cache.database import CacheDatabaseAdapter
    from nautilus_trader.config import CacheConfig, DatabaseConfig
    from nautilus_trader.core.uuid import UUID4
    from nautilus_trader.model.events import OrderFilled
    from nautilus_trader.model.identifiers import TraderId
    from nautilus_trader.serialization.serializer import MsgSpecSerializer

    parsed = urlparse(redis_url)
    config = CacheConfig(database=DatabaseConfig(type="redis", host=parsed.hostname or "127.0.0.1",
                                                 port=parsed.port or 6379),
                         encoding="msgpack", buffer_interval_ms=None)
    adapter = CacheDatabaseAdapter(trader_id=TraderId(trader_id), instance_id=UUID4(), config=config,
                                   serializer=MsgSpecSerializer(encoding=msgspec.msgpack, timestamps_as_str=True))
    try:
        return {cid.value: [e.trade_id.value for e in order.events if isinstance(e, OrderFilled)]
                for cid, order in adapter.load_orders().items()}
    finally:
        adapter.close()


def _delete_node_cache(redis_url: str, trader_id: str) -> None:
    import redis

    parsed = urlparse(redis_url)
    client = redis.Redis(host=parsed.hostname or "127.0.0.1", port=parsed.port or 6379, db=0)
    keys = _node_cache_keys(redis_url, trader_id)
    if keys:
        client.delete(*keys)


def _ensure_role_groups() -> None:
    # An earlier transactional test's flush empties every table, and the role groups come from data
    # migrations (odum_live.0001/0002), not post_migrate: run those again (get_or_create, idempotent).
    # (serialized_rollback clashes with the content types post_migrate re-creates after such a flush.)
    from django.db import connection
    from django.db.migrations import RunPython
    from django.db.migrations.executor import MigrationExecutor

    loader = MigrationExecutor(connection).loader

    class _SchemaEditor:  # the migration functions use only ``schema_editor.connection``
        pass

    editor = _SchemaEditor()
    editor.connection = connection
    for key in sorted(k for k in loader.graph.nodes if k[0] == "odum_live"):
        state_apps = loader.project_state(key).apps
        for operation in loader.graph.nodes[key].operations:
            if isinstance(operation, RunPython):
                operation.code(state_apps, editor)


@pytest.fixture
def topology(live_server, redis_client, tmp_path, request) -> Iterator[Topology]:
    """Seeded database, flushed Redis DB, a strategy token; workers are started by the test."""
    redis_client.flushdb()
    _ensure_role_groups()
    call_command("seed_demo", stdout=io.StringIO())
    spot = Venue.objects.get(code=VENUE)
    replay = spot.config["replay"]
    replay["data_dir"] = str(SHARED_DATA)  # absolute: the worker's cwd must not matter
    spot.save(update_fields=["config"])
    token = make_token(Strategy.objects.get(pk=STRATEGY).service_account)
    trader_id = f"ODUMIT-{uuid.uuid4().hex[:8].upper()}"
    env = dict(os.environ)
    env.update({
        "DJANGO_SETTINGS_MODULE": "odum_live.settings",
        "DJANGO_SECRET_KEY": "integration-test-only-secret-key-0123456789abcdefghijklmnop",
        "DJANGO_DEBUG": "0",
        "DATABASE_URL": _database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "CHANNEL_LAYER_PREFIX": settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"],
        "MARKET_DATA_PREFIX": settings.ODUM["MARKET_DATA_PREFIX"],
        "TRADING_NODE": "worker",
        "NODE_TRADER_ID": trader_id,
        "NODE_CACHE_REDIS": "1",
        "NODE_LOG_LEVEL": "INFO",
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    })
    env.pop("CELERY_TASK_ALWAYS_EAGER", None)
    log_path = tmp_path / "trading-worker.log"
    topo = Topology(url=live_server.url, token=token, trader_id=trader_id, env=env, log_path=log_path)
    _delete_node_cache(settings.REDIS_URL, trader_id)
    yield topo
    codes = [worker.stop() for worker in topo.workers]
    failed = any(getattr(getattr(request.node, f"report_{when}", None), "failed", False)
                 for when in ("setup", "call"))
    if failed:
        text = log_path.read_text(errors="replace") if log_path.exists() else "(no log)"
        print(f"\n----- trading worker log ({log_path}), last 200 lines; exit codes {codes} -----")
        print("\n".join(text.splitlines()[-200:]))
    _delete_node_cache(settings.REDIS_URL, trader_id)
    redis_client.flushdb()  # no heartbeat, quote or task of this test may reach the tests after it


# --- reading the books ----------------------------------------------------------------------------

def _status(order_id: str) -> str:
    return Order.objects.values_list("status", flat=True).get(pk=order_id)


def _family(parent_id: str) -> list[Order]:
    return list(Order.objects.filter(Q(pk=parent_id) | Q(parent_id=parent_id)).order_by("created_at"))


def _signed(fill: Fill) -> Decimal:
    return fill.quantity if fill.order.side == "BUY" else -fill.quantity


def _describe(orders: list[Order]) -> str:
    lines = []
    for order in orders:
        fills = list(order.fills.values_list("venue_trade_id", "quantity"))
        lines.append(f"{order.client_order_id} parent={'-' if order.parent_id is None else 'P'} {order.status} "
                     f"qty={order.quantity} filled={order.filled_quantity} fills={fills}")
    return "\n".join(lines)


# --- tests ----------------------------------------------------------------------------------------

def _restart_until_settled(topology, parent_id: str) -> list[Order]:
    """Start a second trading worker and wait until the TWAP's parent and children are all closed."""
    topology.wait_ready(topology.start_worker())

    def settled():
        family = _family(parent_id)
        return all(o.status not in OPEN_STATUSES for o in family) and family

    try:
        return eventually(settled, timeout=60, interval=0.2, message="TWAP parent and children settled")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nafter restart:\n{_describe(_family(parent_id))}") from None


def test_trading_worker_market_order_over_http_fills_and_updates_the_position(topology):
    # Arrange
    worker = topology.start_worker()
    topology.wait_ready(worker)

    # Act
    order = topology.post_order(operation_id="it-market-1", instrument_key=KEY, side="BUY", order_type="MARKET",
                                quantity="0.01", time_in_force="GTC")

    # Assert
    status = eventually(lambda: _status(order["order_id"]) in ("FILLED", "REJECTED", "CANCELED")
                        and _status(order["order_id"]), timeout=30, message="market order terminal")
    stored = Order.objects.get(pk=order["order_id"])
    assert status == "FILLED", (stored.rejection_reason, worker.tail())
    fills = list(Fill.objects.filter(order=stored))
    assert fills and sum(f.quantity for f in fills) == Decimal("0.01") == stored.filled_quantity
    assert all(f.venue == VENUE and f.price > 0 for f in fills)
    position = Position.objects.get(strategy_id=STRATEGY, venue=VENUE, instrument_key=KEY)
    assert position.quantity == Decimal("0.01")
    types = list(OrderEvent.objects.filter(order=stored).values_list("type", flat=True))
    assert types[-1] == "FILLED" and types.count("SUBMITTED") >= 1
    # The same over HTTP: the order with its fills, and the position.
    body = requests.get(f"{topology.url}/api/orders/{stored.pk}", timeout=10,
                        headers={"Authorization": f"Bearer {topology.token}"}).json()
    assert body["status"] == "FILLED" and Decimal(body["filled_quantity"]) == Decimal("0.01")
    assert {f["venue_trade_id"] for f in body["fills"]} == {f.venue_trade_id for f in fills}


def test_trading_worker_killed_mid_twap_restarts_without_lost_or_duplicated_fills(topology):
    # Arrange: a worker, a first fill, then a TWAP of 10 slices (0.002 BTC every 2 s over 20 s).
    first = topology.start_worker()
    topology.wait_ready(first)
    market = topology.post_order(operation_id="it-market-2", instrument_key=KEY, side="BUY", order_type="MARKET",
                                 quantity="0.005", time_in_force="GTC")
    eventually(lambda: _status(market["order_id"]) == "FILLED", timeout=30, message="market order filled")
    twap = topology.post_order(operation_id="it-twap-1", instrument_key=KEY, side="BUY", order_type="MARKET",
                               quantity="0.02", time_in_force="GTC", exec_algorithm="TWAP",
                               exec_algorithm_params={"horizon_secs": 20, "interval_secs": 2})
    parent_id = twap["order_id"]
    eventually(lambda: Fill.objects.filter(order__parent_id=parent_id).count() >= 2, timeout=60, interval=0.05,
               message="two child fills persisted")

    # Act: kill -9 in the middle of the TWAP, then a new worker (same trader id: the node's cache resumes).
    first.kill_hard()
    at_kill = {o.pk: o.status for o in _family(parent_id)}
    fills_at_kill = set(Fill.objects.filter(Q(order_id=parent_id) | Q(order__parent_id=parent_id))
                        .values_list("venue_trade_id", flat=True))
    print(f"\nat kill -9: {len(fills_at_kill)} TWAP fills persisted\n{_describe(_family(parent_id))}")
    assert Order.objects.get(pk=parent_id).status not in ("FILLED", "CANCELED"), "the TWAP ended before the kill"
    family = _restart_until_settled(topology, parent_id)

    # Assert: reconciliation leaves no order open that the (fresh) paper venue does not have.
    parent = next(o for o in family if str(o.pk) == parent_id)
    children = [o for o in family if o.parent_id is not None]
    twap_fills = list(Fill.objects.filter(Q(order_id=parent_id) | Q(order__parent_id=parent_id)).select_related("order"))
    trade_ids = [f.venue_trade_id for f in twap_fills]
    print(f"after restart:\n{_describe(family)}")

    # No fill lost or duplicated: every fill persisted before the kill is still there, each trade id once.
    assert fills_at_kill <= set(trade_ids)
    assert len(trade_ids) == len(set(trade_ids))
    # Parent and children agree with their fills.
    assert parent.filled_quantity == sum((f.quantity for f in twap_fills), Decimal(0))
    for child in children:
        assert child.filled_quantity == sum((f.quantity for f in twap_fills if f.order_id == child.pk), Decimal(0))
        if child.status == OrderStatus.FILLED:
            assert child.filled_quantity == child.quantity, child
    assert len(children) >= 2 and parent.filled_quantity > 0
    # The paper venue keeps nothing across a restart: the TWAP cannot resume, so the parent is
    # resolved (with what it filled) rather than left working.
    assert parent.status in (OrderStatus.CANCELED, OrderStatus.FILLED), parent.status
    # Every order the OMS held open at the kill and did not fill is resolved with a stated reason.
    for order in family:
        if at_kill.get(order.pk) in RECONCILED_STATUSES and order.status != OrderStatus.FILLED:
            reasons = [e.payload.get("reason", "") or e.payload.get("detail", "")
                       for e in OrderEvent.objects.filter(order=order, type__in=("CANCELED", "REJECTED", "RECONCILED"))]
            reasons.append(order.rejection_reason)
            assert any(r.startswith("reconciliation:") for r in reasons), (order.client_order_id, reasons)
    # The node's persisted cache (what the venue reported to the node) holds exactly these fills.
    family_ids = {o.client_order_id for o in family}

    def node_fills():
        return {t for cid, ids in _node_cache_fills(settings.REDIS_URL, topology.trader_id).items()
                if cid in family_ids for t in ids}

    venue_trade_ids = eventually(lambda: node_fills() if node_fills() >= set(trade_ids) else None, timeout=10,
                                 message="node cache holds every OMS fill")
    assert venue_trade_ids == set(trade_ids), (sorted(venue_trade_ids), sorted(trade_ids))
    # The position equals the signed sum of every fill of the strategy on the listing.
    all_fills = list(Fill.objects.filter(order__strategy_id=STRATEGY, order__routed_instrument_key=KEY)
                     .select_related("order"))
    position = Position.objects.get(strategy_id=STRATEGY, venue=VENUE, instrument_key=KEY)
    assert position.quantity == sum((_signed(f) for f in all_fills), Decimal(0))
    # ... and the node's net position: reconciliation recorded no open difference.
    assert not ReconciliationFinding.objects.filter(venue=VENUE, instrument_key=KEY, resolved_at__isnull=True).exists()
    # The second worker's journal applied without failures.
    (status,) = [b.status for b in trading_worker_beats() if b.worker.startswith(topology.workers[-1].name + "@")]
    assert status.get("journal", {}).get("failed", 0) == 0, status.get("journal")


def _twap_with_a_first_fill(topology, *, operation_id: str):
    """Start a worker, send a 0.02 BTC TWAP (20 s horizon, 2 s slices) over HTTP and wait for its first
    child fill in the database; return (worker, the API's answer, parent order id)."""
    worker = topology.start_worker()
    topology.wait_ready(worker)
    twap = topology.post_order(operation_id=operation_id, instrument_key=KEY, side="BUY", order_type="MARKET",
                               quantity="0.02", time_in_force="GTC", exec_algorithm="TWAP",
                               exec_algorithm_params={"horizon_secs": 20, "interval_secs": 2})
    parent_id = twap["order_id"]
    eventually(lambda: Fill.objects.filter(order__parent_id=parent_id).exists(), timeout=60, interval=0.05,
               message="first child fill persisted")
    return worker, twap, parent_id


def _fills_only_on_the_node(trader_id: str, client_order_id: str) -> dict[str, set[str]]:
    """Return client_order_id → trade ids the node's cache holds for this order family and the OMS does not."""
    oms = set(Fill.objects.values_list("venue_trade_id", flat=True))
    node = _node_cache_fills(settings.REDIS_URL, trader_id)
    return {cid: set(ids) - oms for cid, ids in node.items() if cid.startswith(client_order_id) and set(ids) - oms}


@contextlib.contextmanager
def _journal_held_behind(topology, twap: dict):
    """Hold the TWAP parent's row lock (the journal writer needs it to record a new child) until the node
    has filled a child the OMS has not recorded; yield those fills (client_order_id → trade ids) with
    the lock still held."""
    with transaction.atomic():
        Order.objects.select_for_update().get(pk=twap["order_id"])
        yield eventually(lambda: _fills_only_on_the_node(topology.trader_id, twap["client_order_id"]),
                         timeout=30, interval=0.2, message="a child fill in the node's cache that the OMS does not have")


def test_trading_worker_killed_with_the_journal_behind_recovers_child_fills_from_the_node_cache(topology):
    # Arrange: a TWAP whose first child filled; then the journal writer is held up (this test holds the
    # parent's row lock, which recording a new child needs) while the node goes on slicing and filling.
    # That is a journal lagging behind the node, as under load: its queue lives in memory only.
    worker, twap, parent_id = _twap_with_a_first_fill(topology, operation_id="it-twap-2")

    # Act: kill -9 while the node has filled a child the journal has not recorded yet.
    with _journal_held_behind(topology, twap) as behind:
        worker.kill_hard()
    print(f"\nat kill -9, only in the node's cache: {behind}\nOMS:\n{_describe(_family(parent_id))}")
    family = _restart_until_settled(topology, parent_id)

    # Assert: reconciliation re-applied what the node's cache knows; nothing is open, nothing differs.
    print(f"after restart:\n{_describe(family)}")
    node = _node_cache_fills(settings.REDIS_URL, topology.trader_id)
    node_ids = {t for cid, ids in node.items() if cid.startswith(twap["client_order_id"]) for t in ids}
    twap_fills = list(Fill.objects.filter(Q(order_id=parent_id) | Q(order__parent_id=parent_id)))
    oms_ids = [f.venue_trade_id for f in twap_fills]
    assert len(oms_ids) == len(set(oms_ids))
    assert set(oms_ids) == node_ids, f"only on the node: {sorted(node_ids - set(oms_ids))}, " \
                                     f"only in the OMS: {sorted(set(oms_ids) - node_ids)}"
    parent = Order.objects.get(pk=parent_id)
    assert parent.filled_quantity == sum((f.quantity for f in twap_fills), Decimal(0))
    position = Position.objects.get(strategy_id=STRATEGY, venue=VENUE, instrument_key=KEY)
    assert position.quantity == sum((f.quantity for f in twap_fills), Decimal(0))
    findings = list(ReconciliationFinding.objects.filter(venue=VENUE, instrument_key=KEY, resolved_at__isnull=True))
    assert not findings, [str(f) for f in findings]


def _node_disposed(worker: WorkerProcess) -> bool:
    # Whether the worker's log shows its node disposed; a worker that exited without that fails at once.
    disposed = "TradingNode: DISPOSED" in worker.log_path.read_text(errors="replace")
    assert disposed or worker.alive, f"worker exited ({worker.proc.returncode}) before its node was disposed:\n" \
                                     f"{worker.tail()}"
    return disposed


def test_trading_worker_sigterm_with_the_journal_behind_stops_the_node_drains_the_journal_and_exits_0(topology):
    # Arrange: a TWAP whose first child filled; then the journal writer is held up (this test holds the
    # parent's row lock, which recording a new child needs) until the node has filled a child the OMS
    # has not recorded: the journal has work in flight when the signal arrives.
    worker, twap, parent_id = _twap_with_a_first_fill(topology, operation_id="it-twap-3")

    # Act: SIGTERM to the worker process itself (Celery's warm shutdown); the journal is let go only once
    # the node has stopped, so what it had in flight is written by the shutdown's drain, not before.
    with _journal_held_behind(topology, twap) as behind:
        worker.proc.send_signal(signal.SIGTERM)
        eventually(lambda: _node_disposed(worker), timeout=60, interval=0.1,
                   message=f"node of {worker.name} stopped and disposed after SIGTERM")
    try:
        exit_code = worker.proc.wait(timeout=90)
    except subprocess.TimeoutExpired:
        pytest.fail(f"trading worker still running 90 s after SIGTERM:\n{worker.tail()}")

    # Assert: a clean exit after the node stopped and the journal drained (the worker's own log) ...
    log = worker.log_path.read_text(errors="replace")
    assert exit_code == 0, worker.tail()
    assert "Warm shutdown" in log, worker.tail()
    assert f"trading node {topology.trader_id} stopped (clean)" in log, worker.tail()
    assert "journal writer stopped without draining" not in log, worker.tail()
    # In that order: the signal, the node disposed, the fills it had ahead of the journal written, the stop.
    disposed_at = log.index("TradingNode: DISPOSED")
    assert log.index("Warm shutdown") < disposed_at < log.index(f"trading node {topology.trader_id} stopped (clean)")
    for trade_id in set().union(*behind.values()):
        assert log.find(f"fill {trade_id} ", disposed_at) > disposed_at, (trade_id, worker.tail())
    # (The writer logs its counters as its thread ends; its publisher drains after that, inside "clean".)
    stats = [line for line in log.splitlines() if "journal writer stopped: JournalStats(" in line]
    assert len(stats) == 1 and "failed=0," in stats[0] and "queue_depth=0," in stats[0], stats
    # ... and the books show it: every fill the node holds for the TWAP, including those only on the
    # node at the signal, is recorded once, with the parent's filled quantity summing them.
    print(f"\nonly on the node at SIGTERM: {behind}\nafter exit:\n{_describe(_family(parent_id))}")
    node_ids = {t for cid, ids in _node_cache_fills(settings.REDIS_URL, topology.trader_id).items()
                if cid.startswith(twap["client_order_id"]) for t in ids}
    twap_fills = list(Fill.objects.filter(Q(order_id=parent_id) | Q(order__parent_id=parent_id)))
    oms_ids = [f.venue_trade_id for f in twap_fills]
    assert set().union(*behind.values()) <= set(oms_ids)
    assert len(oms_ids) == len(set(oms_ids)) and set(oms_ids) == node_ids, (sorted(node_ids), sorted(oms_ids))
    parent = Order.objects.get(pk=parent_id)
    assert parent.filled_quantity == sum((f.quantity for f in twap_fills), Decimal(0)) > 0


def test_trading_worker_whose_node_lease_is_taken_stops_its_node_and_stops_consuming(topology, redis_client):
    # Arrange: a ready trading worker holding its trader id's node lease (venues/node/lease.py)
    from venues.node.lease import lease_key

    worker = topology.start_worker()
    topology.wait_ready(worker)
    key = lease_key(topology.trader_id)
    assert redis_client.get(key).decode().startswith(worker.name + "@")

    # Act: another worker's token takes the lease (its expiry while Redis was out of reach, then a second
    # worker's start, comes to the same)
    redis_client.set(key, "intruder@elsewhere:1:deadbeef", px=60_000)

    # Assert: the worker says so, stops its node and shuts down (Celery's warm shutdown), so it takes no
    # more venue task; the lease stays with the new holder
    try:
        exit_code = worker.proc.wait(timeout=90)
    except subprocess.TimeoutExpired:
        pytest.fail(f"trading worker still running 90 s after losing its node lease:\n{worker.tail()}")
    log = worker.log_path.read_text(errors="replace")
    assert "taken by intruder@elsewhere:1:deadbeef" in log, worker.tail()
    assert "trading worker stops consuming queue venues" in log and "Warm shutdown" in log, worker.tail()
    # One stop, waited for by the shutdown: the node stopped and the journal drained before the process ended
    assert log.count(f"trading node {topology.trader_id} stopped (clean)") == 1, worker.tail()
    assert exit_code == 0, worker.tail()
    assert redis_client.get(key) == b"intruder@elsewhere:1:deadbeef"
