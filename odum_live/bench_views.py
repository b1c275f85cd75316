"""Benchmark-only endpoint: the *floor* that bench/api_submit.py compares order submission to.

Registered only when ``ODUM_BENCH_ENDPOINTS=1`` (never in production). It goes through the same
middleware, authentication (knox Bearer token), throttling and JSON rendering as
``POST /api/orders`` and does exactly one INSERT, so the ratio between the two isolates the cost
of the order pipeline itself (validation, idempotency, routing, risk, order + events).
"""

from django.utils import timezone
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from orders.models import OrderEvent


class FloorInput(serializers.Serializer):
    order_id = serializers.UUIDField(help_text="An existing order to attach the benchmark event to.")


class BenchFloorView(APIView):
    """``POST /api/bench/floor``: insert one ``OrderEvent`` row and return its id (201)."""

    def post(self, request):
        data = FloorInput(data=request.data)
        data.is_valid(raise_exception=True)
        event = OrderEvent.objects.create(
            order_id=data.validated_data["order_id"],
            type=OrderEvent.Type.IGNORED,
            payload={"bench": "floor"},
            actor=request.user.username,
            ts=timezone.now(),
        )
        return Response({"id": event.id}, status=status.HTTP_201_CREATED)
