"""Query filters of ``GET /api/orders`` and the cursor pagination of order lists."""

from __future__ import annotations

import uuid

import django_filters
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils.dateparse import parse_datetime
from rest_framework.exceptions import NotFound
from rest_framework.exceptions import ValidationError as DrfValidationError
from rest_framework.pagination import CursorPagination

from odum_live.instruments import InstrumentKeyError, parse_instrument_key
from orders.models import Order


def _validate_instrument_key(value: str) -> None:
    try:
        parse_instrument_key(value)
    except InstrumentKeyError as exc:
        raise ValidationError(str(exc)) from None


class OrderFilter(django_filters.FilterSet):
    """Filters: status (repeatable), venue, instrument, strategy, side, created range, ``q`` search."""

    status = django_filters.MultipleChoiceFilter(
        choices=Order.Status.choices, help_text="Order status; repeat the parameter for several (status=ROUTED&status=FILLED)."
    )
    venue = django_filters.CharFilter(field_name="venue", help_text="Venue code the order was routed to, e.g. BINANCE-SPOT.")
    instrument = django_filters.CharFilter(
        method="filter_instrument", validators=[_validate_instrument_key],
        help_text="Canonical instrument key: matches the requested key or the listing the order was routed to.",
    )
    strategy = django_filters.CharFilter(field_name="strategy_id", help_text="Strategy id.")
    side = django_filters.ChoiceFilter(choices=Order.Side.choices, help_text="Order side.")
    created_after = django_filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="gte", help_text="Created at or after this time (ISO-8601, inclusive)."
    )
    created_before = django_filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="lt", help_text="Created before this time (ISO-8601, exclusive)."
    )
    q = django_filters.CharFilter(
        method="filter_q", max_length=128,
        help_text="Exact order id (UUID), operation_id or client_order_id.",
    )

    class Meta:
        model = Order
        fields: list[str] = []

    def filter_instrument(self, queryset, name, value):
        return queryset.filter(Q(instrument_key=value) | Q(routed_instrument_key=value))

    def filter_q(self, queryset, name, value):
        value = value.strip()
        condition = Q(operation_id=value) | Q(client_order_id=value)
        try:
            condition |= Q(id=uuid.UUID(value))
        except ValueError:
            pass
        return queryset.filter(condition)


class OrderCursorPagination(CursorPagination):
    """Cursor pages ordered newest first (``-created_at, -id``); ``page_size`` up to 500 (default 50)."""

    ordering = ("-created_at", "-id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

    def decode_cursor(self, request):
        """Decode the ``cursor`` parameter; a malformed one is a 400 naming ``cursor``.

        DRF decodes the position (a ``created_at``) unchecked and filters on it, so a tampered
        cursor would reach the database as an invalid timestamp (a 500); DRF's own refusal of an
        undecodable cursor is a 404 naming no field.
        """
        message = "invalid cursor: use the next / previous link of a page"
        try:
            cursor = super().decode_cursor(request)
        except NotFound:
            raise DrfValidationError({self.cursor_query_param: [message]}) from None
        if cursor is not None and cursor.position is not None:
            try:
                position = parse_datetime(cursor.position)
            except ValueError:
                position = None
            if position is None:
                raise DrfValidationError({self.cursor_query_param: [message]})
        return cursor
