import base64
from datetime import timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlparse

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from orders.models import Order
from tests.orders.conftest import client_for
from tests.orders.factories import FillFactory, OrderEventFactory, OrderFactory, UserFactory, algorithm_family

pytestmark = pytest.mark.django_db


def _ids(response):
    return [o["order_id"] for o in response.json()["results"]]


# --- BOLA -----------------------------------------------------------------------------------------
def test_get_order_of_another_strategy_is_404(svc_client, other_strategy):
    theirs = OrderFactory(strategy=other_strategy)
    response = svc_client.get(f"/api/orders/{theirs.pk}")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_list_orders_shows_only_own_strategy(svc_client, strategy, other_strategy):
    mine = OrderFactory(strategy=strategy)
    OrderFactory(strategy=other_strategy)
    assert _ids(svc_client.get("/api/orders")) == [str(mine.pk)]


def test_list_orders_filter_by_other_strategy_shows_nothing(svc_client, strategy, other_strategy):
    OrderFactory(strategy=other_strategy)
    assert _ids(svc_client.get("/api/orders", {"strategy": "beta"})) == []


def test_cancel_order_of_another_strategy_is_404_and_changes_nothing(svc_client, other_strategy):
    theirs = OrderFactory(strategy=other_strategy, status="ROUTED")
    response = svc_client.post(f"/api/orders/{theirs.pk}/cancel", {}, format="json")
    assert response.status_code == 404
    assert Order.objects.get(pk=theirs.pk).status == "ROUTED"


def test_list_orders_service_account_detached_from_its_strategy_sees_nothing(strategy, other_strategy):
    # Arrange: alpha's service account (in the strategy service group, which holds orders.view_order)
    # keeps a token after a risk manager detaches it from alpha in the admin.
    from django.contrib.auth.models import Group

    from orders.management.service_accounts import STRATEGY_SERVICE_GROUP

    account = strategy.service_account
    account.groups.add(Group.objects.get(name=STRATEGY_SERVICE_GROUP))
    client = client_for(account)
    OrderFactory(strategy=strategy)
    OrderFactory(strategy=other_strategy)
    strategy.service_account = None
    strategy.save(update_fields=["service_account"])

    # Act
    listed = client.get("/api/orders")
    positions = client.get("/api/positions")

    # Assert: its scope is empty, not every strategy's orders (the group's view permission is for
    # the account's own strategy)
    assert listed.status_code == 200 and _ids(listed) == []
    assert positions.status_code == 200 and positions.json()["count"] == 0


@pytest.mark.parametrize("order_id", ["null,null", "123", "not-a-uuid", "01a250c6-b425-7c66-80bd-bf144211f5eZ"])
def test_get_order_malformed_id_is_400_json_naming_order_id(svc_client, order_id):
    # Act
    response = svc_client.get(f"/api/orders/{order_id}")
    # Assert: the API's JSON error naming the field, not the URL resolver's HTML 404 page
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert "order_id" in response.json()["fields"]


def test_list_orders_person_with_view_permission_sees_all(strategy, other_strategy):
    OrderFactory(strategy=strategy)
    OrderFactory(strategy=other_strategy)
    user = UserFactory(username="risk-manager")
    user.user_permissions.add(Permission.objects.get(codename="view_order"))
    assert len(_ids(client_for(user).get("/api/orders"))) == 2


def test_list_orders_trader_sees_their_strategies(strategy, other_strategy, person):
    strategy.traders.add(person)
    mine = OrderFactory(strategy=strategy)
    OrderFactory(strategy=other_strategy)
    assert _ids(client_for(person).get("/api/orders")) == [str(mine.pk)]


def test_list_orders_unauthenticated_is_401(client):
    assert client.get("/api/orders").status_code == 401


# --- detail ---------------------------------------------------------------------------------------
def test_get_order_has_fills_children_and_timeline(svc_client, strategy):
    # Arrange
    parent = OrderFactory(strategy=strategy, status="PARTIALLY_FILLED", filled_quantity=Decimal("0.005"),
                          avg_fill_price=Decimal("40000.5"), exec_algorithm="TWAP")
    child = OrderFactory(strategy=strategy, parent=parent, status="FILLED", quantity=Decimal("0.005"))
    FillFactory(order=parent, price=Decimal("40000.50"), quantity=Decimal("0.005"))
    OrderEventFactory(order=parent, type="RECEIVED", ts=timezone.now() - timedelta(seconds=2))
    OrderEventFactory(order=parent, type="ROUTED", ts=timezone.now() - timedelta(seconds=1))
    # Act
    body = svc_client.get(f"/api/orders/{parent.pk}").json()
    # Assert
    assert body["order_id"] == str(parent.pk)
    assert body["fills"][0]["price"] == "40000.5" and body["fills"][0]["quantity"] == "0.005"
    assert body["leaves_quantity"] == "0.005" and body["avg_fill_price"] == "40000.5"
    assert [c["order_id"] for c in body["children"]] == [str(child.pk)]
    assert [e["type"] for e in body["events"]] == ["RECEIVED", "ROUTED"]


