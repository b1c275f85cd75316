"""Paths under /api/ that no route matches: the API's JSON 404, not Django's HTML page (orders/api/middleware.py)."""

import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("debug", [False, True], ids=["debug-off", "debug-on"])
@pytest.mark.parametrize(("method", "path"), [
    ("get", "/api/nope"),
    ("get", "/api"),
    ("get", "/api/orders/x/y/z"),
    ("post", "/api/nope"),
    ("delete", "/api/positions/BINANCE-SPOT:SPOT_PAIR:BTC-USDT/extra"),
])
def test_unknown_api_path_is_json_404_naming_the_path(svc_client, settings, debug, method, path):
    # Arrange: the embedded default runs with DEBUG on, where Django answers with its debug page
    settings.DEBUG = debug
    # Act
    response = getattr(svc_client, method)(path)
    # Assert: the API's error shape (orders/api/errors.py), as for "no order <id>"
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"error", "detail"}
    assert body["error"] == "not_found" and path in body["detail"]


def test_unknown_api_path_anonymous_is_json_404(client):
    response = client.get("/api/nope")

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_api_path_with_trailing_slash_is_json_404_pointing_at_the_path_without_it(svc_client):
    response = svc_client.get("/api/orders/")

    assert response.status_code == 404
    assert "no trailing slash: /api/orders" in response.json()["detail"]


def test_wrong_method_on_known_api_path_keeps_drf_json_405(svc_client):
    response = svc_client.put("/api/orders", {}, format="json")

    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"


def test_unknown_path_outside_api_keeps_the_html_404_page(client):
    response = client.get("/nope")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_api_docs_without_trailing_slash_still_redirects(client):
    # APPEND_SLASH: /api/schema/ and /api/docs/ are the documented paths
    response = client.get("/api/docs")

    assert response.status_code == 301 and response["Location"] == "/api/docs/"
