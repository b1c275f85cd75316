"""The traders' order pages: Execute (order ticket), Orders (list), order detail, cancel.

Thin views (CONVENTIONS.md): parse the request, call a selector or service
(:mod:`orders.web.ticket` wraps the same submit / what-if services as the API), render. One
template per page with its partials included; ``request.htmx`` only chooses whether the partial
or the page is rendered. The live updates come over ``/ws/live/`` (:mod:`orders.web.live`), which
renders the same partials.

Roles: every page needs a login. Who may submit and cancel is the API's policy,
:meth:`orders.selectors.OrderAccess.trade_refusal`: submitting (and the what-if) needs
``orders.add_order``, cancelling ``orders.change_order`` (traders, risk managers) — and, for both,
the right to trade the order's strategy. Viewers read only: a submit or cancel from them is a 403
that shows the reason. Orders outside the user's scope are a 404.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from odum_live.fields import NulCharacterError, refuse_nul
from odum_live.instruments import InstrumentKeyError, parse_instrument_key
from orders.api.filters import OrderFilter
from orders.formatting import cli_command, order_block, what_if_block
from orders.models import Order
from orders.selectors import (
    order_access_for,
    order_get_detail,
    order_get_visible,
    order_rows,
    order_with_family_fills,
)
from orders.services import OrderNotCancelable, order_cancel
from orders.web.ticket import (
    ALGORITHM_PARAMS,
    PARAM_KINDS,
    Ticket,
    TicketError,
    new_operation_id,
    strategies_tradable_by,
    ticket_forbidden,
    ticket_submit,
    ticket_what_if,
)
from venues.availability import venue_unavailable_reason
from venues.models import Instrument, Venue

#: Orders per page of the Orders page.
PAGE_SIZE = 50
#: The Orders page's filter fields (orders.api.filters.OrderFilter) by the labels its form shows.
FILTER_LABELS = {"q": "Order id / operation id", "status": "Status", "venue": "Venue", "instrument": "Instrument",
                 "strategy": "Strategy", "created_after": "Created from (UTC)",
                 "created_before": "Created before (UTC)"}
#: Filters the page honours from its URL (the API's) but has no field for.
OTHER_FILTER_LABELS = {"side": "Side"}
ANY = "ANY"


# -- Execute --------------------------------------------------------------------------------------
def _instrument_choices(venue: str) -> list[str]:
    listings = Instrument.objects.filter(enabled=True, venue__enabled=True).order_by("instrument_key")
    if venue and venue != ANY:
        try:
            refuse_nul(venue, field="venue")
        except NulCharacterError:  # no venue code holds one: nothing is listed for it
            return []
        return list(listings.filter(venue_id=venue).values_list("instrument_key", flat=True))
    keys = []
    for key in listings.values_list("instrument_key", flat=True):
        try:
            keys.append(str(parse_instrument_key(key).with_venue(ANY)))
        except InstrumentKeyError:
            continue
    return sorted(set(keys))


def _ticket_context(request, ticket: Ticket | None = None, **extra) -> dict:
    user = request.user
    # (code, why it cannot trade in this release or ""): the ticket offers the others, and names these disabled.
    venues = [(v.code, venue_unavailable_reason(kind=v.kind, adapter=v.adapter))
              for v in Venue.objects.filter(enabled=True).order_by("code")]
    if ticket is None:
        strategies = strategies_tradable_by(user)
        instruments = _instrument_choices(next((code for code, why in venues if not why), ANY))
        ticket = Ticket(values={
            "strategy_id": strategies[0].id if strategies else "", "instrument_key": instruments[0] if instruments else "",
            "side": "BUY", "order_type": "MARKET", "quantity": "", "price": "", "time_in_force": "GTC",
            "expire_time": "", "exec_algorithm": "NORMAL", "operation_id": new_operation_id()})
    venue = request.POST.get("venue") or request.GET.get("venue") or _venue_of(ticket.values["instrument_key"])
    return {
        "ticket": ticket.values,
        "params": ticket.params,
        "venue": venue,
        "venues": venues,
        "instruments": _instrument_choices(venue),
        "strategies": strategies_tradable_by(user),
        "sides": ("BUY", "SELL"),
        "order_types": Order.OrderType.values,
        "tifs": Order.TimeInForce.values,
        "algorithms": Order.ExecAlgorithm.values,
        "algorithm_params": {name: sorted(ALGORITHM_PARAMS[name]) for name in Order.ExecAlgorithm.values},
        "param_names": list(PARAM_KINDS),
        "cli": cli_command(ticket.body()),
        "can_submit": order_access_for(user=user).may("submit"),
        "errors": {},
        **extra,
    }


def _venue_of(instrument_key: str) -> str:
    try:
        return parse_instrument_key(instrument_key).venue
    except InstrumentKeyError:
        return ANY


def _render_ticket(request, context: dict, *, status: int = 200) -> HttpResponse:
    template = "orders/_ticket.html" if request.htmx else "orders/execute.html"
    return render(request, template, context, status=status)


def _errors(exc: TicketError) -> dict:
    # Template-friendly: algorithm params flattened to "param_<name>" next to their inputs.
    errors = {}
    for name, reasons in exc.fields.items():
        if name == "exec_algorithm_params" and isinstance(reasons, dict):
            for param, messages in reasons.items():
                errors[f"param_{param}"] = messages
        elif name == "exec_algorithm_params":
            errors["exec_algorithm"] = reasons
        elif name in ("non_field_errors", "ticket"):
            errors["form"] = reasons
        else:
            errors[name] = reasons
    return errors


def _ticket_action(request, action, done):
    # POST a ticket to ``action`` (submit or what-if) as a trader; errors (a refusal too: 403)
    # re-render the ticket with the reasons under the fields.
    ticket = Ticket.from_mapping(request.POST)
    refusal = order_access_for(user=request.user).trade_refusal("submit")
    try:
        if refusal is not None:  # before validation: a viewer learns they may not submit, not a field error
            raise ticket_forbidden(refusal)
        result = action(user=request.user, ticket=ticket)
    except TicketError as exc:
        return _render_ticket(request, _ticket_context(request, ticket, errors=_errors(exc)), status=exc.status)
    return done(ticket, result)


@login_required
@require_http_methods(["GET", "POST"])
def execute(request):
    """``/live/execute``: the order ticket (GET); submit it (POST) through the API's submit service."""
    if request.method == "GET":
        return render(request, "orders/execute.html", _ticket_context(request))

    def submitted(ticket, result):
        # A new ticket for the next order (same fields, fresh operation id): a resubmit of this one
        # would replay the stored order; the result below keeps following this order live. Its status is
        # the live line's alone (orders/_ticket_status.html): the submit's (ROUTED) would go stale above it.
        following = Ticket(values={**ticket.values, "operation_id": new_operation_id()}, params=ticket.params)
        order_with_family_fills(order=result.order)  # the live line's first render: fees per currency
        context = _ticket_context(request, following, result=result,
                                  result_text=order_block(result.order, created=result.created, with_status=False))
        return _render_ticket(request, context, status=201 if result.created else 200)

    return _ticket_action(request, ticket_submit, submitted)


