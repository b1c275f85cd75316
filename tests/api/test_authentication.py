import pytest
from rest_framework.test import APIClient

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
