"""The Execute page (/live/execute): the order ticket, its CLI preview, submit and what-if."""

import html
import re
from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.utils import timezone

from odum_live.live import CONNECTED
from orders.models import Order
from risk.models import RiskLimit
from orders.web import live
from tests.orders.conftest import SPOT_KEY, client_for
from tests.orders import web_fixtures
from tests.orders.factories import FillFactory, OrderFactory
from tests.risk.factories import RiskLimitFactory

pytestmark = pytest.mark.django_db
trader, trader_client, viewer_client = web_fixtures.trader, web_fixtures.trader_client, web_fixtures.viewer_client


def ticket(**overrides) -> dict:
    data = {"strategy_id": "alpha", "venue": "BINANCE-SPOT", "instrument_key": SPOT_KEY, "side": "BUY",
            "order_type": "MARKET", "quantity": "0.05", "price": "", "time_in_force": "GTC", "expire_time": "",
            "exec_algorithm": "NORMAL", "operation_id": "web-test-1"}
    data.update(overrides)
    return data


def test_execute_anonymous_redirects_to_login(client):
    response = client.get("/live/execute")

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/live/execute")


def test_execute_get_trader_shows_ticket_with_instruments_and_cli(trader_client, tradable):
    response = trader_client.get("/live/execute")

    body = response.content.decode()
    assert response.status_code == 200
    assert f'<option value="{SPOT_KEY}" selected>' in body
    assert '<option value="alpha" selected>' in body
    assert "manage.py orders submit --strategy alpha" in body
    assert 'name="operation_id" value="web-' in body


def test_execute_submit_market_creates_order_attributed_to_trader(trader_client, trader, tradable):
    response = trader_client.post("/live/execute", ticket(), HTTP_HX_REQUEST="true")

    assert response.status_code == 201
    order = Order.objects.get(operation_id="web-test-1")
    assert (order.status, order.quantity, order.created_by) == ("ROUTED", Decimal("0.05"), trader.username)
    body = response.content.decode()
    assert f"order {order.id} (new)" in body
    assert f"ws-connect=\"/ws/live/?topics=ticket:{order.id}\"" in body
    assert 'data-testid="ticket-status" data-status="ROUTED"' in body
    assert 'name="operation_id" value="web-test-1"' not in body  # a fresh operation id for the next ticket
    assert "<html" not in body  # htmx gets the partial only


def test_execute_resubmit_same_operation_id_replays_stored_order(trader_client, tradable):
    trader_client.post("/live/execute", ticket())

    response = trader_client.post("/live/execute", ticket())

    assert response.status_code == 200
    assert Order.objects.filter(operation_id="web-test-1").count() == 1
    assert "nothing re-sent" in response.content.decode()


def _filled_in_two_fee_currencies(operation_id: str) -> Order:
    # The ticket's order, since filled 0.05 in two fills paying 0.4 USDT and 0.00001 BNB (Order.fees 0.40001).
    order = Order.objects.get(operation_id=operation_id)
    Order.objects.filter(pk=order.pk).update(status="FILLED", filled_quantity=Decimal("0.05"),
                                             avg_fill_price=Decimal("40000"), fees=Decimal("0.40001"))
    FillFactory(order=order, quantity=Decimal("0.025"), fee=Decimal("0.4"), fee_currency="USDT")
    FillFactory(order=order, quantity=Decimal("0.025"), fee=Decimal("0.00001"), fee_currency="BNB")
    return order


def test_execute_resubmit_of_a_filled_order_shows_its_fees_per_currency(trader_client, tradable):
    # Arrange
    trader_client.post("/live/execute", ticket())
    _filled_in_two_fee_currencies("web-test-1")

    # Act: the same ticket again shows the stored order (its result and its live status)
    body = trader_client.post("/live/execute", ticket()).content.decode()

    # Assert: not "fees 0.40001"
    assert "FILLED filled 0.05/0.05 avg 40000 fees 0.4 USDT + 0.00001 BNB" in body
    assert "0.40001" not in body


def test_execute_live_status_shows_fees_per_currency(trader_client, trader, tradable):
    # Arrange
    trader_client.post("/live/execute", ticket())
    order = _filled_in_two_fee_currencies("web-test-1")

    # Act: the ticket's live topic renders the order's status after its fill
    html_text = live.ticket_render(dict(CONNECTED), trader, argument=str(order.id))

    # Assert
    assert "status FILLED filled 0.05/0.05 avg 40000 fees 0.4 USDT + 0.00001 BNB" in html_text


