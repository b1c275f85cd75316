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


@pytest.mark.redis
def test_throttle_on_redis_keeps_a_sliding_log_that_frees_up_after_the_window(strategy, monkeypatch):
    # Arrange: the Redis cache (production) runs the one-round-trip sliding log; the clock is ours
    from django.core.cache import cache
    from knox.models import AuthToken
    from rest_framework.test import APIRequestFactory

    from orders.api.throttling import TokenRateThrottle

    token_obj, _ = AuthToken.objects.create(user=strategy.service_account)
    request = APIRequestFactory().get("/api/orders")
    request.auth, request.user = token_obj, strategy.service_account
    clock = {"now": 1_000.0}
    monkeypatch.setattr(TokenRateThrottle, "timer", lambda self: clock["now"])
    rates = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"token": "2/min"}}
    cache.delete(f"throttle_token_tok:{token_obj.digest}")

    def attempt(at):
        clock["now"] = at
        throttle = TokenRateThrottle()
        return throttle.allow_request(request, None), throttle

    # Act
    with override_settings(REST_FRAMEWORK=rates):
        first, _ = attempt(1_000.0)
        second, _ = attempt(1_030.0)
        third, refused = attempt(1_059.0)
        fourth, _ = attempt(1_060.5)  # the first request left the 60 s window
        fifth, _ = attempt(1_061.0)
    # Assert: DRF's semantics (refused requests are not counted), one zset in Redis
    assert (first, second, third, fourth, fifth) == (True, True, False, True, False)
    assert refused.wait() == pytest.approx(1.0)  # the oldest request (t=1000) leaves at t=1060
    key = cache.make_and_validate_key(f"throttle_token_tok:{token_obj.digest}")
    client = cache._cache.get_client(key)
    assert client.type(key) == b"zset" and client.zcard(key) == 2


@pytest.mark.redis
def test_throttle_with_redis_unreachable_answers_503_naming_it_and_records_nothing(strategy, svc_client, tradable):
    # Arrange: the throttle's Redis store stops answering (a port nothing listens on)
    from orders.models import Order
    from tests.orders.factories import order_body

    dead = {"default": {**settings.CACHES["default"], "LOCATION": "redis://127.0.0.1:1/0",
                        "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2}}}

    # Act
    with override_settings(CACHES=dead):
        response = svc_client.post("/api/orders", order_body(), format="json")

    # Assert: a clear JSON error, not a 500; no order half-written
    assert response.status_code == 503
    assert response.json()["error"] == "throttle_unavailable" and "Redis" in response.json()["detail"]
    assert not Order.objects.exists()

