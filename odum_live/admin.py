"""Helpers shared by the apps' admin modules (orders, positions, risk, venues).

Kept here, in the shared ``odum_live`` package, so that no app's admin imports another's and
the app dependencies keep pointing one way (DESIGN.md, "Apps").
"""

import json
from decimal import Decimal

from django import forms
from django.contrib import admin
from django.utils.html import format_html

from odum_live.decimals import plain_decimal

admin.site.site_header = "odum-live administration"
admin.site.site_title = "odum-live admin"
admin.site.index_title = "Risk limits, kill switches, orders and venues"


class ReadOnlyAdminMixin:
    """Make a ModelAdmin or inline view-only: no add, change or delete for anyone.

    For rows that only a service writes (orders, fills, events, positions, velocity buckets).
    """

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def format_decimal(value: Decimal | None) -> str:
    """Return ``value`` without the trailing zeros of NUMERIC(36,18) (``0.001``, not ``0.001000…``)."""
    return "-" if value is None else plain_decimal(value)  # "-": the admin's own empty value


def decimal_column(field_name: str, description: str | None = None):
    """Return a callable showing decimal ``field_name`` compactly, sortable by the field.

    Use it in ``list_display``, or as a ModelAdmin class attribute named in ``readonly_fields`` and
    the fieldsets of a read-only page (it is then called as a method, with the admin first).
    """

    @admin.display(description=description or field_name.replace("_", " "), ordering=field_name)
    def column(*args):
        return format_decimal(getattr(args[-1], field_name))

    column.__name__ = f"{field_name}_display"
    return column


def pretty_json(value) -> str:
    """Render a JSON value as an indented ``<pre>`` block for read-only admin fields."""
    if not value:
        return "—"
    text = json.dumps(value, indent=2, sort_keys=True)
    return format_html("<pre style='margin:0;white-space:pre-wrap'>{}</pre>", text)


class CompactDecimalInput(forms.NumberInput):
    """Number input showing a NUMERIC(36,18) value without trailing zeros (``10``, not ``10.000…``)."""

    def format_value(self, value):
        if isinstance(value, Decimal):
            return format_decimal(value)
        return super().format_value(value)


#: ``formfield_overrides`` for admins that edit decimals (limits, fees, instrument rules).
COMPACT_DECIMALS = {"widget": CompactDecimalInput}