def _gtd_ticket_again_after_its_expire_time(trader_client, **changes):
    # A GTD ticket accepted while its expire_time was ahead, then sent again (with ``changes``) after it.
    expire = timezone.now() + timedelta(minutes=1)
    gtd = ticket(order_type="LIMIT", price="40000", time_in_force="GTD", expire_time=expire.isoformat())
    trader_client.post("/live/execute", gtd)
    with mock.patch("orders.services.request.dj_timezone", **{"now.return_value": expire + timedelta(seconds=5)}):
        return trader_client.post("/live/execute", {**gtd, **changes})


def test_execute_gtd_resubmit_after_expire_time_replays_stored_order(trader_client, tradable):
    # Act: the same ticket again, after the expire_time
    response = _gtd_ticket_again_after_its_expire_time(trader_client)
    # Assert
    assert response.status_code == 200
    assert Order.objects.filter(operation_id="web-test-1").count() == 1
    assert "nothing re-sent" in response.content.decode()


def test_execute_gtd_changed_ticket_after_expire_time_is_400_on_expire_time(trader_client, tradable):
    # Act: same operation id, another quantity, after the expire_time
    response = _gtd_ticket_again_after_its_expire_time(trader_client, quantity="0.06")
    # Assert
    assert response.status_code == 400
    assert 'data-field-error="expire_time"' in response.content.decode()
    assert Order.objects.count() == 1


def test_execute_same_operation_id_other_order_is_409_on_the_operation_id(trader_client, tradable):
    trader_client.post("/live/execute", ticket())

    response = trader_client.post("/live/execute", ticket(quantity="0.06"))

    assert response.status_code == 409
    assert 'data-field-error="operation_id"' in response.content.decode()
    assert Order.objects.filter(operation_id="web-test-1").count() == 1


@pytest.mark.parametrize("operation_id", ["web-test-1 ", " web-test-1", "web-test-1\n", "\tweb-test-1"])
def test_execute_operation_id_with_edge_whitespace_is_400_with_the_api_reason(trader_client, tradable, operation_id):
    # Act: not trimmed into "web-test-1", which the API would take for another idempotency key
    response = trader_client.post("/live/execute", ticket(operation_id=operation_id))

    # Assert: the API's own reason, under the field
    assert response.status_code == 400
    assert ('<p class="error" data-field-error="operation_id">must be printable characters without whitespace</p>'
            in response.content.decode())
    assert not Order.objects.exists()


@pytest.mark.parametrize(("field", "overrides", "accepted"), [
    # Choices, the expire time and decimal strings (the operation id: above) must be exact in the API: " BUY" is
    # no side, and " 0.05" is outside the schema's decimal pattern.
    ("side", {"side": " BUY"}, False),
    ("order_type", {"order_type": "MARKET "}, False),
    ("time_in_force", {"time_in_force": "\tGTC"}, False),
    ("exec_algorithm", {"exec_algorithm": "NORMAL\n"}, False),
    ("expire_time", {"order_type": "LIMIT", "price": "40000", "time_in_force": "GTD", "expire_time": " {future}"},
     False),
    ("quantity", {"quantity": " 0.05 "}, False),
    ("price", {"order_type": "LIMIT", "price": " 40000 "}, False),
    # Free text, which the API trims: the same order either way.
    ("strategy_id", {"strategy_id": " alpha "}, True),
    ("instrument_key", {"instrument_key": f" {SPOT_KEY} "}, True),
])
def test_execute_field_with_edge_whitespace_is_taken_as_the_api_takes_it(trader_client, trader, tradable, field,
                                                                           overrides, accepted):
    # Arrange: the same fields as a ticket and as an order API body (empty ticket fields are absent)
    future = (timezone.now() + timedelta(hours=1)).isoformat()
    fields = {name: value.format(future=future) for name, value in ticket(**overrides).items()}
    body = {name: value for name, value in fields.items() if value != "" and name != "venue"}

    # Act
    api = client_for(trader).post("/api/orders", {**body, "operation_id": "api-test-1"}, format="json")
    page = trader_client.post("/live/execute", fields)

    # Assert: the ticket answers as the API does, with the API's reason next to the field
    assert (api.status_code, page.status_code) == ((201, 201) if accepted else (400, 400)), api.json()
    if not accepted:
        (reason,) = api.json()["fields"][field]
        assert (f'<p class="error" data-field-error="{field}">{html.escape(reason)}</p>'
                in page.content.decode())
    assert Order.objects.count() == (2 if accepted else 0)


