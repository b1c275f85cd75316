"""``/ws/live/`` (odum_live/live.py) and the order pages' topics (orders/web/live.py).

Driven through the whole ASGI application (origin check, session auth, routing) with Channels'
``WebsocketCommunicator``; services are called from the test's event loop on the database thread,
so their on-commit publications reach the consumer through the configured channel layer. Real
commits (``transaction=True``), as in tests/orders/test_consumers.py.
"""

import uuid
from datetime import timedelta

import pytest
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.db import transaction
from django.test.html import parse_html
from django.utils import timezone
from django.utils.html import strip_tags

from odum_live import live
from odum_live.asgi import application
from orders.services import order_cancel, order_submit
from tests.helpers import WS_TIMEOUT
from tests.orders.conftest import typed_request
from tests.orders.factories import OrderFactory, StrategyFactory, UserFactory
from tests.orders.test_consumers import _fresh_stream, db, run, session_headers  # noqa: F401 (autouse fixture)
from tests.orders.web_fixtures import person_in

TIMEOUT = WS_TIMEOUT
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def alpha(tradable):
    return StrategyFactory(id="alpha")


@pytest.fixture
def alice(alpha):
    """A trader listed on alpha (the trader group holds orders.view_order: sees every strategy)."""
    user = person_in("trader", username="alice")
    alpha.traders.add(user)
    return user


@pytest.fixture
def plain(alpha):
    """A person without orders.view_order, trading alpha: sees alpha's orders only."""
    user = UserFactory(username="plain")
    alpha.traders.add(user)
    return user


def live_ws(topics: str, headers) -> WebsocketCommunicator:
    return WebsocketCommunicator(application, f"/ws/live/?topics={topics}", headers=headers)


async def refused(communicator) -> tuple[str, int]:
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert connected
    text = await communicator.receive_from(timeout=TIMEOUT)
    closing = await communicator.receive_output(timeout=TIMEOUT)
    assert closing["type"] == "websocket.close"
    return text, closing["code"]


def test_live_without_login_is_closed_4401(alpha):
    text, code = run(lambda: refused(live_ws("orders", [(b"origin", b"http://localhost")])))

    assert code == 4401 and "log in" in text


@pytest.mark.parametrize(("topics", "code"), [("nope", 4400), ("", 4400), ("order", 4400), ("orders:x", 4400),
                                              (f"order:{uuid.uuid4()}", 4403), ("order:not-a-uuid", 4403)])
def test_live_bad_topics_are_refused(alice, topics, code):
    headers = session_headers(alice)

    text, closed = run(lambda: refused(live_ws(topics, headers)))

    assert closed == code and 'id="live-notice"' in text and f'data-close-code="{code}"' in text


def test_live_orders_topic_sends_row_of_committed_order(alice, alpha):
    headers = session_headers(alice)

    async def scenario():
        communicator = live_ws("orders", headers)
        connected, _ = await communicator.connect(timeout=TIMEOUT)
        assert connected
        result = await db(order_submit, strategy=alpha, actor="alice",
                          data=typed_request(operation_id="live-1"))
        html = await communicator.receive_from(timeout=TIMEOUT)
        await communicator.disconnect()
        return result.order, html

    order, html = run(scenario)

    assert html.lstrip().startswith("<tr")  # no template comment before the row: htmx swaps elements
    assert f'<tr id="order-{order.id}" class="order-row" data-status="ROUTED"' in html
    assert 'hx-swap-oob="true"' in html and ">live-1</td>" in html
    assert f'hx-post="/live/orders/{order.id}/cancel"' in html  # alice trades alpha


def test_live_orders_topic_respects_scope(plain, alpha):
    beta = StrategyFactory(id="beta")
    headers = session_headers(plain)

    async def scenario():
        communicator = live_ws("orders", headers)
        await communicator.connect(timeout=TIMEOUT)
        await db(order_submit, strategy=beta, actor="x", data=typed_request(operation_id="other"))
        hidden = await communicator.receive_nothing(timeout=0.5)
        await db(order_submit, strategy=alpha, actor="x", data=typed_request(operation_id="mine"))
        html = await communicator.receive_from(timeout=TIMEOUT)
        await communicator.disconnect()
        return hidden, html

    hidden, html = run(scenario)

    assert hidden is True
    assert ">mine</td>" in html and 'hx-post=' not in html  # no trader role: no cancel button


def test_live_unknown_message_type_and_failing_render_keep_connection(alice, alpha):
    headers = session_headers(alice)
    live.register_live_topic("broken", groups=lambda user: ["orders"],
                             render=lambda message, user: 1 / 0)

    async def scenario():
        communicator = live_ws("orders,broken", headers)
        await communicator.connect(timeout=TIMEOUT)
        await get_channel_layer().group_send("orders", {"type": "something.else", "x": 1})
        quiet = await communicator.receive_nothing(timeout=0.3)
        await db(order_submit, strategy=alpha, actor="alice", data=typed_request(operation_id="after"))
        html = await communicator.receive_from(timeout=TIMEOUT)
        await communicator.disconnect()
        return quiet, html

    try:
        quiet, html = run(scenario)
    finally:
        live._TOPICS.pop("broken", None)

    assert quiet is True
    assert ">after</td>" in html


