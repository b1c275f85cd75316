"""The order ticket's refused submit in a real browser, with ``DEBUG`` on as ``make run`` serves it.

The pages answer htmx with 400 / 403 on purpose: the form with each reason under its field, or the
refusal in place (templates/base.html swaps those codes). Under ``DEBUG`` django-htmx's
``{% htmx_script %}`` adds its debug helper, which replaces the whole document with any 400 / 403
answer (meant for Django's error pages): the page then lost its shell, styles, scripts and live
connection. Only a browser runs htmx, so this is checked here, on Django's live server thread (no
TradingNode). Chromium as in test_trader_flow.py: missing is a skip, or a failure under ``CI=true``.
"""

from __future__ import annotations

import pytest

from tests.e2e.test_trader_flow import logged_in_page
from tests.orders.factories import StrategyFactory
from tests.orders.web_fixtures import person_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]
#: Milliseconds Playwright waits for a page change.
WAIT_MS = 30_000


def test_ticket_refused_submit_under_debug_keeps_the_page_and_shows_the_reason_under_the_field(live_server,
                                                                                                 settings):
    from playwright.sync_api import expect

    # Arrange: DEBUG on (make run's default), a trader of strategy alpha on the Execute page
    settings.DEBUG = True
    trader = person_in("trader")
    StrategyFactory(id="alpha").traders.add(trader)
    with logged_in_page(trader, live_server, "/live/execute", wait_ms=WAIT_MS) as page:
        expect(page.locator("#ticket-form")).to_be_visible()

        # Act: a quantity that is no number (htmx post, answered 400)
        page.fill("#f-qty", "abc")
        with page.expect_response(lambda answer: answer.url.endswith("/live/execute")) as answer:
            page.get_by_role("button", name="Submit").click()

        # Assert: the reason under the field, the value kept, the page (nav, ticket, CLI view) still there
        assert answer.value.status == 400
        expect(page.locator('[data-field-error="quantity"]')).to_be_visible()
        expect(page.locator("#f-qty")).to_have_value("abc")
        expect(page.locator("header.topbar").get_by_role("link", name="Orders")).to_be_visible()
        expect(page.get_by_role("heading", name="Execute")).to_be_visible()
        expect(page.get_by_role("heading", name="Command line")).to_be_visible()


@pytest.mark.parametrize("debug", [False, True], ids=["debug-off", "debug-on"])
def test_cancel_of_an_order_that_left_your_scope_shows_the_reason_in_its_row_and_keeps_the_page(live_server,
                                                                                                 settings, debug):
    from django.contrib.auth.models import Permission
    from playwright.sync_api import expect

    from tests.e2e.test_kill_switch import _in_a_thread
    from tests.orders.factories import OrderFactory, UserFactory

    # Arrange: a person trading alpha alone (no orders.view_order) on the Orders page, then taken off alpha
    settings.DEBUG = debug
    person = UserFactory(username="tom")
    person.user_permissions.add(Permission.objects.get(content_type__app_label="orders", codename="change_order"))
    alpha = StrategyFactory(id="alpha")
    alpha.traders.add(person)
    order = OrderFactory(strategy=alpha, operation_id="op-leaving", status="ACCEPTED")
    with logged_in_page(person, live_server, "/live/orders", wait_ms=WAIT_MS) as page:
        cancel = page.get_by_role("button", name="Cancel order op-leaving")
        expect(cancel).to_be_visible()
        _in_a_thread(lambda: alpha.traders.remove(person))

        # Act: its row's Cancel (htmx post, answered 404)
        with page.expect_response(lambda answer: answer.url.endswith(f"/live/orders/{order.id}/cancel")) as answer:
            cancel.click()

        # Assert: the reason where the row was, the page (nav, heading, filters) still there
        assert answer.value.status == 404
        expect(page.get_by_test_id("not-found")).to_have_text(f"no order {order.id}")
        expect(page.locator("header.topbar").get_by_role("link", name="Orders")).to_be_visible()
        expect(page.get_by_role("heading", name="Orders")).to_be_visible()


def test_orders_filter_reason_shows_under_its_field_and_goes_once_fixed(live_server):
    from playwright.sync_api import expect

    # Arrange: a trader on the Orders page
    trader = person_in("trader")
    with logged_in_page(trader, live_server, "/live/orders", wait_ms=WAIT_MS) as page:
        reason = page.locator("#instrument ~ #filter-error-instrument")
        expect(reason).to_be_empty()

        # Act: a malformed instrument key (the form's change swaps the table)
        page.fill("#instrument", "binance")
        page.locator("#instrument").dispatch_event("change")

        # Assert: the reason under the Instrument field
        expect(reason).to_contain_text("binance")

        # Act: the field emptied
        page.fill("#instrument", "")
        page.locator("#instrument").dispatch_event("change")

        # Assert: the reason gone, the table back
        expect(reason).to_be_empty()
        expect(page.locator("#orders-empty")).to_be_visible()
