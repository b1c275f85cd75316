import pytest
from rest_framework.test import APIClient

from tests.orders.factories import make_token

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("token", ["\xff\xfe\xfd", "abcdefgh\x00ijklmnop"])
def test_bearer_token_not_utf8_or_with_nul_is_401(token):
    # Arrange: header bytes that are not UTF-8 (obs-text) or hold a NUL, which PostgreSQL refuses
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    # Act
    response = client.get("/api/orders")
    # Assert
    assert response.status_code == 401
    assert response.json()["error"] == "authentication_failed"


def test_bearer_token_with_nul_is_401_naming_the_token():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer abcdefgh\x00ijklmnop")

    response = client.get("/api/orders")

    assert response.status_code == 401
    assert response.json()["detail"] == "token: must not contain the NUL character (\\u0000)"


@pytest.mark.parametrize("scheme", ["Token", "Basic", "token", None])
def test_authorization_of_another_scheme_is_401_naming_the_bearer_scheme(strategy, scheme):
    # Arrange: a valid token under another scheme (DRF's "Token", Basic) or bare was skipped by the
    # Bearer authenticator and answered "credentials were not provided", with no word of the scheme
    token = make_token(strategy.service_account)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"{scheme} {token}" if scheme else token)
    # Act
    response = client.get("/api/orders")
    # Assert: the expected scheme is named, the challenge kept, the token not echoed
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    body = response.json()
    assert body["error"] == "authentication_failed" and "Authorization: Bearer <token>" in body["detail"]
    assert token not in body["detail"]
    if scheme:
        assert f"{scheme!r}" in body["detail"]


def test_no_authorization_header_is_401_credentials_not_provided(db):
    # Act
    response = APIClient().get("/api/orders")
    # Assert
    assert response.status_code == 401 and response["WWW-Authenticate"] == "Bearer"
    assert response.json()["error"] == "not_authenticated"


def test_session_user_sending_another_authorization_scheme_is_served(person):
    # Arrange: a browser session behind a proxy's Basic authentication sends both
    client = APIClient()
    client.force_login(person)
    client.credentials(HTTP_AUTHORIZATION="Basic dXNlcjpwYXNz")
    # Act
    response = client.get("/api/orders")
    # Assert
    assert response.status_code == 200, response.json()


def test_health_with_another_authorization_scheme_is_served(db):
    # Arrange: a probe behind a proxy's Basic authentication
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Basic dXNlcjpwYXNz")
    # Act
    response = client.get("/api/health")
    # Assert: no credentials are needed there, so none are judged
    assert response.status_code != 401
