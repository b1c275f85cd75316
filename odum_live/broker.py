"""Celery's Redis broker transport, with one Redis client per channel instead of one per command.

kombu's Redis transport (5.7) builds a new ``redis.Redis`` object for every publish and for each
step of a late acknowledgement (``Channel.conn_or_acquire``): the unacked-message bookkeeping when
the trading worker takes a task, again when it acks it, and the ``LPUSH`` of every task the API
sends. Building a redis-py client fills its table of response callbacks, which measured ~0.3 ms
of CPU each on the 2-core benchmark machine: more than the round trip it wraps (py-spy of a
``-P solo`` worker, kombu ``Channel._create_client``). The client holds no connection of its own
(the channel's pool does, as before), so one per channel is kept and reused; a new one is built
when kombu replaced the channel's pool (after a connection error).

Selected by ``CELERY_BROKER_TRANSPORT`` (settings) when the broker URL is ``redis://`` or
``rediss://``; behaviour is kombu's otherwise (same keys, same acks, same visibility timeout).
"""

from __future__ import annotations

import contextlib

from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    """kombu's Redis channel; commands outside the event loop share one client per pool."""

    _shared_client = None

    @contextlib.contextmanager
    def conn_or_acquire(self, client=None):
        if client:
            yield client
            return
        pool = self.pool
        shared = self._shared_client
        if shared is None or shared.connection_pool is not pool:
            shared = self._shared_client = self._create_client()
        yield shared


class Transport(kombu_redis.Transport):
    """kombu's Redis transport with :class:`Channel`."""

    Channel = Channel
