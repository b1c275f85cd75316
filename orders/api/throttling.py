"""API throttling: one bucket per API token (strategy service), per user for sessions, per IP otherwise."""

from __future__ import annotations

import os

import redis
from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.cache.backends.redis import RedisCache
from rest_framework import status
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from orders.api.errors import ApiError

# DRF's sliding log (drop timestamps older than the window, refuse at the limit, else record now)
# as one atomic step on a Redis sorted set: one round trip, and no pickled list of up to
# num_requests floats read and written back per request.
_SLIDING_LOG = """
local key, now, duration, limit = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - duration)
local n = redis.call('ZCARD', key)
if n >= limit then
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  return {0, n, oldest[2] or ARGV[1]}
end
redis.call('ZADD', key, now, ARGV[4])
redis.call('EXPIRE', key, math.ceil(duration))
return {1, n + 1, ARGV[1]}
"""


class TokenRateThrottle(SimpleRateThrottle):
    """Rate-limit each knox token; rate ``REST_FRAMEWORK['DEFAULT_THROTTLE_RATES']['token']``.

    The bucket is keyed on the token's *digest* (knox's primary key: a SHA-512 of the whole token),
    not on ``token_key`` — the 15-character look-up prefix, which includes any configured
    ``TOKEN_PREFIX`` and is not guaranteed unique. Two tokens of one strategy service have two
    buckets; a session user has one bucket; anonymous callers (only ``/api/health``) one per IP.
    The rate is read when the throttle is built, so ``override_settings`` takes effect (DRF's
    class attribute ``THROTTLE_RATES`` is frozen at import).

    Semantics are DRF's ``SimpleRateThrottle`` (a sliding log: at most ``num_requests`` requests
    in any ``duration`` seconds, the refused ones not counted). On the Redis cache (production)
    the log is a sorted set updated by one Lua script — one round trip per request instead of a
    GET and a SET of the pickled log; on other caches (the embedded default) DRF's own code runs.

    Raises
    ------
    orders.api.errors.ApiError
        503 ``throttle_unavailable`` when Redis does not answer: the request is refused before
        anything is done (a clear error the client can retry, never a 500).
    """

    scope = "token"

    def get_rate(self):
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def get_cache_key(self, request, view):
        auth = getattr(request, "auth", None)
        digest = getattr(auth, "digest", None)
        if digest:
            ident = f"tok:{digest}"
        elif request.user and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"ip:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}

    def allow_request(self, request, view):
        backend = caches[DEFAULT_CACHE_ALIAS] if self.cache is SimpleRateThrottle.cache else self.cache
        if self.rate is None or not isinstance(backend, RedisCache):
            return super().allow_request(request, view)
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        self.now = self.timer()
        key = backend.make_and_validate_key(self.key)
        client = _client(backend, key)
        member = f"{self.now!r}:{os.urandom(4).hex()}"  # two requests in one clock tick are two entries
        try:
            allowed, count, oldest = _script(client)(keys=[key], args=[repr(self.now), self.duration,
                                                                       self.num_requests, member], client=client)
        except (redis.exceptions.RedisError, OSError) as exc:
            raise ApiError(f"request throttle unavailable: Redis did not answer ({type(exc).__name__}: {exc}); "
                           "nothing was done, retry later", code="throttle_unavailable",
                           status_code=status.HTTP_503_SERVICE_UNAVAILABLE) from None
        # wait() reads the log as DRF keeps it: newest first, oldest last.
        self.history = [self.now] * (int(count) - 1) + [float(oldest)]
        return bool(allowed)


_registered = []


#: One redis-py client per connection pool: Django's RedisCache builds a new client (with its
#: table of response callbacks) on every call, which cost more than the round trip here.
_clients: dict[int, object] = {}


def _client(backend: RedisCache, key: str):
    pool = backend._cache._get_connection_pool(True)
    client = _clients.get(id(pool))
    if client is None or client.connection_pool is not pool:
        client = _clients[id(pool)] = backend._cache.get_client(key, write=True)
    return client


def _script(client):
    # Registered once per process (its SHA is computed locally); each call runs EVALSHA on the
    # given client and loads the script on NOSCRIPT.
    if not _registered:
        _registered.append(client.register_script(_SLIDING_LOG))
    return _registered[0]
