"""Query filters of ``GET /api/orders`` and the cursor pagination of order lists."""

from __future__ import annotations

import uuid
from datetime import datetime
from datetime import timezone as dt_timezone

import django_filters
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import extend_schema_field
from rest_framework.exceptions import NotFound
from rest_framework.exceptions import ValidationError as DrfValidationError
from rest_framework.pagination import CursorPagination

from odum_live.fields import NulCharacterError, refuse_nul
from odum_live.instruments import InstrumentKeyError, parse_instrument_key
from orders.models import Order
from orders.services.request import OPERATION_ID_MAX_LENGTH


#: Longest ``q``: the longest value it can match, an operation id (128 characters); a longer one is a 400.
Q_MAX_LENGTH = OPERATION_ID_MAX_LENGTH
_Q_HELP = "Exact order id (UUID), operation_id or client_order_id."


def _validate_instrument_key(value: str) -> None:
    try:
        parse_instrument_key(value)
    except InstrumentKeyError as exc:
        # The reason quotes the key: passed as a parameter, a "%" in it is not a format directive
        # (django-filter %-formats every message, which raised on "100%": a 500).
        raise ValidationError("%(reason)s", params={"reason": str(exc)}) from None


def _validate_utc_range(value: datetime) -> None:
    # A time whose UTC falls outside years 1 to 9999 cannot be compared with created_at: SQLite's
    # adapter converts it to UTC first (OverflowError: a 500).
    try:
        value.astimezone(dt_timezone.utc)
    except OverflowError:
        raise ValidationError("%(reason)s", params={
            "reason": f"must fall within years 1 to 9999 in UTC, got {value.isoformat()}"}) from None


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
        field_name="created_at", lookup_expr="gte", validators=[_validate_utc_range],
        help_text="Created at or after this time (ISO-8601, inclusive; UTC if no offset). Later than "
                  "created_before is a 400 naming both; equal is an empty range.",
    )
    created_before = django_filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="lt", validators=[_validate_utc_range],
        help_text="Created before this time (ISO-8601, exclusive; UTC if no offset). Earlier than "
                  "created_after is a 400 naming both.",
    )
    q = django_filters.CharFilter(
        method="filter_q", max_length=Q_MAX_LENGTH, help_text=_Q_HELP,
    )

    class Meta:
        model = Order
        fields: list[str] = []

    def is_valid(self) -> bool:
        """Validate the filters; a value holding the NUL character is refused with the project's reason alone,
        and ``created_after`` later than ``created_before`` is refused under both.

        PostgreSQL refuses a NUL in a query parameter. Django's form answered it with its own
        "Null characters are not allowed." or a "not a valid choice / date/time" quoting the value;
        the reason is :data:`odum_live.fields.NUL_REASON`, as for every other input
        (:func:`odum_live.fields.refuse_nul`).

        An inverted created range matches no order by construction: it was a 200 with an empty list,
        which a client (or a person on the Orders page) reads as "no orders" rather than as its own
        mistake. Equal bounds are valid (an empty half-open range ``[t, t)``).
        """
        valid = super().is_valid()
        if not self.is_bound:
            return valid
        for name in self.filters:
            try:
                for value in self.data.getlist(name, []):
                    refuse_nul(value, field=name)
            except NulCharacterError as exc:
                self.form.errors.pop(name, None)
                self.form.add_error(name, exc.reason)
        self._refuse_inverted_created_range()
        return self.form.is_valid()

    def _refuse_inverted_created_range(self) -> None:
        after = self.form.cleaned_data.get("created_after")
        before = self.form.cleaned_data.get("created_before")
        if after is None or before is None or after <= before:
            return
        after, before = (value.astimezone(dt_timezone.utc).isoformat() for value in (after, before))
        self.form.add_error("created_after", f"must not be later than created_before: {after} is after {before}, "
                                             "a range no order can match")
        self.form.add_error("created_before", f"must not be earlier than created_after: {before} is before {after}, "
                                              "a range no order can match")

    def filter_instrument(self, queryset, name, value):
        return queryset.filter(Q(instrument_key=value) | Q(routed_instrument_key=value))

    # Else the schema gives no bound; a schema given here replaces the description too.
    @extend_schema_field({"type": "string", "maxLength": Q_MAX_LENGTH, "description": _Q_HELP})
    def filter_q(self, queryset, name, value):
        value = value.strip()
        condition = Q(operation_id=value) | Q(client_order_id=value)
        try:
            condition |= Q(id=uuid.UUID(value))
        except ValueError:
            pass
        return queryset.filter(condition)


class OrderApiFilter(OrderFilter):
    """:class:`OrderFilter` for ``GET /api/orders``: an empty value of a filter with a fixed form, and a
    parameter that is neither a filter nor the pagination's, are a 400 naming the parameter.

    "created_before=" was read as no bound at all, listing every order; so was a filter under another
    name ("instrument_key=", the order field's name: the filter is "instrument"), which listed the
    orders of every instrument. The Orders page keeps :class:`OrderFilter`, whose form submits its
    unfilled fields empty. An empty ``status`` is already no valid choice.
    """

    #: Filters whose values have a fixed form (a time, a side).
    NOT_EMPTY = ("side", "created_after", "created_before")

    def is_valid(self) -> bool:
        """Validate the filters (django-filter's form); refuse an empty value of :attr:`NOT_EMPTY` and an
        unknown parameter (the pagination's ``cursor`` and ``page_size`` and DRF's ``format`` are known)."""
        super().is_valid()
        for name in self.NOT_EMPTY:
            if "" in self.data.getlist(name, []):
                self.form.add_error(name, "must not be empty: leave the parameter out for no filter")
        known = [*self.filters, *_OTHER_PARAMETERS]
        for name in sorted(set(self.data) - set(known)):
            # Not a form field: add_error() refuses the name, so the error goes in the form's errors itself.
            self.form.errors[name] = self.form.error_class([
                f"is not a parameter of the order list (parameters: {', '.join(known)})"])
        return self.form.is_valid()


