"""Test helpers shared by every test module."""

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

T = TypeVar("T")

#: ``../shared/data`` beside the project root: recorded market data and venue payloads. CI has it
#: beside its clone; a clone elsewhere may not, so tests that read it skip with this reason.
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MARKET_DATA = SHARED_DATA / "market"
needs_market_data = pytest.mark.skipif(
    not MARKET_DATA.is_dir(), reason=f"shared market data not found at {MARKET_DATA} (CI provides ../shared/data)"
)

#: Seconds a test waits for a WebSocket / channel-layer message that must come. A wait for work, not
#: a deadline: it returns at the first message. 5 s was not enough on a slow CI machine under load
#: (a positions push timed out in the full PostgreSQL run while passing alone).
WS_TIMEOUT = 30.0


def eventually(predicate: Callable[[], T], *, timeout: float = 10.0, interval: float = 0.02, message: str = "") -> T:
    """Poll ``predicate`` until it returns a truthy value; return that value.

    Raises
    ------
    AssertionError
        When ``timeout`` seconds pass first (the message says what was awaited).
    """
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s: {message or predicate!r} (last={last!r})")


def run_concurrently(count: int, work: Callable[[int], T]) -> tuple[list[T | None], list[BaseException]]:
    """Run ``work(i)`` for i in ``range(count)`` in threads released together by a barrier.

    Each thread closes its database connections when done. Returns the results in index order
    and the exceptions raised (the caller asserts on them).

    Raises
    ------
    AssertionError
        When a thread is still running after 120 s (a deadlock).
    """
    import threading

    from django.db import connections

    barrier = threading.Barrier(count)
    results: list[T | None] = [None] * count
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = work(i)
        except BaseException as exc:  # noqa: BLE001 - returned to the caller
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread is stuck (deadlock?)"
    return results, errors


class ChannelListener:
    """Read one channel-layer channel in one event loop, never cancelling a pending receive.

    channels_redis' pub/sub layer forgets a channel whose receive is cancelled (it takes that for
    its consumer leaving), so a read that timed out leaves its receive pending for the next read
    instead of cancelling it (``asyncio.wait_for`` would). Create it with :meth:`subscribed`, in the
    loop that reads it; :meth:`close` at the end.
    """

    def __init__(self, layer, channel: str) -> None:
        self.layer = layer
        self.channel = channel
        self._pending: asyncio.Future | None = None

    @classmethod
    async def subscribed(cls, layer, *groups: str, prefix: str = "test.") -> "ChannelListener":
        """Return a listener of a new channel that is a member of ``groups``."""
        channel = await layer.new_channel(prefix)
        for group in groups:
            await layer.group_add(group, channel)
        return cls(layer, channel)

    async def receive(self, timeout: float) -> dict:
        """Return the next message; raise ``TimeoutError`` when none comes within ``timeout`` seconds."""
        if self._pending is None:
            self._pending = asyncio.ensure_future(self.layer.receive(self.channel))
        done, _ = await asyncio.wait({self._pending}, timeout=timeout)
        if not done:
            raise TimeoutError(f"no message on {self.channel} within {timeout}s")
        pending, self._pending = self._pending, None
        return pending.result()

    async def drain(self, quiet: float = 1.0) -> list[dict]:
        """Return every message until none comes for ``quiet`` seconds."""
        messages = []
        while True:
            try:
                messages.append(await self.receive(quiet))
            except TimeoutError:
                return messages

    async def close(self) -> None:
        """Cancel a pending receive (the layer then forgets the channel)."""
        if self._pending is not None:
            self._pending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pending
            self._pending = None


@contextlib.contextmanager
def position_row_held(**lookup) -> Iterator[None]:
    """Hold the ``Position`` row matching ``lookup`` locked (``SELECT … FOR UPDATE``) in another thread's
    transaction while the block runs, as a fill in progress would; release it afterwards."""
    import threading

    from django.db import connection, transaction

    from positions.models import Position

    held, release = threading.Event(), threading.Event()

    def hold():
        try:
            with transaction.atomic():
                Position.objects.select_for_update().get(**lookup)
                held.set()
                release.wait(5)
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(5), f"position {lookup} not locked"
        yield
    finally:
        release.set()
        holder.join()


@contextlib.contextmanager
def running_node_host(plan, *, trader_id: str, journal=None, first_quote_of: str | None = None,
                      message: str = "first quote", **options) -> Iterator:
    """Start a TradingNode host on ``plan`` as this process's host; stop it afterwards (cleanly, or fail).

    ``options`` go to ``TradingNodeHost`` (heartbeat off and log level ERROR unless given); with
    ``first_quote_of`` (an instrument key) it waits until the node has published a quote for it.
    """
    from venues.journal import JournalWriter
    from venues.node.host import TradingNodeHost, set_trading_node_host

    options = {"heartbeat_secs": 0, "log_level": "ERROR", **options}
    host = TradingNodeHost(plan=plan, trader_id=trader_id, journal=journal or JournalWriter(), **options)
    host.start(timeout=30)
    previous = set_trading_node_host(host)
    try:
        if first_quote_of is not None:
            eventually(lambda: first_quote_of in host.publisher.last_market_data(), timeout=20, message=message)
        yield host
    finally:
        set_trading_node_host(previous)
    assert host.stop(timeout=20)


def forget_trading_node_heartbeats() -> None:
    """Delete every trading worker's heartbeat and the registry of workers (the cache outlives tests)."""
    from django.core.cache import cache

    from odum_live.health import TRADING_NODE_WORKERS_KEY, trading_worker_heartbeat_key

    workers = cache.get(TRADING_NODE_WORKERS_KEY) or ()
    cache.delete_many([TRADING_NODE_WORKERS_KEY, *(trading_worker_heartbeat_key(w) for w in workers)])


def migrate_to(target: tuple[str, str]):
    """Migrate ``target``'s app to ``target`` (app label, migration name); return the historical apps at that state.

    For migration tests (``pytest.mark.django_db(transaction=True)``: SQLite alters tables only outside a
    transaction); the ``at_latest`` fixture (tests/conftest.py) puts every app back afterwards.
    """
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    executor.migrate([target])
    return executor.loader.project_state([target]).apps
