"""The kill-switch card on /status in a real browser: a refused htmx post keeps the card (risk/views.py).

htmx swaps 403 answers (templates/base.html) into the form's target, which is the whole card: the
refusal must land inside it instead. Only a browser runs htmx, so this is checked here; Django's
live server thread serves the page (no TradingNode, no websocket needed). Chromium as in
test_trader_flow.py: missing is a skip, or a failure under ``CI=true``.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connections

from risk.models import TradingState
from tests.e2e.test_trader_flow import logged_in_page
from tests.orders.web_fixtures import person_in, role_group

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]
#: Milliseconds Playwright waits for a page change (/status runs every health check, the Celery ping
#: alone a second: slower on a loaded machine).
WAIT_MS = 30_000


def test_kill_switch_refused_htmx_post_keeps_the_card_and_shows_the_reason_in_it(live_server):
    from playwright.sync_api import expect

    # Arrange: a risk manager's status page, then the permission is withdrawn (another tab, the admin)
    manager = person_in("risk manager")
    with logged_in_page(manager, live_server, "/status", wait_ms=WAIT_MS) as page:
        card = page.get_by_test_id("kill-switches")
        expect(card).to_be_visible()
        _in_a_thread(lambda: manager.groups.remove(role_group("risk manager")))

        # Act: halt everything from the card (htmx post)
        page.fill("#ks-reason", "panic")
        with page.expect_response(lambda answer: answer.url.endswith("/risk/kill-switch")) as answer:
            card.get_by_role("button", name="Halt").click()

        # Assert: refused; the card and its controls still there, the reason inside it
        assert answer.value.status == 403
        expect(card.get_by_test_id("kill-switch-refusal")).to_contain_text("risk.change_tradingstate")
        expect(card.get_by_role("button", name="Halt")).to_be_visible()
        expect(card.locator("#ks-reason")).to_have_value("panic")
    assert not TradingState.objects.exists()


def _in_a_thread(change) -> None:
    # Playwright's sync API runs an event loop (in a greenlet) here: Django's ORM refuses to run in it, and a
    # connection opened there would outlive the test (PostgreSQL then refuses to drop the test database).
    def run():
        try:
            change()
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
