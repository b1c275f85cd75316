"""The TradingNode host: the node's thread, command hand-off, readiness, heartbeat and clean stop.

Pattern (NAUTILUS_NOTES.md, "Hosting a TradingNode beside other code"): the host creates an event
loop, builds ``TradingNode(config, loop=loop)`` and runs ``node.run()`` on a background thread.
Commands go in with ``loop.call_soon_threadsafe`` and a ``concurrent.futures.Future`` for the answer;
order events come out through the bridge strategy into the journal writer's queue.

- **Signals.** Building a node installs SIGTERM / SIGINT / SIGABRT handlers and resets SIGINT
  (``NautilusKernel._setup_loop``), which would fight the Celery worker's own shutdown and fails
  off the main thread. The host builds every node with that one step switched off
  (:func:`_without_signal_handlers`); the process that hosts the node (the Celery worker, or daphne
  in the embedded default) owns its signals and calls :meth:`TradingNodeHost.stop`.
- **Readiness** is the bridge strategy running — not the node object existing: if a client fails
  to connect or reconciliation times out, the trader never starts (NAUTILUS_NOTES.md).
- **Stop**: ``node.stop_async()`` on the loop, wait for ``run()`` to return, ``dispose()``; then the
  market-data publisher and the journal writer drain and stop.
- **Heartbeat**: every ``heartbeat_secs`` the host writes :func:`odum_live.health.record_trading_node_heartbeat`
  with its status (ready, clients connected, last market data per listing, venue problems,
  journal counters) under its own worker id (``worker_id``: the Celery node name, else host:pid),
  and a final "stopped" beat on a clean stop.
- **Lease** (worker mode): the process's node-ownership lease (venues/node/lease.py) is renewed by
  its own keeper thread from before the worker consumes ``venues`` — the node's start can outlast its
  TTL, so the heartbeat, which starts once the node is ready, cannot be the one renewing it. When it is
  lost the host refuses every command at once and stops its node; the heartbeat shows the lease.

:func:`start_trading_node` / :func:`trading_node_host` / :func:`stop_trading_node` keep the one
host of the process.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from nautilus_trader.live.node import TradingNode
from nautilus_trader.system.kernel import NautilusKernel

from odum_live.heap import freeze_startup_heap
from venues.commands import (
    CancelOrderCommand,
    NodeOrderStatus,
    OrderStatusQuery,
    SubmitOrderCommand,
    VenueCommandError,
)
from venues.events import VenueEvent
from venues.journal import JournalWriter
from venues.node.bridge import BridgeConfig, BridgeStrategy
from venues.node.config import NodePlan, node_plan, trading_node_config
from venues.node.lease import NodeLease, node_lease
from venues.node.publisher import MarketDataPublisher

logger = logging.getLogger(__name__)

_BUILD_LOCK = threading.Lock()


class NodeStartError(RuntimeError):
    """The node did not become ready (bridge strategy running) in time; the message says why."""


@contextlib.contextmanager
def _without_signal_handlers():
    # NautilusKernel.__init__ calls _setup_loop() when given a loop; make it a no-op for this build.
    with _BUILD_LOCK:
        original = NautilusKernel._setup_loop
        NautilusKernel._setup_loop = lambda self: None
        try:
            yield
        finally:
            NautilusKernel._setup_loop = original


class TradingNodeHost:
    """One TradingNode on its own thread (see the module docstring).

    Parameters
    ----------
    plan : NodePlan
        Venues, listings, instruments and client configs (:func:`venues.node.config.node_plan`).
    trader_id : str
        NautilusTrader trader id, e.g. ``ODUM-001``.
    hostname : str
        Reported in the heartbeat. A Celery node name (``name@host``) is also the worker's heartbeat
        id; otherwise the id is ``host:pid`` (:func:`odum_live.health.trading_worker_id`).
    journal : JournalWriter | None
        Receives every translated venue event; a new one is made when None.
    log_level : str
        NautilusTrader log level.
    cache_redis_url : str | None
        Persist the node's cache in this Redis (restart resumes); None = memory.
    heartbeat_secs : float
        Seconds between heartbeats (0 disables them: tests).
    md_interval_secs, mark_interval_secs : float
        Market-data publishing round and minimum seconds between marks
        (:class:`~venues.node.publisher.MarketDataPublisher`).
    journal_wait_secs : float
        Longest the node's thread waits, after handing a venue event to an idle journal writer,
        for the writer to record it (:meth:`~venues.journal.JournalWriter.submit_and_wait`);
        0 never waits.
    lease : NodeLease | None
        The process's node-ownership lease (venues/node/lease.py), None in the embedded mode. When it
        is lost the host stops taking commands and stops its node (:meth:`_on_lease_lost`).
    """

    def __init__(self, *, plan: NodePlan, trader_id: str, hostname: str | None = None,
                 journal: JournalWriter | None = None, log_level: str = "WARNING",
                 cache_redis_url: str | None = None, heartbeat_secs: float = 2.0,
                 md_interval_secs: float = 0.25, mark_interval_secs: float = 1.0,
                 journal_wait_secs: float = 0.0, lease: NodeLease | None = None) -> None:
        self.plan = plan
        self.trader_id = trader_id
        self.hostname = hostname or socket.gethostname()
        from odum_live.health import trading_worker_id

        self.worker_id = trading_worker_id(self.hostname)
        self.journal = journal or JournalWriter()
        self.publisher = MarketDataPublisher(interval_secs=md_interval_secs, mark_interval_secs=mark_interval_secs)
        self._log_level = log_level
        self._cache_redis_url = cache_redis_url
        self._heartbeat_secs = heartbeat_secs
        self._journal_wait_secs = journal_wait_secs
        self.loop: asyncio.AbstractEventLoop | None = None
        self.node: TradingNode | None = None
        self.bridge: BridgeStrategy | None = None
        self._thread: threading.Thread | None = None
        self._heartbeat_stop = threading.Event()
        self._heartbeat: threading.Thread | None = None
        self.started_at: float | None = None
        self.reconciliation: dict[str, Any] | None = None  # the start-up summary; None until it is done
        self.error = ""
        self.stopped = False
        self._stop_lock = threading.Lock()  # one stop at a time; a concurrent caller waits for its outcome
        self._stop_clean: bool | None = None
        self.lease = lease
        if lease is not None:
            lease.on_lost(self._on_lease_lost)

    # -- lifecycle ----------------------------------------------------------------------------------

    def start(self, *, timeout: float = 30.0) -> TradingNodeHost:
        """Build the node, start it on its thread and wait until the bridge strategy runs.

        Raises
        ------
        NodeStartError
            Not ready within ``timeout`` seconds, the node thread died, or the node could not be built
            (e.g. a malformed setting: the error names it); the node is stopped and ``error`` says why.
        """
        if self._lease_lost() or self.stopped:
            raise NodeStartError(self.error or "trading node host already stopped")
        try:
            self._build()
        except Exception as exc:  # noqa: BLE001 - a host that never started must say why, not look "starting"
            self.error = f"trading node could not be built: {type(exc).__name__}: {exc}"
            logger.exception("trading node %s could not be built", self.trader_id)
            self.stop()
            raise NodeStartError(self.error) from exc
        self._thread = threading.Thread(target=self._run, name="odum-trading-node", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._bridge_running():
            if self._lease_lost():
                self.stop()
                raise NodeStartError(self.error)
            if not self._thread.is_alive():
                self.stop()
                raise NodeStartError(f"trading node thread exited during start: {self.error or 'see the node log'}")
            if time.monotonic() > deadline:
                self.error = f"bridge strategy not running after {timeout:.0f} s (a client failed to connect " \
                             f"or reconciliation timed out: see the node log)"
                self.stop()
                raise NodeStartError(self.error)
            time.sleep(0.02)
        self.started_at = time.time()
        try:
            self.reconciliation = self._reconcile()
        except Exception as exc:  # noqa: BLE001 - a node that could not reconcile must not take orders
            self.error = f"reconciliation on start failed: {type(exc).__name__}: {exc}"
            logger.exception("trading node %s: reconciliation on start failed", self.trader_id)
            self.stop()
            raise NodeStartError(self.error) from exc
        if self._heartbeat_secs > 0:
            self._heartbeat = threading.Thread(target=self._beat, name="odum-node-heartbeat", daemon=True)
            self._heartbeat.start()
        logger.info("trading node %s ready: %d listing(s) on %s", self.trader_id, len(self.plan.listings),
                    ", ".join(f"{v.code} ({v.mode})" for v in self.plan.venues) or "no venue")
        return self

    def _build(self) -> None:
        # start(): the loop, the node with its client factories and the bridge, the instruments; the
        # journal writer and the market-data publisher started.
        self.loop = asyncio.new_event_loop()
        config = trading_node_config(self.plan, trader_id=self.trader_id, log_level=self._log_level,
                                     cache_redis_url=self._cache_redis_url)
        with _without_signal_handlers():
            self.node = TradingNode(config=config, loop=self.loop)
        for name, factory in self.plan.data_factories.items():
            self.node.add_data_client_factory(name, factory)
        for name, factory in self.plan.exec_factories.items():
            self.node.add_exec_client_factory(name, factory)
        self.bridge = BridgeStrategy(
            BridgeConfig(order_id_tag="BRIDGE", listings=tuple(
                (lp.nautilus_instrument_id, lp.venue, lp.instrument_key, lp.exec_client_id, lp.data_client_id, lp.feeds)
                for lp in self.plan.listings)),
            event_sink=self._event_sink(), quote_sink=self.publisher.on_quote, bar_sink=self.publisher.on_bar,
        )
        self.node.trader.add_strategy(self.bridge)
        self.node.build()
        for instrument in self.plan.instruments:
            self.node.kernel.cache.add_instrument(instrument)
        if not self.journal.is_running:
            self.journal.start()
        self.publisher.start()

    def _reconcile(self) -> dict[str, Any]:
        # venues/node/reconcile.py: orders through the journal, then positions compared and recorded.
        from positions.services import reconciliation_record
        from venues.node.reconcile import net_positions_on_node, open_orders, reconcile_orders_on_node

        venues = {v.code: v.mode for v in self.plan.venues}
        orders = open_orders(venues=venues)
        cache = self.node.kernel.cache
        events = self.call(lambda: reconcile_orders_on_node(cache, orders), timeout=30.0)
        for event in events:
            self.journal.submit(event)
        if not self.journal.wait_handled(timeout=60.0):
            logger.error("reconciliation: journal writer still busy after %.0f s; positions compared anyway", 60.0)
        listings = {lp.nautilus_instrument_id: (lp.venue, lp.instrument_key) for lp in self.plan.listings}
        quantities = self.call(lambda: net_positions_on_node(cache, listings), timeout=30.0)
        findings = reconciliation_record(venues=list(venues), venue_quantities=quantities,
                                         detail=f"node {self.trader_id} start on {self.hostname}")
        summary = {"orders_checked": len(orders), "events": len(events), "findings": [str(f) for f in findings]}
        logger.info("reconciliation on start: %s", summary)
        return summary

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.node.run(raise_exception=True)
        except BaseException as exc:  # noqa: BLE001 - reported through is_ready / status
            self.error = f"{type(exc).__name__}: {exc}"
            logger.exception("trading node run failed")

    def _bridge_running(self) -> bool:
        return (self.bridge is not None and not self.stopped and self._thread is not None
                and self._thread.is_alive() and self.bridge.is_running)

    def is_ready(self) -> bool:
        """Whether the node can take orders: the bridge strategy running and start-up reconciliation done.

        Commands wait for reconciliation (venues/tasks.py waits ``NODE_READY_WAIT_SECS``): a cancel
        or submit racing the re-application of the fills the node holds would see a stale order.
        """
        return self.reconciliation is not None and self._bridge_running() and not self._lease_lost()

    def _lease_lost(self) -> bool:
        return self.lease is not None and bool(self.lease.lost)

    def _on_lease_lost(self, reason: str) -> None:
        # Never keep trading without the lease: another worker may run this trader id's node now.
        # is_ready() and call() refuse at once (lease.lost is set before this runs); stop the node off
        # the caller's thread (the lease keeper), leaving the host installed with its error for tasks
        # and health. A host still starting (started_at unset) is stopped by start() itself: its wait
        # loop and its reconciliation (call() refuses) both see the lost lease.
        self.error = f"{reason}: venue commands refused, trading node stopped"
        logger.critical("trading node %s: %s", self.trader_id, self.error)
        if self.started_at is not None:
            threading.Thread(target=self.stop, name="odum-node-lease-lost-stop", daemon=True).start()

    def stop(self, *, timeout: float = 30.0) -> bool:
        """Stop the node, then drain the publisher and the journal writer; return True when clean.

        Idempotent and safe from several threads: a caller while a stop runs (a lost lease's stop and the
        worker's shutdown) waits for it and gets its outcome, so nobody takes a stop still draining for
        done. Never raises: a stop that times out is logged and returns False.
        """
        self.stopped = True  # refuse commands at once (call()), before waiting for a stop already running
        with self._stop_lock:
            if self._stop_clean is None:
                self._stop_clean = self._stop(timeout)
            return self._stop_clean

    def _stop(self, timeout: float) -> bool:
        clean = True
        self._heartbeat_stop.set()
        if self._heartbeat is not None:
            # A beat in progress must not land after the last one, which says the node is gone: /api/health
            # would otherwise show the last "running" beat for NODE_HEARTBEAT_MAX_AGE_SECS after the stop.
            self._heartbeat.join(timeout)
            self._record_stopped_heartbeat()
        if self.node is not None and self.loop is not None and self._thread is not None and self._thread.is_alive():
            try:
                asyncio.run_coroutine_threadsafe(self.node.stop_async(), self.loop).result(timeout)
            except Exception as exc:  # noqa: BLE001
                clean = False
                logger.error("trading node stop failed: %s", exc)
            self._thread.join(timeout)
            clean = clean and not self._thread.is_alive()
        if self.node is not None:
            try:
                self.node.dispose()
            except Exception as exc:  # noqa: BLE001
                clean = False
                logger.error("trading node dispose failed: %s", exc)
        self.publisher.stop()
        clean = self.journal.stop(drain=True, timeout=timeout) and clean
        logger.info("trading node %s stopped (%s)", self.trader_id, "clean" if clean else "NOT clean")
        return clean

    def _event_sink(self) -> Callable[[VenueEvent], Any]:
        # What the bridge strategy hands each translated venue event to, on the node's thread.
        if self._journal_wait_secs > 0:
            return functools.partial(self.journal.submit_and_wait, timeout=self._journal_wait_secs)
        return self.journal.submit

    # -- hand-off -----------------------------------------------------------------------------------

    def call(self, fn: Callable[[], Any], *, timeout: float = 5.0) -> Any:
        """Run ``fn()`` on the node's loop thread and return its result (or raise its exception).

        Raises
        ------
        VenueCommandError
            The node is not running, or its loop did not start ``fn`` within ``timeout`` seconds
            (``fn`` then never runs). Once ``fn`` has started, the call waits for its outcome.
        """
        if (self.loop is None or self._thread is None or not self._thread.is_alive() or self.stopped
                or self._lease_lost()):
            raise VenueCommandError(f"trading node is not running{': ' + self.error if self.error else ''}")
        future: concurrent.futures.Future = concurrent.futures.Future()

        def run() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(fn())
            except BaseException as exc:  # noqa: BLE001 - handed back to the caller's thread
                future.set_exception(exc)

        self.loop.call_soon_threadsafe(run)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            if future.cancel():  # ``fn`` never started: the node took nothing
                raise VenueCommandError(f"trading node did not take the command within {timeout} s") from None
        # ``fn`` already runs on the loop (it may be sending the order): its own outcome decides,
        # never a "not taken" for a command the node may have sent.
        return future.result()

    def submit(self, command: SubmitOrderCommand, *, timeout: float = 5.0) -> None:
        """Hand a submit to the bridge strategy; return once the node has taken it.

        Raises
        ------
        VenueCommandError
            Node not ready, or the bridge refused the command (reason in the message).
        """
        self._hand_off(lambda: self.bridge.submit(command), timeout)

    def cancel(self, command: CancelOrderCommand, *, timeout: float = 5.0) -> None:
        """Hand a cancel to the bridge strategy (errors as :meth:`submit`)."""
        self._hand_off(lambda: self.bridge.cancel(command), timeout)

    def query(self, query: OrderStatusQuery, *, timeout: float = 5.0) -> NodeOrderStatus | None:
        """Return the node's state of one order (None: the node does not know it); errors as :meth:`submit`."""
        return self._hand_off(lambda: self.bridge.query(query), timeout)

    def _hand_off(self, fn: Callable[[], Any], timeout: float) -> Any:
        self._require_ready()
        try:
            return self.call(fn, timeout=timeout)
        except VenueCommandError:
            raise
        except Exception as exc:  # noqa: BLE001 - any refusal on the node becomes the order's stated reason
            logger.exception("trading node refused a command")
            raise VenueCommandError(f"trading node refused the command: {type(exc).__name__}: {exc}") from exc

    def _require_ready(self) -> None:
        if not self.is_ready():
            raise VenueCommandError(f"trading node is not ready{': ' + self.error if self.error else ''}")

    # -- status -------------------------------------------------------------------------------------

    def _clients_connected(self) -> dict[str, bool]:
        kernel = self.node.kernel
        clients = {}
        for engine in (kernel.data_engine, kernel.exec_engine):
            for client_id in engine.registered_clients:
                client = engine._clients.get(client_id) if hasattr(engine, "_clients") else None
                clients[client_id.value] = bool(client is not None and client.is_connected)
        return clients

    def status(self) -> dict[str, Any]:
        """Return the heartbeat status: JSON-ready dict (ready, clients, market data, venues, journal)."""
        ready, error = self.is_ready(), self.error
        try:
            clients = self.call(self._clients_connected, timeout=2.0) if self._bridge_running() else {}
        except VenueCommandError as exc:
            # The loop did not run a callback in time (blocked, or gone): it would not take a command
            # either, so the node is not ready, whatever its thread and strategy flags say.
            clients = {"error": str(exc)}
            ready, error = False, error or f"node loop unresponsive: {exc}"
        journal = self.journal.stats()
        return {
            "trader_id": self.trader_id,
            "ready": ready,
            "error": error,
            "clients": clients,
            "market_data": self.publisher.last_market_data(),
            "venues": {v.code: {"mode": v.mode, "problems": list(v.problems), "notes": list(v.notes)}
                       for v in self.plan.venues},
            "reconciliation": self.reconciliation,
            "lease": self.lease.describe() if self.lease is not None else None,
            "journal": {"applied": journal.applied, "ignored": journal.ignored, "failed": journal.failed,
                        "queue_depth": journal.queue_depth, "last_error": journal.last_error},
        }

    def _record_stopped_heartbeat(self) -> None:
        from odum_live.health import record_trading_node_heartbeat

        try:
            record_trading_node_heartbeat(hostname=self.hostname, worker=self.worker_id, detail="stopped", stopped=True,
                                          status={"trader_id": self.trader_id, "ready": False,
                                                  "error": self.error or "trading node stopped"})
        except Exception:  # noqa: BLE001 - its last running beat then goes stale: reported down
            logger.exception("trading node final heartbeat failed")

    def _beat(self) -> None:
        from odum_live.health import record_trading_node_heartbeat

        while True:
            try:
                status = self.status()
                detail = "running" if status["ready"] else f"not ready {status['error']}".strip()
                record_trading_node_heartbeat(hostname=self.hostname, worker=self.worker_id, detail=detail,
                                              status=status)
            except Exception:  # noqa: BLE001 - a missed beat shows as an old heartbeat
                logger.exception("trading node heartbeat failed")
            if self._heartbeat_stop.wait(self._heartbeat_secs):
                return


# -- the process's one host -----------------------------------------------------------------------

_host: TradingNodeHost | None = None
_host_lock = threading.Lock()


def trading_node_host() -> TradingNodeHost | None:
    """Return this process's host (None when no node runs in this process)."""
    return _host


def set_trading_node_host(host: TradingNodeHost | None) -> TradingNodeHost | None:
    """Install ``host`` as this process's host (tests); return the previous one."""
    global _host
    with _host_lock:
        previous, _host = _host, host
    return previous


def start_trading_node(*, hostname: str | None = None, venue_codes: list[str] | None = None,
                       timeout: float | None = None) -> TradingNodeHost:
    """Build and start this process's node from the database and settings (idempotent).

    Settings: ``ODUM['NODE_TRADER_ID']``, ``NODE_LOG_LEVEL``, ``NODE_START_TIMEOUT_SECS``,
    ``NODE_CACHE_REDIS`` (persist the node's cache in ``REDIS_URL``), ``MARKET_DATA_PUBLISH_SECS``,
    ``POSITION_MARK_SECS``, ``NODE_JOURNAL_WAIT_SECS``.

    Raises
    ------
    NodeStartError
        Not ready in time; the failed host stays installed so tasks report its error.
    """
    global _host
    with _host_lock:
        if _host is not None and not _host.stopped:
            return _host
        odum = settings.ODUM
        plan = node_plan(venue_codes=venue_codes, ts_ns=time.time_ns())
        redis_url = settings.REDIS_URL if odum["NODE_CACHE_REDIS"] else None
        _host = TradingNodeHost(plan=plan, trader_id=odum["NODE_TRADER_ID"], hostname=hostname,
                                log_level=odum["NODE_LOG_LEVEL"], cache_redis_url=redis_url or None,
                                md_interval_secs=odum["MARKET_DATA_PUBLISH_SECS"],
                                mark_interval_secs=odum["POSITION_MARK_SECS"],
                                journal_wait_secs=odum["NODE_JOURNAL_WAIT_SECS"], lease=node_lease())
        host = _host
    host.start(timeout=timeout or odum["NODE_START_TIMEOUT_SECS"])
    # The process now holds its long-lived heap (NautilusTrader's node, its cache and instruments):
    # out of the collector's full walks, which stopped the journal's writes (odum_live/heap.py).
    freeze_startup_heap()
    return host


def stop_trading_node(*, timeout: float = 30.0) -> bool:
    """Stop this process's node (if any); return True when the stop was clean."""
    host = trading_node_host()
    return host.stop(timeout=timeout) if host is not None else True


def start_trading_node_in_background(*, hostname: str | None = None) -> threading.Thread:
    """Start this process's node on a thread and stop it at exit (the embedded default's web process).

    The web process keeps serving while the node starts; orders sent meanwhile wait up to
    ``NODE_READY_WAIT_SECS`` for it (:mod:`venues.tasks`). A failed start is logged and reported in
    health (the failed host stays installed with its error).
    """
    import atexit

    def run() -> None:
        try:
            start_trading_node(hostname=hostname)
        except NodeStartError as exc:
            logger.critical("embedded trading node failed to start: %s", exc)
        except Exception:  # noqa: BLE001 - e.g. the database not migrated yet: say so, keep serving
            logger.exception("embedded trading node failed to start")

    atexit.register(stop_trading_node)
    thread = threading.Thread(target=run, name="odum-node-start", daemon=True)
    thread.start()
    return thread