@login_required
@require_POST
def execute_what_if(request):
    """``/live/execute/what-if``: the full pre-trade result and routing decision, nothing placed."""
    def checked(ticket, result):
        return _render_ticket(request, _ticket_context(request, ticket, what_if=what_if_block(result),
                                                       what_if_passed=result.passed))

    return _ticket_action(request, ticket_what_if, checked)


@login_required
@require_GET
def execute_preview(request):
    """``/live/execute/preview``: the CLI command equivalent to the ticket as it is (text)."""
    return render(request, "orders/_cli_preview.html", {"cli": cli_command(Ticket.from_mapping(request.GET).body())})


@login_required
@require_GET
def execute_instruments(request):
    """``/live/execute/instruments?venue=``: the instrument picker's options for a venue (or ANY)."""
    venue = request.GET.get("venue") or ANY
    response = render(request, "orders/_instrument_select.html",
                      {"instruments": _instrument_choices(venue), "selected": request.GET.get("instrument_key", "")})
    response["HX-Trigger-After-Settle"] = "instruments-loaded"  # the CLI preview follows the new instrument
    return response


# -- Orders ---------------------------------------------------------------------------------------
@login_required
@require_GET
def orders_page(request):
    """``/live/orders``: the visible orders, newest first, filtered, searched, paginated, live."""
    access = order_access_for(user=request.user)
    filterset = OrderFilter(request.GET, queryset=order_rows(access=access))
    if filterset.is_valid():
        queryset, errors = filterset.qs, {}
    else:
        queryset, errors = Order.objects.none(), {k: " ".join(map(str, v)) for k, v in filterset.errors.items()}
    page = Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))
    orders = list(page.object_list)
    for order in orders:
        order.ui_can_cancel = access.may("cancel", order.strategy_id)
    query = request.GET.copy()
    query.pop("page", None)
    filters = filterset.form.cleaned_data if filterset.is_bound and not errors else {}
    context = {
        "page": page,
        "page_size": PAGE_SIZE,
        "orders": orders,
        "errors": errors,
        # Each form field's reason goes under it (htmx: out of band, the form being outside the table); the
        # others' (a filter of the URL alone) above the table, named by label.
        "field_errors": [(name, errors.get(name, "")) for name in FILTER_LABELS],
        "other_errors": [(name, OTHER_FILTER_LABELS.get(name, name), reasons) for name, reasons in errors.items()
                         if name not in FILTER_LABELS],
        "labels": FILTER_LABELS,
        "f": request.GET,
        "statuses": Order.Status.values,
        "selected_statuses": request.GET.getlist("status"),
        "venues": Venue.objects.order_by("code").values_list("code", flat=True),
        "strategies": _visible_strategies(access),
        "query": query.urlencode(),
        # New orders arriving live are added at the top only where they would be on a reload: the first page,
        # no refused filter (the page lists nothing), and no filter the page's script cannot match (it
        # matches status, venue, strategy and instrument).
        "live_insert": not errors and page.number == 1
                       and not any(filters.get(name) for name in ("q", "created_before", "side")),
    }
    template = "orders/_orders_table.html" if request.htmx else "orders/orders.html"
    return render(request, template, context)


