"""The Orders page (/live/orders), the order detail (/live/orders/<id>) and cancel from the pages."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from odum_live.groups import ORDERS_UPDATED
from orders.formatting import fmt_time, order_status_line
from orders.models import Order, OrderEvent
from orders.services import order_apply_venue_event, order_cancel
from orders.services.kill_switch import orders_cancel_in_halted_scope
from orders.web import live, views
from tests.orders import web_fixtures
from tests.orders.factories import FillFactory, OrderEventFactory, OrderFactory, StrategyFactory, algorithm_family
from venues.events import VenueEvent, VenueEventKind

pytestmark = pytest.mark.django_db
trader, trader_client, viewer_client = web_fixtures.trader, web_fixtures.trader_client, web_fixtures.viewer_client


def rows(response) -> list[str]:
    """Operation ids of the rows on the page, in order."""
    return rows_of(response.content.decode())


def rows_of(body: str) -> list[str]:
    """Operation ids of the rows in the HTML ``body``, in order."""
    return re.findall(r'<td class="mono">(op-[^<]+)</td>', body)


def test_orders_anonymous_redirects_to_login(client):
    assert client.get("/live/orders")["Location"].startswith("/accounts/login/")


def test_orders_lists_newest_first_with_columns(trader_client, strategy):
    old = OrderFactory(strategy=strategy, operation_id="op-old")
    new = OrderFactory(strategy=strategy, operation_id="op-new", status="FILLED", filled_quantity=Decimal("0.01"),
                       avg_fill_price=Decimal("40000.5"))
    Order.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(minutes=5))

    response = trader_client.get("/live/orders")

    body = response.content.decode()
    assert response.status_code == 200
    assert rows(response) == ["op-new", "op-old"]
    assert f'<tr id="order-{new.id}" class="order-row" data-status="FILLED"' in body
    assert "40000.5" in body
    assert 'ws-connect="/ws/live/?topics=orders"' in body


@pytest.mark.parametrize(("params", "expected"), [
    ({"status": "FILLED"}, ["op-b"]),
    ({"venue": "BINANCE-FUTURES"}, ["op-c"]),
    ({"instrument": "BINANCE-FUTURES:PERPETUAL:BTC-USDT@LIN"}, ["op-c"]),
    ({"strategy": "beta"}, ["op-c"]),
    ({"q": "op-a"}, ["op-a"]),
])
def test_orders_filters_and_search(trader_client, strategy, params, expected):
    beta = StrategyFactory(id="beta")
    OrderFactory(strategy=strategy, operation_id="op-a")
    OrderFactory(strategy=strategy, operation_id="op-b", status="FILLED")
    OrderFactory(strategy=beta, operation_id="op-c", venue="BINANCE-FUTURES",
                 instrument_key="BINANCE-FUTURES:PERPETUAL:BTC-USDT@LIN",
                 routed_instrument_key="BINANCE-FUTURES:PERPETUAL:BTC-USDT@LIN")

    assert rows(trader_client.get("/live/orders", params)) == expected


@pytest.mark.parametrize(("status", "fields", "shown"), [
    ("DENIED", {"rejection_reason": "max_order_quantity: observed 5, limit 2 BTC (STRATEGY:alpha)"},
     "max_order_quantity: observed 5, limit 2 BTC (STRATEGY:alpha)"),
    ("REJECTED", {"rejection_reason": "venue: insufficient balance " + "x" * 100}, "venue: insufficient balance xxx"),
    ("REJECTED", {"error_message": "never sent: the trading worker did not take it"}, "never sent: the trading"),
])
def test_orders_row_of_a_refused_order_says_why(trader_client, strategy, status, fields, shown):
    order = OrderFactory(strategy=strategy, status=status, **fields)

    body = trader_client.get("/live/orders").content.decode()

    row = re.search(rf'<tr id="order-{order.id}".*?</tr>', body, re.S).group(0)
    assert 'data-testid="why"' in row and shown in row
    assert f'title="{next(iter(fields.values()))}"' in row  # the whole reason, however long


def test_orders_search_by_order_id(trader_client, strategy):
    wanted = OrderFactory(strategy=strategy, operation_id="op-x")
    OrderFactory(strategy=strategy, operation_id="op-y")

    assert rows(trader_client.get("/live/orders", {"q": str(wanted.id)})) == ["op-x"]


def test_orders_created_range(trader_client, strategy):
    early = OrderFactory(strategy=strategy, operation_id="op-early")
    OrderFactory(strategy=strategy, operation_id="op-late")
    Order.objects.filter(pk=early.pk).update(created_at=timezone.now() - timedelta(days=2))
    cut = (timezone.now() - timedelta(days=1)).isoformat()

    assert rows(trader_client.get("/live/orders", {"created_before": cut})) == ["op-early"]
    assert rows(trader_client.get("/live/orders", {"created_after": cut})) == ["op-late"]


def test_orders_blank_filter_form_fields_list_every_order(trader_client, strategy):
    # Arrange
    OrderFactory(strategy=strategy, operation_id="op-a")
    # Act: the filter form submits its unfilled fields empty
    response = trader_client.get("/live/orders", {"side": "", "created_after": "", "created_before": "", "venue": ""})
    # Assert
    assert rows(response) == ["op-a"]
    assert "data-field-error" not in response.content.decode()


def test_orders_inverted_created_range_shows_the_error_next_to_both_filters(trader_client, strategy):
    # Arrange
    OrderFactory(strategy=strategy, operation_id="op-a")
    # Act: the page shares the API's filters (orders.api.filters.OrderFilter)
    response = trader_client.get("/live/orders", {"created_after": "2025-01-02T00:00:00Z",
                                                  "created_before": "2025-01-01T00:00:00Z"})
    # Assert: the reason, not an empty list that reads as "no orders"
    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-field-error="created_after"' in html and 'data-field-error="created_before"' in html
    assert rows(response) == []


@pytest.mark.parametrize("params", [
    {"instrument": "binance"},
    {"created_after": "2025-01-02T00:00:00Z", "created_before": "2025-01-01T00:00:00Z"},
])
def test_orders_page_refusing_its_filters_inserts_no_live_rows(trader_client, db, params):
    # Act: the page lists no order under a refused filter; new orders were still added live at its top
    # (the refused filters read as none), orders a reload would not show
    response = trader_client.get("/live/orders", params)
    # Assert
    assert "data-field-error" in response.content.decode()
    assert 'data-live-insert="0"' in response.content.decode()


@pytest.mark.parametrize("params", [
    {"instrument": "binance"},
    {"created_after": "2025-01-02T00:00:00Z", "created_before": "2025-01-01T00:00:00Z"},
    {"side": "UP"},
], ids=["field", "inverted-range", "url-only"])
@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
def test_orders_refused_filter_says_it_was_not_applied_not_no_orders(trader_client, strategy, params, htmx):
    # Arrange: orders exist; the filter is refused, so the page lists none of them
    OrderFactory(strategy=strategy, operation_id="op-a")
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}

    # Act
    body = trader_client.get("/live/orders", params, **headers).content.decode()

    # Assert: the table says the filter was not applied, not "No orders." / "0 orders" (a true empty result)
    assert rows_of(body) == []
    assert "No orders." not in body and "0 orders" not in body
    refused = re.search(r'<tr id="orders-refused">.*?</tr>', body, re.S)
    assert refused and "Filter not applied" in refused.group(0)


def test_orders_valid_filter_matching_nothing_says_no_orders(trader_client, strategy):
    # Arrange
    OrderFactory(strategy=strategy, operation_id="op-a", status="ROUTED")
    # Act
    body = trader_client.get("/live/orders", {"status": "FILLED"}).content.decode()
    # Assert: a true empty result reads as one
    assert 'id="orders-empty"' in body and "No orders." in body and "0 orders" in body
    assert "orders-refused" not in body


def test_orders_bad_filter_names_the_field(trader_client, db):
    response = trader_client.get("/live/orders", {"instrument": "binance"})

    assert 'data-field-error="instrument"' in response.content.decode()


def test_orders_filter_with_nul_shows_the_project_reason_next_to_it(trader_client, db):
    # Act: the page shares the API's filters (orders.api.filters.OrderFilter)
    response = trader_client.get("/live/orders", {"q": "op\x00"})

    # Assert: under the search field
    assert re.search(r'<input id="q" name="q"[^>]*>\s*<p id="filter-error-q" class="error" role="alert" '
                     r'data-field-error="q">must not contain the NUL character \(\\u0000\)</p>',
                     response.content.decode())


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
def test_orders_bad_filter_reason_is_under_its_field(trader_client, db, htmx):
    # Arrange: the filter form's change answers the table only (hx-target #orders-table)
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}

    # Act
    body = trader_client.get("/live/orders", {"instrument": "binance"}, **headers).content.decode()

    # Assert: the reason in the slot under the Instrument field (out of band for htmx), no card naming "instrument"
    oob = ' hx-swap-oob="true"' if htmx else ""
    reason = re.search(rf'<p id="filter-error-instrument" class="error" role="alert"{oob} '
                       r'data-field-error="instrument">([^<]+)</p>', body)
    assert reason and "binance" in reason.group(1)
    assert "instrument:" not in body
    if htmx:  # the other fields' slots are emptied (a reason fixed since is gone)
        assert f'<p id="filter-error-q" class="error" role="alert"{oob}></p>' in body


def test_orders_bad_filter_outside_the_form_names_it_by_its_label(trader_client, db):
    # Act: side is a filter of the URL (the API's) with no field on the page
    body = trader_client.get("/live/orders", {"side": "UP"}).content.decode()

    # Assert
    assert re.search(r'<p data-field-error="side">Side: [^<]*UP', body)


def test_orders_paginates(trader_client, strategy, monkeypatch):
    monkeypatch.setattr(views, "PAGE_SIZE", 2)
    for i in range(3):
        OrderFactory(strategy=strategy, operation_id=f"op-{i}")

    first, second = trader_client.get("/live/orders"), trader_client.get("/live/orders", {"page": 2})

    assert len(rows(first)) == 2 and len(rows(second)) == 1
    assert "page 1 of 2" in first.content.decode() and 'data-live-insert="1"' in first.content.decode()
    assert 'data-live-insert="0"' in second.content.decode()  # live rows go to the first page only


def test_orders_table_gives_the_live_script_the_pager_figures_and_each_row_its_utc_time(trader_client, strategy,
                                                                                       monkeypatch):
    # Arrange: static/js/orders.js keeps page 1 at its page size and the pager counting from these
    monkeypatch.setattr(views, "PAGE_SIZE", 2)
    orders = [OrderFactory(strategy=strategy, operation_id=f"op-{i}") for i in range(3)]
    Order.objects.filter(pk=orders[0].pk).update(created_at=timezone.now().replace(
        year=2026, month=1, day=2, hour=3, minute=4, second=5, microsecond=60))

    # Act
    body = trader_client.get("/live/orders", {"status": "ROUTED"}).content.decode()

    # Assert
    assert 'data-page="1" data-page-size="2" data-count="3"' in body and 'data-query="status=ROUTED"' in body
    assert re.search(r'<a id="orders-older"\s+href="\?status=ROUTED&amp;page=2">older →</a>', body)
    second = trader_client.get("/live/orders", {"page": 2}).content.decode()
    assert 'data-created="2026-01-02 03:04:05.000060"' in second


@pytest.mark.parametrize(("params", "live"), [
    ({}, "1"), ({"status": "ACCEPTED", "venue": "BINANCE-SPOT"}, "1"),  # the page's script matches these itself
    ({"side": "SELL"}, "0"),  # a filter the script cannot match (the API's, in the URL): no live inserts
    ({"q": "op-1"}, "0"), ({"created_before": "2030-01-01T00:00:00Z"}, "0"),
])
def test_orders_live_inserts_only_where_the_page_can_tell_a_new_order_belongs(trader_client, strategy, params, live):
    body = trader_client.get("/live/orders", params).content.decode()

    assert f'data-live-insert="{live}"' in body


def test_orders_person_without_view_permission_sees_own_strategies_only(strategy):
    beta = StrategyFactory(id="beta")
    OrderFactory(strategy=strategy, operation_id="op-mine")
    OrderFactory(strategy=beta, operation_id="op-theirs")
    person = web_fixtures.UserFactory(username="plain-person")
    strategy.traders.add(person)

    assert rows(web_fixtures.logged_in(person).get("/live/orders")) == ["op-mine"]


def test_orders_cancel_button_for_trader_not_viewer(trader_client, viewer_client, strategy):
    order = OrderFactory(strategy=strategy)
    button = f'hx-post="/live/orders/{order.id}/cancel"'

    assert button in trader_client.get("/live/orders").content.decode()
    assert button not in viewer_client.get("/live/orders").content.decode()


def test_cancel_buttons_name_their_order(trader_client, strategy):
    # Arrange: two cancelable orders, so two Cancel buttons on the Orders page
    first = OrderFactory(strategy=strategy, operation_id="op-1")
    OrderFactory(strategy=strategy, operation_id="op-2")

    # Act
    page = trader_client.get("/live/orders").content.decode()
    detail = trader_client.get(f"/live/orders/{first.id}").content.decode()

    # Assert: each button's accessible name says which order it cancels, not a row of bare "Cancel"s
    assert 'aria-label="Cancel order op-1"' in page and 'aria-label="Cancel order op-2"' in page
    assert 'aria-label="Cancel order op-1"' in detail


def test_cancel_routed_order_by_trader_is_attributed(trader_client, trader, strategy):
    order = OrderFactory(strategy=strategy)

    response = trader_client.post(f"/live/orders/{order.id}/cancel", HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    order.refresh_from_db()
    assert order.status == "CANCELED"
    assert OrderEvent.objects.get(order=order, type="CANCELED").actor == trader.username
    assert 'data-status="CANCELED"' in response.content.decode()


@pytest.mark.parametrize(("button", "reason"), [
    ("row", "canceled from the Orders page"), ("detail", "canceled from the order's page")])
def test_cancel_without_reason_records_the_page_it_came_from(trader_client, strategy, button, reason):
    order = OrderFactory(strategy=strategy)
    target = f"order-{order.id}" if button == "row" else "order-detail"  # the buttons' hx-target

    trader_client.post(f"/live/orders/{order.id}/cancel", HTTP_HX_REQUEST="true", HTTP_HX_TARGET=target)

    assert OrderEvent.objects.get(order=order, type="CANCELED").payload["reason"] == reason


def test_orders_routed_algorithm_slice_offers_no_cancel_button(trader_client, strategy):
    # Arrange: a ROUTED slice of a TWAP parent (its algorithm submits it; the cancel service refuses it)
    parent = OrderFactory(strategy=strategy, status="ACCEPTED", exec_algorithm="TWAP")
    child = OrderFactory(strategy=strategy, parent=parent, status="ROUTED")
    button = f'hx-post="/live/orders/{child.id}/cancel"'

    # Act
    page = trader_client.get("/live/orders").content.decode()
    detail = trader_client.get(f"/live/orders/{child.id}").content.decode()

    # Assert: no button that can only fail (409); the parent keeps its own
    assert button not in page and button not in detail
    assert f'hx-post="/live/orders/{parent.id}/cancel"' in page


@pytest.mark.parametrize("next_url", ["https://evil.example/orders", "//evil.example/orders", "http:evil.example",
                                      "javascript:alert(1)", "/\\evil.example"])
def test_cancel_form_next_off_site_redirects_to_the_order_page(trader_client, strategy, next_url):
    # Arrange
    order = OrderFactory(strategy=strategy)

    # Act: a plain form post (no htmx) naming another site to go back to
    response = trader_client.post(f"/live/orders/{order.id}/cancel", {"next": next_url})

    # Assert: canceled, and back on the order's own page, never off-site
    assert response.status_code == 302
    assert response["Location"] == f"/live/orders/{order.id}"
    order.refresh_from_db()
    assert order.status == "CANCELED"


def test_cancel_form_next_on_this_site_redirects_there(trader_client, strategy):
    order = OrderFactory(strategy=strategy)

    response = trader_client.post(f"/live/orders/{order.id}/cancel", {"next": "/live/orders?status=ROUTED"})

    assert response.status_code == 302
    assert response["Location"] == "/live/orders?status=ROUTED"


def test_cancel_reason_with_null_character_is_400_and_cancels_nothing(trader_client, strategy):
    # Arrange
    order = OrderFactory(strategy=strategy, status="ACCEPTED")

    # Act: PostgreSQL cannot store it in the event's payload (it was a 500 there)
    response = trader_client.post(f"/live/orders/{order.id}/cancel", {"reason": "fat\x00finger"},
                                  HTTP_HX_REQUEST="true")

    # Assert
    assert response.status_code == 400
    assert response.content.decode() == "reason: must not contain the NUL character (\\u0000)"
    order.refresh_from_db()
    assert order.status == "ACCEPTED"


def test_cancel_by_viewer_is_403(viewer_client, strategy):
    order = OrderFactory(strategy=strategy)

    assert viewer_client.post(f"/live/orders/{order.id}/cancel").status_code == 403
    order.refresh_from_db()
    assert order.status == "ROUTED"


def test_cancel_by_viewer_plain_form_is_403_showing_the_reason(viewer_client, strategy):
    order = OrderFactory(strategy=strategy)

    response = viewer_client.post(f"/live/orders/{order.id}/cancel")

    assert response.status_code == 403
    assert ('<p class="error" role="alert" data-testid="forbidden">you may not cancel orders of strategy '
            "&#x27;alpha&#x27;: you are not one of its traders") in response.content.decode()


def test_cancel_by_listed_viewer_htmx_is_403_with_the_reason_in_the_row(strategy):
    # Arrange: listed among the strategy's traders, but a viewer: the API refuses the same
    viewer = web_fixtures.person_in("viewer")
    strategy.traders.add(viewer)
    order = OrderFactory(strategy=strategy)

    # Act
    response = web_fixtures.logged_in(viewer).post(f"/live/orders/{order.id}/cancel", HTTP_HX_REQUEST="true")

    # Assert
    body = response.content.decode()
    assert response.status_code == 403
    assert f'<tr id="order-{order.id}"' in body and "orders.change_order" in body
    order.refresh_from_db()
    assert order.status == "ROUTED"


def test_cancel_by_risk_manager_of_a_strategy_they_are_not_listed_on(strategy):
    order = OrderFactory(strategy=strategy)

    response = web_fixtures.logged_in(web_fixtures.person_in("risk manager")).post(
        f"/live/orders/{order.id}/cancel", HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    order.refresh_from_db()
    assert order.status == "CANCELED"


def test_cancel_other_strategy_is_403(trader_client, db):
    order = OrderFactory(strategy=StrategyFactory(id="beta"))

    assert trader_client.post(f"/live/orders/{order.id}/cancel").status_code == 403


@pytest.mark.parametrize("debug", [False, True], ids=["debug-off", "debug-on"])
@pytest.mark.parametrize("target", ["order-detail", None], ids=["detail", "row"])
def test_cancel_htmx_of_order_outside_scope_is_404_with_the_reason_as_a_fragment(strategy, settings, debug, target):
    # Arrange: the order's strategy is not one the person sees (e.g. taken off its traders since the page loaded)
    settings.DEBUG = debug
    order = OrderFactory(strategy=StrategyFactory(id="beta"))
    person = web_fixtures.UserFactory(username="plain-person")
    strategy.traders.add(person)
    headers = {"HTTP_HX_REQUEST": "true", **({"HTTP_HX_TARGET": target} if target else {})}

    # Act
    response = web_fixtures.logged_in(person).post(f"/live/orders/{order.id}/cancel", **headers)

    # Assert: the reason alone (htmx swaps it in place, templates/base.html), not Django's page, DEBUG or not
    body = response.content.decode()
    assert response.status_code == 404
    assert f'<p class="error" role="alert" data-testid="not-found">no order {order.id}</p>' in body
    assert "<html" not in body.lower() and "<body" not in body


def test_cancel_terminal_order_is_409(trader_client, strategy):
    order = OrderFactory(strategy=strategy, status="FILLED")

    response = trader_client.post(f"/live/orders/{order.id}/cancel", HTTP_HX_REQUEST="true")

    assert response.status_code == 409
    assert "cannot be canceled in status FILLED" in response.content.decode()


def test_detail_cancel_button_answers_into_the_detail(trader_client, strategy):
    order = OrderFactory(strategy=strategy, status="ACCEPTED")

    body = trader_client.get(f"/live/orders/{order.id}").content.decode()

    button = re.search(rf'<button [^>]*hx-post="/live/orders/{order.id}/cancel"[^>]*>', body).group(0)
    assert 'hx-target="#order-detail"' in button and 'hx-swap="outerHTML"' in button


@pytest.mark.parametrize(("status", "refusal", "answer"), [
    ("FILLED", "cannot be canceled in status FILLED", 409),  # filled since the page was drawn
    ("ACCEPTED", "orders.change_order", 403),  # the permission withdrawn since
])
def test_cancel_from_detail_refused_answers_the_detail_with_the_reason(trader_client, trader, strategy, status,
                                                                        refusal, answer):
    # Arrange
    order = OrderFactory(strategy=strategy, status=status)
    if answer == 403:
        trader.groups.clear()

    # Act: the detail page's button (htmx, its target the detail body)
    response = trader_client.post(f"/live/orders/{order.id}/cancel", HTTP_HX_REQUEST="true",
                                  HTTP_HX_TARGET="order-detail")

    # Assert: the detail body, the reason beside the order's status; no row of the Orders page
    body = response.content.decode()
    assert response.status_code == answer
    assert '<div id="order-detail"' in body
    assert 'data-testid="cancel-error"' in body and refusal in body
    assert "<tr id=\"order-" not in body
    order.refresh_from_db()
    assert order.status == status


def test_detail_shows_timeline_fills_risk_routing_children(trader_client, strategy):
    now = timezone.now()
    order = OrderFactory(strategy=strategy, status="FILLED", quantity=Decimal("0.02"), filled_quantity=Decimal("0.01"),
                         venue_order_id="V-77", exec_algorithm="TWAP",
                         risk_result={"passed": True, "checks": [{"check": "max_order_notional", "passed": True,
                                                                  "limit": "100000", "observed": "800"}]},
                         routing_decision={"venue": "BINANCE-SPOT", "reason": "lowest cost", "candidates": [
                             {"venue": "BINANCE-SPOT", "eligible": True, "total_bps": "12.5", "fee_bps": "10"}]})
    OrderEventFactory(order=order, type="RECEIVED", ts=now)
    OrderEventFactory(order=order, type="ACCEPTED", ts=now + timedelta(seconds=1))
    FillFactory(order=order, price=Decimal("40001.5"), quantity=Decimal("0.01"), venue_trade_id="T-9")
    OrderFactory(strategy=strategy, parent=order, operation_id="op-child", quantity=Decimal("0.01"),
                 filled_quantity=Decimal("0.01"), status="FILLED")

    body = trader_client.get(f"/live/orders/{order.id}").content.decode()

    assert '<li class="done">received' in body and '<li class="done">accepted' in body
    assert '<li class="">submitted' in body  # not reached: no SUBMITTED event
    assert "40001.5" in body and "BINANCE-SPOT:T-9" in body and "V-77" in body
    assert "max_order_notional" in body and "100000" in body
    assert "12.5" in body and "lowest cost" in body
    assert 'style="width: 50.0%"' in body  # child orders' progress: 0.01 of 0.02 filled
    assert f'ws-connect="/ws/live/?topics=order:{order.id}"' in body


def test_detail_lists_every_event_with_who_and_why(trader_client, strategy):
    # Arrange: a resting order canceled by a person, with the reason they gave
    now = timezone.now()
    order = OrderFactory(strategy=strategy, status="CANCELED")
    OrderEventFactory(order=order, type="ACCEPTED", ts=now, actor="venue:BINANCE-SPOT", status_before="SUBMITTED",
                      status_after="ACCEPTED")
    OrderEventFactory(order=order, type="CANCEL_REQUESTED", ts=now + timedelta(seconds=1), actor="tina",
                      status_before="ACCEPTED", status_after="PENDING_CANCEL",
                      payload={"reason": "too far from the market"})
    OrderEventFactory(order=order, type="CANCELED", ts=now + timedelta(seconds=2), actor="venue:BINANCE-SPOT",
                      status_before="PENDING_CANCEL", status_after="CANCELED")

    # Act
    body = trader_client.get(f"/live/orders/{order.id}").content.decode()

    # Assert: each entry in order with its time, change, actor and detail (the execution log's words)
    events = re.findall(r'<tr class="event" data-type="([A-Z_]+)">\s*<td class="mono">([^<]+)</td>'
                        r'\s*<td>[A-Z_]+</td>\s*<td>([^<]*)</td>\s*<td>([^<]*)</td>\s*<td[^>]*>([^<]*)</td>', body)
    assert [(kind, actor, detail) for kind, _, _, actor, detail in events] == [
        ("ACCEPTED", "venue:BINANCE-SPOT", ""), ("CANCEL_REQUESTED", "tina", "too far from the market"),
        ("CANCELED", "venue:BINANCE-SPOT", "")]
    assert events[1][1] == fmt_time(now + timedelta(seconds=1)) and events[1][2] == "ACCEPTED → PENDING_CANCEL"


def test_detail_outside_scope_is_404(strategy):
    order = OrderFactory(strategy=StrategyFactory(id="beta"))
    person = web_fixtures.UserFactory(username="plain-person")
    strategy.traders.add(person)

    assert web_fixtures.logged_in(person).get(f"/live/orders/{order.id}").status_code == 404


def test_detail_routing_figures_padded_with_zeros_show_as_canonical_decimals(trader_client, strategy):
    # Arrange: the router records its figures at a fixed scale (bps to 6 places, prices to 18)
    candidate = {"venue": "BINANCE-SPOT", "eligible": True, "total_bps": "10.050000", "fee_bps": "10.000000",
                 "slippage_bps": "0.000000", "latency_bps": "0.050000", "expected_price": "1000.000000000000000000"}
    order = OrderFactory(strategy=strategy, routing_decision={"venue": "BINANCE-SPOT", "reason": "as named",
                                                              "candidates": [candidate]})

    # Act
    body = trader_client.get(f"/live/orders/{order.id}").content.decode()

    # Assert: the figures as the CLI (orders show) prints them, no trailing zeros
    assert "000000" not in body
    for figure in ("10.05", "10", "0", "0.05", "1000"):
        assert f'<td class="num">{figure}</td>' in body


def test_detail_of_algorithm_parent_lists_the_family_fills_with_their_order_and_totals(trader_client, strategy):
    # Arrange
    parent, (first, second) = algorithm_family(strategy)

    # Act
    body = trader_client.get(f"/live/orders/{parent.id}").content.decode()

    # Assert: every fill of the family, oldest first, each naming the order it came from; totals = the parent's
    fills = re.findall(r'<tr class="fill-row" data-order="([^"]+)">.*?BINANCE-SPOT:(T-[a-z0-9-]+)</td>', body, re.S)
    assert fills == [(str(parent.id), "T-primary"), (str(first.id), "T-slice-1"), (str(second.id), "T-slice-2")]
    assert f'<a href="/live/orders/{first.id}">slice {first.id}</a>' in body
    totals = re.search(r'<tfoot data-testid="fill-totals">(.*?)</tfoot>', body, re.S).group(1)
    assert re.findall(r'<td class="num">([^<]+)</td>', totals) == ["40010", "0.02", "0.4 USDT"]


def test_detail_fees_in_two_currencies_are_totalled_per_currency_in_the_header_and_the_fill_totals(trader_client,
                                                                                                  strategy):
    # Arrange: the primary and slice 2 pay their fees in USDT (0.1 + 0.15), slice 1 in BNB (0.15)
    parent, _ = algorithm_family(strategy, fee_currencies=("USDT", "BNB", "USDT"))

    # Act
    body = trader_client.get(f"/live/orders/{parent.id}").content.decode()

    # Assert: a total per currency, never their plain sum (0.4) as one amount
    header = re.search(r'<dd data-testid="filled">(.*?)</dd>', body, re.S).group(1)
    assert header.endswith("fees 0.25 USDT + 0.15 BNB")
    totals = re.search(r'<tfoot data-testid="fill-totals">(.*?)</tfoot>', body, re.S).group(1)
    assert re.findall(r'<td class="num">([^<]+)</td>', totals) == ["40010", "0.02", "0.25 USDT + 0.15 BNB"]


def test_detail_header_names_the_fee_currency_of_a_plain_order(trader_client, strategy):
    # Arrange: a Binance spot buy paying its fee in the base currency
    order = OrderFactory(strategy=strategy, status="FILLED", filled_quantity=Decimal("0.01"),
                         avg_fill_price=Decimal("40000"), fees=Decimal("0.00001"))
    FillFactory(order=order, quantity=Decimal("0.01"), fee=Decimal("0.00001"), fee_currency="BTC")

    # Act
    body = trader_client.get(f"/live/orders/{order.id}").content.decode()

    # Assert
    header = re.search(r'<dd data-testid="filled">(.*?)</dd>', body, re.S).group(1)
    assert header.endswith("fees 0.00001 BTC")


def test_detail_query_count_does_not_grow_with_fills_and_slices(trader_client, strategy,
                                                                 django_assert_max_num_queries):
    # Arrange: the query count of a family of two slices is the bound for a family of five
    parent, _ = algorithm_family(strategy)
    with CaptureQueriesContext(connection) as small:
        trader_client.get(f"/live/orders/{parent.id}")
    for n in range(3, 6):
        child = OrderFactory(strategy=strategy, parent=parent, operation_id=f"op-slice-{n}", status="FILLED")
        FillFactory(order=child, venue_trade_id=f"T-slice-{n}")

    # Act / Assert
    with django_assert_max_num_queries(len(small.captured_queries)):
        assert trader_client.get(f"/live/orders/{parent.id}").status_code == 200


# -- why a CANCELED order was canceled ---------------------------------------------------------------
def _venue_event(kind, order, **fields):
    return VenueEvent(kind=kind, client_order_id=order.client_order_id, venue=order.venue, ts_event=timezone.now(),
                      **fields)


def _canceled_at_the_venue_by(strategy, reason: str) -> Order:
    # An ACCEPTED order canceled through the service with ``reason``; the venue's CANCELED carries none.
    order = OrderFactory(strategy=strategy, status="ACCEPTED")
    order_cancel(order=order, actor="alice", reason=reason)
    order_apply_venue_event(event=_venue_event(VenueEventKind.CANCELED, order))
    return order


def _canceled_by_the_kill_switch(strategy) -> Order:
    order = OrderFactory(strategy=strategy, status="ACCEPTED")
    orders_cancel_in_halted_scope(scope="GLOBAL", scope_key="", set_by="risk", reason="desk halt")
    order_apply_venue_event(event=_venue_event(VenueEventKind.CANCELED, order))
    return order


def _canceled_before_hand_off(strategy) -> Order:
    order = OrderFactory(strategy=strategy, status="ROUTED")
    order_cancel(order=order, actor="alice", reason="wrong instrument")
    return order


def _canceled_by_reconciliation(strategy) -> Order:
    order = OrderFactory(strategy=strategy, status="ACCEPTED")
    order_apply_venue_event(event=_venue_event(VenueEventKind.CANCELED, order,
                                               reason="reconciliation: not open at the venue"))
    return order


CANCELED_WAYS = [
    (lambda s: _canceled_at_the_venue_by(s, "fat finger"), "fat finger"),
    (_canceled_by_the_kill_switch, "kill switch GLOBAL HALTED by risk: desk halt"),
    (_canceled_before_hand_off, "wrong instrument"),
    (_canceled_by_reconciliation, "reconciliation: not open at the venue"),
]


@pytest.mark.parametrize(("cancel", "shown"), CANCELED_WAYS)
def test_orders_row_of_a_canceled_order_says_why(trader_client, strategy, cancel, shown):
    # Arrange
    order = cancel(strategy)
    assert Order.objects.get(pk=order.pk).status == "CANCELED"

    # Act
    body = trader_client.get("/live/orders").content.decode()

    # Assert: as a refused order's reason
    row = re.search(rf'<tr id="order-{order.id}".*?</tr>', body, re.S).group(0)
    assert f'<span class="muted why" data-testid="why" title="{shown}">{shown}</span>' in row


def test_orders_live_row_of_a_canceled_order_says_why(trader, strategy):
    # Arrange
    order = _canceled_by_the_kill_switch(strategy)

    # Act: the row the live topic "orders" sends
    row = live.orders_render({"type": ORDERS_UPDATED, "order_id": str(order.id)}, trader)

    # Assert
    assert 'data-testid="why" title="kill switch GLOBAL HALTED by risk: desk halt"' in row


@pytest.mark.parametrize(("cancel", "shown"), CANCELED_WAYS)
def test_order_detail_and_status_line_of_a_canceled_order_say_why(trader_client, strategy, cancel, shown):
    # Arrange
    order = cancel(strategy)

    # Act
    body = trader_client.get(f"/live/orders/{order.id}").content.decode()
    line = order_status_line(Order.objects.get(pk=order.pk))

    # Assert
    assert f'<dt>reason</dt><dd class="error">{shown}</dd>' in body
    assert line.endswith(f"reason: {shown}")


def test_orders_row_of_an_order_canceled_by_the_venue_after_a_refused_cancel_gives_no_stale_reason(
        trader_client, strategy):
    # Arrange: a cancel asked "fat finger", refused by the venue; later the venue cancels it on its own
    order = OrderFactory(strategy=strategy, status="ACCEPTED")
    order_cancel(order=order, actor="alice", reason="fat finger")
    order_apply_venue_event(event=_venue_event(VenueEventKind.CANCEL_REJECTED, order, reason="too late"))
    order_apply_venue_event(event=_venue_event(VenueEventKind.CANCELED, order))

    # Act
    body = trader_client.get("/live/orders").content.decode()

    # Assert
    row = re.search(rf'<tr id="order-{order.id}".*?</tr>', body, re.S).group(0)
    assert "fat finger" not in row


def test_orders_page_query_count_does_not_grow_with_canceled_orders(trader_client, strategy,
                                                                     django_assert_max_num_queries):
    # Arrange: the query count with one canceled order is the bound for four
    _canceled_at_the_venue_by(strategy, "one")
    with CaptureQueriesContext(connection) as small:
        trader_client.get("/live/orders")
    for n in range(3):
        _canceled_at_the_venue_by(strategy, f"more {n}")

    # Act / Assert
    with django_assert_max_num_queries(len(small.captured_queries)):
        assert "more 2" in trader_client.get("/live/orders").content.decode()


# -- accepted, for an order that filled on submit ---------------------------------------------------------
def test_detail_of_an_order_filled_on_submit_says_it_never_rested_instead_of_an_empty_accepted(
        trader_client, strategy, listing):
    # Arrange: a paper venue's MARKET order goes SUBMITTED → FILLED with no ACCEPTED (NAUTILUS_NOTES.md)
    order = OrderFactory(strategy=strategy, status="ROUTED", order_type="MARKET", price=None)
    order_apply_venue_event(event=_venue_event(VenueEventKind.SUBMITTED, order, venue_order_id="V1"))
    order_apply_venue_event(event=_venue_event(
        VenueEventKind.FILLED, order, trade_id="T1", last_qty=Decimal("0.01"), last_px=Decimal("40001.5"),
        fee=Decimal("0.4"), fee_currency="USDT", liquidity="TAKER"))
    first_fill = order.fills.get()

    # Act
    body = trader_client.get(f"/live/orders/{order.id}").content.decode()

    # Assert: what is true, the first fill's time labeled as such; nothing invented in the database
    assert (f"<dt>accepted</dt><dd>— (filled on submit, never resting; first fill "
            f"{fmt_time(first_fill.ts_event)})</dd>") in body
    assert '<li class="skipped">accepted: none, filled on submit' in body
    assert Order.objects.get(pk=order.pk).accepted_at is None


def test_detail_of_an_accepted_order_shows_when_and_of_an_unfilled_unaccepted_order_a_dash(trader_client, strategy):
    # Arrange
    accepted = OrderFactory(strategy=strategy, status="ROUTED")
    order_apply_venue_event(event=_venue_event(VenueEventKind.SUBMITTED, accepted, venue_order_id="V2"))
    order_apply_venue_event(event=_venue_event(VenueEventKind.ACCEPTED, accepted, venue_order_id="V2"))
    submitted = OrderFactory(strategy=strategy, status="ROUTED")
    order_apply_venue_event(event=_venue_event(VenueEventKind.SUBMITTED, submitted, venue_order_id="V3"))

    # Act
    accepted_body = trader_client.get(f"/live/orders/{accepted.id}").content.decode()
    submitted_body = trader_client.get(f"/live/orders/{submitted.id}").content.decode()

    # Assert
    at = Order.objects.get(pk=accepted.pk).accepted_at
    assert f"<dt>accepted</dt><dd>{fmt_time(at)}</dd>" in accepted_body
    assert "<dt>accepted</dt><dd>-</dd>" in submitted_body
