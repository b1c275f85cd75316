from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from odum_live.fields import DECIMAL_INPUT_REASONS, DECIMAL_INTEGER_MAX
from orders.api.serializers import SERVER_OWNED_FIELDS, OrderOutputSerializer
from orders.algorithms import format_decimal
from orders.models import Order, OrderEvent
from risk.models import RiskLimit, Scope
from tests.orders.conftest import client_for
from tests.orders.factories import StrategyFactory, UserFactory, order_body
from tests.risk.factories import RiskLimitFactory
from tests.venues.factories import InstrumentFactory, VenueFactory
from venues.models import Venue

pytestmark = pytest.mark.django_db
URL = "/api/orders"


def test_post_order_new_order_is_201_with_the_order(tradable, svc_client):
    # Act
    response = svc_client.post(URL, order_body(operation_id="op-1"), format="json")
    # Assert
    assert response.status_code == 201, response.json()
    body = response.json()
    order = Order.objects.get()
    assert body["order_id"] == str(order.pk) and body["operation_id"] == "op-1"
    assert body["client_order_id"] == order.client_order_id
    assert body["status"] == "ROUTED" and body["venue"] == "BINANCE-SPOT"
    assert body["quantity"] == "0.01" and body["price"] == "40000" and body["filled_quantity"] == "0"
    assert body["fills"] == [] and body["avg_fill_price"] is None
    assert body["risk_result"]["passed"] is True and body["routing_decision"]["routed"] is True
    assert body["strategy_id"] == "alpha" and body["created_by"] == "svc-alpha"
    assert response["Location"] == f"/api/orders/{order.pk}"
    assert set(body) == set(OrderOutputSerializer().fields)


def test_post_order_idempotency_matrix(tradable, svc_client, django_capture_on_commit_callbacks):
    # Arrange
    body = order_body(operation_id="op-idem")
    # Act 1: new
    with django_capture_on_commit_callbacks(execute=True) as first_callbacks:
        first = svc_client.post(URL, body, format="json")
    events_after_first = OrderEvent.objects.count()
    # Act 2: same body (decimals spelled differently: same meaning)
    with django_capture_on_commit_callbacks(execute=True) as second_callbacks:
        second = svc_client.post(URL, {**body, "quantity": "0.0100"}, format="json")
    # Act 3: different body
    third = svc_client.post(URL, {**body, "quantity": "0.02"}, format="json")
    # Assert
    assert first.status_code == 201 and len(first_callbacks) == 2  # publication to the order stream, dispatch
    assert second.status_code == 200 and second_callbacks == []
    assert second.json()["order_id"] == first.json()["order_id"]
    assert OrderEvent.objects.count() == events_after_first  # nothing re-sent, nothing recorded
    assert third.status_code == 409
    error = third.json()
    assert error["error"] == "idempotency_conflict" and error["operation_id"] == "op-idem"
    assert error["order_id"] == first.json()["order_id"]
    assert "different request body" in error["detail"]
    assert Order.objects.count() == 1