def test_get_order_costs_a_fixed_number_of_queries(svc_client, strategy, django_assert_max_num_queries):
    order = OrderFactory(strategy=strategy)
    for _ in range(3):
        FillFactory(order=order)
        OrderEventFactory(order=order)
    # knox (2) + access (1) + order + fills + children + events (4)
    with django_assert_max_num_queries(7):
        assert svc_client.get(f"/api/orders/{order.pk}").status_code == 200


def _fill_figures(fills):
    # Σ quantity, quantity-weighted average price and Σ fee of API fills (decimal strings).
    qty = sum(Decimal(f["quantity"]) for f in fills)
    notional = sum(Decimal(f["quantity"]) * Decimal(f["price"]) for f in fills)
    return qty, notional / qty, sum(Decimal(f["fee"]) for f in fills)


def test_get_algorithm_parent_lists_the_family_fills_with_their_order_ids_and_the_parents_totals(svc_client,
                                                                                               strategy):
    # Arrange: a TWAP parent filled by its primary and two slices (the journal writer's figures on the parent)
    parent, (first, second) = algorithm_family(strategy)

    # Act
    body = svc_client.get(f"/api/orders/{parent.pk}").json()

    # Assert: every fill of the family, oldest first, each naming the order it was booked on ...
    assert [(f["order_id"], f["venue_trade_id"]) for f in body["fills"]] == [
        (str(parent.pk), "T-primary"), (str(first.pk), "T-slice-1"), (str(second.pk), "T-slice-2")]
    # ... adding up to the parent's own figures
    filled, avg, fees = _fill_figures(body["fills"])
    assert (filled, avg, fees) == (Decimal(body["filled_quantity"]), Decimal(body["avg_fill_price"]),
                                   Decimal(body["fees"])) == (Decimal("0.02"), Decimal("40010"), Decimal("0.4"))


def test_get_algorithm_parent_of_another_strategy_is_404(svc_client, other_strategy):
    # Arrange: beta's parent, filled through its slices
    theirs, _ = algorithm_family(other_strategy)

    # Act
    response = svc_client.get(f"/api/orders/{theirs.pk}")

    # Assert: not found for alpha's token, nothing of the family shown
    assert response.status_code == 404
    assert "T-slice-1" not in response.content.decode()


def test_get_plain_order_fills_keep_their_fields_and_values(svc_client, strategy):
    # Arrange
    order = OrderFactory(strategy=strategy, status="FILLED", filled_quantity=Decimal("0.01"),
                         avg_fill_price=Decimal("40000"), fees=Decimal("0.4"))
    FillFactory(order=order, venue_trade_id="T-1", quantity=Decimal("0.01"), fee=Decimal("0.4"))

    # Act
    body = svc_client.get(f"/api/orders/{order.pk}").json()

    # Assert: the order's own fills, without the family's order_id
    assert [list(f) for f in body["fills"]] == [["venue", "venue_trade_id", "price", "quantity", "fee",
                                                 "fee_currency", "liquidity", "ts_event"]]
    assert (body["fills"][0]["venue_trade_id"], body["fills"][0]["fee"], body["fees"]) == ("T-1", "0.4", "0.4")


def test_get_order_fee_totals_are_per_fee_currency(svc_client, strategy):
    # Arrange: the primary and slice 2 pay their fees in USDT (0.1 + 0.15), slice 1 in BNB (0.15)
    parent, _ = algorithm_family(strategy, fee_currencies=("USDT", "BNB", "USDT"))

    # Act
    body = svc_client.get(f"/api/orders/{parent.pk}").json()

    # Assert: a total per currency; fees stays the stored plain sum, as documented
    assert body["fee_totals"] == [{"currency": "USDT", "amount": "0.25"}, {"currency": "BNB", "amount": "0.15"}]
    assert body["fees"] == "0.4"


