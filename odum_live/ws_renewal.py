"""The periodic renewal of a WebSocket connection: ``/ws/orders/`` and ``/ws/live/`` use this one loop.

A connection's access is checked again when :mod:`orders.services.access` sends ``access.changed``
(:data:`odum_live.groups.ACCESS_CHANGED`). Some ends of access announce nothing: a session's age
passing (``SESSION_COOKIE_AGE``, ``set_expiry``), a session deleted from its store, an API token's
expiry passing, a push lost on the way. So every ``settings.ODUM["WS_RENEW_SECS"]`` seconds each
connection renews its channel-layer group memberships (channels_redis' list-based layer forgets a
member after a day; its pub/sub layer, the production one, takes a repeated join as a no-op) and
checks its credentials and scope again: such an end is noticed at most one interval late.

The check is a message, not a call: the loop puts ``access.changed`` on the connection's own
channel. Channels hands a consumer one message at a time, so the check runs in the consumer's own
turn — never while a push is being rendered for the access it is about to withdraw — and a push
queued behind it is handled with the access as the check left it (nothing after a close; the new
scope after a narrowing), exactly as after an announced change.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from django.conf import settings

from odum_live.groups import ACCESS_CHANGED

logger = logging.getLogger(__name__)


async def renew_periodically(consumer, *, renew: Callable[[], Awaitable[None]]) -> None:
    """Every ``settings.ODUM["WS_RENEW_SECS"]`` seconds, renew ``consumer``'s groups and check its access again.

    Start it as a task once the connection is set up; cancel it in ``disconnect``. It runs until
    cancelled; a failure of one round is logged and the next round tries again.

    Parameters
    ----------
    consumer : channels.consumer.AsyncConsumer
        The connection; its handler of ``access.changed`` (``{"type": "access.changed"}``, no
        ``ended_session``) checks its credentials and scope as an announced change does.
    renew : Callable[[], Awaitable[None]]
        Re-joins the connection's channel-layer groups (its user's group, its topics' or streams').
    """
    while True:
        await asyncio.sleep(settings.ODUM["WS_RENEW_SECS"])  # read each round: a test shortens it
        try:
            await renew()
        except Exception:  # noqa: BLE001 - the check below still runs; the next round renews again
            logger.exception("%s: renewal of the group memberships failed", type(consumer).__name__)
        try:
            await consumer.channel_layer.send(consumer.channel_name, {"type": ACCESS_CHANGED})
        except Exception:  # noqa: BLE001 - the layer failed: the next round checks again
            logger.exception("%s: periodic access check could not be queued", type(consumer).__name__)