def test_post_order_denied_by_risk_is_201_with_the_reason(tradable, svc_client, strategy):
    RiskLimitFactory(scope=Scope.STRATEGY, scope_key=strategy.id, kind=RiskLimit.Kind.MAX_ORDER_QUANTITY,
                     value=Decimal("0.001"))
    response = svc_client.post(URL, order_body(), format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "DENIED" and body["risk_result"]["passed"] is False
    assert "0.001" in body["rejection_reason"]
    assert Order.objects.get().status == "DENIED"


def test_post_order_named_external_sdk_venue_without_adapter_is_denied_naming_the_adapter(db, svc_client):
    # Arrange: an enabled Deribit venue (no external SDK adapter ships in this release): the trading node
    # does not host it, so it has no market data either
    venue = VenueFactory(code="DERIBIT", kind=Venue.Kind.EXTERNAL_SDK, adapter="deribit")
    key = "DERIBIT:PERPETUAL:BTC-USD@INV"
    InstrumentFactory(venue=venue, instrument_key=key, nautilus_instrument_id="BTC-PERPETUAL.DERIBIT",
                      venue_symbol="BTC-PERPETUAL", base_currency="BTC", quote_currency="USD",
                      settlement_currency="BTC", tick_size=Decimal("0.5"), lot_size=Decimal("10"),
                      min_quantity=Decimal("10"), min_notional=None, is_inverse=True)
    RiskLimitFactory(kind=RiskLimit.Kind.PRICE_COLLAR_BPS, value=Decimal("500"))  # needs a reference price
    # Act
    response = svc_client.post(URL, order_body(instrument_key=key, quantity="10", price="40000"), format="json")
    # Assert: denied for the venue's missing adapter, not for "missing market data"
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "DENIED" and body["venue"] == ""
    assert "venue DERIBIT: adapter 'deribit' (EXTERNAL_SDK) is not available in this release" \
        in body["rejection_reason"]
    assert "market data" not in body["rejection_reason"]
    assert body["routing_decision"]["routed"] is False


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"instrument_key": "binance:SPOT_PAIR:BTC-USDT"}, "instrument_key"),
        ({"instrument_key": "BINANCE-SPOT:PERPETUAL:BTC-USDT"}, "instrument_key"),
        ({"quantity": "0"}, "quantity"),
        ({"quantity": "-1"}, "quantity"),
        ({"quantity": 0.01}, "quantity"),
        ({"price": 40000.5}, "price"),
        ({"quantity": "abc"}, "quantity"),
        ({"quantity": "NaN"}, "quantity"),
        ({"quantity": "0.0000000000000000001"}, "quantity"),
        ({"price": None}, "price"),
        ({"order_type": "MARKET"}, "price"),
        ({"time_in_force": "GTD"}, "expire_time"),
        ({"time_in_force": "GTD", "expire_time": "2000-01-01T00:00:00Z"}, "expire_time"),
        ({"expire_time": "2099-01-01T00:00:00Z"}, "expire_time"),
        ({"side": "HOLD"}, "side"),
        ({"order_type": "STOP"}, "order_type"),
        ({"exec_algorithm": "SNIPER"}, "exec_algorithm"),
        ({"operation_id": None}, "operation_id"),
        ({"operation_id": "has space"}, "operation_id"),
        ({"metadata": ["not", "an", "object"]}, "metadata"),
        ({"max_slippage": "2"}, "max_slippage"),
        ({"exec_algorithm": "ICEBERG", "exec_algorithm_params": {"display_qty": "0.01"}}, "exec_algorithm_params"),
        ({"exec_algorithm": "ICEBERG", "order_type": "MARKET", "price": None,
          "exec_algorithm_params": {"display_qty": "0.001"}}, "order_type"),
        ({"exec_algorithm": "TWAP", "exec_algorithm_params": {"horizon_secs": 60}}, "exec_algorithm_params"),
        ({"exec_algorithm": "VWAP", "exec_algorithm_params": {"horizon_secs": 60, "interval_secs": 10,
                                                              "max_participation": "1.5"}}, "exec_algorithm_params"),
    ],
)
def test_post_order_bad_field_is_400_naming_the_field(tradable, svc_client, changes, field):
    # Act
    response = svc_client.post(URL, order_body(**changes), format="json")
    # Assert
    assert response.status_code == 400, response.json()
    body = response.json()
    assert body["error"] == "invalid"
    assert field in body["fields"], body
    assert Order.objects.count() == 0


def test_post_order_malformed_key_message_names_the_part(tradable, svc_client):
    response = svc_client.post(URL, order_body(instrument_key="x:SPOT_PAIR:BTC-USDT"), format="json")
    assert response.json()["fields"]["instrument_key"][0].startswith("venue 'x': ")


def test_post_order_bad_algorithm_param_is_named(tradable, svc_client):
    response = svc_client.post(URL, order_body(exec_algorithm="TWAP",
                                               exec_algorithm_params={"horizon_secs": 60, "interval_secs": 120}),
                               format="json")
    assert "interval_secs" in response.json()["fields"]["exec_algorithm_params"]


def test_post_order_float_message_explains_why(tradable, svc_client):
    response = svc_client.post(URL, order_body(quantity=0.1), format="json")
    assert "binary floats" in response.json()["fields"]["quantity"][0]


def test_post_order_integer_quantity_is_accepted(tradable, svc_client):
    response = svc_client.post(URL, order_body(quantity=1, price=40000), format="json")
    assert response.status_code == 201 and response.json()["quantity"] == "1"


@pytest.mark.parametrize(("value", "status"), [(DECIMAL_INTEGER_MAX, 201), (DECIMAL_INTEGER_MAX + 1, 400)])
def test_post_order_integer_quantity_at_and_beyond_the_documented_maximum(tradable, svc_client, value, status):
    # Arrange: a MARKET order (no price: quantity × price has its own bound) at the schema's integer maximum and
    # one beyond it
    # Act
    response = svc_client.post(URL, order_body(order_type="MARKET", price=None, quantity=value), format="json")
    # Assert: inside the bound an order (risk may deny it: 201 either way), beyond it a 400 naming quantity
    assert response.status_code == status, response.json()
    if status == 400:
        assert response.json()["fields"] == {"quantity": [DECIMAL_INPUT_REASONS["integer_digits"]]}