@pytest.mark.parametrize(("param", "value", "accepted"), [
    # A decimal parameter is a decimal string as typed, read as the API reads one: " 0.001" is outside the
    # schema's decimal pattern, as it is for quantity.
    ("display_qty", "0.001", True),
    ("display_qty", " 0.001", False),
    ("display_qty", "0.001 ", False),
    ("display_qty", "1e-3", False),
    ("display_qty", "+0.001", False),
    ("max_participation", "0.5", True),
    ("max_participation", "0.5\t", False),
    ("max_participation", "5E-1", False),
])
def test_execute_decimal_algorithm_param_is_taken_as_the_api_takes_it(trader_client, trader, tradable, param, value,
                                                                       accepted):
    # Arrange: the same order as a ticket and as an order API body
    algorithm = {"display_qty": "ICEBERG", "max_participation": "VWAP"}[param]
    params = {"display_qty": {}, "max_participation": {"horizon_secs": 60, "interval_secs": 10}}[param]
    fields = ticket(order_type="LIMIT", price="40000", exec_algorithm=algorithm, **{f"param_{param}": value},
                    **{f"param_{name}": str(v) for name, v in params.items()})
    body = {name: value for name, value in ticket(order_type="LIMIT", price="40000", exec_algorithm=algorithm).items()
            if value != "" and name != "venue"}

    # Act
    api = client_for(trader).post("/api/orders", {**body, "operation_id": "api-test-1",
                                                  "exec_algorithm_params": {**params, param: value}}, format="json")
    page = trader_client.post("/live/execute", fields)

    # Assert: the ticket answers as the API does, with the API's reason next to the parameter
    assert (api.status_code, page.status_code) == ((201, 201) if accepted else (400, 400)), api.json()
    if not accepted:
        (reason,) = api.json()["fields"]["exec_algorithm_params"][param]
        assert (f'<p class="error" data-field-error="param_{param}">{html.escape(reason)}</p>'
                in page.content.decode())
    assert Order.objects.count() == (2 if accepted else 0)


@pytest.mark.parametrize(("overrides", "field"), [
    ({"quantity": ""}, "quantity"),
    ({"quantity": "-1"}, "quantity"),
    ({"order_type": "LIMIT", "price": ""}, "price"),
    ({"instrument_key": "binance:spot"}, "instrument_key"),
    ({"time_in_force": "GTD", "order_type": "LIMIT", "price": "40000", "expire_time": "2001-01-01T00:00:00Z"},
     "expire_time"),
    ({"exec_algorithm": "TWAP", "param_horizon_secs": "10", "param_interval_secs": "60"}, "param_interval_secs"),
    ({"exec_algorithm": "ICEBERG", "order_type": "LIMIT", "price": "40000", "param_display_qty": "1"},
     "param_display_qty"),
    ({"strategy_id": "nope"}, "strategy_id"),
])
def test_execute_invalid_field_is_400_with_error_next_to_field(trader_client, tradable, overrides, field):
    response = trader_client.post("/live/execute", ticket(**overrides))

    assert response.status_code == 400
    assert f'data-field-error="{field}"' in response.content.decode()
    assert not Order.objects.exists()


def test_execute_twap_params_reach_the_order(trader_client, tradable):
    response = trader_client.post("/live/execute", ticket(exec_algorithm="TWAP", param_horizon_secs="60",
                                                          param_interval_secs="10", param_display_qty="9"))

    assert response.status_code == 201
    # Parameters of other algorithms left in the form are not sent.
    assert Order.objects.get().exec_algorithm_params == {"horizon_secs": 60, "interval_secs": 10}


def test_execute_viewer_submit_is_403_and_places_nothing(viewer_client, tradable):
    page = viewer_client.get("/live/execute")
    response = viewer_client.post("/live/execute", ticket())

    assert "Read only" in page.content.decode()
    assert response.status_code == 403
    assert not Order.objects.exists()


def test_execute_strategy_not_traded_by_user_is_403(trader_client, tradable, other_strategy):
    response = trader_client.post("/live/execute", ticket(strategy_id="beta"))

    assert response.status_code == 403
    assert not Order.objects.exists()


def test_execute_strategy_not_traded_by_user_htmx_is_403_with_the_reason_next_to_strategy(trader_client, tradable,
                                                                                          other_strategy):
    response = trader_client.post("/live/execute", ticket(strategy_id="beta"), HTTP_HX_REQUEST="true")

    assert response.status_code == 403
    assert ('<p class="error" data-field-error="strategy_id">you may not submit orders of strategy &#x27;beta&#x27;'
            in response.content.decode())