def test_get_order_without_fills_has_no_fee_totals(svc_client, strategy):
    order = OrderFactory(strategy=strategy)
    assert svc_client.get(f"/api/orders/{order.pk}").json()["fee_totals"] == []


def test_get_algorithm_parent_query_count_does_not_grow_with_slices(svc_client, strategy,
                                                                     django_assert_max_num_queries):
    # Arrange: a family of two slices and then five
    parent, _ = algorithm_family(strategy)
    for n in range(3, 6):
        child = OrderFactory(strategy=strategy, parent=parent, operation_id=f"op-slice-{n}", status="FILLED")
        FillFactory(order=child, venue_trade_id=f"T-slice-{n}")
        OrderEventFactory(order=child)

    # Act / Assert: knox (2) + access (1) + order + fills + children + events (4) + the family's fills (1)
    with django_assert_max_num_queries(8):
        body = svc_client.get(f"/api/orders/{parent.pk}").json()
    assert len(body["fills"]) == 6


# --- filters --------------------------------------------------------------------------------------
def test_list_orders_filters(svc_client, strategy):
    # Arrange
    routed = OrderFactory(strategy=strategy, status="ROUTED", side="BUY")
    filled = OrderFactory(strategy=strategy, status="FILLED", side="SELL", venue="BYBIT",
                          instrument_key="ANY:PERPETUAL:BTC-USDT@LIN",
                          routed_instrument_key="BYBIT:PERPETUAL:BTC-USDT@LIN")
    denied = OrderFactory(strategy=strategy, status="DENIED", operation_id="find-me")
    Order.objects.filter(pk=denied.pk).update(created_at=timezone.now() - timedelta(days=2))

    def ids(**params):
        response = svc_client.get("/api/orders", params)
        assert response.status_code == 200, response.json()
        return set(_ids(response))

    # Act / Assert
    assert ids(status="FILLED") == {str(filled.pk)}
    assert ids(status=["FILLED", "ROUTED"]) == {str(filled.pk), str(routed.pk)}
    assert ids(venue="BYBIT") == {str(filled.pk)}
    assert ids(side="SELL") == {str(filled.pk)}
    assert ids(instrument="BYBIT:PERPETUAL:BTC-USDT@LIN") == {str(filled.pk)}
    assert ids(instrument="ANY:PERPETUAL:BTC-USDT@LIN") == {str(filled.pk)}
    assert ids(strategy="alpha") == {str(routed.pk), str(filled.pk), str(denied.pk)}
    assert ids(created_before=(timezone.now() - timedelta(days=1)).isoformat()) == {str(denied.pk)}
    assert ids(created_after=(timezone.now() - timedelta(days=1)).isoformat()) == {str(routed.pk), str(filled.pk)}
    assert ids(q="find-me") == {str(denied.pk)}
    assert ids(q=str(routed.pk)) == {str(routed.pk)}
    assert ids(q=filled.client_order_id) == {str(filled.pk)}


@pytest.mark.parametrize("params, field", [({"status": "BOGUS"}, "status"), ({"instrument": "nope"}, "instrument"),
                                           ({"created_after": "yesterday"}, "created_after")])
def test_list_orders_bad_filter_is_400_naming_it(svc_client, params, field):
    response = svc_client.get("/api/orders", params)
    assert response.status_code == 400
    assert field in response.json()["fields"]


@pytest.mark.parametrize("field", ["status", "venue", "instrument", "strategy", "side", "created_after",
                                   "created_before", "q"])
def test_list_orders_filter_with_nul_is_400_with_the_project_reason_alone(svc_client, strategy, field):
    # Act: PostgreSQL refuses a NUL in a query parameter (odum_live.fields.refuse_nul)
    response = svc_client.get("/api/orders", {field: "ROUTED\x00"})
    # Assert: the project's reason under the parameter, not django's "Null characters are not allowed."
    # nor a "not a valid choice / date" quoting the value
    assert response.status_code == 400
    assert response.json()["fields"] == {field: ["must not contain the NUL character (\\u0000)"]}


def test_list_orders_nul_in_one_filter_keeps_the_other_filters_errors(svc_client):
    response = svc_client.get("/api/orders", {"q": "x\x00", "side": "UP"})

    assert response.status_code == 400
    assert set(response.json()["fields"]) == {"q", "side"}


@pytest.mark.parametrize("params, field", [({"created_after": "9999-12-31T23:59:59-01:00"}, "created_after"),
                                           ({"created_before": "0001-01-01T00:00:00+01:00"}, "created_before")])
