"""The node-ownership lease: one running TradingNode per trader id across every trading worker.

Two trading workers with one trader id would trade the same venue accounts through one Redis node
cache, split the ``venues`` queue between them, and answer a cancel that lands on the node that never
saw the order CANCEL_REJECTED (venues/node/bridge.py ``cancel``): the order keeps working. So a
trading worker takes this lease before it consumes ``venues`` (celery_app.py, ``celeryd_after_setup``)
and holds it while its node runs.

- **Key** ``odum:trading-node:<trader id>``, value the holder's token (``<celery node name>:<pid>:<random>``),
  taken with ``SET key token NX PX ttl`` (the single-instance Redis lock of the Redis docs, "Distributed
  locks with Redis", correct for one Redis server).
- **Renewal** and **release** compare the token first (small Lua scripts, atomic on the server), so a
  worker never extends or deletes a lease another worker took after its own expired.
- **Keeper**: a thread renews every ``ttl / 4`` seconds from the moment the lease is taken — including
  while the node is still connecting and reconciling, which can outlast the TTL — until release.
  A renewal that finds another token or no key, or Redis unreachable for so long that the lease may
  already have expired, marks the lease lost and calls the ``on_lost`` callbacks once
  (the host stops taking venue commands and stops its node: venues/node/host.py).

The process's one lease: :func:`acquire_node_lease`, :func:`node_lease`, :func:`release_node_lease`.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)

KEY_PREFIX = "odum:trading-node:"

# KEYS[1] the lease key, ARGV[1] the token, ARGV[2] the TTL in ms: extend only our own lease.
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
# KEYS[1] the lease key, ARGV[1] the token: delete only our own lease.
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


class NodeLeaseRefused(RuntimeError):
    """Another token held the lease for the whole wait; ``holder`` is its token (None: it expired just now)."""

    def __init__(self, message: str, *, holder: str | None) -> None:
        super().__init__(message)
        self.holder = holder


def lease_key(trader_id: str) -> str:
    """Return the Redis key of ``trader_id``'s lease, e.g. ``odum:trading-node:ODUM-001``."""
    return f"{KEY_PREFIX}{trader_id}"


def lease_token(name: str | None = None) -> str:
    """Return a token unique to this process and call: ``<name>:<pid>:<8 hex>`` (name: Celery node name)."""
    return f"{name or 'node'}:{os.getpid()}:{secrets.token_hex(4)}"


