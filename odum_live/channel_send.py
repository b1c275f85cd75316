"""Channel-layer sends from synchronous code (WSGI request threads, the journal writer's publisher, timers).

:func:`run_on_layer` runs a coroutine function with the channel layer to send through:

- **channels_redis** (production: ``RedisPubSubChannelLayer``; ``RedisChannelLayer`` also works): on one
  event-loop thread per process (:class:`_SenderLoop`), through a layer instance of its own. From a
  thread without a loop, ``async_to_sync`` builds a new loop per call, and channels_redis a new
  connection pool (the pub/sub layer: a new loop layer with its own connections) with it — a thread
  start, a Redis connect and handshake per send. Here the loop, and so the layer's connections,
  live as long as the process. The instance is the sender's own (same settings: same Redis, prefix
  and groups), so nothing that closes the shared layer's pools from another loop (a flush) touches
  its connections.
- **any other layer** (the embedded default's ``InMemoryChannelLayer``, whose queues belong to the
  consumers' loop, or a test's stand-in): ``async_to_sync`` on the layer given.

Errors of the send are raised to the caller (the publishers log them: a push happens after commit
and never fails the write it reports).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import async_to_sync
from channels import DEFAULT_CHANNEL_LAYER
from channels.layers import channel_layers
from channels_redis.core import RedisChannelLayer
from channels_redis.pubsub import RedisPubSubChannelLayer

#: Longest wait for one send through the sender loop, in seconds; then ``TimeoutError``.
SEND_TIMEOUT_SECS = 10.0

_REDIS_LAYERS = (RedisChannelLayer, RedisPubSubChannelLayer)


def run_on_layer(layer: Any, send: Callable[[Any], Awaitable[None]]) -> None:
    """Run ``send(target_layer)`` to completion from synchronous code (see the module docstring).

    Parameters
    ----------
    layer : channels layer
        The process's channel layer (``get_channel_layer()``), not None.
    send : Callable[[layer], Awaitable[None]]
        The coroutine function doing the sends; it is given the layer instance to send through.

    Raises
    ------
    TimeoutError
        Through the sender loop, the send took more than :data:`SEND_TIMEOUT_SECS`.
    Exception
        Whatever the send raised (Redis unreachable, …).
    """
    if isinstance(layer, _REDIS_LAYERS):
        sender = _sender_loop()
        sender.run(send(sender.layer))
    else:
        async_to_sync(send)(layer)


class _SenderLoop:
    def __init__(self) -> None:
        self.pid = os.getpid()
        self.layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, name="channel-layer-sender", daemon=True).start()

    def run(self, coroutine) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=SEND_TIMEOUT_SECS)


_sender: _SenderLoop | None = None
_sender_lock = threading.Lock()


def _sender_loop() -> _SenderLoop:
    global _sender
    with _sender_lock:
        if _sender is None or _sender.pid != os.getpid():  # a forked child starts its own
            _sender = _SenderLoop()
        return _sender