def test_list_orders_created_bound_beyond_utc_range_is_400_naming_it(svc_client, strategy, params, field):
    # Arrange
    OrderFactory(strategy=strategy)
    # Act: the time is valid ISO-8601, but in UTC it falls outside year 1 to 9999 (SQLite's
    # comparison converted it to UTC: OverflowError, a 500)
    response = svc_client.get("/api/orders", params)
    # Assert
    assert response.status_code == 400
    assert set(response.json()["fields"]) == {field}
    assert "UTC" in response.json()["fields"][field][0]


@pytest.mark.parametrize("after, before", [
    ("2025-01-02T00:00:00Z", "2025-01-01T00:00:00Z"),
    ("2025-01-01T00:30:00-01:00", "2025-01-01T01:00:00Z"),  # 01:30 UTC: later, though its clock reads earlier
])
def test_list_orders_created_after_later_than_created_before_is_400_naming_both(svc_client, strategy, after, before):
    # Arrange
    OrderFactory(strategy=strategy)
    # Act: an inverted range was a 200 with no orders, a client's bug read as "no orders"
    response = svc_client.get("/api/orders", {"created_after": after, "created_before": before})
    # Assert
    assert response.status_code == 400, response.json()
    fields = response.json()["fields"]
    assert set(fields) == {"created_after", "created_before"}
    assert "created_before" in fields["created_after"][0] and "created_after" in fields["created_before"][0]


def test_list_orders_created_after_equal_to_created_before_is_200(svc_client, strategy):
    # Arrange
    OrderFactory(strategy=strategy)
    # Act: the same instant, spelled in two offsets
    response = svc_client.get("/api/orders", {"created_after": "2025-01-01T01:00:00+01:00",
                                              "created_before": "2025-01-01T00:00:00Z"})
    # Assert: a valid (empty: after is inclusive, before exclusive) range
    assert response.status_code == 200, response.json()
    assert response.json()["results"] == []


@pytest.mark.parametrize("param", ["instrument_key", "operation_id", "order_id", "statuses", "created_at__gte",
                                   "ordering"])
def test_list_orders_unknown_parameter_is_400_naming_it(svc_client, strategy, param):
    # Arrange: two orders, on two instruments
    OrderFactory(strategy=strategy)
    OrderFactory(strategy=strategy, instrument_key="BINANCE-FUTURES:PERPETUAL:BTC-USDT@LIN")
    # Act: a parameter that is not a filter was ignored: "instrument_key=" (the order field's name; the
    # filter is "instrument") listed the orders of every instrument, for a client to cancel them all
    response = svc_client.get("/api/orders", {param: "BINANCE-SPOT:SPOT_PAIR:BTC-USDT", "side": "BUY"})
    # Assert
    assert response.status_code == 400
    assert list(response.json()["fields"]) == [param]
    assert "instrument" in response.json()["fields"][param][0]  # the reason lists the parameters there are


def test_list_orders_pagination_and_filter_parameters_together_are_taken(svc_client, strategy):
    # Arrange
    OrderFactory(strategy=strategy)
    # Act
    response = svc_client.get("/api/orders", {"status": "ROUTED", "venue": "BINANCE-SPOT", "q": "x", "side": "BUY",
                                              "instrument": "BINANCE-SPOT:SPOT_PAIR:BTC-USDT", "strategy": "alpha",
                                              "created_after": "2020-01-01T00:00:00Z", "page_size": "5",
                                              "created_before": "2099-01-01T00:00:00Z"})
    # Assert
    assert response.status_code == 200, response.json()


@pytest.mark.parametrize("field", ["created_after", "created_before", "side"])
def test_list_orders_empty_value_of_a_typed_filter_is_400_naming_it(svc_client, strategy, field):
    # Arrange
    OrderFactory(strategy=strategy)
    # Act: "created_before=" was read as no bound at all
    response = svc_client.get(f"/api/orders?{field}=")
    # Assert
    assert response.status_code == 400
    assert "must not be empty" in response.json()["fields"][field][0]


@pytest.mark.parametrize("instrument", ["50%s off", "100%", "%(x)d", "BINANCE-SPOT:SPOT_PAIR:BTC%USDT"])
def test_list_orders_instrument_filter_with_percent_sign_is_400_naming_it(svc_client, instrument):
    # Act: django-filter %-formats a validator's message, and the reason quotes the key
    response = svc_client.get("/api/orders", {"instrument": instrument})
    # Assert
    assert response.status_code == 400
    reasons = response.json()["fields"]["instrument"]
    assert len(reasons) == 1 and "%" in reasons[0]  # the offending part quoted as sent


