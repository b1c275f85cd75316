"""The page shell (templates/base.html) and the login / logout pages."""

import pytest
from django.test import Client

from tests.orders import web_fixtures

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
