"""Helpers shared by the apps' admin modules (orders, positions, risk, venues).

Kept here, in the shared ``odum_live`` package, so that no app's admin imports another's and
the app dependencies keep pointing one way (DESIGN.md, "Apps").
"""

import json
from decimal import Decimal

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
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


class ReasonField(forms.CharField):
    """A free-text reason for a change (a textarea), stripped: whitespace alone counts as none.

    Parameters
    ----------
    message : str
        The error when the reason is required and missing (or blank).
    **kwargs
        As ``forms.CharField`` (``required``, ``max_length``, ``help_text`` …).
    """

    def __init__(self, *, message: str = "a reason is required", **kwargs):
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": 3, "cols": 60}))
        super().__init__(error_messages={"required": message}, **kwargs)


class ChangeReasonModelForm(forms.ModelForm):
    """ModelForm with ``change_reason``, stored with the change in its django-simple-history record.

    Optional, unless one of ``reason_required_for`` (field names) is changed against the stored row:
    then ``reason_required_message`` is the error. Compared with the row as stored, not with the
    form's initial values, so a revert from the history page needs the reason too. A new row is not
    a change of any field. The admin passes the reason on with :class:`ChangeReasonAdminMixin`.
    """

    #: simple-history's ``history_change_reason`` column holds at most this many characters.
    CHANGE_REASON_MAX_LENGTH = 100

    change_reason = ReasonField(
        required=False, max_length=CHANGE_REASON_MAX_LENGTH,
        help_text="Optional note stored with this change in the history (e.g. ticket number).",
    )
    reason_required_for: tuple[str, ...] = ()
    reason_required_message = "a reason is required for this change"
    reason_help_text = ""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.reason_help_text:
            self.fields["change_reason"].help_text = self.reason_help_text

    def reason_required_changes(self) -> list[str]:
        """Return the fields of ``reason_required_for`` this form changes against the stored row."""
        names = [name for name in self.reason_required_for if name in self.fields and name in self.cleaned_data]
        manager = type(self.instance)._default_manager
        stored = manager.filter(pk=self.instance.pk).values(*names).first() if names and self.instance.pk else None
        return [name for name in names if stored is not None and self.cleaned_data[name] != stored[name]]

    def clean(self):
        """Require ``change_reason`` when a field of ``reason_required_for`` changes."""
        data = super().clean()
        if not data.get("change_reason") and self.reason_required_changes():
            self.add_error("change_reason", self.reason_required_message)
        return data


class HistoryRevertPermissionMixin:
    """SimpleHistoryAdmin mixin: a revert may change only what the user may change on the row's page.

    django-simple-history 3.13's ``history_form_view`` lets anyone who may *view* the row open a
    historical version and saves whatever form is posted there: a viewer could raise or disable a
    risk limit, or switch a venue off. And it saves the *version*, read-only fields included: a
    risk manager, who may only switch a venue on or off, took a venue back to an old version's
    ``mode`` (live), ``config`` and fees. A POST is refused (403) unless ``has_change_permission``
    allows it for the current row and the version equals the current row in every field the user's
    change form keeps read-only (``get_readonly_fields``); viewing a version stays open to viewers.
    """

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        """Show a historical version; a POST (a revert) needs the change permission on the row and
        may not change a field the user cannot edit.

        Raises
        ------
        django.core.exceptions.PermissionDenied
            A POST by a user without change permission, or one that would change a read-only field
            (the error names the fields).
        """
        if request.method == "POST":
            current = self.get_object(request, unquote(object_id))
            if not self.has_change_permission(request, current):
                raise PermissionDenied("changing this row needs the change permission")
            locked = self._locked_fields_changed(request, current, version_id)
            if locked:
                raise PermissionDenied(
                    f"this version differs from the current row in {', '.join(locked)}, which you may not "
                    "change: edit the row on its own page instead")
        return super().history_form_view(request, object_id, version_id, extra_context)

    def _locked_fields_changed(self, request, current, version_id) -> list[str]:
        # The editable model fields the user's change form shows read-only whose value the version would restore.
        if current is None:
            return []  # no such row: simple-history answers 404
        version = current.history.filter(history_id=version_id).first()
        if version is None:
            return []
        readonly = set(self.get_readonly_fields(request, current))
        return [field.name for field in type(current)._meta.concrete_fields
                if field.editable and not field.primary_key and field.name in readonly
                and field.value_from_object(version.instance) != field.value_from_object(current)]


class ChangeReasonAdminMixin:
    """ModelAdmin mixin: pass the form's ``change_reason`` on to the history record (django-simple-history)."""

    def save_model(self, request, obj, form, change):
        """Save, with the form's change reason (if any) as the history record's reason."""
        reason = form.cleaned_data.get("change_reason") if hasattr(form, "cleaned_data") else ""
        if reason:
            obj._change_reason = reason
        super().save_model(request, obj, form, change)