def test_live_order_topic_sends_current_detail_then_changes(alice, alpha):
    order = OrderFactory(strategy=alpha, operation_id="detail-1")
    headers = session_headers(alice)

    async def scenario():
        communicator = live_ws(f"order:{order.id}", headers)
        await communicator.connect(timeout=TIMEOUT)
        first = await communicator.receive_from(timeout=TIMEOUT)
        await db(order_cancel, order=order, actor="alice")
        second = await communicator.receive_from(timeout=TIMEOUT)
        await communicator.disconnect()
        return first, second

    first, second = run(scenario)

    assert '<div id="order-detail" data-status="ROUTED" hx-swap-oob="true">' in first
    assert '<div id="order-detail" data-status="CANCELED" hx-swap-oob="true">' in second


def test_live_ticket_topic_sends_status_line(alice, alpha):
    order = OrderFactory(strategy=alpha)
    headers = session_headers(alice)

    async def scenario():
        communicator = live_ws(f"ticket:{order.id}", headers)
        await communicator.connect(timeout=TIMEOUT)
        first = await communicator.receive_from(timeout=TIMEOUT)
        await communicator.disconnect()
        return first

    html = run(scenario)

    assert f'id="ticket-status-{order.id}"' in html and "status ROUTED filled 0/0.01" in html


def test_register_live_topic_rejects_bad_names_and_coroutines():
    async def render(message, user):
        return None

    with pytest.raises(ValueError, match="name"):
        live.register_live_topic("Bad Name", groups=lambda u: [], render=lambda m, u: None)
    with pytest.raises(ValueError, match="plain functions"):
        live.register_live_topic("fine", groups=lambda u: [], render=render)


def _order_page_of_a_viewer_removed_from_the_group(alpha):
    # A viewer follows one of alpha's orders on its page, then is removed from the viewer group (trading no
    # strategy, they may see none of its orders). Returns (the order, the text sent before the close, the close).
    person = person_in("viewer")
    order = OrderFactory(strategy=alpha)
    headers = session_headers(person)

    async def scenario():
        communicator = live_ws(f"order:{order.pk}", headers)
        connected, _ = await communicator.connect(timeout=TIMEOUT)
        assert connected
        await communicator.receive_from(timeout=TIMEOUT)  # the detail as it is now (live.connected)
        await db(person.groups.clear)
        text = await communicator.receive_from(timeout=TIMEOUT)
        closing = await communicator.receive_output(timeout=TIMEOUT)
        return text, closing

    return (order, *run(scenario))


def test_live_page_of_an_order_is_closed_4403_when_its_viewer_loses_the_right_to_see_it(alpha):
    # Arrange, Act: a viewer follows one of alpha's orders on its page and is removed from the viewer group
    _, text, closing = _order_page_of_a_viewer_removed_from_the_group(alpha)

    # Assert
    assert closing == {"type": "websocket.close", "code": 4403} and "no order" in text


def test_live_page_closed_4403_tells_its_viewer_in_words_that_they_may_no_longer_see_it(alpha):
    # Arrange, Act: a viewer follows one of alpha's orders on its page and is removed from the viewer group
    order, text, _ = _order_page_of_a_viewer_removed_from_the_group(alpha)

    # Assert: the notice says what happened for a person, the server's reason after it
    words = " ".join(strip_tags(text).split())
    assert dict(parse_html(text).attributes)["data-close-code"] == "4403"
    assert words.startswith("Live updates stopped: you may no longer see what this page follows "
                            f"(no order {order.pk}). This page no longer updates")
    assert words.endswith("Reload the page.")


def _live_page_logged_out(user):
    # ``user``'s page follows the orders; they log out in another tab (Django's logout: the signal, then
    # the session flushed). Returns (the text sent before the close, the close).
    from django.test import Client

    client = Client()
    client.force_login(user)
    headers = [(b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()), (b"origin", b"http://localhost")]

    async def scenario():
        communicator = live_ws("orders", headers)
        connected, _ = await communicator.connect(timeout=TIMEOUT)
        assert connected
        await db(client.logout)
        text = await communicator.receive_from(timeout=TIMEOUT)
        closing = await communicator.receive_output(timeout=TIMEOUT)
        return text, closing

    return run(scenario)


def test_live_page_is_closed_4401_when_its_session_is_logged_out(alpha, alice):
    # Arrange, Act: alice's page follows the orders; she logs out in another tab
    text, closing = _live_page_logged_out(alice)

    # Assert
    assert closing == {"type": "websocket.close", "code": 4401} and "log in" in text