@pytest.mark.parametrize(("length", "status"), [(128, 200), (129, 400)])
def test_list_orders_search_at_and_beyond_its_documented_maximum_length(svc_client, strategy, length, status):
    # Act: the schema's maxLength of q is 128
    response = svc_client.get("/api/orders", {"q": "x" * length})
    # Assert
    assert response.status_code == status
    if status == 400:
        assert list(response.json()["fields"]) == ["q"]

@pytest.mark.parametrize("page_size", ["null", "abc", "0", "-5", "2.5", "", "1_0", "\u0665"])
def test_list_orders_bad_page_size_is_400_naming_it(svc_client, strategy, page_size):
    # Arrange
    OrderFactory(strategy=strategy)
    # Act
    response = svc_client.get("/api/orders", {"page_size": page_size})
    # Assert: refused, not silently replaced by the default page size
    assert response.status_code == 400
    assert "page_size" in response.json()["fields"]


def test_list_orders_page_size_above_maximum_gives_maximum_page(svc_client, strategy):
    # Arrange
    OrderFactory.create_batch(3, strategy=strategy)
    # Act
    response = svc_client.get("/api/orders", {"page_size": "100000"})
    # Assert: documented ("at most 500 a page"): taken as 500
    assert response.status_code == 200 and len(_ids(response)) == 3


def test_list_orders_cursor_pages_newest_first_without_overlap(svc_client, strategy):
    # Arrange: 5 orders, two sharing a timestamp (ties broken by id)
    now = timezone.now()
    orders = [OrderFactory(strategy=strategy) for _ in range(5)]
    for i, order in enumerate(orders):
        Order.objects.filter(pk=order.pk).update(created_at=now - timedelta(seconds=min(i, 3)))
    expected = [str(o.pk) for o in Order.objects.order_by("-created_at", "-id")]
    # Act
    seen, url, params = [], "/api/orders", {"page_size": 2}
    while url:
        body = svc_client.get(url, params).json()
        seen.extend(o["order_id"] for o in body["results"])
        url, params = body["next"], None
        if url:
            parsed = urlparse(url)
            url, params = parsed.path, {k: v[0] for k, v in parse_qs(parsed.query).items()}
    # Assert
    assert seen == expected


@pytest.mark.parametrize("cursor", [
    base64.b64encode(b"p=not-a-time").decode(),
    base64.b64encode(b"r=1&p=2025-13-45 99:00:00").decode(),
    base64.b64encode(b"p=2025-01-01\x00").decode(),
    base64.b64encode(b"p=2025-01-01T00:00:00+00:00|not-a-uuid").decode(),
    "%%%not-base64",
])
def test_list_orders_tampered_cursor_is_400_naming_cursor(svc_client, strategy, cursor):
    # Arrange
    OrderFactory(strategy=strategy)
    # Act
    response = svc_client.get("/api/orders", {"cursor": cursor})
    # Assert
    assert response.status_code == 400
    assert "cursor" in response.json()["fields"]


def _follow(client, url):
    parsed = urlparse(url)
    return client.get(parsed.path, {k: v[0] for k, v in parse_qs(parsed.query).items()}).json()


@pytest.mark.parametrize("page_size", [2, 3])
def test_list_orders_cursor_pages_back_over_shared_created_at_without_skipping(svc_client, strategy, page_size):
    # Arrange: 7 orders, four sharing one timestamp and two another
    now = timezone.now()
    for offset_secs in (0, 1, 1, 1, 1, 2, 2):
        order = OrderFactory(strategy=strategy)
        Order.objects.filter(pk=order.pk).update(created_at=now - timedelta(seconds=offset_secs))
    expected = [str(o.pk) for o in Order.objects.order_by("-created_at", "-id")]
    body = svc_client.get("/api/orders", {"page_size": page_size}).json()
    while body["next"]:
        body = _follow(svc_client, body["next"])
    # Act: page back from the last page to the first
    pages = [[o["order_id"] for o in body["results"]]]
    while body["previous"]:
        body = _follow(svc_client, body["previous"])
        pages.insert(0, [o["order_id"] for o in body["results"]])
    # Assert
    assert [order_id for page in pages for order_id in page] == expected
