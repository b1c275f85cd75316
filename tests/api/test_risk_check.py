from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from orders.models import Order, OrderEvent
from risk.models import RiskLimit, Scope, VelocityBucket
from tests.orders.conftest import client_for
from tests.orders.factories import order_body
from tests.positions.factories import PositionFactory
from tests.risk.factories import RiskLimitFactory

pytestmark = pytest.mark.django_db
URL = "/api/risk/check"


def _writes(queries):
    return [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))]


def test_risk_check_passing_order_returns_result_and_writes_nothing(tradable, svc_client, strategy):
    # Arrange
    RiskLimitFactory(scope=Scope.STRATEGY, scope_key=strategy.id, kind=RiskLimit.Kind.MAX_ORDERS_PER_MINUTE,
                     value=Decimal("1"))
    body = order_body()
    body.pop("operation_id")
    # Act
    with CaptureQueriesContext(connection) as ctx:
        responses = [svc_client.post(URL, body, format="json") for _ in range(3)]
    # Assert
    for response in responses:
        assert response.status_code == 200, response.json()
        data = response.json()
        assert data["passed"] is True and data["status"] == "ROUTED" and data["rejection_reason"] == ""
        assert data["risk_result"]["passed"] is True and data["routing_decision"]["venue"] == "BINANCE-SPOT"
    assert _writes(ctx.captured_queries) == []
    assert Order.objects.count() == OrderEvent.objects.count() == VelocityBucket.objects.count() == 0
    # the velocity budget (1 per minute) is untouched: a real order still passes
    assert svc_client.post("/api/orders", order_body(), format="json").json()["status"] == "ROUTED"


def test_risk_check_failing_order_names_check_and_limit(tradable, svc_client, strategy):
    RiskLimitFactory(scope=Scope.STRATEGY, scope_key=strategy.id, kind=RiskLimit.Kind.MAX_ORDER_QUANTITY,
                     value=Decimal("0.001"))
    data = svc_client.post(URL, order_body(), format="json").json()
    assert data["passed"] is False and data["status"] == "DENIED"
    assert "0.001" in data["rejection_reason"]
    assert Order.objects.count() == 0


def test_risk_check_passive_buy_limit_denied_by_the_position_valued_at_the_mid(tradable, svc_client, strategy):
    # Arrange: alpha is long 10 BTC (book 40000 / 40001); 100000 USD of position for alpha
    RiskLimitFactory(scope=Scope.STRATEGY, scope_key=strategy.id, kind=RiskLimit.Kind.MAX_POSITION_NOTIONAL,
                     value=Decimal("100000"))
    PositionFactory(strategy=strategy, quantity=Decimal("10"))

    # Act: a BUY 1 BTC resting at 10 USDT, far below the market
    data = svc_client.post(URL, order_body(quantity="1", price="10"), format="json").json()

    # Assert: 11 BTC at the 40000.5 mid, not at 10 USDT (110 USD would pass)
    assert data["passed"] is False and data["status"] == "DENIED"
    assert data["rejection_reason"] == (
        "position_limit: observed 440005.5 USD, limit 100000 USD (STRATEGY:alpha) — strategy position 10 + open BUY "
        "orders 0 + this order 1 = 11 BTC; projected position valued at the fresh mid 40000.5 USDT, above this "
        "order's limit price 10 (a position is worth the market, whatever a bid says)")


def test_risk_check_unroutable_order_reports_the_routers_reason(tradable, svc_client):
    data = svc_client.post(URL, order_body(instrument_key="BINANCE-SPOT:SPOT_PAIR:ETH-USDT"), format="json").json()
    assert data["passed"] is False and "not listed" in data["rejection_reason"]


def test_risk_check_bad_input_is_400(tradable, svc_client):
    response = svc_client.post(URL, order_body(quantity="-1"), format="json")
    assert response.status_code == 400 and "quantity" in response.json()["fields"]


def test_risk_check_operation_id_with_edge_whitespace_is_400_naming_it(tradable, svc_client):
    # Act: the same rule as POST /api/orders
    response = svc_client.post(URL, order_body(operation_id="op-1 "), format="json")
    # Assert
    assert response.status_code == 400
    assert response.json()["fields"]["operation_id"] == ["must be printable characters without whitespace"]


def test_risk_check_decimal_string_with_edge_whitespace_is_400_naming_the_field(tradable, svc_client):
    # Act: the same rule as POST /api/orders
    response = svc_client.post(URL, order_body(quantity="0.01 "), format="json")
    # Assert
    assert response.status_code == 400
    assert response.json()["fields"] == {"quantity": ["must not have leading or trailing whitespace"]}


def test_risk_check_choice_field_with_nul_is_400_with_the_project_reason(tradable, svc_client):
    # Act: the same rule as POST /api/orders
    response = svc_client.post(URL, order_body(side="SELL\x00"), format="json")
    # Assert
    assert response.status_code == 400
    assert response.json()["fields"] == {"side": ["must not contain the NUL character (\\u0000)"]}


def test_risk_check_listed_person_without_add_order_is_403_naming_the_permission(tradable, strategy, person):
    # Arrange: the what-if is part of submitting: the same policy applies
    strategy.traders.add(person)
    # Act
    response = client_for(person).post(URL, order_body(strategy_id="alpha"), format="json")
    # Assert
    assert response.status_code == 403 and "orders.add_order" in response.json()["detail"]


def test_risk_check_twap_slice_above_the_listing_max_quantity_is_denied_as_the_submit_denies_it(
        tradable, svc_client):
    # Arrange: a maximum order size of 0.01 BTC; 0.05 BTC over 2 slices plans 0.025 BTC children
    tradable.max_quantity = Decimal("0.01")
    tradable.save()
    body = order_body(quantity="0.05", exec_algorithm="TWAP",
                      exec_algorithm_params={"horizon_secs": 20, "interval_secs": 10})

    # Act
    checked = svc_client.post(URL, body, format="json").json()
    submitted = svc_client.post("/api/orders", body, format="json").json()

    # Assert: the what-if and the submit give the same denial, naming the slice
    assert checked["passed"] is False and checked["status"] == "DENIED"
    assert checked["rejection_reason"].startswith(
        "max_quantity: observed 0.025 BTC, limit 0.01 BTC — TWAP slice 0.025 BTC > listing max_quantity 0.01 BTC")
    assert submitted["status"] == "DENIED"
    assert submitted["rejection_reason"] == checked["rejection_reason"]


def test_risk_check_twap_parent_above_the_listing_max_quantity_passes_when_every_slice_fits(tradable, svc_client):
    # Arrange: 0.05 BTC over 5 slices of 0.01 BTC, the listing's maximum
    tradable.max_quantity = Decimal("0.01")
    tradable.save()
    body = order_body(quantity="0.05", exec_algorithm="TWAP",
                      exec_algorithm_params={"horizon_secs": 50, "interval_secs": 10})

    # Act
    data = svc_client.post(URL, body, format="json").json()

    # Assert
    assert data["passed"] is True, data["rejection_reason"]
    (check,) = [c for c in data["risk_result"]["checks"] if c["check"] == "max_quantity"]
    assert (check["passed"], check["observed"]) == (True, "0.01")
