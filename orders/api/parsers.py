"""Request body parsing of the order API: JSON only (``REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"]``)."""

import io

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from orders.api.errors import PayloadTooLarge
from orders.api.serializers import MAX_JSON_DEPTH


class JsonParser(JSONParser):
    """DRF's ``JSONParser``; a body larger than Django's limit is a 413, one nested too deeply a 400.

    Django refuses a body larger than ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (2.5 MiB by default) when it
    reads ``request.body`` or a form, but DRF's parser reads the request stream itself: the whole
    body was read and parsed, however large. At most the limit plus one byte is read here.

    ``json.loads`` recurses once per level of nesting, so a body such as ``[[[[…]]]]`` a few
    hundred thousand levels deep overflows the interpreter's stack (``RecursionError``: a 500).

    Raises
    ------
    orders.api.errors.PayloadTooLarge
        413 ``request_too_large``: the body exceeds ``DATA_UPLOAD_MAX_MEMORY_SIZE`` bytes (Django's
        setting; ``None`` sets no limit). Nothing is parsed.
    rest_framework.exceptions.ParseError
        400 ``parse_error`` for malformed JSON (DRF's own message) or nesting beyond the
        interpreter's recursion limit (fields accept at most :data:`MAX_JSON_DEPTH` levels).
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
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(f"JSON parse error - nested too deeply (JSON object fields accept at most "
                             f"{MAX_JSON_DEPTH} levels)") from None
