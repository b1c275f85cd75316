"""A live page whose connection the server closes (odum_live/live.py: 4401 / 4403) says so, in a real browser.

When access is withdrawn the server ends the page's ``/ws/live/`` connection: **4401** when the session no
longer authenticates (logged out in another tab, deactivated, password changed), **4403** when what the page
follows is now outside the person's scope. htmx's WebSocket extension does not reconnect after such a close,
so the page stops changing: it must tell the trader so (templates/_live_notice.html, static/js/live.js)
rather than go on showing orders as if they were live. A connection htmx reconnects (the server went away and is
back) has missed what changed meanwhile: the page reads again what it shows. Server (``asgi_server``,
tests/e2e/conftest.py) and Chromium as in test_orders_live.py.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from orders.models import OrderEvent
from positions.models import Position
from tests.e2e.test_kill_switch import _in_a_thread
from tests.e2e.test_trader_flow import logged_in_page
from tests.orders.factories import OrderEventFactory, OrderFactory, StrategyFactory
from tests.orders.web_fixtures import person_in
from tests.positions.factories import PositionFactory
from tests.venues.factories import InstrumentFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]
#: Milliseconds Playwright waits for a page change.
WAIT_MS = 30_000


def test_live_pages_logged_out_in_another_tab_say_live_updates_stopped_and_why(asgi_server):
    from playwright.sync_api import expect

    # Arrange: a trader of alpha with the Orders page and an order's page open, both live
    trader = person_in("trader")
    alpha = StrategyFactory(id="alpha")
    alpha.traders.add(trader)
    order = OrderFactory(strategy=alpha, operation_id="op-live")
    with logged_in_page(trader, asgi_server, "/live/orders", wait_ms=WAIT_MS) as orders:
        detail = orders.context.new_page()
        detail.goto(f"{asgi_server.url}/live/orders/{order.id}")
        pages = (orders, detail)
        for page in pages:
            expect(page.locator("[ws-connect]")).to_have_attribute("data-live", "open")
            expect(page.get_by_test_id("live-notice")).to_be_hidden()

        # Act: the trader logs out in a third tab (the session ends: the server closes both connections 4401)
        other = orders.context.new_page()
        other.goto(f"{asgi_server.url}/live/execute")
        other.get_by_role("button", name="Log out").click()
        other.wait_for_url("**/accounts/login/**")

        # Assert: each page says its live updates stopped, why, and what to do; its connection is marked closed
        for page in pages:
            notice = page.get_by_test_id("live-notice")
            expect(notice).to_be_visible()
            expect(notice).to_contain_text("Live updates stopped")
            expect(notice).to_contain_text("your session ended: log in again")
            expect(notice).to_contain_text("no longer updates")
            expect(notice.get_by_role("link", name="Reload")).to_be_visible()
            expect(page.locator("[ws-connect]")).to_have_attribute("data-live", "closed")


def test_live_page_whose_connection_ends_without_a_word_says_so_unless_htmx_reconnects(asgi_server):
    from playwright.sync_api import expect

    # Arrange: a trader's Orders page, live
    trader = person_in("trader")
    with logged_in_page(trader, asgi_server, "/live/orders", wait_ms=WAIT_MS) as page:
        live = page.locator("[ws-connect]")
        expect(live).to_have_attribute("data-live", "open")
        notice = page.get_by_test_id("live-notice")

        # Act / Assert: a close htmx reconnects after (1006, the server went away) says nothing
        page.evaluate("htmx.trigger(document.querySelector('[ws-connect]'), 'htmx:wsClose', {event: {code: 1006}})")
        expect(live).to_have_attribute("data-live", "closed")
        expect(notice).to_be_hidden()

        # Act / Assert: one it does not (1000, no notice from the server first) says the updates stopped
        page.evaluate("htmx.trigger(document.querySelector('[ws-connect]'), 'htmx:wsClose', {event: {code: 1000}})")
        expect(notice).to_be_visible()
        expect(notice).to_contain_text("Live updates stopped: the connection closed (code 1000)")
        expect(notice).to_contain_text("no longer updates")
        expect(notice.get_by_role("link", name="Reload")).to_be_visible()


def test_positions_and_log_pages_read_again_what_they_show_when_their_connection_comes_back(asgi_server):
    from playwright.sync_api import expect

    # Arrange: a trader of alpha with a position and an order event; Positions and the execution log open, live
    InstrumentFactory()  # BINANCE-SPOT BTC-USDT
    trader = person_in("trader")
    alpha = StrategyFactory(id="alpha")
    alpha.traders.add(trader)
    position = PositionFactory(strategy=alpha, quantity=Decimal("0.09"), avg_entry_price=Decimal("39500"))
    order = OrderFactory(strategy=alpha, operation_id="op-live")
    OrderEventFactory(order=order, type=OrderEvent.Type.RECEIVED, actor="trader")
    with logged_in_page(trader, asgi_server, "/live/positions", wait_ms=WAIT_MS) as positions:
        log = positions.context.new_page()
        log.goto(f"{asgi_server.url}/live/logs")
        for page in (positions, log):
            expect(page.locator("[ws-connect]")).to_have_attribute("data-live", "open")
            page.evaluate("window.__not_reloaded = true")
        expect(positions.locator("#positions-book")).to_contain_text("0.09 BTC")
        expect(log.locator("tr.log-entry")).to_have_count(1)

        # Act: both connections drop (the server went away: 1006, which htmx reconnects after); meanwhile the
        # position grows and the order is canceled, pushed to no one; then the connections are back
        for page in (positions, log):
            page.evaluate("htmx.trigger(document.querySelector('[ws-connect]'), 'htmx:wsClose', {event: {code: 1006}})")

        def meanwhile():
            Position.objects.filter(pk=position.pk).update(quantity=Decimal("0.19"))
            OrderEventFactory(order=order, type=OrderEvent.Type.CANCELED, actor="trader")

        _in_a_thread(meanwhile)
        for page in (positions, log):
            page.evaluate("htmx.trigger(document.querySelector('[ws-connect]'), 'htmx:wsOpen', {})")

        # Assert: each page shows what a reload shows, without a reload
        expect(positions.locator("#positions-book")).to_contain_text("0.19 BTC")
        expect(log.locator("tr.log-entry")).to_have_count(2)
        expect(log.locator("tr.log-entry").first).to_contain_text("CANCELED")
        for page in (positions, log):
            assert page.evaluate("window.__not_reloaded") is True
