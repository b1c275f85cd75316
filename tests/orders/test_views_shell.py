"""The page shell (templates/base.html) and the login / logout pages."""

import json
import re

import pytest
from django.test import Client

from tests.orders import web_fixtures

trader, trader_client = web_fixtures.trader, web_fixtures.trader_client

pytestmark = pytest.mark.django_db


def test_login_page_logs_in_and_lands_on_execute(db):
    web_fixtures.person_in("trader", username="tina")
    client = Client()

    page = client.get("/accounts/login/?next=/live/orders")
    response = client.post("/accounts/login/", {"username": "tina", "password": "pw-for-tests-1",
                                                "next": "/live/orders"})

    assert page.status_code == 200 and 'name="password"' in page.content.decode()
    assert response.status_code == 302 and response["Location"] == "/live/orders"


def test_login_wrong_password_says_so(db):
    web_fixtures.person_in("trader", username="tina")

    response = Client().post("/accounts/login/", {"username": "tina", "password": "wrong"})

    assert response.status_code == 200 and 'role="alert"' in response.content.decode()


def test_root_redirects_to_execute(client):
    assert client.get("/")["Location"] == "/live/execute"


def test_nav_shows_user_role_and_admin_only_for_staff(db):
    trader = web_fixtures.logged_in(web_fixtures.person_in("trader", username="tina")).get("/live/orders")
    risk_user = web_fixtures.person_in("risk manager", username="rick")
    risk_user.is_staff = True
    risk_user.save()
    risk = web_fixtures.logged_in(risk_user).get("/live/orders")

    assert '<span class="user" data-testid="user">tina</span>' in trader.content.decode()
    assert '<span class="role">trader</span>' in trader.content.decode()
    assert 'href="/admin/"' not in trader.content.decode()
    assert 'href="/admin/"' in risk.content.decode() and '<span class="role">risk manager</span>' in risk.content.decode()


def test_logout_ends_the_session(db):
    client = web_fixtures.logged_in(web_fixtures.person_in("viewer"))

    client.post("/accounts/logout/")

    assert client.get("/live/orders")["Location"].startswith("/accounts/login/")


def test_static_css_is_served(client):
    response = client.get("/static/css/odum.css")

    assert response.status_code == 200
    assert b".badge.FILLED" in b"".join(response.streaming_content)


@pytest.mark.parametrize(("method", "path"), [
    ("get", "/live/orders?venue=BINANCE-SPOT"),  # the Orders page's filters
    ("get", "/live/execute/preview?side=BUY"),  # the ticket's CLI view
    ("post", "/live/orders/0192f0c4-0000-7000-8000-000000000001/cancel"),  # a row's Cancel
])
def test_htmx_request_without_session_sends_the_page_to_login_not_the_login_page_into_the_fragment(method, path):
    # Arrange: the session ended (logged out in another tab, or expired) while the Orders page stays open
    client = Client()

    # Act
    response = getattr(client, method)(path, HTTP_HX_REQUEST="true",
                                       HTTP_HX_CURRENT_URL="http://testserver/live/orders?status=FILLED")

    # Assert: htmx is told to load the login page in full, coming back to the page the trader was on
    assert response.status_code == 200 and response.content == b""
    assert response["HX-Redirect"] == "/accounts/login/?next=/live/orders%3Fstatus%3DFILLED"


def test_htmx_request_without_session_from_another_site_logs_in_to_the_start_page():
    response = Client().get("/live/orders", HTTP_HX_REQUEST="true", HTTP_HX_CURRENT_URL="https://evil.example/x")

    assert response["HX-Redirect"] == "/accounts/login/?next=/"


def test_plain_request_without_session_is_still_redirected_to_login():
    response = Client().get("/live/orders?venue=BINANCE-SPOT")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/live/orders%3Fvenue%3DBINANCE-SPOT"


def test_htmx_post_refused_by_csrf_answers_the_reason_alone_not_a_whole_page(trader_client, strategy):
    # Arrange: a page whose CSRF token is stale (the person logged in again in another tab)
    from tests.orders.factories import OrderFactory

    order = OrderFactory(strategy=strategy)
    trader_client.handler.enforce_csrf_checks = True

    # Act: its row's Cancel (htmx swaps a 403 into the row)
    response = trader_client.post(f"/live/orders/{order.id}/cancel", HTTP_HX_REQUEST="true",
                                  HTTP_X_CSRFTOKEN="stale-token-from-an-old-page")

    # Assert: the reason, saying what to do, as a fragment (no page shell inside the row)
    body = response.content.decode()
    assert response.status_code == 403
    assert 'data-testid="forbidden"' in body and "reload the page" in body
    assert "<html" not in body and "<body" not in body


@pytest.mark.parametrize("status", [400, 403, 404, 409, 422])
def test_htmx_swaps_each_answer_the_pages_give_a_reason_in_and_keeps_it_from_the_debug_helper(trader_client,
                                                                                               settings, status):
    # Arrange: DEBUG on, where django-htmx's helper replaces the document with a 400 / 403 / 404 / 500 answer
    settings.DEBUG = True

    # Act
    body = trader_client.get("/live/orders").content.decode()

    # Assert: htmx 2 takes the first rule whose code (a regular expression) matches the status
    config = json.loads(re.search(r'<meta name="htmx-config" content=\'([^\']+)\'>', body).group(1))
    rule = next(r for r in config["responseHandling"] if re.search(r["code"], str(status)))
    assert rule["swap"] is True and rule["error"] is False
    stopped = re.search(r"if \(\[([0-9, ]+)\]\.includes\(evt\.detail\.xhr\.status\)\) evt\.stopPropagation", body)
    assert status not in (400, 403, 404) or str(status) in stopped.group(1).split(", ")


def test_unknown_page_without_debug_names_the_path_in_the_page_shell(trader_client, settings):
    # Arrange
    settings.DEBUG = False

    # Act
    response = trader_client.get("/live/nope")

    # Assert
    body = response.content.decode()
    assert response.status_code == 404
    assert '<p class="error" role="alert" data-testid="not-found">No page at /live/nope.</p>' in body
    assert 'class="topbar"' in body


def test_pages_link_a_favicon_that_is_served(trader_client):
    # Act
    body = trader_client.get("/live/orders").content.decode()
    href = re.search(r'<link rel="icon" href="([^"]+)"', body).group(1)
    icon = trader_client.get(href)

    # Assert: a static file (no request for /favicon.ico answered 404 on every page)
    assert icon.status_code == 200
    assert b"".join(icon.streaming_content).startswith(b"\x00\x00\x01\x00")  # an ICO file


def test_favicon_at_the_root_points_at_the_static_file(client):
    # Act: what a browser asks for on a page without the link (the admin, the API docs)
    response = client.get("/favicon.ico")

    # Assert
    assert response.status_code == 302 and response["Location"] == "/static/favicon.ico"