def test_post_order_market_twap_is_accepted_with_normalised_params(tradable, svc_client):
    response = svc_client.post(URL, order_body(order_type="MARKET", price=None, exec_algorithm="TWAP",
                                               exec_algorithm_params={"horizon_secs": 60, "interval_secs": 20}),
                               format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["exec_algorithm_params"] == {"horizon_secs": 60, "interval_secs": 20}


def test_post_order_limit_gtd_twap_is_accepted(tradable, svc_client):
    expire = (timezone.now() + timedelta(hours=1)).isoformat()
    response = svc_client.post(URL, order_body(time_in_force="GTD", expire_time=expire, exec_algorithm="TWAP",
                                               exec_algorithm_params={"horizon_secs": 60, "interval_secs": 20}),
                               format="json")
    assert response.status_code == 201, response.json()


def test_post_order_limit_ioc_twap_is_400_naming_time_in_force(tradable, svc_client):
    response = svc_client.post(URL, order_body(time_in_force="IOC", exec_algorithm="TWAP",
                                               exec_algorithm_params={"horizon_secs": 60, "interval_secs": 20}),
                               format="json")
    assert response.status_code == 400
    assert "must rest" in str(response.json()["fields"]["time_in_force"])
    assert Order.objects.count() == 0


@pytest.mark.parametrize("field", sorted(SERVER_OWNED_FIELDS))
def test_post_order_server_owned_field_is_400_naming_it(tradable, svc_client, field):
    # Act
    response = svc_client.post(URL, {**order_body(), field: "x"}, format="json")
    # Assert
    assert response.status_code == 400
    assert field in response.json()["fields"]
    assert Order.objects.count() == 0


@pytest.mark.parametrize("field", ["status", "filled_quantity", "venue_order_id", "fills", "risk_result",
                                   "client_order_id"])
def test_post_order_mass_assignment_probe_is_refused_with_reason(tradable, svc_client, field):
    response = svc_client.post(URL, {**order_body(), field: "FILLED"}, format="json")
    assert response.json()["fields"][field] == ["is set by the server and cannot be supplied by a client"]


def test_post_order_unknown_field_is_400_naming_it(tradable, svc_client):
    response = svc_client.post(URL, {**order_body(), "leverage": "100"}, format="json")
    assert response.status_code == 400
    assert response.json()["fields"] == {"leverage": ["is not a field of the order message"]}


def test_post_order_body_not_an_object_is_400(svc_client):
    response = svc_client.post(URL, ["not", "an", "object"], format="json")
    assert response.status_code == 400


@pytest.mark.parametrize("fmt", ["multipart", "form"])
def test_post_order_form_encoded_body_is_415_and_records_nothing(tradable, svc_client, fmt):
    # Arrange: a form can spell neither null nor a JSON integer; the API's contract is JSON
    body = {k: v for k, v in order_body().items() if v is not None}
    content_type = {"form": "application/x-www-form-urlencoded"}.get(fmt)
    # Act
    if content_type:
        from urllib.parse import urlencode

        response = svc_client.post(URL, urlencode(body), content_type=content_type)
    else:
        response = svc_client.post(URL, body, format=fmt)
    # Assert
    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"
    assert Order.objects.count() == 0


def _json_bytes(body: dict, encoding: str) -> bytes:
    # The body as JSON text in ``encoding``, non-ASCII characters unescaped.
    import json

    return json.dumps(body, ensure_ascii=False).encode(encoding)


@pytest.mark.parametrize("charset, encoding", [
    ("latin-1", "latin-1"), ("ISO-8859-1", "latin-1"), ("utf-16", "utf-16"), ("windows-1252", "cp1252"),
    ("utf8", "utf-8"), ("no-such-charset", "utf-8"),
])
def test_post_order_body_declaring_a_charset_other_than_utf8_is_415_naming_it_and_records_nothing(
        tradable, svc_client, charset, encoding):
    # Arrange: "café" in latin-1 was decoded as latin-1 and stored; JSON is UTF-8 (RFC 8259 §8.1)
    body = _json_bytes(order_body(metadata={"note": "café"}), encoding)
    # Act
    response = svc_client.post(URL, body, content_type=f"application/json; charset={charset}")
    # Assert: the declared charset and what is accepted are named
    assert response.status_code == 415, response.json()
    assert response.json()["error"] == "unsupported_media_type"
    assert f"charset {charset!r}" in response.json()["detail"] and "utf-8" in response.json()["detail"]
    assert Order.objects.count() == 0


@pytest.mark.parametrize("content_type", [
    "application/json", "application/json; charset=utf-8", "application/json; charset=UTF-8",
    "application/json;charset=Utf-8", 'application/json; charset="utf-8"',
])
def test_post_order_utf8_body_with_or_without_its_charset_is_201_with_the_text_intact(
        tradable, svc_client, content_type):
    # Act
    response = svc_client.post(URL, _json_bytes(order_body(metadata={"note": "café €"}), "utf-8"),
                               content_type=content_type)
    # Assert
    assert response.status_code == 201, response.json()
    assert Order.objects.get().metadata == {"note": "café €"}


def test_post_order_body_not_utf8_is_400_parse_error_and_records_nothing(tradable, svc_client):
    # Act: latin-1 bytes sent as (undeclared, so UTF-8) JSON
    response = svc_client.post(URL, _json_bytes(order_body(metadata={"note": "café"}), "latin-1"),
                               content_type="application/json")
    # Assert
    assert response.status_code == 400, response.json()
    assert response.json()["error"] == "parse_error" and "UTF-8" in response.json()["detail"]
    assert Order.objects.count() == 0


@pytest.mark.parametrize("field, value", [
    ("operation_id", 0), ("operation_id", 1.00000000000000001), ("instrument_key", 5), ("strategy_id", 7),
    ("atomic_group_id", 0), ("tx_hash", 12), ("selection", 2.5), ("source_venue", 1),
])
def test_post_order_number_for_a_text_field_is_400_naming_it(tradable, svc_client, field, value):
    # Arrange: DRF turns a number into its str() ("1.0" for 1.00000000000000001: another client
    # key would be the same operation_id)
    body = {**order_body(), field: value}
    # Act
    response = svc_client.post(URL, body, format="json")
    # Assert
    assert response.status_code == 400
    assert "must be a JSON string" in response.json()["fields"][field][0]
    assert Order.objects.count() == 0


@pytest.mark.parametrize("field, value", [
    ("metadata", {"note": "x" * 17_000}),
    ("expected_deltas", {f"TOKEN{i}": "1" for i in range(2_000)}),
])
def test_post_order_json_field_beyond_16_kib_is_400_naming_it(tradable, svc_client, field, value):
    # Act: expected_deltas took any size (100,000 assets: a megabyte on the order row, in every list page)
    response = svc_client.post(URL, {**order_body(), field: value}, format="json")
    # Assert: both free JSON fields are held to the same bound
    assert response.status_code == 400, response.json()
    assert response.json()["fields"][field] == ["must be at most 16384 bytes of JSON"]
    assert Order.objects.count() == 0


def _nested(depth: int) -> dict:
    # A JSON object nested ``depth`` levels deep: {"a": {"a": ... {"a": 1}}}.
    value: object = 1
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize("field", ["metadata", "expected_deltas", "exec_algorithm_params"])
@pytest.mark.parametrize("depth", [65, 500])
def test_post_order_json_field_nested_too_deeply_is_400_naming_it(tradable, svc_client, field, depth):
    # Act: 500 levels overflowed the interpreter's stack in the fingerprint (a 500)
    response = svc_client.post(URL, {**order_body(), field: _nested(depth)}, format="json")
    # Assert
    assert response.status_code == 400
    assert "at most 64 levels" in response.json()["fields"][field][0]
    assert Order.objects.count() == 0


def test_post_order_metadata_nested_64_levels_is_accepted(tradable, svc_client):
    # Act
    response = svc_client.post(URL, {**order_body(), "metadata": _nested(64)}, format="json")
    # Assert
    assert response.status_code == 201
    assert Order.objects.get().metadata == _nested(64)


def test_post_order_body_nested_beyond_the_json_parser_is_400_parse_error(tradable, svc_client):
    # Act
    response = svc_client.post(URL, "[" * 100_000 + "]" * 100_000, content_type="application/json")
    # Assert
    assert response.status_code == 400
    assert response.json()["error"] == "parse_error" and "nested" in response.json()["detail"]


@pytest.mark.parametrize("raw", [
    '{"operation_id": "op-dup", "instrument_key": "BINANCE-SPOT:SPOT_PAIR:BTC-USDT", "side": "BUY", '
    '"order_type": "LIMIT", "price": "40000", "quantity": "0.01", "quantity": "10"}',
    '{"operation_id": "op-dup", "instrument_key": "BINANCE-SPOT:SPOT_PAIR:BTC-USDT", "side": "BUY", '
    '"order_type": "LIMIT", "price": "40000", "quantity": "0.01", "metadata": {"quantity": 1, "quantity": 2}}',
])
def test_post_order_duplicate_key_is_400_parse_error_naming_it(tradable, svc_client, raw):
    # Act: Python's json kept the last "quantity"; a proxy, log or signer that reads the first saw another order
    response = svc_client.post(URL, raw, content_type="application/json")
    # Assert (RFC 8259 §4: a receiver's reading of duplicate names is unpredictable)
    assert response.status_code == 400, response.json()
    assert response.json()["error"] == "parse_error" and "duplicate key 'quantity'" in response.json()["detail"]
    assert Order.objects.count() == 0


def test_post_order_unauthenticated_is_401(client, tradable):
    response = client.post(URL, order_body(), content_type="application/json")
    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"


def test_post_order_bad_token_is_401(tradable):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")
    assert client.post(URL, order_body(), format="json").status_code == 401


def test_post_order_service_token_naming_another_strategy_is_403(tradable, svc_client, other_strategy):
    response = svc_client.post(URL, order_body(strategy_id="beta"), format="json")
    assert response.status_code == 403
    assert response.json()["strategy_id"] == "beta"


def test_post_order_person_without_strategy_id_is_400(tradable, person):
    response = client_for(person).post(URL, order_body(), format="json")
    assert response.status_code == 400 and "strategy_id" in response.json()["fields"]


def test_post_order_person_unknown_strategy_is_400_on_strategy_id(tradable, person):
    response = client_for(person).post(URL, order_body(strategy_id="ghost"), format="json")
    assert response.status_code == 400
    assert response.json()["fields"]["strategy_id"] == ["unknown strategy 'ghost'"]


def test_post_order_person_not_a_trader_is_403_naming_the_strategy(tradable, strategy, person):
    response = client_for(person).post(URL, order_body(strategy_id="alpha"), format="json")
    assert response.status_code == 403
    body = response.json()
    assert body["error"] == "strategy_forbidden" and body["strategy_id"] == "alpha" and "'alpha'" in body["detail"]


def _grant(user, *codenames):
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="orders", codename__in=codenames))
    return user


