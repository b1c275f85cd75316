"""API token authentication: knox tokens (hashed at rest, revocable in admin) as ``Bearer``."""

import binascii
import re
from hmac import compare_digest

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from django.utils.translation import gettext_lazy as _
from knox.auth import TokenAuthentication
from knox.crypto import hash_token
from knox.models import get_token_model
from knox.settings import CONSTANTS, knox_settings
from knox.signals import token_expired
from rest_framework import exceptions
from rest_framework.authentication import get_authorization_header

from odum_live.fields import NulCharacterError, refuse_nul
from odum_live.sql import CompiledQuery


#: The tokens of a token key, with their user and the strategy it is the service account of: one
#: query, compiled once (odum_live.sql.CompiledQuery) — Django's compilation of this three-table
#: select cost three times its execution on the submission hot path (~0.3 of ~0.1 ms).
_TOKENS_OF_KEY = CompiledQuery(
    lambda key: get_token_model().objects.filter(token_key=key).select_related("user", "user__service_strategy"),
    markers=("<token-key>",),
)


class BearerTokenAuthentication(TokenAuthentication):
    """knox's ``TokenAuthentication``, with two queries fewer per request on the submission hot path.

    - knox checks, on every request, every *other* token of the user for expiry. Here only the
      presented token's expiry is checked — an expired token is still deleted and refused, exactly
      as knox does; the user's other tokens are judged when they are presented. Strategy service
      tokens have no expiry unless issued with one (``manage.py issue_api_token --expiry-days``).
    - The token's user comes with the strategy it is the service account of (``select_related``),
      so resolving the order's strategy needs no query of its own
      (:func:`orders.selectors.service_strategy_of`); the query is compiled once.

    The credential check itself is knox 5.1's ``authenticate_credentials`` unchanged: hash the
    presented token (SHA-512) and compare in constant time with each stored digest of that key.
    """

    def authenticate_credentials(self, token):
        msg = _("Invalid token.")
        try:
            token = token.decode("utf-8")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(msg) from None
        try:
            refuse_nul(token, field="token")  # the look-up would be a 500 on PostgreSQL
        except NulCharacterError as exc:
            raise exceptions.AuthenticationFailed(str(exc)) from None
        for auth_token in _TOKENS_OF_KEY.send(token[: CONSTANTS.TOKEN_KEY_LENGTH]).all():
            if self._cleanup_token(auth_token):
                continue
            try:
                digest = hash_token(token)
            except (TypeError, binascii.Error):
                raise exceptions.AuthenticationFailed(msg) from None
            if compare_digest(digest, auth_token.digest):
                return self.validate_user(auth_token)
        raise exceptions.AuthenticationFailed(msg)

    def _cleanup_token(self, auth_token) -> bool:
        if auth_token.expiry is not None and auth_token.expiry < timezone.now():
            username = auth_token.user.get_username()
            auth_token.delete()
            token_expired.send(sender=self.__class__, username=username, source="auth_token")
            return True
        return False


#: An authentication scheme's name as RFC 9110 §11.1 spells it (a token), short enough to be a scheme:
#: only such a first word is quoted back; a bare credential is never echoed.
_SCHEME_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,32}")


def unaccepted_scheme_reason(request) -> str | None:
    """Return why the request's ``Authorization`` header gave no credentials, or ``None`` if it has none.

    :class:`BearerTokenAuthentication` (knox) judges ``Bearer`` headers only; any other scheme
    (DRF's ``Token``, ``Basic``) or a bare token is left for the next authenticator, and a request
    no authenticator took was answered "Authentication credentials were not provided." — true of
    no header, misleading for a token sent under the wrong scheme. Used by
    :func:`orders.api.errors.exception_handler` on that 401 only, so a session-authenticated
    person (whose browser may send a proxy's ``Basic`` header) and views needing no credentials
    are served as before.

    Parameters
    ----------
    request : rest_framework.request.Request
        The request refused as unauthenticated.

    Returns
    -------
    str or None
        One sentence naming the scheme received (quoted only if it looks like a scheme name) and
        the expected one, ``Authorization: Bearer <token>``; ``None`` for no or an empty header.
    """
    parts = get_authorization_header(request).split()
    if not parts:
        return None
    expected = f"send `Authorization: {knox_settings.AUTH_HEADER_PREFIX} <token>` (an API token)"
    scheme = parts[0].decode("latin-1")
    if len(parts) > 1 and _SCHEME_NAME.fullmatch(scheme):
        return f"the Authorization header's scheme {scheme!r} is not accepted: {expected}"
    return f"the Authorization header is not a {knox_settings.AUTH_HEADER_PREFIX} token: {expected}"


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """OpenAPI security scheme of :class:`BearerTokenAuthentication` (``Authorization: Bearer <token>``)."""

    target_class = "orders.api.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A strategy service's API token (`manage.py issue_api_token <strategy>`), "
                           "hashed at rest and revocable in admin: `Authorization: Bearer <token>`.",
        }
