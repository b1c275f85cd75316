"""Request body parsing of the order API: JSON only (``REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"]``)."""

import io
import json

from django.conf import settings
from django.utils.http import parse_header_parameters
from rest_framework.exceptions import ParseError, UnsupportedMediaType
from rest_framework.parsers import JSONParser
from rest_framework.utils.json import strict_constant

from orders.api.errors import PayloadTooLarge
from orders.api.serializers import MAX_JSON_DEPTH


#: The one charset a JSON body may declare (compared case-insensitively); none declared means it too.
JSON_CHARSET = "utf-8"


class JsonParser(JSONParser):
    """DRF's ``JSONParser``; a body larger than Django's limit is a 413, one nested too deeply a 400.

    The body is decoded as UTF-8 whatever the request declares: "JSON text exchanged between systems
    that are not part of a closed ecosystem MUST be encoded using UTF-8" (RFC 8259 §8.1). DRF decoded
    it in the ``charset`` of the ``Content-Type`` (Django's ``request.encoding``), so a client's UTF-8
    text declared as ``charset=latin-1`` was stored garbled; any charset other than ``utf-8`` is a 415.

    Django refuses a body larger than ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (2.5 MiB by default) when it
    reads ``request.body`` or a form, but DRF's parser reads the request stream itself: the whole
    body was read and parsed, however large. At most the limit plus one byte is read here.

    ``json.loads`` recurses once per level of nesting, so a body such as ``[[[[…]]]]`` a few
    hundred thousand levels deep overflows the interpreter's stack (``RecursionError``: a 500).

    An object naming a key twice is a 400: Python's ``json`` keeps the last value, while a proxy, a
    log or the client's own signer may read the first — two readings of one order (RFC 8259 §4:
    "the behavior of software that receives such an object is unpredictable").

    Raises
    ------
    rest_framework.exceptions.UnsupportedMediaType
        415 ``unsupported_media_type``: the ``Content-Type`` declares a charset other than ``utf-8``
        (in any case; ``utf8`` and ``latin-1`` alike). Nothing is read.
    orders.api.errors.PayloadTooLarge
        413 ``request_too_large``: the body exceeds ``DATA_UPLOAD_MAX_MEMORY_SIZE`` bytes (Django's
        setting; ``None`` sets no limit). Nothing is parsed.
    rest_framework.exceptions.ParseError
        400 ``parse_error`` for a body that is not UTF-8, malformed JSON (DRF's own message), a key named
        twice in one object,
        or nesting beyond the interpreter's recursion limit (fields accept at most
        :data:`MAX_JSON_DEPTH` levels).
    """

    def parse(self, stream, media_type=None, parser_context=None):
        _refuse_other_charset(media_type)
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None and stream is not None:
            body = stream.read(limit + 1)
            if len(body) > limit:
                raise PayloadTooLarge(f"the request body exceeds {limit} bytes (DATA_UPLOAD_MAX_MEMORY_SIZE); an "
                                      "order message is a few KiB")
            stream = io.BytesIO(body)
        try:
            return self._parse(stream, parser_context or {})
        except RecursionError:
            raise ParseError(f"JSON parse error - nested too deeply (JSON object fields accept at most "
                             f"{MAX_JSON_DEPTH} levels)") from None

    def _parse(self, stream, parser_context):
        # DRF's JSONParser.parse, decoding UTF-8 only, with duplicate keys refused.
        try:
            text = stream.read().decode(JSON_CHARSET)
        except UnicodeDecodeError as exc:
            raise ParseError(f"JSON parse error - the body is not UTF-8 (RFC 8259 §8.1): {exc}") from None
        try:
            return json.loads(text, parse_constant=strict_constant if self.strict else None,
                              object_pairs_hook=_unique_keys)
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None


def _refuse_other_charset(media_type: str | None) -> None:
    # The Content-Type's charset parameter, if any, must name UTF-8 (RFC 8259 §8.1).
    _, params = parse_header_parameters(media_type or "")
    charset = params.get("charset")
    if charset is not None and charset.lower() != JSON_CHARSET:
        raise UnsupportedMediaType(media_type, detail=(
            f"charset {charset!r} is not accepted: a JSON body is UTF-8 (RFC 8259 §8.1); send "
            f"Content-Type: application/json, optionally with charset={JSON_CHARSET}"))


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    # object_pairs_hook of json.loads: one object's members, in order.
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"duplicate key {key!r} in an object: name each key once")
            seen.add(key)
    return obj