def test_post_order_listed_trader_with_add_order_submits(tradable, strategy, person):
    strategy.traders.add(_grant(person, "add_order"))
    response = client_for(person).post(URL, order_body(strategy_id="alpha"), format="json")
    assert response.status_code == 201
    assert response.json()["created_by"] == person.username


def test_post_order_listed_person_without_add_order_is_403_naming_the_permission(tradable, strategy, person):
    # Arrange: on the strategy's traders, but not allowed to submit (as on the order ticket)
    strategy.traders.add(person)
    # Act
    response = client_for(person).post(URL, order_body(strategy_id="alpha"), format="json")
    # Assert
    assert response.status_code == 403
    body = response.json()
    assert (body["error"], body["strategy_id"]) == ("permission_denied", "alpha")
    assert "orders.add_order" in body["detail"]
    assert not Order.objects.exists()


def test_post_order_trade_any_permission_submits_for_any_strategy(tradable, strategy):
    user = _grant(UserFactory(username="desk"), "trade_any_strategy", "add_order")
    response = client_for(user).post(URL, order_body(strategy_id="alpha"), format="json")
    assert response.status_code == 201


def test_post_order_trade_any_permission_without_add_order_is_403(tradable, strategy):
    # Arrange: the risk manager's rights (every strategy, but no orders.add_order)
    user = _grant(UserFactory(username="desk"), "trade_any_strategy")
    # Act
    response = client_for(user).post(URL, order_body(strategy_id="alpha"), format="json")
    # Assert
    assert response.status_code == 403 and "orders.add_order" in response.json()["detail"]
    assert not Order.objects.exists()


