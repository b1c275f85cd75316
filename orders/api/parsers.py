"""Request body parsing of the order API: JSON only (``REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"]``)."""

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from orders.api.serializers import MAX_JSON_DEPTH


class JsonParser(JSONParser):
    """DRF's ``JSONParser``; a body nested too deeply for Python's ``json`` module is a 400.

    ``json.loads`` recurses once per level of nesting, so a body such as ``[[[[…]]]]`` a few
    hundred thousand levels deep overflows the interpreter's stack (``RecursionError``: a 500).

    Raises
    ------
    rest_framework.exceptions.ParseError
        400 ``parse_error`` for malformed JSON (DRF's own message) or nesting beyond the
        interpreter's recursion limit (fields accept at most :data:`MAX_JSON_DEPTH` levels).
    """

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(f"JSON parse error - nested too deeply (JSON object fields accept at most "
                             f"{MAX_JSON_DEPTH} levels)") from None