def test_execute_listed_viewer_submit_is_403_showing_the_reason(strategy, tradable):
    # Arrange: listed among the strategy's traders, but a viewer (the API refuses the same)
    viewer = web_fixtures.person_in("viewer")
    strategy.traders.add(viewer)

    # Act
    response = web_fixtures.logged_in(viewer).post("/live/execute", ticket())

    # Assert
    assert response.status_code == 403
    assert "you lack the permission orders.add_order" in response.content.decode()
    assert not Order.objects.exists()


def test_what_if_shows_checks_and_routing_without_placing(trader_client, tradable):
    response = trader_client.post("/live/execute/what-if", ticket(operation_id=""))

    body = response.content.decode()
    assert response.status_code == 200
    assert "what-if: would be ROUTED" in body
    assert "PASS " in body and "routing       BINANCE-SPOT" in body
    assert not Order.objects.exists()


def test_what_if_viewer_is_403(viewer_client, tradable):
    assert viewer_client.post("/live/execute/what-if", ticket()).status_code == 403


def test_preview_renders_equivalent_cli_command(trader_client, db):
    response = trader_client.get("/live/execute/preview", ticket(order_type="LIMIT", price="40000",
                                                                 exec_algorithm="ICEBERG", param_display_qty="0.01"))

    assert response.content.decode().strip() == (
        '<pre class="cli" id="cli-preview" data-testid="cli-preview">manage.py orders submit --strategy alpha '
        f"--instrument {SPOT_KEY} --side BUY --type LIMIT --qty 0.05 --price 40000 --tif GTC --algorithm ICEBERG "
        "--param display_qty=0.01 --operation-id web-test-1</pre>")


def test_instrument_picker_any_venue_lists_any_keys(trader_client, tradable):
    any_venue = trader_client.get("/live/execute/instruments", {"venue": "ANY"}).content.decode()
    one_venue = trader_client.get("/live/execute/instruments", {"venue": "BINANCE-SPOT"}).content.decode()

    assert 'value="ANY:SPOT_PAIR:BTC-USDT"' in any_venue
    assert f'value="{SPOT_KEY}"' in one_venue


@pytest.mark.parametrize("venue", ["NOPE", "BINANCE-SPOT\x00"])
def test_instrument_picker_unknown_or_malformed_venue_lists_nothing(trader_client, tradable, venue):
    # Act: a null character is refused by PostgreSQL in a query (it was a 500 there)
    picker = trader_client.get("/live/execute/instruments", {"venue": venue})
    page = trader_client.get("/live/execute", {"venue": venue})

    # Assert
    assert picker.status_code == 200 and "(no instrument listed)" in picker.content.decode()
    assert page.status_code == 200


def test_execute_ticket_offers_a_venue_that_cannot_trade_in_this_release_only_as_disabled_saying_why(
        trader_client, tradable):
    # Arrange: an enabled Deribit venue, whose adapter does not ship in this release (venues/availability.py)
    from tests.venues.factories import VenueFactory

    VenueFactory(code="AAA-DERIBIT", kind="EXTERNAL_SDK", adapter="deribit", enabled=True)

    # Act
    body = trader_client.get("/live/execute").content.decode()

    # Assert: listed, not selectable, with the reason; the ticket opens on a venue that can trade
    assert re.search(r'<option value="AAA-DERIBIT"\s+disabled>AAA-DERIBIT — cannot trade: adapter &#x27;deribit&#x27; '
                     r"\(EXTERNAL_SDK\) is not available in this release</option>", body)
    assert re.search(r'<option value="BINANCE-SPOT" selected\s+>BINANCE-SPOT</option>', body)  # one that trades
    assert f'<option value="{SPOT_KEY}" selected>' in body


def _collar_and_quantity_limits():
    # A price collar of 100 bps and at most 1 BTC per order (GLOBAL).
    RiskLimitFactory(kind=RiskLimit.Kind.PRICE_COLLAR_BPS, value=Decimal("100"))
    RiskLimitFactory(kind=RiskLimit.Kind.MAX_ORDER_QUANTITY, value=Decimal("1"))


def test_what_if_risk_figures_carry_their_units(trader_client, tradable):
    # Arrange: a LIMIT BUY at 41000 against the 40000.5 mid: about 250 bps off
    _collar_and_quantity_limits()

    # Act
    response = trader_client.post("/live/execute/what-if", ticket(order_type="LIMIT", price="41000", operation_id=""))

    # Assert: the collar's deviation in bps, the quantity in base units, in the checks and in the reason
    body = html.unescape(response.content.decode())
    assert re.search(r"FAIL price_collar +observed [0-9.]+ bps limit 100 bps from mid \(GLOBAL\)", body)
    assert re.search(r"PASS max_order_quantity +observed 0\.05 BTC limit 1 BTC \(GLOBAL\)", body)
    assert re.search(r"price_collar: observed [0-9.]+ bps, limit 100 bps from mid", body)