def test_live_page_closed_4401_is_sent_a_visible_notice_saying_why_first(alpha, alice):
    # Arrange, Act: alice's page follows the orders; she logs out in another tab
    text, _ = _live_page_logged_out(alice)

    # Assert: the page's notice (templates/_live_notice.html), swapped in out of band and shown, not an HTML comment
    notice = parse_html(text)
    attributes = dict(notice.attributes)
    assert notice.name == "div" and attributes["id"] == "live-notice" and attributes["hx-swap-oob"] == "true"
    assert "hidden" not in attributes and attributes["data-close-code"] == "4401"
    words = " ".join(strip_tags(text).split())
    assert words.startswith("Live updates stopped: your session ended: log in again. This page no longer updates")
    assert words.endswith("Reload the page to log in again.")


def _session_key(headers) -> str:
    cookie = dict(headers)[b"cookie"].decode()
    return cookie.partition("sessionid=")[2]


@pytest.mark.parametrize("ends", ["expires", "is deleted from the store"])
def test_live_page_is_closed_4401_at_the_next_renewal_when_its_session_ends_unannounced(alpha, alice, settings, ends):
    # Arrange: nothing announces a session's age passing (SESSION_COOKIE_AGE, set_expiry) or a row deleted from
    # the session store (no access.changed), so only the connection's periodic check can notice. Renewals every
    # 50 ms instead of every hour.
    from django.contrib.sessions.models import Session

    settings.ODUM = {**settings.ODUM, "WS_RENEW_SECS": 0.05}
    headers = session_headers(alice)
    sessions = Session.objects.filter(session_key=_session_key(headers))

    def end_session():
        if ends == "expires":
            sessions.update(expire_date=timezone.now() - timedelta(seconds=1))
        else:
            sessions.delete()

    async def scenario():
        communicator = live_ws("orders", headers)
        connected, _ = await communicator.connect(timeout=TIMEOUT)
        assert connected
        # Act
        await db(end_session)
        text = await communicator.receive_from(timeout=TIMEOUT)
        closing = await communicator.receive_output(timeout=TIMEOUT)
        return text, closing

    text, closing = run(scenario)

    # Assert: the page's notice saying why (shown by htmx out of band; static/js/live.js keeps it), then 4401
    assert closing == {"type": "websocket.close", "code": 4401}
    assert dict(parse_html(text).attributes)["data-close-code"] == "4401"
    assert " ".join(strip_tags(text).split()).startswith("Live updates stopped: your session ended: log in again.")


def test_live_page_push_queued_behind_its_closing_access_change_is_not_sent(alpha):
    # Arrange: a viewer follows one of alpha's orders on its page; in one transaction they are removed from the
    # viewer group and the order is canceled: access.changed, then the order's orders.updated, queue on the
    # connection's channel in that order (on-commit order).
    person = person_in("viewer")
    order = OrderFactory(strategy=alpha)
    headers = session_headers(person)

    def withdraw_then_change():
        with transaction.atomic():
            person.groups.clear()
            order_cancel(order=order, actor="risk")

    async def scenario():
        communicator = live_ws(f"order:{order.pk}", headers)
        connected, _ = await communicator.connect(timeout=TIMEOUT)
        assert connected
        await communicator.receive_from(timeout=TIMEOUT)  # the detail as it is now (live.connected)
        # Act
        await db(withdraw_then_change)
        text = await communicator.receive_from(timeout=TIMEOUT)
        closing = await communicator.receive_output(timeout=TIMEOUT)
        after = await communicator.receive_nothing(timeout=0.5)
        return text, closing, after

    text, closing, after = run(scenario)

    # Assert: the notice and the close, never the canceled order's detail (before or after them)
    assert 'id="live-notice"' in text and "order-detail" not in text
    assert closing == {"type": "websocket.close", "code": 4403}
    assert after is True


def test_live_page_push_queued_behind_its_narrowing_access_change_is_rendered_in_the_new_scope(alpha):
    # Arrange: a viewer (every strategy) who also trades alpha follows the Orders page; in one transaction they are
    # removed from the viewer group (now alpha only: the connection goes on, narrowed) and an order of beta changes:
    # access.changed, then beta's orders.updated, queue on the connection's channel in that order.
    beta = StrategyFactory(id="beta")
    person = person_in("viewer")
    alpha.traders.add(person)
    hidden = OrderFactory(strategy=beta, operation_id="beta-now-hidden")
    headers = session_headers(person)

    def withdraw_then_change():
        with transaction.atomic():
            person.groups.clear()
            order_cancel(order=hidden, actor="risk")

    async def scenario():
        communicator = live_ws("orders", headers)
        connected, _ = await communicator.connect(timeout=TIMEOUT)
        assert connected
        # Act: then a change of alpha's, which the narrowed connection still sends
        await db(withdraw_then_change)
        await db(order_submit, strategy=alpha, actor="x", data=typed_request(operation_id="alpha-visible"))
        html = await communicator.receive_from(timeout=TIMEOUT)
        await communicator.disconnect()
        return html

    html = run(scenario)

    # Assert: the first row sent is alpha's; beta's row was never rendered for the narrowed scope
    assert ">alpha-visible</td>" in html and "beta-now-hidden" not in html