def test_post_order_session_user_submits(tradable, strategy, person):
    from rest_framework.test import APIClient

    strategy.traders.add(_grant(person, "add_order"))
    client = APIClient()
    client.force_login(person)
    assert client.post(URL, order_body(strategy_id="alpha"), format="json").status_code == 201


def test_post_order_disabled_strategy_is_422_with_reason(tradable):
    strategy = StrategyFactory(id="off", enabled=False)
    response = client_for(strategy.service_account).post(URL, order_body(), format="json")
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "strategy_disabled" and body["strategy_id"] == "off" and "disabled" in body["detail"]


# -- values PostgreSQL cannot store: a 400 naming the field on every database, never a 500 at INSERT ---------------
@pytest.mark.parametrize(
    "changes, field, reason",
    [
        ({"atomic_group_id": "g1", "sequence_in_group": 2**31}, "sequence_in_group", "32-bit integer"),
        ({"metadata": {"note": "a\u0000b"}}, "metadata", "NUL character"),
        ({"metadata": {"legs": [{"venue\u0000": "X"}]}}, "metadata", "NUL character"),
        ({"expected_deltas": {"BTC\u0000": "1"}}, "expected_deltas", "NUL character"),
        ({"exec_algorithm": "TWAP", "exec_algorithm_params": {"horizon_secs": 60, "interval_secs": 10,
                                                              "note": "\u0000"}}, "exec_algorithm_params",
         "NUL character"),
    ],
)
def test_post_order_value_the_database_cannot_store_is_400_naming_the_field(tradable, svc_client, changes, field,
                                                                            reason):
    # Arrange
    svc_client.raise_request_exception = False
    # Act
    response = svc_client.post(URL, order_body(**changes), format="json")
    # Assert
    assert response.status_code == 400, response.json()
    body = response.json()
    assert body["error"] == "invalid"
    assert reason in body["fields"][field][0], body
    assert Order.objects.count() == 0


