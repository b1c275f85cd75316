"""Admin for venues and their instrument listings.

A venue's ``config`` names the environment variables that hold its credentials, never the
secrets (``Venue.clean`` refuses credential-looking keys that do not end in ``_env``); the admin
shows those names and whether each is set in this process, never a value. Superusers edit venue
configuration; anyone else holding ``venues.change_venue`` (the risk manager) may only switch a
venue on or off. Switching a venue (``enabled`` or ``mode``) needs a reason, kept with the user and
the time in the venue's history (django-simple-history), as for the risk limits and kill switches.
A venue that cannot trade in this release (an ``EXTERNAL_SDK`` venue: no such adapter ships yet,
:mod:`venues.availability`) cannot be saved enabled; switching one off is always allowed.
"""

import os

from django import forms
from django.contrib import admin
from django.db import models
from django.utils.html import format_html, format_html_join

from simple_history.admin import SimpleHistoryAdmin

from odum_live.admin import (
    COMPACT_DECIMALS,
    ChangeReasonAdminMixin,
    ChangeReasonModelForm,
    HistoryRevertPermissionMixin,
    ReadOnlyAdminMixin,
    decimal_column,
)
from odum_live.instruments import InstrumentKeyError, parse_instrument_key
from venues.availability import venue_unavailable_reason
from venues.models import Instrument, Venue


def credential_env_vars(config: dict) -> list[tuple[str, str]]:
    """Return ``(config key, environment variable name)`` for every ``*_env`` entry of ``config``.

    Nested dicts (e.g. a ``testnet`` section) are searched too; keys are given dotted.
    """
    found: list[tuple[str, str]] = []

    def walk(node: dict, prefix: str) -> None:
        for key, value in node.items():
            if isinstance(value, dict):
                walk(value, f"{prefix}{key}.")
            elif key.lower().endswith("_env") and isinstance(value, str):
                found.append((f"{prefix}{key}", value))

    walk(config or {}, "")
    return found


class InstrumentInline(ReadOnlyAdminMixin, admin.TabularInline):
    """The venue's listings (edit them on the instrument's own page)."""

    model = Instrument
    extra = 0
    fields = [
        "instrument_key", "venue_symbol", "nautilus_instrument_id", "tick_size_", "lot_size_", "min_notional_",
        "enabled",
    ]
    readonly_fields = fields
    show_change_link = True
    tick_size_ = decimal_column("tick_size", "tick size")
    lot_size_ = decimal_column("lot_size", "lot size")
    min_notional_ = decimal_column("min_notional", "min notional")


class VenueForm(ChangeReasonModelForm):
    """Venue form: switching the venue on or off, or its mode, needs a reason (kept in the history)."""

    reason_required_for = ("enabled", "mode")
    reason_required_message = "a reason is required to switch a venue (enabled, mode)"
    reason_help_text = ("Why the venue is switched (enabled, mode): required then; recorded with your user name "
                        "in the history. Optional for other changes.")

    class Meta:
        model = Venue
        fields = "__all__"

    def clean(self):
        """Refuse to save enabled a venue that cannot trade in this release, naming why (on ``enabled``).

        An error, not a warning: ``enabled`` says orders may go there, and for such a venue every order
        would be denied; a message after the save is gone with the next page, while the venue would
        stay red on ``/status`` and in ``manage.py status``. Saved disabled it can be prepared (fees,
        listings) until its adapter ships; switching an enabled one off is never refused.
        """
        data = super().clean()
        if not data.get("enabled") or any(name in self.fields and name not in data for name in ("kind", "adapter")):
            return data  # disabled, or kind / adapter invalid (their own errors stand)
        why = venue_unavailable_reason(kind=data.get("kind", self.instance.kind),
                                       adapter=data.get("adapter", self.instance.adapter))
        if why:
            code = data.get("code") or self.instance.code
            self.add_error("enabled", f"venue {code}: {why}: it cannot trade, so it cannot be enabled; save it "
                                      "disabled until its adapter ships")
        return data


