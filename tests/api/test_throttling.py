import pytest
from django.test import override_settings
from django.conf import settings

from tests.orders.conftest import client_for

pytestmark = pytest.mark.django_db


def test_throttle_per_token_small_rate_gives_429_for_that_token_only(strategy):
    # Arrange: two tokens of the same strategy service
    first = client_for(strategy.service_account)
    second = client_for(strategy.service_account)
    rates = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"token": "3/min"}}
    # Act
    with override_settings(REST_FRAMEWORK=rates):
        codes = [first.get("/api/orders").status_code for _ in range(4)]
        throttled = first.get("/api/orders")
        other = second.get("/api/orders")
    # Assert
    assert codes == [200, 200, 200, 429]
    assert throttled.status_code == 429
    assert throttled.json()["error"] == "throttled" and throttled.json()["retry_after_secs"] > 0
    assert "Retry-After" in throttled
    assert other.status_code == 200  # keyed on the token, not the user


def test_throttle_key_is_the_token_digest(strategy):
    from knox.models import AuthToken
    from rest_framework.test import APIRequestFactory

    from orders.api.throttling import TokenRateThrottle

    token_obj, _ = AuthToken.objects.create(user=strategy.service_account)
    request = APIRequestFactory().get("/api/orders")
    request.auth, request.user = token_obj, strategy.service_account
    assert TokenRateThrottle().get_cache_key(request, None) == f"throttle_token_tok:{token_obj.digest}"