@pytest.mark.parametrize("field", ["operation_id", "strategy_id", "instrument_key", "tx_hash", "selection"])
def test_post_order_text_field_with_nul_is_400_with_the_project_reason(tradable, svc_client, field):
    # Act
    response = svc_client.post(URL, order_body(**{field: "a\x00b"}), format="json")
    # Assert: odum_live.fields.NUL_REASON under the field, not DRF's "Null characters are not allowed."
    assert response.status_code == 400
    assert response.json()["fields"] == {field: ["must not contain the NUL character (\\u0000)"]}
    assert Order.objects.count() == 0


@pytest.mark.parametrize(("field", "value"), [
    ("quantity", " 0.01"), ("quantity", "0.01 "), ("quantity", "0.01\n"), ("price", "\t40000"), ("price", " 40000 "),
    ("max_slippage", " 0.005"),
])
def test_post_order_decimal_string_with_edge_whitespace_is_400_naming_the_field(tradable, svc_client, field, value):
    # Act: the schema's pattern for a decimal string allows no whitespace, so a generated client refuses it too
    response = svc_client.post(URL, order_body(**{field: value}), format="json")
    # Assert
    assert response.status_code == 400
    assert response.json()["fields"] == {field: ["must not have leading or trailing whitespace"]}
    assert Order.objects.count() == 0


#: Decimals a top-level field refuses (odum_live.fields.decimal_input), with the code of the reason.
REFUSED_DECIMALS = [
    (" 0.001", "whitespace"), ("0.001 ", "whitespace"), ("0.001\n", "whitespace"), ("1e-3", "format"),
    ("+0.001", "format"), ("0_001", "format"), ("NaN", "format"), ("Infinity", "format"), ("\u0660.001", "format"),
    ("0." + "0" * 18 + "1", "format"), ("1" * 19, "format"), ("", "format"), (0.001, "float"), (True, "type"),
    (DECIMAL_INTEGER_MAX + 1, "integer_digits"), (-DECIMAL_INTEGER_MAX - 1, "integer_digits"),
]
_VWAP = {"horizon_secs": 180, "interval_secs": 60, "max_participation": "0.5"}


@pytest.mark.parametrize(("value", "code"), REFUSED_DECIMALS)
@pytest.mark.parametrize(("changes", "where"), [
    (lambda v: {"exec_algorithm": "ICEBERG", "exec_algorithm_params": {"display_qty": v}}, "display_qty"),
    (lambda v: {"exec_algorithm": "VWAP", "exec_algorithm_params": {**_VWAP, "max_participation": v}},
     "max_participation"),
    (lambda v: {"exec_algorithm": "VWAP", "exec_algorithm_params": {**_VWAP, "volume_profile": ["1", v, "1"]}},
     "volume_profile"),
], ids=["display_qty", "max_participation", "volume_profile"])
def test_post_order_algorithm_decimal_param_outside_the_decimal_rule_is_400_naming_the_param(
        tradable, svc_client, value, code, changes, where):
    # Act: what a top-level decimal refuses (the schema's pattern / integer bounds) is refused inside the params
    response = svc_client.post(URL, order_body(**changes(value)), format="json")
    # Assert: the same reason, under exec_algorithm_params → the parameter (a profile names the item)
    assert response.status_code == 400, response.json()
    reason = DECIMAL_INPUT_REASONS[code]
    expected = f"item 1 {reason}" if where == "volume_profile" else reason
    assert response.json()["fields"] == {"exec_algorithm_params": {where: [expected]}}
    assert Order.objects.count() == 0


@pytest.mark.parametrize(("value", "code"), REFUSED_DECIMALS)
def test_post_order_expected_delta_outside_the_decimal_rule_is_400_naming_the_asset(tradable, svc_client, value,
                                                                                    code):
    # Act
    response = svc_client.post(URL, order_body(expected_deltas={"USDT": "-400", "BTC": value}), format="json")
    # Assert: the same reason as a top-level decimal, after the asset
    assert response.status_code == 400, response.json()
    assert response.json()["fields"] == {"expected_deltas": [f"BTC: {DECIMAL_INPUT_REASONS[code]}"]}
    assert Order.objects.count() == 0


@pytest.mark.parametrize("value", ["0.005", "-0.005", ".005", "5.", "0." + "0" * 17 + "1", 1, -1,
                                   DECIMAL_INTEGER_MAX, -DECIMAL_INTEGER_MAX, "9" * 18 + "." + "9" * 18])
def test_post_order_expected_delta_a_top_level_decimal_takes_is_accepted_normalised(tradable, svc_client, value):
    # Act
    response = svc_client.post(URL, order_body(expected_deltas={"BTC": value}), format="json")
    # Assert
    assert response.status_code == 201, response.json()
    assert response.json()["expected_deltas"] == {"BTC": format_decimal(Decimal(value))}


