"""ASGI entry point (daphne): HTTP through Django, WebSocket through Channels routing."""
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "odum_live.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs Django set up first)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import OriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402
from django.urls import path  # noqa: E402

from odum_live.live import LiveFragmentConsumer  # noqa: E402
from orders.consumers import OrderStreamConsumer  # noqa: E402


class BrowserOriginValidator(OriginValidator):
    """Channels' ``AllowedHostsOriginValidator``, but letting programs without ``Origin`` through.

    Browsers always send ``Origin`` on a WebSocket handshake: it must name an allowed host, which
    stops another site from riding a logged-in session (cross-site WebSocket hijacking). Programs
    (strategy services) send none; they are let through with their cookies removed, so they can
    authenticate with an ``Authorization: Bearer`` token only, never with a session.
    """

    def __init__(self, application):
        allowed = list(settings.ALLOWED_HOSTS)
        if settings.DEBUG and not allowed:
            allowed = ["localhost", "127.0.0.1", "[::1]"]
        super().__init__(application, allowed)

    async def __call__(self, scope, receive, send):
        headers = scope.get("headers", [])
        if scope["type"] == "websocket" and not any(name == b"origin" for name, _ in headers):
            scope = dict(scope, headers=[(name, value) for name, value in headers if name != b"cookie"])
            return await self.application(scope, receive, send)
        return await super().__call__(scope, receive, send)


websocket_urlpatterns: list = [
    path("ws/orders/", OrderStreamConsumer.as_asgi()),  # JSON for programs (orders/consumers.py)
    path("ws/live/", LiveFragmentConsumer.as_asgi()),  # HTML fragments for the pages (odum_live/live.py)
]

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": BrowserOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)

# Long-lived from here on: out of the collector's full walks (odum_live/heap.py). In the embedded
# default the node, started below, freezes its own heap once it runs.
from odum_live.heap import freeze_startup_heap  # noqa: E402

freeze_startup_heap(warm_urls=True)

# The embedded default (no broker, eager Celery) runs the TradingNode inside this web process.
if settings.ODUM["TRADING_NODE"] == "embedded":
    from venues.node.host import start_trading_node_in_background  # noqa: E402

    start_trading_node_in_background()
