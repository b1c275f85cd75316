"""API throttling: one bucket per API token (strategy service), per user for sessions."""

from rest_framework.throttling import SimpleRateThrottle


class TokenRateThrottle(SimpleRateThrottle):
    """Rate-limit each authenticated token (or session user); rate from ``DEFAULT_THROTTLE_RATES['token']``."""

    scope = "token"

    def get_cache_key(self, request, view):
        auth = getattr(request, "auth", None)
        token_key = getattr(auth, "token_key", None)
        if token_key:
            ident = f"tok:{token_key}"
        elif request.user and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"ip:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}