def test_order_detail_risk_figures_carry_their_units(trader_client, tradable):
    # Arrange: an order through the ticket, a LIMIT BUY 0.05 BTC at 40001 (within the collar)
    _collar_and_quantity_limits()
    trader_client.post("/live/execute", ticket(order_type="LIMIT", price="40001"))
    order = Order.objects.get(operation_id="web-test-1")

    # Act
    body = trader_client.get(f"/live/orders/{order.id}").content.decode()

    # Assert: each figure with its unit in the risk table
    collar = re.search(r"<td>price_collar</td>.*?</tr>", body, re.S).group(0)
    assert re.search(r'<td class="num">[0-9.]+ bps</td><td class="num">100 bps from mid \(GLOBAL\)</td>', collar)
    quantity = re.search(r"<td>max_order_quantity</td>.*?</tr>", body, re.S).group(0)
    assert '<td class="num">0.05 BTC</td><td class="num">1 BTC (GLOBAL)</td>' in quantity


def test_order_detail_and_cli_routing_expected_prices_carry_each_listings_quote_currency(trader_client, strategy):
    # Arrange: two candidates quoted in different currencies, one with no book (no expected price)
    from orders.formatting import routing_lines

    decision = {"routed": True, "venue": "BINANCE-SPOT", "reason": "lowest expected cost", "candidates": [
        {"venue": "BINANCE-SPOT", "instrument_key": "BINANCE-SPOT:SPOT_PAIR:BTC-USDT", "eligible": True,
         "total_bps": "10.5", "fee_bps": "10", "slippage_bps": "0.5", "latency_bps": "0", "expected_price": "40002.5"},
        {"venue": "DERIBIT", "instrument_key": "DERIBIT:PERPETUAL:BTC-USD@INV", "eligible": True,
         "total_bps": "11", "fee_bps": "5", "slippage_bps": "6", "latency_bps": "0", "expected_price": "40010"},
        {"venue": "OKX", "instrument_key": "OKX:SPOT_PAIR:BTC-USDC", "eligible": False, "reason": "no book",
         "total_bps": None, "fee_bps": "8", "slippage_bps": None, "latency_bps": "0", "expected_price": None}]}
    order = OrderFactory(strategy=strategy, status="ROUTED", routing_decision=decision)

    # Act
    body = trader_client.get(f"/live/orders/{order.id}").content.decode()
    lines = "\n".join(routing_lines(decision))

    # Assert: each price in its own listing's quote currency; none invented for a missing price
    assert '<td class="num">40002.5 USDT</td>' in body and '<td class="num">40010 USD</td>' in body
    assert re.search(r"<td>OKX</td>.*?<td class=\"num\">-</td><td>no book</td>", body, re.S)
    assert "expected price 40002.5 USDT" in lines and "expected price 40010 USD" in lines
    assert "expected price -" in lines


def test_order_detail_price_collar_recorded_without_a_unit_is_shown_in_bps(trader_client, strategy):
    # Arrange: a risk result stored before checks recorded their unit
    order = OrderFactory(strategy=strategy, status="DENIED", risk_result={
        "passed": False, "reason": "price_collar: observed 125, limit 100 bps from mid (GLOBAL)",
        "checks": [{"check": "price_collar", "passed": False, "limit": "100 bps from mid (GLOBAL)",
                    "observed": "125.0000", "scope": "GLOBAL", "detail": "limit price 40500 vs mid 40000 USDT"}]})

    # Act
    body = trader_client.get(f"/live/orders/{order.id}").content.decode()

    # Assert
    assert '<td class="num">125 bps</td>' in body


def test_execute_result_shows_the_status_once_in_its_live_line(trader_client, tradable):
    # Act: submitted, the order is ROUTED; it will move on (FILLED) while the result stays on the page
    response = trader_client.post("/live/execute", ticket(), HTTP_HX_REQUEST="true")

    # Assert: the static block has no status of its own to go stale above the live one
    body = html.unescape(response.content.decode())
    result = re.search(r'<pre class="cli" id="ticket-result">(.*?)</pre>', body, re.S).group(1)
    assert "order " in result and "ROUTED" not in result and "status" not in result
    assert re.search(r'data-testid="ticket-status" data-status="ROUTED">status ROUTED filled 0/0.05', body)