def test_post_order_algorithm_decimal_params_a_top_level_decimal_takes_are_accepted_normalised(tradable, svc_client):
    # Act
    iceberg = svc_client.post(URL, order_body(quantity="1", exec_algorithm="ICEBERG",
                                              exec_algorithm_params={"display_qty": ".10"}), format="json")
    vwap = svc_client.post(URL, order_body(exec_algorithm="VWAP", exec_algorithm_params={
        **_VWAP, "max_participation": 1, "volume_profile": ["0." + "0" * 17 + "1", 2, "3."]}), format="json")
    # Assert
    assert iceberg.status_code == 201 and vwap.status_code == 201, (iceberg.json(), vwap.json())
    assert iceberg.json()["exec_algorithm_params"] == {"display_qty": "0.1"}
    assert vwap.json()["exec_algorithm_params"] == {**_VWAP, "max_participation": "1",
                                                    "volume_profile": ["0." + "0" * 17 + "1", "2", "3"]}


@pytest.mark.parametrize("field", ["side", "order_type", "time_in_force", "exec_algorithm", "operation"])
def test_post_order_choice_field_with_nul_is_400_with_the_project_reason(tradable, svc_client, field):
    # Arrange: a valid choice with a NUL appended
    value = {"side": "BUY", "order_type": "LIMIT", "time_in_force": "GTC", "exec_algorithm": "NORMAL",
             "operation": "trade"}[field] + "\x00"
    # Act
    response = svc_client.post(URL, order_body(**{field: value}), format="json")
    # Assert: odum_live.fields.NUL_REASON under the field, as for the text fields, not "is not a valid choice"
    assert response.status_code == 400
    assert response.json()["fields"] == {field: ["must not contain the NUL character (\\u0000)"]}
    assert Order.objects.count() == 0


@pytest.mark.parametrize("value", ["5", " 5", "5.0", "\uff15", "\u0665", 5.0, True])
def test_post_order_sequence_in_group_not_a_json_integer_is_400_naming_it(tradable, svc_client, value):
    # Act: the schema's type is integer; DRF's IntegerField took "5", " 5", "5.0" and non-ASCII digits as 5
    response = svc_client.post(URL, order_body(atomic_group_id="g1", sequence_in_group=value), format="json")
    # Assert
    assert response.status_code == 400, response.json()
    assert list(response.json()["fields"]) == ["sequence_in_group"]
    assert Order.objects.count() == 0


def test_post_order_largest_storable_sequence_in_group_is_accepted(tradable, svc_client):
    # Act
    response = svc_client.post(URL, order_body(atomic_group_id="g1", sequence_in_group=2**31 - 1), format="json")
    # Assert
    assert response.status_code == 201, response.json()
    assert Order.objects.get().sequence_in_group == 2**31 - 1


def test_post_order_limit_value_beyond_storage_bound_is_400_naming_price(tradable, svc_client):
    # Arrange: no notional limit configured; 9000 BTC (the listing's maximum) at 1e15 USDT is worth 9e18,
    # more than the open-order totals' NUMERIC(36,18) can store
    svc_client.raise_request_exception = False
    # Act
    response = svc_client.post(URL, order_body(quantity="9000", price="1000000000000000"), format="json")
    # Assert
    assert response.status_code == 400, response.json()
    reason = response.json()["fields"]["price"][0]
    assert reason.startswith("quantity × price must be below 1000000000000000000 (quote currency), "
                             "got 9000000000000000000")
    assert Order.objects.count() == 0


def test_post_order_market_value_beyond_storage_bound_is_recorded_denied(listing, svc_client):
    # Arrange: no notional limit configured; the reference mid prices 9000 BTC at 9e18 USDT
    from tests.orders.conftest import publish_book

    publish_book(bid="1000000000000000", ask="1000000000000000")
    svc_client.raise_request_exception = False
    # Act
    response = svc_client.post(URL, order_body(quantity="9000", price=None, order_type="MARKET"), format="json")
    # Assert
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "DENIED"
    assert body["rejection_reason"].startswith(
        "max_order_notional: observed 9000000000000000000 USDT, limit below 1000000000000000000 USDT (SYSTEM)")
    assert Order.objects.get().status == "DENIED"


# -- GTD orders after their expire_time --------------------------------------------------------------------------
def test_post_order_gtd_replay_after_expire_time_is_200_with_the_stored_order(tradable, svc_client):
    # Arrange: a GTD order accepted while its expire_time was ahead
    expire = timezone.now() + timedelta(minutes=1)
    body = order_body(time_in_force="GTD", expire_time=expire.isoformat())
    first = svc_client.post(URL, body, format="json")
    assert first.status_code == 201, first.json()
    # Act: the client's retry (same operation_id, same body) arrives after the expire_time
    with mock.patch("orders.services.request.dj_timezone", **{"now.return_value": expire + timedelta(seconds=5)}):
        replay = svc_client.post(URL, body, format="json")
    # Assert
    assert replay.status_code == 200, replay.json()
    assert replay.json()["order_id"] == first.json()["order_id"]
    assert Order.objects.count() == 1


