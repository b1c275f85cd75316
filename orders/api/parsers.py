"""Request body parsing of the order API: JSON only (``REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"]``)."""

import io
import json

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.utils.json import strict_constant

from orders.api.errors import PayloadTooLarge
from orders.api.serializers import MAX_JSON_DEPTH


class JsonParser(JSONParser):
    """DRF's ``JSONParser``; a body larger than Django's limit is a 413, one nested too deeply a 400.

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
    orders.api.errors.PayloadTooLarge
        413 ``request_too_large``: the body exceeds ``DATA_UPLOAD_MAX_MEMORY_SIZE`` bytes (Django's
        setting; ``None`` sets no limit). Nothing is parsed.
    rest_framework.exceptions.ParseError
        400 ``parse_error`` for malformed JSON (DRF's own message), a key named twice in one object,
        or nesting beyond the interpreter's recursion limit (fields accept at most
        :data:`MAX_JSON_DEPTH` levels).
    """

    def parse(self, stream, media_type=None, parser_context=None):
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
        # DRF's JSONParser.parse, with duplicate keys refused.
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = stream.read().decode(encoding)
            return json.loads(text, parse_constant=strict_constant if self.strict else None,
                              object_pairs_hook=_unique_keys)
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None


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