def _visible_strategies(access) -> list[str]:
    from orders.models import Strategy

    qs = Strategy.objects.order_by("id").values_list("id", flat=True)
    if access.visible_strategy_ids is not None:
        qs = qs.filter(id__in=access.visible_strategy_ids)
    return list(qs)


@login_required
@require_GET
def order_detail_page(request, order_id):
    """``/live/orders/<id>``: timeline, fills, venue ids, risk checks, routing, child orders; live."""
    access = order_access_for(user=request.user)
    order = order_get_detail(access=access, order_id=order_id)
    if order is None:
        raise Http404(f"no order {order_id}")
    context = {"order": order, "can_cancel": access.may("cancel", order.strategy_id)}
    return render(request, "orders/order_detail.html", context)


def _same_site(request, url: str) -> str:
    # A form's "next" is followed only to this site (no open redirect), as Django's login view does.
    allowed = url_has_allowed_host_and_scheme(url, allowed_hosts={request.get_host()},
                                              require_https=request.is_secure())
    return url if allowed else ""


@login_required
@require_POST
def order_cancel_view(request, order_id):
    """``POST /live/orders/<id>/cancel``: cancel through :func:`orders.services.order_cancel`.

    htmx gets the partial its request targets, the reason of a refusal in it: the order detail's body
    (``orders/_detail.html``) for the detail page's button (target ``order-detail``), else the updated
    row (``orders/_row.html``) of the Orders page. A plain form post is redirected to its ``next`` when
    that is on this site, else to the order's page. 403 with the reason when
    :meth:`~orders.selectors.OrderAccess.trade_refusal` refuses, 404 outside the scope, 409 when the
    order cannot be canceled in its status, 400 for a ``reason`` holding a null character.
    """
    access = order_access_for(user=request.user)
    order = order_get_visible(access=access, order_id=order_id)
    if order is None:
        raise Http404(f"no order {order_id}")
    refusal = access.trade_refusal("cancel", order.strategy_id)
    if refusal is not None:
        if request.htmx:
            return _cancel_answer(request, access, order, error=str(refusal), status=403)
        raise PermissionDenied(str(refusal))
    try:
        reason = refuse_nul(request.POST.get("reason", "")[:500], field="reason")
    except NulCharacterError as exc:
        return HttpResponseBadRequest(str(exc), content_type="text/plain")
    status = 200
    try:
        from_page = "the order's page" if _from_detail(request) else "the Orders page"
        order = order_cancel(order=order, actor=request.user.get_username(),
                             reason=reason or f"canceled from {from_page}")
        error = ""
    except OrderNotCancelable as exc:
        order, error, status = order_get_visible(access=access, order_id=order_id), str(exc), 409
    if not request.htmx:
        return redirect(_same_site(request, request.POST.get("next", ""))
                        or reverse("live-order-detail", args=[order.id]))
    return _cancel_answer(request, access, order, error=error, status=status)


#: The htmx target of the order detail page's cancel button (templates/orders/_detail.html).
DETAIL_TARGET = "order-detail"


def _from_detail(request) -> bool:
    return bool(request.htmx) and request.htmx.target == DETAIL_TARGET


def _cancel_answer(request, access, order: Order, *, error: str, status: int) -> HttpResponse:
    # For htmx, the partial the cancel came from, re-read as its page renders it, the error beside the status:
    # the detail body (orders/_detail.html) or the Orders page's row (orders/_row.html).
    if _from_detail(request):
        order = order_get_detail(access=access, order_id=order.pk)
        template = "orders/_detail.html"
    else:
        order = order_rows(access=access).get(pk=order.pk)
        template = "orders/_row.html"
    context = {"order": order, "error": error, "can_cancel": access.may("cancel", order.strategy_id)}
    return render(request, template, context, status=status)
