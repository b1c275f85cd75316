"""API throttling: one bucket per API token (strategy service), per user for sessions, per IP otherwise."""

from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle


class TokenRateThrottle(SimpleRateThrottle):
    """Rate-limit each knox token; rate ``REST_FRAMEWORK['DEFAULT_THROTTLE_RATES']['token']``.

    The bucket is keyed on the token's *digest* (knox's primary key: a SHA-512 of the whole token),
    not on ``token_key`` — the 15-character look-up prefix, which includes any configured
    ``TOKEN_PREFIX`` and is not guaranteed unique. Two tokens of one strategy service have two
    buckets; a session user has one bucket; anonymous callers (only ``/api/health``) one per IP.
    The rate is read when the throttle is built, so ``override_settings`` takes effect (DRF's
    class attribute ``THROTTLE_RATES`` is frozen at import).
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
