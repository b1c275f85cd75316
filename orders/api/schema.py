"""The API's self-description: drf-spectacular hooks (what the generated OpenAPI schema cannot infer from
the serializers) and the answer to ``OPTIONS``."""

from __future__ import annotations

from rest_framework.metadata import SimpleMetadata

from orders.api.serializers import (
    TEXT_PARAMETER_PATTERN,
    OrderCancelInputSerializer,
    OrderCreateInputSerializer,
    RiskCheckInputSerializer,
)

#: Input serializers that refuse a field they do not declare (a 400 naming it).
_CLOSED_INPUTS = (OrderCreateInputSerializer, RiskCheckInputSerializer, OrderCancelInputSerializer)


def refuse_unknown_fields(result: dict, generator, request, public) -> dict:
    """Mark the request bodies of :data:`_CLOSED_INPUTS` ``additionalProperties: false``.

    A postprocessing hook (``SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]``). Without it the schema
    allows any extra property (OpenAPI's default) while the API answers one with a 400, so clients
    and fuzzers read the contract wrongly.

    Parameters
    ----------
    result : dict
        The generated schema; its ``components.schemas`` are changed in place.
    generator, request, public
        As drf-spectacular passes them; unused.

    Returns
    -------
    dict
        ``result``.

    Raises
    ------
    KeyError
        If a closed input has no request component (renamed serializer or setting changed).
    """
    schemas = result["components"]["schemas"]
    for serializer in _CLOSED_INPUTS:
        # COMPONENT_SPLIT_REQUEST: the request variant of "XSerializer" is the component "XRequest".
        schemas[serializer.__name__.removesuffix("Serializer") + "Request"]["additionalProperties"] = False
    return result


def refuse_nul_in_text_parameters(result: dict, generator, request, public) -> dict:
    """Give every free-text query parameter (a string without ``enum`` or ``format``) the ``pattern``
    :data:`~orders.api.serializers.TEXT_PARAMETER_PATTERN`: the API answers a NUL character in one with a 400
    naming it (PostgreSQL refuses NUL in a query; :func:`odum_live.fields.refuse_nul`), which the schema did not say.

    A postprocessing hook (``SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]``); arguments and return as
    :func:`refuse_unknown_fields`.
    """
    for item in result["paths"].values():
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                schema = parameter.get("schema", {})
                if (parameter["in"] == "query" and schema.get("type") == "string"
                        and not {"enum", "format", "pattern"} & set(schema)):
                    schema["pattern"] = TEXT_PARAMETER_PATTERN
    return result


def document_not_acceptable(result: dict, generator, request, public) -> dict:
    """Give every operation its ``406``: an ``Accept`` header naming no media type the API serves.

    DRF answers it before authentication, for every view of the API (``not_acceptable``, an
    ``ErrorOutput`` body in JSON; the API serves ``application/json`` only, the docs UI is
    ``/api/docs/``), so no view's ``extend_schema`` lists it. A postprocessing hook
    (``SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]``); arguments and return as :func:`refuse_unknown_fields`.
    """
    response = {
        "description": "The `Accept` header names no media type the API serves (`not_acceptable`): it answers "
                       "`application/json` only; send `Accept: application/json` or `*/*`, or leave it out.",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOutput"}}},
    }
    for path, item in result["paths"].items():
        for operation in item.values():
            operation["responses"].setdefault("406", response)
    return result


#: Where the OpenAPI schema is served (odum_live/urls.py).
SCHEMA_PATH = "/api/schema/"


class SchemaPointerMetadata(SimpleMetadata):
    """``OPTIONS``: name, description, media types and the schema's path; no ``actions``.

    DRF's ``SimpleMetadata`` describes a view's ``serializer_class`` as its POST body: for
    ``/api/orders`` the *output* serializer — ``order_id``, ``status``, ``filled_quantity`` …
    "required" and writable, each of which the API refuses. The contract is the OpenAPI schema.
    """

    def determine_actions(self, request, view):
        return {}

    def determine_metadata(self, request, view):
        return {**super().determine_metadata(request, view), "schema": SCHEMA_PATH}
