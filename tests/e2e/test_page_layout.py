"""The traders' wide tables show every column on a desk screen, in a real browser (static/css/odum.css).

The Orders page (created, Cancel), the execution log (actor, detail: fills with their fees per currency, denial
reasons) and Positions (strategies, updated, equity) put their last columns at the right: hidden behind the
table's own horizontal scroll bar, at the foot of a long table, a trader does not see them. On a 1920-pixel-wide
screen each table fits. Server and Chromium as in test_orders_live.py (``asgi_server``, tests/e2e/conftest.py).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone

from orders.models import Order, OrderEvent
from positions.services import position_apply_fill, position_mark
from tests.e2e.test_trader_flow import logged_in_page, seed_demo
from tests.orders.factories import OrderEventFactory, OrderFactory, StrategyFactory, algorithm_family
from tests.orders.web_fixtures import person_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]
#: Milliseconds Playwright waits for a page change.
WAIT_MS = 30_000
SCREEN = {"width": 1920, "height": 1080}
SPOT = "BINANCE-SPOT:SPOT_PAIR:BTC-USDT"
PERP = "BINANCE-FUTURES:PERPETUAL:BTC-USDT@LIN"
CLIENT_ID = "OL035AnuBPkLpHvyZUePKsSE"


def _overflowing_tables(page) -> list[str]:
    # Each table whose columns do not all fit in its box, named by its header cells.
    return page.evaluate("""() => Array.from(document.querySelectorAll('.table-wrap'))
        .filter((wrap) => wrap.scrollWidth > wrap.clientWidth)
        .map((wrap) => `${wrap.scrollWidth} > ${wrap.clientWidth}: ` + Array.from(wrap.querySelectorAll('th'))
            .map((th) => th.textContent.trim()).join(' | '))""")


def test_wide_tables_show_every_column_on_a_desk_screen(asgi_server):
    from playwright.sync_api import expect

    # Arrange: the demo listings; a trader of demo with a denied order, a TWAP filled by slices paying fees in
    # two currencies (its log entries the widest: "PARTIALLY_FILLED → PARTIALLY_FILLED"), a cancelable order on
    # the perpetual, and positions on both venues
    seed_demo()
    trader = person_in("trader")
    demo = StrategyFactory(id="demo")
    demo.traders.add(trader)
    parent, slices = algorithm_family(demo, fee_currencies=("USDT", "BNB", "USDT"))
    Order.objects.filter(pk=parent.pk).update(client_order_id=CLIENT_ID)  # ids as the node makes them
    for kind in (OrderEvent.Type.RISK_PASSED, OrderEvent.Type.ROUTED, OrderEvent.Type.DISPATCH_FAILED):
        OrderEventFactory(order=parent, type=kind, actor="router")
    for n, child in enumerate(slices, 1):
        Order.objects.filter(pk=child.pk).update(client_order_id=f"{CLIENT_ID}-E{n}")
        OrderEventFactory(order=child, type=OrderEvent.Type.FILLED, actor="venue:BINANCE-SPOT",
                          status_before=Order.Status.SUBMITTED, status_after=Order.Status.FILLED)
        OrderEventFactory(order=parent, type=OrderEvent.Type.PARTIALLY_FILLED, actor="venue:BINANCE-SPOT",
                          status_before=Order.Status.PARTIALLY_FILLED, status_after=Order.Status.PARTIALLY_FILLED,
                          payload={"child_client_order_id": f"{CLIENT_ID}-E{n}"})
    OrderFactory(strategy=demo, operation_id="op-denied", status=Order.Status.DENIED,
                 rejection_reason="price_collar: observed 386.8241, limit 200 bps from mid (STRATEGY:demo) — "
                                  "limit price 38000 vs mid 39529.08 USDT")
    working = OrderFactory(strategy=demo, operation_id="op-working-perpetual", instrument_key=PERP,
                           routed_instrument_key=PERP, venue="BINANCE-FUTURES", status=Order.Status.ACCEPTED)
    OrderEventFactory(order=working, type=OrderEvent.Type.ACCEPTED, actor="venue:BINANCE-FUTURES",
                      status_before=Order.Status.SUBMITTED, status_after=Order.Status.ACCEPTED)
    now = timezone.now()
    with transaction.atomic():
        for venue, key in (("BINANCE-SPOT", SPOT), ("BINANCE-FUTURES", PERP)):
            position_apply_fill(strategy_id="demo", venue=venue, instrument_key=key, side="BUY",
                                quantity=Decimal("0.09"), price=Decimal("39507.4388888889"), fee=Decimal("3.56"),
                                ts=now - timedelta(minutes=1))
            position_mark(instrument_key=key, venue=venue, mark_price=Decimal("39484.575"), ts=now)

    with logged_in_page(trader, asgi_server, "/live/orders", wait_ms=WAIT_MS) as page:
        page.set_viewport_size(SCREEN)
        for path, last_column in (("/live/orders", "Created (UTC)"), ("/live/logs", "detail"),
                                  ("/live/positions", "updated (UTC)")):
            # Act
            page.goto(f"{asgi_server.url}{path}")
            expect(page.locator(".table-wrap th", has_text=last_column).first).to_be_attached()

            # Assert: no table hides a column behind its scroll bar; the last column is on the screen
            assert _overflowing_tables(page) == [], path
            right = page.locator(".table-wrap th", has_text=last_column).first.bounding_box()
            assert right["x"] + right["width"] <= SCREEN["width"], path
