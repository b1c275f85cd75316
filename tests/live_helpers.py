"""Drive the live-fragment channel ``/ws/live/`` (odum_live/live.py) as a logged-in browser would."""

from collections.abc import Callable

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from odum_live.asgi import application
from tests.helpers import WS_TIMEOUT
from tests.orders.test_consumers import session_headers


def live_fragment_after(*, user, topics: str, act: Callable[[], object], timeout: float = WS_TIMEOUT) -> str:
    """Subscribe ``user``'s session to ``/ws/live/?topics=<topics>``, run ``act()`` on the database
    thread (as a service call from another process would), and return the first fragment received.

    Needs ``django_db(transaction=True)``: the consumer reads what ``act`` committed. The channel
    layer is flushed afterwards.

    Raises
    ------
    AssertionError
        The connection was refused.
    asyncio.TimeoutError
        No fragment within ``timeout`` seconds.
    """
    headers = session_headers(user)

    async def scenario() -> str:
        communicator = WebsocketCommunicator(application, f"/ws/live/?topics={topics}", headers=headers)
        connected, _ = await communicator.connect(timeout=timeout)
        assert connected
        try:
            await database_sync_to_async(act)()
            return await communicator.receive_from(timeout=timeout)
        finally:
            await communicator.disconnect()

    try:
        return async_to_sync(scenario)()
    finally:
        layer = get_channel_layer()
        if hasattr(layer, "flush"):
            async_to_sync(layer.flush)()