class NodeLease:
    """One worker's lease on one trader id's node (see the module docstring).

    Parameters
    ----------
    client : redis.Redis
        The Redis holding the lease (``REDIS_URL``).
    trader_id : str
        NautilusTrader trader id, e.g. ``ODUM-001``.
    token : str
        This holder's token (:func:`lease_token`).
    ttl_secs : float
        Lease lifetime in seconds; each renewal restarts it (``NODE_LEASE_TTL_SECS``).
    """

    def __init__(self, client, *, trader_id: str, token: str, ttl_secs: float) -> None:
        if ttl_secs <= 0:
            raise ValueError(f"ttl_secs must be positive, got {ttl_secs!r}")
        self.client = client
        self.trader_id = trader_id
        self.key = lease_key(trader_id)
        self.token = token
        self.ttl_secs = ttl_secs
        self.lost = ""  # why the lease was lost; "" while held (or never taken)
        self.held = False
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self._last_renewed = 0.0  # monotonic time before the last successful take or renewal
        self._on_lost: list[Callable[[str], None]] = []
        self._stop = threading.Event()
        self._keeper: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def _ttl_ms(self) -> int:
        return max(1, int(self.ttl_secs * 1000))

    def holder(self) -> str | None:
        """Return the token holding the lease now (None: nobody)."""
        value = self.client.get(self.key)
        return value.decode() if isinstance(value, bytes) else value

    def try_acquire(self) -> bool:
        """Take the lease if nobody holds it (or this token already does); return whether it is ours."""
        started = time.monotonic()
        if self.client.set(self.key, self.token, nx=True, px=self._ttl_ms) or self._renew(
                keys=[self.key], args=[self.token, self._ttl_ms]):
            self.held, self.lost, self._last_renewed = True, "", started
            return True
        return False

    def acquire(self, *, wait_secs: float, poll_secs: float = 0.5) -> None:
        """Take the lease, polling up to ``wait_secs`` seconds while another token holds it.

        Raises
        ------
        NodeLeaseRefused
            Still held by another token after ``wait_secs`` (its token in ``holder``).
        """
        deadline = time.monotonic() + wait_secs
        while not self.try_acquire():
            if time.monotonic() >= deadline:
                holder = self.holder()
                raise NodeLeaseRefused(f"node lease {self.key} held by {holder or '(expired just now)'} for the "
                                       f"whole {wait_secs:g} s wait", holder=holder)
            time.sleep(poll_secs)

    def renew(self) -> bool:
        """Extend our lease by ``ttl_secs``; return False (and mark it lost) when another token or nobody holds it.

        A Redis error is re-raised; the keeper counts it against the lease's remaining life.
        """
        started = time.monotonic()
        if self._renew(keys=[self.key], args=[self.token, self._ttl_ms]):
            self._last_renewed = started
            return True
        holder = self.holder()
        self._mark_lost(f"node lease {self.key} " + (f"taken by {holder}" if holder else "expired (no holder)"))
        return False

    def release(self) -> bool:
        """Stop renewing and delete the lease if it is still ours; return whether it was deleted. Never raises."""
        self._stop.set()
        if self._keeper is not None and self._keeper is not threading.current_thread():
            self._keeper.join(5.0)
        self.held = False
        try:
            return bool(self._release(keys=[self.key], args=[self.token]))
        except Exception:  # noqa: BLE001 - it then expires after ttl_secs
            logger.exception("node lease %s: release failed; it expires in %.0f s", self.key, self.ttl_secs)
            return False

    def on_lost(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(reason)`` once when the lease is lost (at once if it already is)."""
        with self._lock:
            self._on_lost.append(callback)
            lost = self.lost
        if lost:
            callback(lost)

    def keep(self, *, interval_secs: float | None = None) -> None:
        """Renew on a daemon thread every ``interval_secs`` (default ``ttl_secs / 4``) until release or loss."""
        interval = interval_secs or self.ttl_secs / 4
        self._keeper = threading.Thread(target=self._keep, args=(interval,), name="odum-node-lease", daemon=True)
        self._keeper.start()

    def _keep(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                if not self.renew():
                    return
            except Exception as exc:  # noqa: BLE001 - Redis unreachable: counted against the lease's life
                # Lost once the next try would come after the lease may have expired on the server.
                if time.monotonic() + interval - self._last_renewed >= self.ttl_secs:
                    self._mark_lost(f"node lease {self.key} not renewed for {self.ttl_secs:g} s "
                                    f"({type(exc).__name__}: {exc})")
                    return
                logger.warning("node lease %s: renewal failed, retrying: %s", self.key, exc)

    def _mark_lost(self, reason: str) -> None:
        with self._lock:
            if self.lost or self._stop.is_set():
                return
            self.lost, self.held = reason, False
            callbacks = list(self._on_lost)
        logger.critical("%s: this worker (%s) must not trade for %s any more", reason, self.token, self.trader_id)
        for callback in callbacks:
            try:
                callback(reason)
            except Exception:  # noqa: BLE001
                logger.exception("node lease %s: on_lost callback failed", self.key)

    def describe(self) -> dict:
        """Return ``{"key", "token", "held", "lost"}`` for the heartbeat (JSON-ready)."""
        return {"key": self.key, "token": self.token, "held": self.held, "lost": self.lost}


# -- the process's one lease ------------------------------------------------------------------------

_lease: NodeLease | None = None


def node_lease() -> NodeLease | None:
    """Return this process's lease (None when it took none: embedded mode, tests)."""
    return _lease


def acquire_node_lease(*, client, trader_id: str, name: str | None, ttl_secs: float, wait_secs: float,
                       poll_secs: float = 0.5) -> NodeLease:
    """Take ``trader_id``'s lease for this process (waiting up to ``wait_secs`` s) and keep renewing it.

    Raises
    ------
    NodeLeaseRefused
        Another worker held it for the whole wait.
    """
    global _lease
    lease = NodeLease(client, trader_id=trader_id, token=lease_token(name), ttl_secs=ttl_secs)
    lease.acquire(wait_secs=wait_secs, poll_secs=poll_secs)
    lease.keep()
    _lease = lease
    logger.info("node lease %s taken by %s (ttl %g s)", lease.key, lease.token, ttl_secs)
    return lease


def release_node_lease() -> bool:
    """Release this process's lease (if any); return whether a lease was deleted."""
    global _lease
    lease, _lease = _lease, None
    return lease.release() if lease is not None else False
