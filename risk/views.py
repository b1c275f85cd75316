"""Kill-switch controls on the status page: halt / reduce only / resume one scope, with a reason.

``POST /risk/kill-switch`` (form fields ``scope``, ``scope_key``, ``state``, ``reason``) sets the
state through :func:`risk.services.trading_state_set` — the one way a kill switch changes — with
the logged-in user as the actor (a halt also cancels the scope's working orders, and the answer
says how many: :class:`risk.services.HaltSweep`); django-simple-history keeps every change (who, when, reason,
before → after), shown under the form and in the admin. Only holders of
``risk.change_tradingstate`` (the ``risk manager`` group) see the controls; anyone else posting
gets 403 — through htmx (a page opened before the permission was withdrawn), the reason shown
inside the card, which stays. An invalid request re-renders the controls with the errors, naming
the field (400).
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST
from django_htmx.http import reswap, retarget

from risk.models import Scope, TradingState
from risk.services import HaltSweep, trading_state_set

#: History entries shown under the controls.
HISTORY_LIMIT = 20
#: Form buttons: state → label.
ACTIONS = {TradingState.State.HALTED: "Halt", TradingState.State.REDUCING: "Reduce only",
           TradingState.State.ACTIVE: "Resume"}


def kill_switch_context(*, errors: dict | None = None, form: dict | None = None) -> dict:
    """Return the context of ``risk/_kill_switches.html``: states, recent history, scope choices."""
    from orders.models import Strategy
    from venues.models import Instrument, Venue

    keys = list(Instrument.objects.order_by("instrument_key").values_list("instrument_key", "equivalence_key"))
    scope_keys = {
        Scope.VENUE: list(Venue.objects.order_by("code").values_list("code", flat=True)),
        Scope.STRATEGY: list(Strategy.objects.order_by("id").values_list("id", flat=True)),
        Scope.INSTRUMENT: sorted({key for key, _ in keys} | {f"ANY:{eq}" for _, eq in keys if eq}),
    }
    return {
        "kill_switch": True,
        "states": list(TradingState.objects.order_by("scope", "scope_key")),
        "history": list(TradingState.history.order_by("-history_date", "-history_id")[:HISTORY_LIMIT]),
        "scopes": Scope.values, "scope_keys": scope_keys, "actions": ACTIONS,
        "errors": errors or {}, "form": form or {},
    }


@login_required
@require_POST
def kill_switch_set(request: HttpRequest) -> HttpResponse:
    """``POST /risk/kill-switch``: set one scope's trading state, attributed to the user."""
    if not request.user.has_perm("risk.change_tradingstate"):
        refusal = "kill switches need the permission risk.change_tradingstate (risk managers)"
        if request.htmx:
            return _refused_in_card(request, refusal)
        raise PermissionDenied(refusal)
    form = {name: request.POST.get(name, "") for name in ("scope", "scope_key", "state", "reason")}
    swept: list[HaltSweep] = []  # no transaction here: a halt's sweep has run when the service returns
    try:
        row = trading_state_set(scope=form["scope"], scope_key=form["scope_key"], state=form["state"],
                                reason=form["reason"], actor=request.user.get_username(), on_halt=swept.append)
    except ValidationError as exc:
        errors = {name: " ".join(texts) for name, texts in exc.message_dict.items()}
        return render(request, "risk/_kill_switches.html", kill_switch_context(errors=errors, form=form), status=400)
    done = f"{row} set by {row.changed_by}: {row.reason}"
    halt = swept[0] if swept else None
    if request.htmx:
        return render(request, "risk/_kill_switches.html", {**kill_switch_context(), "done": done, "halt": halt})
    messages.success(request, done)
    if halt is not None:
        (messages.success if halt.ok else messages.error)(request, halt.summary())
    return redirect("status")


def _refused_in_card(request: HttpRequest, refusal: str) -> HttpResponse:
    # htmx swaps 403 answers (base.html) into the form's target, the whole card: the reason goes into the
    # card's refusal slot instead, and the card — states and history the user may no longer read — stays.
    response = render(request, "403.html", {"exception": refusal}, status=403)
    return reswap(retarget(response, "#kill-switch-refusal"), "innerHTML")