@admin.register(Venue)
class VenueAdmin(ChangeReasonAdminMixin, HistoryRevertPermissionMixin, SimpleHistoryAdmin):
    """Venues: mode, fees, latency estimate, adapter config (env var names only), enabled switch.

    No switch in the list (``list_editable``): it could not ask for the reason.
    """

    form = VenueForm

    list_display = [
        "code",
        "name",
        "kind",
        "adapter",
        "mode",
        "enabled",
        "can_trade",
        decimal_column("maker_fee_bps", "maker fee (bps)"),
        decimal_column("taker_fee_bps", "taker fee (bps)"),
        decimal_column("latency_ms", "latency (ms)"),
    ]
    formfield_overrides = {models.DecimalField: COMPACT_DECIMALS}
    list_filter = ["kind", "mode", "enabled"]
    search_fields = ["code", "name", "adapter"]
    inlines = [InstrumentInline]
    fields = [
        "code",
        "name",
        "kind",
        "adapter",
        "mode",
        "enabled",
        "can_trade",
        "maker_fee_bps",
        "taker_fee_bps",
        "latency_ms",
        "config",
        "credentials",
        "updated_at",
        "change_reason",
    ]
    history_list_display = ["mode", "enabled"]
    # Shown read-only (to all but superusers), a decimal goes through its compact display: 10, not 10.000…
    maker_fee_bps_ = decimal_column("maker_fee_bps", "maker fee (bps)")
    taker_fee_bps_ = decimal_column("taker_fee_bps", "taker fee (bps)")
    latency_ms_ = decimal_column("latency_ms", "latency (ms)")
    _compact = {"maker_fee_bps": "maker_fee_bps_", "taker_fee_bps": "taker_fee_bps_", "latency_ms": "latency_ms_"}

    def get_fields(self, request, obj=None):
        """Superusers edit the decimals; others see them read-only, compact (``maker_fee_bps_`` …)."""
        if request.user.is_superuser:
            return list(self.fields)
        return [self._compact.get(name, name) for name in self.fields]

    def get_readonly_fields(self, request, obj=None):
        """Superusers edit everything but the code of an existing venue; others only ``enabled`` (and the reason).

        The model fields stay named among the read-only ones (their compact displays too): a history revert
        may not restore them (:class:`~odum_live.admin.HistoryRevertPermissionMixin`).
        """
        if request.user.is_superuser:
            fixed = ["code"] if obj is not None else []
            return [*fixed, "can_trade", "credentials", "updated_at"]
        return [*(f for f in self.fields if f not in ("enabled", "change_reason")), *self._compact.values()]

    @admin.display(description="can trade in this release")
    def can_trade(self, obj: Venue | None) -> str:
        """``yes``, or ``no:`` and why not (:mod:`venues.availability`), e.g. no adapter ships for it."""
        if obj is None or not obj.kind:
            return "—"
        why = venue_unavailable_reason(kind=obj.kind, adapter=obj.adapter)
        return f"no: {why}" if why else "yes"

    @admin.display(description="credentials (environment variables)")
    def credentials(self, obj: Venue | None) -> str:
        """List the env var names the config refers to and whether each is set; never the values."""
        pairs = credential_env_vars(obj.config if obj else {})
        if not pairs:
            return "none configured"
        return format_html(
            "<ul style='margin:0'>{}</ul>",
            format_html_join(
                "",
                "<li><code>{}</code> → <code>{}</code> ({})</li>",
                ((key, name, "set" if os.environ.get(name) else "not set") for key, name in pairs),
            ),
        )


class InstrumentForm(forms.ModelForm):
    """Instrument form that derives the venue symbol and NautilusTrader id from the key when left blank."""

    class Meta:
        model = Instrument
        fields = "__all__"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("venue_symbol", "nautilus_instrument_id"):
            if name in self.fields:
                self.fields[name].required = False
                self.fields[name].help_text = "Leave blank to derive it from the instrument key."

    def clean(self):
        """Fill blank venue symbol / NautilusTrader id from the canonical key (odum_live.instruments)."""
        data = super().clean()
        text = data.get("instrument_key")
        if not text:
            return data
        try:
            key = parse_instrument_key(text)
            if not data.get("venue_symbol"):
                data["venue_symbol"] = key.venue_symbol()
            if not data.get("nautilus_instrument_id"):
                data["nautilus_instrument_id"] = key.nautilus_instrument_id()
        except InstrumentKeyError as exc:
            self.add_error("instrument_key", str(exc))
        return data


@admin.register(Instrument)
class InstrumentAdmin(admin.ModelAdmin):
    """Listings with the venue's trading rules (tick, lot, min notional) and their id mappings."""

    form = InstrumentForm
    formfield_overrides = {models.DecimalField: COMPACT_DECIMALS}
    list_display = [
        "instrument_key",
        "venue",
        "venue_symbol",
        "nautilus_instrument_id",
        decimal_column("tick_size", "tick"),
        decimal_column("lot_size", "lot"),
        decimal_column("min_notional", "min notional"),
        "enabled",
    ]
    list_filter = ["venue", "enabled", "is_inverse", "quote_currency"]
    search_fields = ["instrument_key", "equivalence_key", "venue_symbol", "nautilus_instrument_id"]
    readonly_fields = ["equivalence_key", "updated_at"]
    list_select_related = ["venue"]
