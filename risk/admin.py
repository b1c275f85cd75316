"""Admin for the risk manager: risk limits and kill switches, with their full change history.

Both models use django-simple-history's ``SimpleHistoryAdmin``: the "History" page of a row lists
who changed it, when, the reason, and each field's value before → after.

Kill switches (``TradingState``) change only through ``risk.services.trading_state_set``, which
records the actor and the reason: the add/change form requires a reason, the changelist actions
Halt / Reduce only / Resume ask for one on a confirmation page, deletion is disabled (removing a
row would silently lift a halt) and so is reverting from the history page (it would bypass the
service).
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, transaction
from django.template.response import TemplateResponse
from simple_history.admin import SimpleHistoryAdmin

from odum_live.admin import (
    COMPACT_DECIMALS,
    ChangeReasonAdminMixin,
    ChangeReasonModelForm,
    HistoryRevertPermissionMixin,
    ReadOnlyAdminMixin,
    ReasonField,
    decimal_column,
)
from risk.models import OpenOrderExposure, RiskLimit, TradingState, VelocityBucket
from risk.services import HaltSweep, scope_key_validate, trading_state_set

_REASON_HELP = "Why the state is being set. Required; recorded with your user name in the history."


def _where(switch: TradingState) -> str:
    # "STRATEGY:demo", or "GLOBAL" for the key-less scope
    return f"{switch.scope}:{switch.scope_key}" if switch.scope_key else switch.scope


class ScopeKeyFormMixin:
    """Check that the scope key names an existing venue / strategy / canonical instrument key.

    A limit or kill switch keyed by a typo would silently cover nothing
    (``risk.services.scope_key_validate``). Runs only when scope and key are on the form (add).
    """

    def clean(self):
        data = super().clean()
        if "scope" in self.fields and "scope" in data and "scope_key" in data:
            try:
                data["scope_key"] = scope_key_validate(scope=data["scope"], scope_key=data["scope_key"])
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    self.add_error(field if field in self.fields else None, errors)
        return data


# --- Risk limits ------------------------------------------------------------------------------
class RiskLimitForm(ScopeKeyFormMixin, ChangeReasonModelForm):
    """Risk limit form with an optional change reason that goes into the history record."""

    class Meta:
        model = RiskLimit
        fields = ["scope", "scope_key", "kind", "value", "enabled", "description"]


@admin.register(RiskLimit)
class RiskLimitAdmin(ChangeReasonAdminMixin, HistoryRevertPermissionMixin, SimpleHistoryAdmin):
    """Pre-trade limits: filter by scope and kind, search by scope key, edit value/enabled in the list."""

    form = RiskLimitForm
    formfield_overrides = {models.DecimalField: COMPACT_DECIMALS}
    list_display = ["scope", "scope_key", "kind", "value", "enabled", "description", "updated_at"]
    list_display_links = ["scope", "scope_key", "kind"]
    list_editable = ["value", "enabled"]
    list_filter = ["scope", "kind", "enabled"]
    search_fields = ["scope_key", "description"]
    readonly_fields = ["updated_at"]
    history_list_display = ["value", "enabled"]


# --- Trading states (kill switches) -----------------------------------------------------------
class TradingStateForm(ScopeKeyFormMixin, forms.ModelForm):
    """Add/change form of a kill switch: every save needs a fresh, non-blank reason."""

    reason = ReasonField(message="a reason is required for every trading-state change", help_text=_REASON_HELP)

    class Meta:
        model = TradingState
        fields = ["scope", "scope_key", "state", "reason"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            # The stored reason explains the *previous* change; this change must give its own.
            self.initial["reason"] = ""
            self.fields["reason"].help_text = (
                f"{_REASON_HELP} Current reason: {self.instance.reason!r} by {self.instance.changed_by or 'unknown'}."
            )


class KillSwitchReasonForm(forms.Form):
    """The reason asked for on the Halt / Reduce only / Resume confirmation page."""

    reason = ReasonField(message="a reason is required to change a kill switch", help_text=_REASON_HELP)


@admin.register(TradingState)
class TradingStateAdmin(SimpleHistoryAdmin):
    """Kill switches per scope, set through ``risk.services.trading_state_set`` only."""

    form = TradingStateForm
    list_display = ["scope", "scope_key", "state", "reason", "changed_by", "updated_at"]
    list_display_links = ["scope", "scope_key"]
    list_filter = ["scope", "state"]
    search_fields = ["scope_key", "reason", "changed_by"]
    history_list_display = ["state", "changed_by"]  # the reason is the history's change reason
    actions = ["halt", "reduce_only", "resume"]
    confirmation_template = "admin/risk/tradingstate/set_state_confirmation.html"

    def get_readonly_fields(self, request, obj=None):
        """Scope and key are fixed once the switch exists; who changed it is set by the service."""
        if obj is None:
            return ["changed_by", "updated_at"]
        return ["scope", "scope_key", "changed_by", "updated_at"]

    def get_fields(self, request, obj=None):
        """Show the audit fields only on existing switches."""
        if obj is None:
            return ["scope", "scope_key", "state", "reason"]
        return ["scope", "scope_key", "state", "reason", "changed_by", "updated_at"]

    def has_delete_permission(self, request, obj=None):
        """Never: deleting a switch would lift a halt without a reason or a history entry."""
        return False

    def revert_disabled(self, request, obj=None):
        """Always: reverting from the history page would bypass the service and the reason."""
        return True

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        """Show a historical version read-only; a POST (a revert) is refused."""
        if request.method == "POST":
            raise PermissionDenied("trading states change only through the kill-switch actions or the change form")
        return super().history_form_view(request, object_id, version_id, extra_context)

    def save_model(self, request, obj, form, change):
        """Set the state through the risk service, which stores the reason, actor and history.

        A halt's cancel sweep runs once the admin's transaction commits; what it did is shown as a
        message on the page the admin redirects to.
        """
        saved = trading_state_set(
            scope=obj.scope,
            scope_key=obj.scope_key,
            state=obj.state,
            reason=form.cleaned_data["reason"],
            actor=request.user.get_username(),
            on_halt=lambda sweep: self._report_halt(request, sweep),
        )
        # The admin goes on with ``obj`` (change message, redirect): make it the saved row.
        obj.pk = saved.pk
        obj.reason = saved.reason
        obj.changed_by = saved.changed_by
        obj.updated_at = saved.updated_at
        obj._state.adding = False
        obj._state.db = saved._state.db

    def _report_halt(self, request, sweep: HaltSweep) -> None:
        # What a halt canceled; an order it could not cancel makes it an error, with the order named.
        self.message_user(request, f"Halted {sweep.summary()}", messages.SUCCESS if sweep.ok else messages.ERROR)

    # -- kill-switch actions -------------------------------------------------------------------
    @admin.action(description="Halt trading (kill switch) for the selected scopes…", permissions=["change"])
    def halt(self, request, queryset):
        """Ask for a reason, then set the selected scopes to HALTED."""
        return self._set_state(request, queryset, TradingState.State.HALTED)

    @admin.action(description="Reduce only for the selected scopes…", permissions=["change"])
    def reduce_only(self, request, queryset):
        """Ask for a reason, then set the selected scopes to REDUCING (only position-reducing orders)."""
        return self._set_state(request, queryset, TradingState.State.REDUCING)

    @admin.action(description="Resume trading (ACTIVE) for the selected scopes…", permissions=["change"])
    def resume(self, request, queryset):
        """Ask for a reason, then set the selected scopes to ACTIVE."""
        return self._set_state(request, queryset, TradingState.State.ACTIVE)

    def _set_state(self, request, queryset, state: str):
        """Render the confirmation page, or apply ``state`` once a valid reason was posted.

        Returns ``None`` after applying (the admin redirects back to the changelist) or the
        confirmation page (first visit, or the reason was missing). A halt's cancel sweeps run once
        every selected switch has committed; each reports what it canceled (an error message when
        an order could not be canceled). A switch already in ``state`` is left unchanged, except that
        halting a HALTED switch sets it again with the new reason and sweeps again (a retry).
        """
        switches = list(queryset.order_by("scope", "scope_key"))
        submitted = "apply" in request.POST
        form = KillSwitchReasonForm(request.POST if submitted else None)
        if submitted and form.is_valid():
            actor = request.user.get_username()
            changed, unchanged = [], []
            swept: list[HaltSweep] = []
            label = TradingState.State(state).label
            try:
                with transaction.atomic():  # all selected switches change, or none
                    for switch in switches:
                        # Halting a halted switch again sweeps its working orders again (a retry).
                        if switch.state == state and state != TradingState.State.HALTED:
                            unchanged.append(_where(switch))
                            continue
                        trading_state_set(
                            scope=switch.scope,
                            scope_key=switch.scope_key,
                            state=state,
                            reason=form.cleaned_data["reason"],
                            actor=actor,
                            on_halt=swept.append,
                        )
                        changed.append(_where(switch))
            except ValidationError as exc:
                problem = "; ".join(exc.messages)
                self.message_user(request, f"Nothing changed: {_where(switch)}: {problem}", messages.ERROR)
                return None
            if changed:
                self.message_user(request, f"{label}: {', '.join(changed)}.", messages.SUCCESS)
            if unchanged:
                self.message_user(request, f"Already {label}, left unchanged: {', '.join(unchanged)}.", messages.INFO)
            for sweep in swept:
                self._report_halt(request, sweep)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": f"Set {TradingState.State(state).label}: give a reason",
            "opts": self.model._meta,
            "switches": switches,
            "target_state": state,
            "target_label": TradingState.State(state).label,
            "form": form,
            "action": request.POST.get("action", ""),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "media": self.media,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.confirmation_template, context)


# --- Velocity buckets (read-only) -------------------------------------------------------------
@admin.register(VelocityBucket)
class VelocityBucketAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Order counts per scope and window, written only by the risk engine: inspection only."""

    list_display = ["scope_key", "window_start", "count"]
    search_fields = ["scope_key"]
    date_hierarchy = "window_start"
    show_full_result_count = False


# --- Open-order exposure totals (read-only) ---------------------------------------------------
@admin.register(OpenOrderExposure)
class OpenOrderExposureAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Risk-accepted open quantity per strategy, listing and side, kept by the risk engine.

    Inspection only: the engine and the order services keep these totals in the order's own
    transaction; ``risk.services.open_exposure_rebuild`` repairs drift.
    """

    list_display = [
        "strategy_id",
        "instrument_key",
        "side",
        "venue",
        decimal_column("leaves_quantity", "open quantity"),
        decimal_column("priced_value", "priced value (quote)"),
        "updated_at",
    ]
    list_filter = ["venue", "side", "strategy_id"]
    search_fields = ["strategy_id", "instrument_key", "equivalence_key"]