class OrderCursorPagination(CursorPagination):
    """Cursor pages ordered newest first (``-created_at, -id``); ``page_size`` up to 500 (default 50).

    A keyset cursor on the pair ``(created_at, id)``: the cursor's position is ``<created_at>|<id>``
    of the last order shown, and the next page is the orders strictly after that pair. DRF's own
    cursor positions on ``created_at`` alone plus an offset among equal timestamps, which skips
    orders when paging back (``previous``) across orders sharing a ``created_at``.

    A snapshot walk, not a feed: ``created_at`` is taken inside the submit transaction, so an order
    committed just after a page was read may sort before that page's cursor and not appear on a later
    page (nor on ``previous``). Clients that follow new orders use the order stream or poll
    ``created_after`` with an overlap (README, "List orders").
    """

    ordering = ("-created_at", "-id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
    page_size_query_description = "Orders per page: a positive integer (default 50); above 500 it is taken as 500."

    def get_page_size(self, request):
        """Return the requested page size (default 50, at most 500); one that is not a positive integer is a 400.

        DRF falls back to the default page size for ``page_size=abc`` or ``0``: a request the API
        would accept without doing what it asked.
        """
        value = request.query_params.get(self.page_size_query_param)
        if value is None:
            return self.page_size
        if not (value.isascii() and value.isdigit()) or int(value) == 0:  # digits only: no sign, "_" or spaces
            raise DrfValidationError({self.page_size_query_param: [
                f"must be a positive integer (at most {self.max_page_size} orders a page), got {value!r}"]})
        return min(int(value), self.max_page_size)

    def get_schema_operation_parameters(self, view):
        """DRF's ``cursor`` and ``page_size`` parameters; ``page_size`` with its minimum of 1."""
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {**parameter["schema"], "minimum": 1}
        return parameters

    def _get_position_from_instance(self, instance, ordering):
        return f"{instance.created_at.isoformat()}|{instance.pk}"

    def decode_cursor(self, request):
        """Decode the ``cursor`` parameter; a malformed one is a 400 naming ``cursor``.

        The position is checked here (a tampered one would otherwise reach the database as an
        invalid timestamp: a 500); DRF's own refusal of an undecodable cursor is a 404 naming no field.
        """
        message = "invalid cursor: use the next / previous link of a page"
        try:
            cursor = super().decode_cursor(request)
        except NotFound:
            raise DrfValidationError({self.cursor_query_param: [message]}) from None
        self._keyset = None
        if cursor is not None and cursor.position is not None:
            created_at, _, order_id = cursor.position.partition("|")
            try:
                created_at = parse_datetime(created_at)
                order_id = uuid.UUID(order_id) if order_id else None  # None: a cursor of created_at alone
            except ValueError:
                created_at = None
            if created_at is None:
                raise DrfValidationError({self.cursor_query_param: [message]})
            self._keyset = (created_at, order_id)
        return cursor

    def _after_keyset(self, older: bool) -> Q:
        # The orders strictly after the cursor's (created_at, id) in the direction of travel.
        created_at, order_id = self._keyset
        op = "lt" if older else "gt"
        condition = Q(**{f"created_at__{op}": created_at})
        if order_id is not None:
            condition |= Q(created_at=created_at, **{f"id__{op}": order_id})
        return condition

    def paginate_queryset(self, queryset, request, view=None):
        """DRF's ``CursorPagination.paginate_queryset`` with the position filter on ``(created_at, id)``."""
        self.request = request
        self.page_size = self.get_page_size(request)
        if not self.page_size:
            return None
        self.base_url = request.build_absolute_uri()
        self.ordering = self.get_ordering(request, queryset, view)
        self.cursor = self.decode_cursor(request)
        if self.cursor is None:
            (offset, reverse, current_position) = (0, False, None)
        else:
            (offset, reverse, current_position) = self.cursor
        queryset = queryset.order_by(*(_reverse(self.ordering) if reverse else self.ordering))
        if current_position is not None:
            # Newest-first order: forward goes to older orders, a reversed cursor to newer ones.
            queryset = queryset.filter(self._after_keyset(older=not reverse))
        results = list(queryset[offset:offset + self.page_size + 1])
        self.page = list(results[:self.page_size])
        if len(results) > len(self.page):
            has_following_position = True
            following_position = self._get_position_from_instance(results[-1], self.ordering)
        else:
            has_following_position = False
            following_position = None
        if reverse:
            self.page = list(reversed(self.page))
            self.has_next = (current_position is not None) or (offset > 0)
            self.has_previous = has_following_position
            if self.has_next:
                self.next_position = current_position
            if self.has_previous:
                self.previous_position = following_position
        else:
            self.has_next = has_following_position
            self.has_previous = (current_position is not None) or (offset > 0)
            if self.has_next:
                self.next_position = following_position
            if self.has_previous:
                self.previous_position = current_position
        if (self.has_previous or self.has_next) and self.template is not None:
            self.display_page_controls = True
        return self.page


#: Query parameters of the order list besides its filters: the pagination's and DRF's format override.
_OTHER_PARAMETERS = (OrderCursorPagination.cursor_query_param, OrderCursorPagination.page_size_query_param,
                     "format")


def _reverse(ordering):
    return tuple(field[1:] if field.startswith("-") else f"-{field}" for field in ordering)