def test_post_order_gtd_changed_body_after_expire_time_is_400_naming_expire_time(tradable, svc_client):
    # Arrange
    expire = timezone.now() + timedelta(minutes=1)
    body = order_body(time_in_force="GTD", expire_time=expire.isoformat())
    svc_client.post(URL, body, format="json")
    # Act: same operation_id, another quantity, after the expire_time: not a replay, and it could not live
    with mock.patch("orders.services.request.dj_timezone", **{"now.return_value": expire + timedelta(seconds=5)}):
        response = svc_client.post(URL, {**body, "quantity": "0.02"}, format="json")
    # Assert
    assert response.status_code == 400, response.json()
    assert response.json()["fields"] == {"expire_time": [f"must be in the future, got {expire.isoformat()}"]}
    assert Order.objects.count() == 1



def test_post_order_replay_with_metadata_number_spelled_differently_is_200(tradable, svc_client):
    # Arrange
    body = order_body(metadata={"size": 1.0, "legs": [2.0, "3"]})
    first = svc_client.post(URL, body, format="json")
    # Act: the same numbers spelled as JSON integers
    replay = svc_client.post(URL, {**body, "metadata": {"size": 1, "legs": [2, "3"]}}, format="json")
    # Assert
    assert first.status_code == 201
    assert replay.status_code == 200, replay.json()
    assert replay.json()["order_id"] == first.json()["order_id"]


def test_post_order_replay_with_metadata_number_turned_string_is_409(tradable, svc_client):
    # Arrange
    body = order_body(metadata={"size": 1})
    svc_client.post(URL, body, format="json")
    # Act
    response = svc_client.post(URL, {**body, "metadata": {"size": "1"}}, format="json")
    # Assert: strings stay strings
    assert response.status_code == 409


def test_post_order_replay_with_a_different_body_is_409_naming_what_differs(tradable, svc_client):
    # Arrange
    body = order_body(operation_id="op-diff", metadata={"desk": "a"})
    svc_client.post(URL, body, format="json")
    # Act: another quantity and metadata, and the same price spelled differently (not a difference)
    response = svc_client.post(URL, {**body, "quantity": "0.02", "price": "40000.00", "metadata": {"desk": "b"}},
                               format="json")
    # Assert: the client learns which fields differ from the stored order, and the stored values
    assert response.status_code == 409
    assert response.json()["fields"] == {
        "metadata": ["differs from the stored order's"],
        "quantity": ["differs from the stored order's: 0.01"],
    }
    assert "metadata, quantity" in response.json()["detail"]


def test_post_order_replay_after_denial_with_a_different_body_is_409_naming_what_differs(tradable, svc_client,
                                                                                        strategy):
    # Arrange: the first was DENIED (recorded, terminal)
    RiskLimitFactory(scope=Scope.STRATEGY, scope_key=strategy.id, kind=RiskLimit.Kind.MAX_ORDER_QUANTITY,
                     value=Decimal("0.001"))
    body = order_body(operation_id="op-denied")
    assert svc_client.post(URL, body, format="json").json()["status"] == "DENIED"
    # Act: a smaller quantity that would pass is not a new order under the same operation_id
    response = svc_client.post(URL, {**body, "quantity": "0.001"}, format="json")
    # Assert
    assert response.status_code == 409
    assert response.json()["fields"] == {"quantity": ["differs from the stored order's: 0.01"]}
    assert Order.objects.count() == 1


@pytest.mark.parametrize("operation_id", ["op-1 ", " op-1", "op-1\n", "\top-1"])
def test_post_order_operation_id_with_edge_whitespace_is_400_naming_it(tradable, svc_client, operation_id):
    # Act: not trimmed into "op-1" (another idempotency key than the client sent)
    response = svc_client.post(URL, order_body(operation_id=operation_id), format="json")
    # Assert
    assert response.status_code == 400, response.json()
    assert response.json()["fields"]["operation_id"] == ["must be printable characters without whitespace"]
    assert Order.objects.count() == 0


def test_post_order_open_orders_beyond_the_storage_bound_is_201_denied_not_500(tradable, svc_client):
    # Arrange: an open order of 9000 BTC at 66666666666666 USDT (≈ 6 × 10**17, under the per-order bound)
    body = order_body(quantity="9000", price="66666666666666")
    assert svc_client.post(URL, body, format="json").json()["status"] == "ROUTED"

    # Act: the same again would take the open total to 1.2 × 10**18, more than NUMERIC(36,18) holds
    response = svc_client.post(URL, {**body, "operation_id": "op-overflow"}, format="json")

    # Assert
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "DENIED"
    assert response.json()["rejection_reason"].startswith("open_exposure: observed 1199999999999988000")
