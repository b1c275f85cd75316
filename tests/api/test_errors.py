"""Every answer of the order API is JSON, whatever the client accepts or sends (orders/api/errors.py,
orders/api/parsers.py, settings.REST_FRAMEWORK)."""

import json

import pytest

from orders.models import Order
from tests.orders.factories import OrderFactory, order_body

pytestmark = pytest.mark.django_db

#: What a browser sends (Chromium, Firefox): HTML first, anything at lower preference.
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.mark.parametrize(("method", "path", "expected"), [
    ("GET", "/api/orders?status=BOGUS", 400),
    ("POST", "/api/orders", 400),
    ("GET", "/api/orders/00000000-0000-0000-0000-000000000000", 404),
    ("DELETE", "/api/orders", 405),
    ("GET", "/api/positions/bad", 400),
    ("POST", "/api/risk/check", 400),
])
def test_api_error_asked_for_html_by_a_browser_is_json(svc_client, method, path, expected):
    # Act: DRF's browsable API rendered the error as an HTML page for a browser's Accept
    response = svc_client.generic(method, path, "{}" if method == "POST" else "", content_type="application/json",
                                  HTTP_ACCEPT=BROWSER_ACCEPT)
    # Assert
    assert response.status_code == expected
    assert response["Content-Type"] == "application/json"
    assert set(response.json()) >= {"error", "detail"}


def test_api_list_asked_for_html_by_a_browser_is_json(svc_client, strategy):
    # Arrange
    order = OrderFactory(strategy=strategy)
    # Act
    response = svc_client.get("/api/orders", HTTP_ACCEPT=BROWSER_ACCEPT)
    # Assert
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    assert [o["order_id"] for o in response.json()["results"]] == [str(order.pk)]


def test_api_asked_for_html_only_is_406_json(svc_client):
    # Act
    response = svc_client.get("/api/orders", HTTP_ACCEPT="text/html")
    # Assert: the API answers JSON alone (the docs UI is /api/docs/)
    assert response.status_code == 406 and response["Content-Type"] == "application/json"
    assert response.json()["error"] == "not_acceptable"


@pytest.mark.parametrize("path", ["/api/orders", "/api/risk/check"])
def test_api_body_larger_than_the_upload_limit_is_413_and_records_nothing(tradable, svc_client, settings, path):
    # Arrange: Django's limit on a request body (DATA_UPLOAD_MAX_MEMORY_SIZE, 2.5 MiB by default), which
    # DRF's parser does not apply: the whole body was read and parsed, however large
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    body = json.dumps(order_body(metadata={"note": "x" * 2000}))
    # Act
    response = svc_client.post(path, body, content_type="application/json")
    # Assert
    assert response.status_code == 413 and response["Content-Type"] == "application/json"
    assert response.json()["error"] == "request_too_large"
    assert "1024 bytes" in response.json()["detail"]
    assert Order.objects.count() == 0


def test_api_body_within_the_upload_limit_is_taken(tradable, svc_client, settings):
    # Arrange
    body = json.dumps(order_body())
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = len(body.encode())
    # Act
    response = svc_client.post("/api/orders", body, content_type="application/json")
    # Assert
    assert response.status_code == 201, response.json()


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/api/orders"),
    ("GET", "/api/orders/{order_id}"),
    ("POST", "/api/orders/{order_id}/cancel"),
    ("GET", "/api/positions"),
    ("POST", "/api/risk/check"),
])
def test_api_format_parameter_other_than_json_is_400_naming_it(svc_client, strategy, method, path):
    # Arrange: DRF's format override (?format=) picks a renderer; the API has JSON alone
    order = OrderFactory(strategy=strategy, status="ROUTED")
    url = path.format(order_id=order.pk) + "?format=xml"
    # Act: DRF answered 404 "Not found." for a path that exists, a status these operations do not document
    response = svc_client.generic(method, url, "{}" if method == "POST" else "", content_type="application/json")
    # Assert: a 400 naming the parameter, as any other bad parameter value, and nothing done
    assert response.status_code == 400 and response["Content-Type"] == "application/json"
    body = response.json()
    reason = body["fields"]["format"][0]
    assert body["error"] == "invalid" and "'xml'" in reason and "json" in reason
    assert Order.objects.get(pk=order.pk).status == "ROUTED"


def test_api_format_json_is_served(svc_client, strategy):
    # Arrange
    order = OrderFactory(strategy=strategy)
    # Act
    response = svc_client.get("/api/orders", {"format": "json"})
    # Assert
    assert response.status_code == 200 and [o["order_id"] for o in response.json()["results"]] == [str(order.pk)]
