"""The Orders page under live updates, in a real browser (templates/orders/orders.html, static/js/orders.js).

What the page does with the rows ``/ws/live/?topics=orders`` pushes happens in the browser: it keeps
the list what a reload would show — page 1 at its page size as new orders arrive, with the pager
following, and a row that no longer matches the filters gone from it. The server is a real
``daphne odum_live.asgi:application`` on this run's database and transports (the node off: orders
stay ROUTED or are DENIED for missing market data), and the changes go through its API, as a
strategy service's would. Chromium as in test_trader_flow.py: missing is a skip, or a failure under
``CI=true``.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests
from django.utils import timezone

from orders.models import Order
from orders.web.views import PAGE_SIZE
from tests.e2e.test_kill_switch import _in_a_thread
from tests.e2e.test_trader_flow import logged_in_page, seed_demo
from tests.orders.factories import OrderFactory, StrategyFactory, make_token
from tests.orders.web_fixtures import person_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]
#: Milliseconds Playwright waits for a page change.
WAIT_MS = 30_000
KEY = "BINANCE-SPOT:SPOT_PAIR:BTC-USDT"


def _older_orders(strategy, count: int, **fields) -> list[Order]:
    # ``count`` orders a minute apart, the newest an hour ago: op-old-0 is the oldest.
    orders = [OrderFactory(strategy=strategy, operation_id=f"op-old-{i}", **fields) for i in range(count)]
    start = timezone.now() - timedelta(hours=1, minutes=count)
    for i, order in enumerate(orders):
        Order.objects.filter(pk=order.pk).update(created_at=start + timedelta(minutes=i))
    return orders


def test_orders_page_one_keeps_its_page_size_as_new_orders_arrive_and_the_pager_follows(asgi_server):
    from playwright.sync_api import expect

    # Arrange: a full first page (PAGE_SIZE orders) of a trader of the demo strategy, an API token
    seed_demo()
    trader = person_in("trader")
    demo = StrategyFactory(id="demo")  # seed_demo's
    demo.traders.add(trader)
    _older_orders(demo, PAGE_SIZE)
    token = make_token(trader)
    with logged_in_page(trader, asgi_server, "/live/orders", wait_ms=WAIT_MS) as page:
        rows = page.locator("tr.order-row")
        expect(rows).to_have_count(PAGE_SIZE)
        expect(page.locator(".pager")).to_contain_text(f"page 1 of 1 · {PAGE_SIZE} orders")
        expect(page.locator("[ws-connect]")).to_have_attribute("data-live", "open")  # the live connection is up
        page.evaluate("window.__not_reloaded = true")

        # Act: three new orders through the API
        new_ids = []
        for i in range(3):
            answer = requests.post(f"{asgi_server.url}/api/orders", timeout=30, headers={
                "Authorization": f"Bearer {token}"}, json={
                "operation_id": f"op-new-{i}", "strategy_id": "demo", "instrument_key": KEY, "side": "BUY",
                "order_type": "MARKET", "quantity": "0.001"})
            assert answer.status_code == 201, answer.text
            new_ids.append(answer.json()["order_id"])

        # Assert: the new orders on top, newest first; page 1 still PAGE_SIZE rows (the three oldest have moved
        # to page 2); the pager counts them and offers page 2, which holds exactly the rows that left page 1
        for order_id in new_ids:
            expect(page.locator(f"#order-{order_id}")).to_be_visible()
        expect(rows).to_have_count(PAGE_SIZE)
        expect(rows.first).to_have_id(f"order-{new_ids[-1]}")
        expect(rows.last).to_contain_text("op-old-3")
        expect(page.locator(".pager")).to_contain_text(f"page 1 of 2 · {PAGE_SIZE + 3} orders")
        assert page.evaluate("window.__not_reloaded") is True
        page.get_by_role("link", name="older →").click()
        expect(page.locator(".pager")).to_contain_text(f"page 2 of 2 · {PAGE_SIZE + 3} orders")
        expect(rows).to_have_count(3)
        assert [rows.nth(i).locator("td").nth(1).inner_text() for i in range(3)] == [
            "op-old-2", "op-old-1", "op-old-0"]


def test_orders_row_that_no_longer_matches_the_filter_leaves_and_the_next_page_moves_up(asgi_server):
    from playwright.sync_api import expect

    # Arrange: a trader of alpha on the Orders page filtered to ROUTED, one order more than a page
    trader = person_in("trader")
    alpha = StrategyFactory(id="alpha")
    alpha.traders.add(trader)
    orders = _older_orders(alpha, PAGE_SIZE + 1, status=Order.Status.ROUTED)
    OrderFactory(strategy=alpha, operation_id="op-filled", status=Order.Status.FILLED)  # not ROUTED: never shown
    leaving = orders[-1]  # the newest: the top row
    token = make_token(trader)
    with logged_in_page(trader, asgi_server, "/live/orders?status=ROUTED", wait_ms=WAIT_MS) as page:
        rows = page.locator("tr.order-row")
        expect(rows).to_have_count(PAGE_SIZE)
        expect(page.locator(f"#order-{leaving.id}")).to_be_visible()
        expect(page.locator(f"#order-{orders[0].id}")).to_have_count(0)  # on page 2
        expect(page.locator("[ws-connect]")).to_have_attribute("data-live", "open")  # the live connection is up
        page.evaluate("window.__not_reloaded = true")

        # Act: the top order is canceled through the API (ROUTED → CANCELED)
        answer = requests.post(f"{asgi_server.url}/api/orders/{leaving.id}/cancel", timeout=30,
                               headers={"Authorization": f"Bearer {token}"}, json={"reason": "test"})
        assert answer.status_code == 200, answer.text

        # Assert: its row left the list, which says why; the order from page 2 moved up; the pager follows
        expect(page.locator(f"#order-{leaving.id}")).to_have_count(0)
        expect(page.get_by_test_id("orders-notice")).to_contain_text(
            f"{leaving.operation_id} is now CANCELED and no longer matches the filter")
        expect(page.locator(f"#order-{orders[0].id}")).to_be_visible()
        expect(rows).to_have_count(PAGE_SIZE)
        expect(page.locator("[data-status=CANCELED]")).to_have_count(0)
        expect(page.locator(".pager")).to_contain_text(f"page 1 of 1 · {PAGE_SIZE} orders")
        expect(page.get_by_role("link", name="older →")).to_have_count(0)
        assert page.evaluate("window.__not_reloaded") is True


def test_orders_order_that_comes_to_match_the_filter_goes_in_where_a_reload_puts_it(asgi_server):
    from playwright.sync_api import expect

    # Arrange: a trader of alpha on the Orders page filtered to CANCELED; a ROUTED order older than the newest
    # canceled one (not shown)
    trader = person_in("trader")
    alpha = StrategyFactory(id="alpha")
    alpha.traders.add(trader)
    orders = _older_orders(alpha, 3, status=Order.Status.CANCELED)
    routed = orders[1]
    Order.objects.filter(pk=routed.pk).update(status=Order.Status.ROUTED)
    token = make_token(trader)
    with logged_in_page(trader, asgi_server, "/live/orders?status=CANCELED", wait_ms=WAIT_MS) as page:
        rows = page.locator("tr.order-row")
        expect(rows).to_have_count(2)
        expect(page.locator("[ws-connect]")).to_have_attribute("data-live", "open")  # the live connection is up

        # Act: the ROUTED order is canceled through the API: it now matches the filter
        answer = requests.post(f"{asgi_server.url}/api/orders/{routed.id}/cancel", timeout=30,
                               headers={"Authorization": f"Bearer {token}"}, json={"reason": "test"})
        assert answer.status_code == 200, answer.text

        # Assert: between the newer and the older canceled order (newest first), not on top; counted
        expect(rows).to_have_count(3)
        expect(rows.nth(1)).to_have_id(f"order-{routed.id}")
        expect(page.locator(".pager")).to_contain_text("page 1 of 1 · 3 orders")


def test_orders_new_order_arriving_live_leaves_no_error_in_the_browser_console(asgi_server):
    from playwright.sync_api import expect

    # Arrange: a trader of alpha on the Orders page, its console watched
    trader = person_in("trader")
    alpha = StrategyFactory(id="alpha")
    alpha.traders.add(trader)
    _older_orders(alpha, 1)
    token = make_token(trader)
    with logged_in_page(trader, asgi_server, "/live/orders", wait_ms=WAIT_MS) as page:
        errors = []
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        expect(page.locator("[ws-connect]")).to_have_attribute("data-live", "open")

        # Act: a new order through the API (no market data: DENIED at once, a second push of its row)
        answer = requests.post(f"{asgi_server.url}/api/orders", timeout=30, headers={
            "Authorization": f"Bearer {token}"}, json={
            "operation_id": "op-new", "strategy_id": "alpha", "instrument_key": KEY, "side": "BUY",
            "order_type": "MARKET", "quantity": "0.001"})
        assert answer.status_code == 201, answer.text
        order_id = answer.json()["order_id"]
        row = page.locator(f"#order-{order_id}")
        expect(row).to_be_visible()
        expect(page.locator("tr.order-row").first).to_have_id(f"order-{order_id}")

        # Assert: the row in place, counted, and nothing logged as an error on the way
        expect(page.locator(".pager")).to_contain_text("page 1 of 1 · 2 orders")
        assert errors == []


def test_orders_page_reads_its_table_again_when_its_connection_comes_back(asgi_server):
    from playwright.sync_api import expect

    # Arrange: a trader of alpha on the Orders page, live, with a working order
    trader = person_in("trader")
    alpha = StrategyFactory(id="alpha")
    alpha.traders.add(trader)
    (order,) = _older_orders(alpha, 1, status=Order.Status.ACCEPTED)
    with logged_in_page(trader, asgi_server, "/live/orders", wait_ms=WAIT_MS) as page:
        live = page.locator("[ws-connect]")
        expect(live).to_have_attribute("data-live", "open")
        expect(page.locator(f"#order-{order.id}")).to_have_attribute("data-status", "ACCEPTED")
        page.evaluate("window.__not_reloaded = true")

        # Act: the connection drops (the server went away: 1006, which htmx reconnects after); meanwhile the order
        # was canceled, pushed to no one; then the connection is back
        page.evaluate("htmx.trigger(document.querySelector('[ws-connect]'), 'htmx:wsClose', {event: {code: 1006}})")
        _in_a_thread(lambda: Order.objects.filter(pk=order.pk).update(status=Order.Status.CANCELED))
        page.evaluate("htmx.trigger(document.querySelector('[ws-connect]'), 'htmx:wsOpen', {})")

        # Assert: the table is read again: the row as a reload shows it, without a reload
        expect(page.locator(f"#order-{order.id}")).to_have_attribute("data-status", "CANCELED")
        expect(live).to_have_attribute("data-live", "open")
        assert page.evaluate("window.__not_reloaded") is True
