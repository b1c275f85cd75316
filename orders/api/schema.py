"""drf-spectacular hooks: what the generated OpenAPI schema cannot infer from the serializers."""

from __future__ import annotations

from orders.api.serializers import OrderCancelInputSerializer, OrderCreateInputSerializer, RiskCheckInputSerializer

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
