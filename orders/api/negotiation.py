"""Content negotiation of the API: a ``format`` it cannot render is a 400 naming the parameter."""

from rest_framework import serializers
from rest_framework.negotiation import DefaultContentNegotiation


class ContentNegotiation(DefaultContentNegotiation):
    """DRF's negotiation, except for a ``?format=`` no renderer of the view serves.

    DRF raises ``Http404`` there (its format suffixes are paths: ``/orders.xml``); the API takes the
    format from the query string only (``URL_FORMAT_OVERRIDE``), so an existing path answered 404
    "Not found.", a status its list, positions and risk check do not document. Now it is a 400
    ``invalid`` naming ``format`` and the formats served (the API's views: ``json``), as any other
    bad parameter value. The schema and docs views keep DRF's (``odum_live/urls.py``).
    """

    def filter_renderers(self, renderers, format):
        """Return the renderers of ``format``; raise ``ValidationError`` (400) when there is none."""
        served = [renderer for renderer in renderers if renderer.format == format]
        if not served:
            formats = ", ".join(sorted({renderer.format for renderer in renderers}))
            raise serializers.ValidationError({"format": [
                f"{format!r} is not served here: use {formats}, or leave the parameter out"]})
        return served
