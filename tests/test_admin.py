"""The admin as a risk manager uses it: pages render, kill switches need a reason, history records who."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone
from knox.auth import TokenAuthentication
from knox.models import AuthToken
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.test import APIRequestFactory

from orders.models import Fill, Order, OrderEvent
from positions.models import ReconciliationFinding
from risk.models import OpenOrderExposure, RiskLimit, Scope, TradingState
from tests.orders.factories import OrderFactory, StrategyFactory, UserFactory, algorithm_family
from tests.orders.web_fixtures import role_group
from tests.positions.factories import PositionFactory
from tests.risk.factories import RiskLimitFactory, TradingStateFactory
from tests.venues.factories import InstrumentFactory, VenueFactory
from venues.models import Instrument, Venue


def staff_user(username: str, group: str):
    """A staff user (admin access) in role ``group``."""
    user = UserFactory(username=username, is_staff=True)
    user.groups.add(role_group(group))  # made again when a transaction=True test flushed the tables
    return user


@pytest.fixture
def risk_manager(db):
    return staff_user("rm", "risk manager")


@pytest.fixture
def rm_client(client, risk_manager):
    client.force_login(risk_manager)
    return client


@pytest.fixture
def data(db):
    """One row of every admin-registered model (plus a fill and events on the order)."""
    venue = VenueFactory()
    instrument = InstrumentFactory(venue=venue)
    strategy = StrategyFactory(id="demo")
    order = OrderFactory(strategy=strategy)
    fill = Fill.objects.create(
        order=order,
        venue="BINANCE-SPOT",
        instrument_key=order.routed_instrument_key,
        venue_trade_id="T-1",
        side="BUY",
        price=Decimal("40000.01"),
        quantity=Decimal("0.004"),
        fee=Decimal("0.16"),
        fee_currency="USDT",
        ts_event=timezone.now(),
    )
    event = OrderEvent.objects.create(
        order=order, type=OrderEvent.Type.ROUTED, status_before="PENDING", status_after="ROUTED",
        payload={"venue": "BINANCE-SPOT"}, actor="router", ts=timezone.now(),
    )
    position = PositionFactory(strategy=strategy, quantity=Decimal("0.004"), avg_entry_price=Decimal("40000.01"))
    limit = RiskLimitFactory(kind=RiskLimit.Kind.MAX_ORDER_QUANTITY, value=Decimal("10"))
    switch = TradingStateFactory(scope=Scope.STRATEGY, scope_key="demo", reason="seeded")
    token, _ = AuthToken.objects.create(user=strategy.service_account)
    finding = ReconciliationFinding.objects.create(
        kind="EXTERNAL_FILL", venue=venue.code, instrument_key=instrument.instrument_key, oms_quantity=Decimal("0"),
        venue_quantity=Decimal("-0.25"), side="SELL", quantity=Decimal("0.25"), price=Decimal("41000.5"),
        trade_id="T-77", client_order_id="hand-placed-1", filled_at=timezone.now(), found_at=timezone.now())
    exposure = OpenOrderExposure.objects.create(
        strategy_id="demo", instrument_key=instrument.instrument_key, side="BUY", venue=venue.code,
        equivalence_key=instrument.equivalence_key, leaves_quantity=Decimal("0.01"),
    )
    return {
        "venues.venue": venue,
        "venues.instrument": instrument,
        "orders.strategy": strategy,
        "orders.order": order,
        "orders.fill": fill,
        "orders.orderevent": event,
        "positions.position": position,
        "risk.risklimit": limit,
        "risk.tradingstate": switch,
        "knox.authtoken": token,
        "risk.openorderexposure": exposure,
        "positions.reconciliationfinding": finding,
    }


def admin_url(label: str, view: str, *args) -> str:
    app, model = label.split(".")
    return reverse(f"admin:{app}_{model}_{view}", args=args)


# --- pages render -----------------------------------------------------------------------------
@pytest.mark.django_db
@pytest.mark.parametrize(
    "label",
    [
        "venues.venue",
        "venues.instrument",
        "orders.strategy",
        "orders.order",
        "orders.fill",
        "orders.orderevent",
        "positions.position",
        "risk.risklimit",
        "risk.tradingstate",
        "risk.openorderexposure",
        "positions.reconciliationfinding",
        "knox.authtoken",
    ],
)
def test_admin_pages_render_for_risk_manager(rm_client, data, label):
    obj = data[label]

    changelist = rm_client.get(admin_url(label, "changelist"))
    change = rm_client.get(admin_url(label, "change", obj.pk))
    history = rm_client.get(admin_url(label, "history", obj.pk))

    assert changelist.status_code == 200, label
    assert change.status_code == 200, label
    assert history.status_code == 200, label


@pytest.mark.django_db
def test_admin_index_lists_every_app_for_risk_manager(rm_client, data):
    response = rm_client.get(reverse("admin:index"))

    assert response.status_code == 200
    for name in ("Risk limits", "Trading states", "Orders", "Positions", "Venues", "Instruments", "Strategies"):
        assert name in response.content.decode(), name


@pytest.mark.django_db
def test_admin_non_staff_trader_is_sent_to_login(client, db):
    trader = UserFactory(username="t1")
    trader.groups.add(role_group("trader"))
    client.force_login(trader)

    response = client.get(admin_url("orders.order", "changelist"))

    assert response.status_code == 302 and reverse("admin:login") in response["Location"]


# --- risk limits: list editing and history ----------------------------------------------------
@pytest.mark.django_db
def test_risk_limit_change_is_recorded_with_user_and_before_after(rm_client, risk_manager, data):
    limit = data["risk.risklimit"]
    form = {
        "scope": limit.scope, "scope_key": "", "kind": limit.kind, "value": "2.5", "enabled": "on",
        "description": "tightened", "change_reason": "TICKET-7",
    }

    response = rm_client.post(admin_url("risk.risklimit", "change", limit.pk), form)

    assert response.status_code == 302, response.content.decode()[:2000]
    latest = limit.history.first()
    assert latest.value == Decimal("2.5") and latest.history_user == risk_manager
    assert latest.history_change_reason == "TICKET-7"
    page = rm_client.get(admin_url("risk.risklimit", "history", limit.pk)).content.decode()
    assert "rm" in page and "TICKET-7" in page
    assert "10.000000000000000000" in page and "2.500000000000000000" in page  # before → after


@pytest.mark.django_db
def test_risk_limit_changelist_edits_value_and_enabled_in_place(rm_client, risk_manager, data):
    limit = data["risk.risklimit"]
    formset = {
        "form-TOTAL_FORMS": "1", "form-INITIAL_FORMS": "1", "form-MIN_NUM_FORMS": "0", "form-MAX_NUM_FORMS": "1000",
        "form-0-id": str(limit.pk), "form-0-value": "3", "_save": "Save",
    }  # "enabled" left out: the checkbox is cleared

    response = rm_client.post(admin_url("risk.risklimit", "changelist"), formset)

    assert response.status_code == 302
    limit.refresh_from_db()
    assert (limit.value, limit.enabled) == (Decimal("3"), False)
    assert limit.history.first().history_user == risk_manager


def _history_form_post(client, label: str, obj, form: dict):
    # POST the form of the row's latest history version (the "Revert" page of django-simple-history).
    app, model = label.split(".")
    url = reverse(f"admin:{app}_{model}_simple_history", args=[obj.pk, obj.history.first().history_id])
    return client.post(url, form)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("label", "form"),
    [
        ("risk.risklimit", {"scope": "GLOBAL", "scope_key": "", "kind": "MAX_ORDER_QUANTITY", "value": "99999",
                            "enabled": "", "change_reason": "raise it"}),
        ("venues.venue", {"enabled": "", "change_reason": "switch it off"}),
    ],
)
def test_history_revert_by_viewer_is_refused_and_changes_nothing(client, data, label, form):
    # Arrange: a viewer may see a row's history, never save a version of it
    client.force_login(staff_user("v", "viewer"))
    obj = data[label]
    before = type(obj).objects.filter(pk=obj.pk).values().get()

    # Act
    response = _history_form_post(client, label, obj, form)

    # Assert
    assert response.status_code == 403
    assert type(obj).objects.filter(pk=obj.pk).values().get() == before


@pytest.mark.django_db
def test_risk_limit_history_revert_by_risk_manager_saves_with_user_and_reason(rm_client, risk_manager, data):
    # Arrange
    limit = data["risk.risklimit"]
    form = {"scope": "GLOBAL", "scope_key": "", "kind": "MAX_ORDER_QUANTITY", "value": "4", "enabled": "on",
            "change_reason": "back to 4"}

    # Act
    response = _history_form_post(rm_client, "risk.risklimit", limit, form)

    # Assert
    assert response.status_code == 302
    latest = limit.history.first()
    assert (latest.value, latest.history_user, latest.history_change_reason) == (Decimal("4"), risk_manager,
                                                                                 "back to 4")


@pytest.mark.django_db
def test_risk_limit_changelist_filters_and_searches(rm_client, data):
    RiskLimitFactory(scope=Scope.STRATEGY, scope_key="demo", kind=RiskLimit.Kind.PRICE_COLLAR_BPS, value=200)
    url = admin_url("risk.risklimit", "changelist")

    by_scope = rm_client.get(url, {"scope__exact": "STRATEGY"})
    by_kind = rm_client.get(url, {"kind__exact": "PRICE_COLLAR_BPS"})
    by_key = rm_client.get(url, {"q": "demo"})

    for response in (by_scope, by_kind, by_key):
        assert response.status_code == 200
        assert list(response.context["cl"].result_list.values_list("scope_key", flat=True)) == ["demo"]


# --- kill switches ----------------------------------------------------------------------------
def _action(client, action: str, switch: TradingState, **extra):
    return client.post(
        admin_url("risk.tradingstate", "changelist"),
        {"action": action, "_selected_action": [str(switch.pk)], **extra},
    )


@pytest.mark.django_db
def test_kill_switch_halt_first_asks_for_a_reason(rm_client, data):
    switch = data["risk.tradingstate"]

    response = _action(rm_client, "halt", switch)

    assert response.status_code == 200
    page = response.content.decode()
    assert 'name="reason"' in page and "STRATEGY" in page and "Halted" in page
    switch.refresh_from_db()
    assert switch.state == TradingState.State.ACTIVE


@pytest.mark.django_db
@pytest.mark.parametrize("reason", ["", "   "])
def test_kill_switch_halt_without_reason_is_refused(rm_client, data, reason):
    switch = data["risk.tradingstate"]

    response = _action(rm_client, "halt", switch, apply="Set Halted", reason=reason)

    assert response.status_code == 200
    assert "a reason is required to change a kill switch" in response.content.decode()
    switch.refresh_from_db()
    assert (switch.state, switch.reason) == (TradingState.State.ACTIVE, "seeded")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "action,state",
    [("halt", TradingState.State.HALTED), ("reduce_only", TradingState.State.REDUCING)],
)
def test_kill_switch_action_with_reason_sets_state_through_service(rm_client, risk_manager, data, action, state):
    switch = data["risk.tradingstate"]

    response = _action(rm_client, action, switch, apply="Set", reason="  venue incident #12  ")

    assert response.status_code == 302
    switch.refresh_from_db()
    assert (switch.state, switch.reason, switch.changed_by) == (state, "venue incident #12", "rm")
    latest = switch.history.first()
    assert latest.state == state and latest.history_user == risk_manager
    page = rm_client.get(admin_url("risk.tradingstate", "history", switch.pk)).content.decode()
    assert "venue incident #12" in page


@pytest.mark.django_db
def test_kill_switch_resume_sets_active(rm_client, data):
    switch = data["risk.tradingstate"]
    _action(rm_client, "halt", switch, apply="Set", reason="drill")

    response = _action(rm_client, "resume", switch, apply="Set", reason="drill over")

    assert response.status_code == 302
    switch.refresh_from_db()
    assert (switch.state, switch.reason) == (TradingState.State.ACTIVE, "drill over")


@pytest.mark.django_db(transaction=True)  # the sweep runs once the action's transaction commits, as in production
def test_kill_switch_halt_action_cancels_the_scope_orders_after_commit_and_says_how_many(rm_client, data):
    # Arrange: the strategy "demo" has a ROUTED order (data), plus one working at the venue
    switch = data["risk.tradingstate"]
    working = OrderFactory(strategy=data["orders.strategy"], status="ACCEPTED")

    # Act
    response = _action(rm_client, "halt", switch, apply="Set", reason="runaway strategy")

    # Assert
    assert response.status_code == 302
    statuses = [Order.objects.get(pk=o.pk).status for o in (data["orders.order"], working)]
    assert statuses == ["CANCELED", "PENDING_CANCEL"]
    page = rm_client.get(response["Location"]).content.decode()
    assert "STRATEGY:demo: 1 order canceled, 1 order asked to cancel at the venue" in page


@pytest.mark.django_db(transaction=True)  # the sweep runs once the action's transaction commits, as in production
def test_kill_switch_halt_action_on_a_halted_switch_sweeps_again(rm_client, data):
    # Arrange: halted already; an order of the scope is working anyway (a cancel that had failed, say)
    switch = data["risk.tradingstate"]
    _action(rm_client, "halt", switch, apply="Set", reason="runaway strategy")
    working = OrderFactory(strategy=data["orders.strategy"], status="ACCEPTED")

    # Act: halt again, as the README says to retry
    response = _action(rm_client, "halt", switch, apply="Set", reason="retry the sweep")

    # Assert: the working order is asked to cancel, the page says so, and the history has the new reason
    assert Order.objects.get(pk=working.pk).status == "PENDING_CANCEL"
    page = rm_client.get(response["Location"]).content.decode()
    assert "STRATEGY:demo: 0 orders canceled, 1 order asked to cancel at the venue" in page
    switch.refresh_from_db()
    assert (switch.state, switch.reason) == (TradingState.State.HALTED, "retry the sweep")


@pytest.mark.django_db(transaction=True)  # the sweep runs once the change form's transaction commits
def test_trading_state_change_form_halt_reports_what_it_canceled(rm_client, data):
    # Arrange
    switch = data["risk.tradingstate"]
    url = admin_url("risk.tradingstate", "change", switch.pk)

    # Act
    response = rm_client.post(url, {"state": TradingState.State.HALTED, "reason": "runaway strategy"}, follow=True)

    # Assert
    assert Order.objects.get(pk=data["orders.order"].pk).status == "CANCELED"
    assert "STRATEGY:demo: 1 order canceled, 0 orders asked to cancel at the venue" in response.content.decode()


@pytest.mark.django_db
def test_kill_switch_viewer_cannot_use_actions(client, data):
    client.force_login(staff_user("v", "viewer"))
    switch = data["risk.tradingstate"]

    changelist = client.get(admin_url("risk.tradingstate", "changelist"))
    _action(client, "halt", switch, apply="Set", reason="not allowed")

    assert changelist.status_code == 200 and 'value="halt"' not in changelist.content.decode()
    switch.refresh_from_db()
    assert switch.state == TradingState.State.ACTIVE


@pytest.mark.django_db
def test_trading_state_add_form_requires_reason(rm_client, risk_manager, db):
    VenueFactory(code="BINANCE-SPOT")
    url = admin_url("risk.tradingstate", "add")
    form = {"scope": Scope.VENUE, "scope_key": "BINANCE-SPOT", "state": TradingState.State.HALTED}

    refused = rm_client.post(url, {**form, "reason": " "})
    accepted = rm_client.post(url, {**form, "reason": "maintenance window"})

    assert refused.status_code == 200
    assert "a reason is required for every trading-state change" in refused.content.decode()
    assert accepted.status_code == 302
    created = TradingState.objects.get(scope=Scope.VENUE, scope_key="BINANCE-SPOT")
    assert (created.state, created.reason, created.changed_by) == ("HALTED", "maintenance window", "rm")
    assert created.history.first().history_user == risk_manager


@pytest.mark.django_db
@pytest.mark.parametrize(
    "label,kind",
    [("risk.tradingstate", None), ("risk.risklimit", RiskLimit.Kind.MAX_ORDER_NOTIONAL)],
)
def test_scope_key_must_name_an_existing_venue(rm_client, db, label, kind):
    form = {"scope": Scope.VENUE, "scope_key": "BINANSE-SPOT", "state": "HALTED", "reason": "typo test",
            "kind": kind or "", "value": "1000", "enabled": "on"}

    response = rm_client.post(admin_url(label, "add"), form)

    assert response.status_code == 200
    assert "no venue with code &#x27;BINANSE-SPOT&#x27;" in response.content.decode()
    assert not TradingState.objects.exists() and not RiskLimit.objects.exists()


@pytest.mark.django_db
def test_trading_state_change_form_asks_for_a_fresh_reason(rm_client, data):
    switch = data["risk.tradingstate"]
    url = admin_url("risk.tradingstate", "change", switch.pk)

    page = rm_client.get(url).content.decode()
    refused = rm_client.post(url, {"state": TradingState.State.REDUCING, "reason": ""})
    accepted = rm_client.post(url, {"state": TradingState.State.REDUCING, "reason": "exposure review"})

    assert "seeded" in page  # the current reason is shown as help, not pre-filled
    assert refused.status_code == 200
    assert accepted.status_code == 302
    switch.refresh_from_db()
    assert (switch.state, switch.reason, switch.scope_key) == ("REDUCING", "exposure review", "demo")


@pytest.mark.django_db
def test_trading_state_cannot_be_deleted_or_reverted(rm_client, data):
    switch = data["risk.tradingstate"]
    version = switch.history.first()

    delete = rm_client.post(admin_url("risk.tradingstate", "delete", switch.pk), {"post": "yes"})
    revert = rm_client.post(
        reverse("admin:risk_tradingstate_simple_history", args=[switch.pk, version.history_id]),
        {"state": "HALTED", "reason": "sneaky"},
    )
    version_url = reverse("admin:risk_tradingstate_simple_history", args=[switch.pk, version.history_id])
    view_version = rm_client.get(version_url)

    assert delete.status_code == 403
    assert revert.status_code == 403
    assert view_version.status_code == 200
    assert TradingState.objects.filter(pk=switch.pk, state="ACTIVE").exists()


# --- orders: inspection only ------------------------------------------------------------------
@pytest.mark.django_db
def test_order_admin_is_read_only_with_fills_and_events_inline(rm_client, data):
    order = data["orders.order"]
    url = admin_url("orders.order", "change", order.pk)

    page = rm_client.get(url).content.decode()
    post = rm_client.post(url, {"status": "FILLED", "filled_quantity": "1"})
    add = rm_client.get(admin_url("orders.order", "add"))

    assert "T-1" in page and "ROUTED" in page and "router" in page  # fill and event inline
    for field in ("status", "filled_quantity", "venue_order_id", "risk_result", "routing_decision", "quantity"):
        assert f'name="{field}"' not in page, field
    assert 'name="_save"' not in page
    assert post.status_code == 403 and add.status_code == 403
    order.refresh_from_db()
    assert order.status == Order.Status.ROUTED and order.filled_quantity == 0


@pytest.mark.django_db
def test_order_admin_gives_an_algorithm_parents_fees_per_currency(rm_client):
    # Arrange: a TWAP parent whose primary and second slice paid USDT (0.1 + 0.15), first slice BNB (0.15)
    parent, _ = algorithm_family(StrategyFactory(id="demo"), fee_currencies=("USDT", "BNB", "USDT"))

    # Act
    page = rm_client.get(admin_url("orders.order", "change", parent.pk)).content.decode()

    # Assert: the family's fees per currency, not the stored plain sum (0.4) as one amount
    assert '<div class="readonly">0.25 USDT + 0.15 BNB</div>' in page
    assert '<div class="readonly">0.4</div>' not in page


#: A NUMERIC(36,18) value as stored, trailing zeros and all (``0.005000000000000000``).
EIGHTEEN_PLACES = re.compile(r"\d\.\d{18}(?!\d)")


@pytest.mark.django_db
def test_order_admin_page_of_an_algorithm_parent_shows_figures_without_trailing_zeros(rm_client):
    # Arrange: a TWAP parent of 0.02 filled by its primary and two slices (fills of 0.005 @ 40000 …)
    parent, _ = algorithm_family(StrategyFactory(id="demo"))

    # Act
    page = rm_client.get(admin_url("orders.order", "change", parent.pk)).content.decode()

    # Assert: the title, the fills and the child orders give 0.02, 0.005 @ 40000, never 0.020000000000000000
    assert EIGHTEEN_PLACES.findall(page) == []
    assert f"{parent.client_order_id} BUY 0.02 BINANCE-SPOT:SPOT_PAIR:BTC-USDT [FILLED]" in page
    cells = re.findall(r'<td class="field-(quantity_|price_)">\s*<p>([^<]*)</p>', page)
    assert ("quantity_", "0.005") in cells and ("price_", "40000") in cells


@pytest.mark.django_db
def test_venue_admin_page_for_a_risk_manager_shows_fees_and_listing_rules_without_trailing_zeros(rm_client, data):
    # Act: the venue's page, read-only but for "enabled" (fees, latency, the listings' tick and lot sizes)
    page = rm_client.get(admin_url("venues.venue", "change", "BINANCE-SPOT")).content.decode()

    # Assert
    assert EIGHTEEN_PLACES.findall(page) == []
    assert '<div class="readonly">10</div>' in page  # maker and taker fee (bps)


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["id", "operation_id", "client_order_id"])
def test_order_admin_search_by_identifier(rm_client, data, field):
    order = data["orders.order"]
    OrderFactory(strategy=order.strategy)  # another order that must not match

    response = rm_client.get(admin_url("orders.order", "changelist"), {"q": str(getattr(order, field))})

    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [order]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "params",
    [{"status__exact": "ROUTED"}, {"venue": "BINANCE-SPOT"}, {"strategy__id__exact": "demo"},
     {"side__exact": "BUY"}, {"exec_algorithm__exact": "NORMAL"}],
)
def test_order_admin_filters(rm_client, data, params):
    other = OrderFactory(strategy=StrategyFactory(id="other"), side="SELL", venue="BINANCE-FUTURES",
                         status=Order.Status.PENDING, exec_algorithm="TWAP")

    response = rm_client.get(admin_url("orders.order", "changelist"), params)

    assert response.status_code == 200
    results = list(response.context["cl"].result_list)
    assert data["orders.order"] in results and other not in results


# --- venues, strategies, tokens ---------------------------------------------------------------
@pytest.mark.django_db
def test_venue_admin_shows_env_var_names_never_values(rm_client, data, monkeypatch):
    monkeypatch.setenv("BINANCE_API_KEY", "value-that-must-not-appear")
    Venue.objects.filter(pk="BINANCE-SPOT").update(
        config={"api_key_env": "BINANCE_API_KEY", "api_secret_env": "BINANCE_API_SECRET"}
    )
    monkeypatch.delenv("BINANCE_API_SECRET", raising=False)

    page = rm_client.get(admin_url("venues.venue", "change", "BINANCE-SPOT")).content.decode()

    assert "<code>api_key_env</code> → <code>BINANCE_API_KEY</code> (set)" in page
    assert "<code>api_secret_env</code> → <code>BINANCE_API_SECRET</code> (not set)" in page
    assert "value-that-must-not-appear" not in page


_NO_INLINES = {"instruments-TOTAL_FORMS": "0", "instruments-INITIAL_FORMS": "0"}


def _superuser_venue_form(venue, **changes) -> dict:
    # The superuser's change form of ``venue`` as posted unchanged, with ``changes``.
    form = {"name": venue.name, "kind": venue.kind, "adapter": venue.adapter, "mode": venue.mode, "enabled": "on",
            "maker_fee_bps": "10", "taker_fee_bps": "10", "latency_ms": "5", "config": "{}", **_NO_INLINES}
    form.update(changes)
    return form


@pytest.mark.django_db
def test_venue_admin_risk_manager_may_only_switch_enabled(rm_client, data):
    url = admin_url("venues.venue", "change", "BINANCE-SPOT")

    page = rm_client.get(url).content.decode()
    response = rm_client.post(
        url,
        {"enabled": "", "adapter": "hacked", "maker_fee_bps": "0", "change_reason": "venue outage", **_NO_INLINES},
    )

    assert 'name="enabled"' in page and 'name="adapter"' not in page and 'name="config"' not in page
    assert response.status_code == 302
    venue = Venue.objects.get(pk="BINANCE-SPOT")
    assert venue.enabled is False and venue.adapter == "binance_spot" and venue.maker_fee_bps == Decimal("10")


@pytest.mark.django_db
@pytest.mark.parametrize("reason", ["", "   "])
def test_venue_admin_switch_off_without_reason_is_refused(rm_client, data, reason):
    url = admin_url("venues.venue", "change", "BINANCE-SPOT")

    response = rm_client.post(url, {"enabled": "", "change_reason": reason, **_NO_INLINES})

    assert response.status_code == 200
    assert "a reason is required to switch a venue (enabled, mode)" in response.content.decode()
    assert Venue.objects.get(pk="BINANCE-SPOT").enabled is True


@pytest.mark.django_db
def test_venue_admin_switch_off_with_reason_is_in_the_history_with_user_and_reason(rm_client, risk_manager, data):
    url = admin_url("venues.venue", "change", "BINANCE-SPOT")

    response = rm_client.post(url, {"enabled": "", "change_reason": "  exchange incident #4  ", **_NO_INLINES})

    assert response.status_code == 302
    latest = Venue.objects.get(pk="BINANCE-SPOT").history.first()
    assert (latest.enabled, latest.history_user, latest.history_change_reason) == (
        False, risk_manager, "exchange incident #4")
    page = rm_client.get(admin_url("venues.venue", "history", "BINANCE-SPOT")).content.decode()
    assert "exchange incident #4" in page and "rm" in page


@pytest.mark.django_db
def test_venue_admin_superuser_mode_change_needs_a_reason_other_edits_do_not(client, data):
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(root)
    venue = data["venues.venue"]
    url = admin_url("venues.venue", "change", venue.pk)

    fees = client.post(url, _superuser_venue_form(venue, taker_fee_bps="7"))
    refused = client.post(url, _superuser_venue_form(venue, mode="live"))
    live = client.post(url, _superuser_venue_form(venue, mode="live", change_reason="go-live approved"))

    assert fees.status_code == 302 and refused.status_code == 200 and live.status_code == 302
    assert "a reason is required to switch a venue (enabled, mode)" in refused.content.decode()
    latest = Venue.objects.get(pk=venue.pk).history.first()
    assert (latest.mode, latest.history_user, latest.history_change_reason) == ("live", root, "go-live approved")


@pytest.mark.django_db
def test_venue_admin_changelist_offers_no_switch_without_a_reason(rm_client, data):
    page = rm_client.get(admin_url("venues.venue", "changelist")).content.decode()

    assert 'name="form-0-enabled"' not in page


@pytest.mark.django_db
def test_venue_admin_revert_from_history_without_reason_is_refused(client, data):
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    venue = data["venues.venue"]
    client.post(admin_url("venues.venue", "change", venue.pk),
                _superuser_venue_form(venue, enabled="", change_reason="maintenance"))
    enabled_version = Venue.objects.get(pk=venue.pk).history.earliest()
    url = reverse("admin:venues_venue_simple_history", args=[venue.pk, enabled_version.history_id])

    refused = client.post(url, _superuser_venue_form(venue, enabled="on"))
    accepted = client.post(url, _superuser_venue_form(venue, enabled="on", change_reason="maintenance over"))

    assert refused.status_code == 200
    assert "a reason is required to switch a venue (enabled, mode)" in refused.content.decode()
    assert accepted.status_code == 302
    latest = Venue.objects.get(pk=venue.pk).history.first()
    assert (latest.enabled, latest.history_change_reason) == (True, "maintenance over")


@pytest.mark.django_db
def test_venue_history_revert_by_risk_manager_cannot_restore_fields_they_may_not_edit(rm_client, data):
    # Arrange: the venue went live with fees of 2 bps, then a superuser took it back to paper
    venue = data["venues.venue"]
    venue.mode, venue.maker_fee_bps, venue.config = Venue.Mode.LIVE, Decimal("2"), {"api_key_env": "LIVE_KEY"}
    venue.save()
    live_version = Venue.objects.get(pk=venue.pk).history.first()
    venue.mode, venue.maker_fee_bps, venue.config = Venue.Mode.PAPER, Decimal("10"), {}
    venue.save()
    before = Venue.objects.filter(pk=venue.pk).values().get()
    url = reverse("admin:venues_venue_simple_history", args=[venue.pk, live_version.history_id])

    # Act: the risk manager (who may switch a venue on or off, nothing else) saves the live version
    response = rm_client.post(url, {"enabled": "on", "change_reason": "back as it was", **_NO_INLINES})

    # Assert: refused, naming what they may not change; the venue is untouched (still paper)
    assert response.status_code == 403
    assert "mode" in response.content.decode() and "config" in response.content.decode()
    assert Venue.objects.filter(pk=venue.pk).values().get() == before


@pytest.mark.django_db
def test_venue_admin_superuser_config_with_a_secret_is_refused(client, data):
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    venue = data["venues.venue"]
    form = {
        "name": venue.name, "kind": venue.kind, "adapter": venue.adapter, "mode": venue.mode, "enabled": "on",
        "maker_fee_bps": "10", "taker_fee_bps": "10", "latency_ms": "5",
        "config": '{"api_key": "abc123"}', "instruments-TOTAL_FORMS": "0", "instruments-INITIAL_FORMS": "0",
    }

    response = client.post(admin_url("venues.venue", "change", venue.pk), form)

    assert response.status_code == 200
    assert "looks like a credential" in response.content.decode()


NO_DERIBIT_ADAPTER = ("venue DERIBIT: adapter &#x27;deribit&#x27; (EXTERNAL_SDK) is not available in this release: "
                      "it cannot trade, so it cannot be enabled; save it disabled until its adapter ships")


def _new_deribit_form(**changes) -> dict:
    # The superuser's add form of an EXTERNAL_SDK Deribit venue, with ``changes``.
    form = {"code": "DERIBIT", "name": "Deribit", "kind": "EXTERNAL_SDK", "adapter": "deribit", "mode": "paper",
            "enabled": "on", "maker_fee_bps": "0", "taker_fee_bps": "5", "latency_ms": "20", "config": "{}",
            **_NO_INLINES}
    form.update(changes)
    return form


@pytest.mark.django_db
def test_venue_admin_adding_an_enabled_venue_without_adapter_is_refused_naming_it(client, data):
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))

    refused = client.post(admin_url("venues.venue", "add"), _new_deribit_form())
    saved = client.post(admin_url("venues.venue", "add"), _new_deribit_form(enabled=""))

    assert refused.status_code == 200 and NO_DERIBIT_ADAPTER in refused.content.decode()
    assert saved.status_code == 302
    assert Venue.objects.get(pk="DERIBIT").enabled is False  # prepared, listings may follow, it cannot trade


@pytest.mark.django_db
def test_venue_admin_risk_manager_switching_on_a_venue_without_adapter_is_refused(rm_client, data):
    VenueFactory(code="DERIBIT", kind=Venue.Kind.EXTERNAL_SDK, adapter="deribit", enabled=False)
    url = admin_url("venues.venue", "change", "DERIBIT")

    response = rm_client.post(url, {"enabled": "on", "change_reason": "go live on Deribit", **_NO_INLINES})

    assert response.status_code == 200 and NO_DERIBIT_ADAPTER in response.content.decode()
    assert Venue.objects.get(pk="DERIBIT").enabled is False


@pytest.mark.django_db
def test_venue_admin_pages_say_whether_each_venue_can_trade_in_this_release(rm_client, data):
    VenueFactory(code="DERIBIT", kind=Venue.Kind.EXTERNAL_SDK, adapter="deribit", enabled=False)

    changelist = rm_client.get(admin_url("venues.venue", "changelist")).content.decode()
    deribit = rm_client.get(admin_url("venues.venue", "change", "DERIBIT")).content.decode()
    binance = rm_client.get(admin_url("venues.venue", "change", "BINANCE-SPOT")).content.decode()

    reason = "no: adapter &#x27;deribit&#x27; (EXTERNAL_SDK) is not available in this release"
    assert reason in changelist and reason in deribit
    assert "Can trade in this release" in deribit and '<div class="readonly">yes</div>' in binance
    assert "not available in this release" not in binance


@pytest.mark.django_db
def test_venue_admin_switching_off_an_enabled_venue_without_adapter_is_allowed(rm_client, data):
    # An enabled row from before (or a data load): switching it off must never be refused
    VenueFactory(code="DERIBIT", kind=Venue.Kind.EXTERNAL_SDK, adapter="deribit", enabled=True)
    url = admin_url("venues.venue", "change", "DERIBIT")

    response = rm_client.post(url, {"enabled": "", "change_reason": "no adapter yet", **_NO_INLINES})

    assert response.status_code == 302
    assert Venue.objects.get(pk="DERIBIT").enabled is False


@pytest.mark.django_db
def test_strategy_admin_shows_service_account_traders_and_tokens(rm_client, data):
    strategy = data["orders.strategy"]
    trader = UserFactory(username="alice")
    strategy.traders.add(trader)

    changelist = rm_client.get(admin_url("orders.strategy", "changelist")).content.decode()
    change = rm_client.get(admin_url("orders.strategy", "change", strategy.pk)).content.decode()

    assert "svc-demo" in changelist and "alice" in changelist
    assert "1 token(s)" in change and "issue_api_token demo" in change


@pytest.mark.django_db
def test_knox_admin_delete_revokes_the_token(rm_client, data):
    strategy = data["orders.strategy"]
    instance, token = AuthToken.objects.create(user=strategy.service_account, expiry=timedelta(days=1))
    request = APIRequestFactory().get("/api/orders", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert TokenAuthentication().authenticate(request)[0] == strategy.service_account

    response = rm_client.post(admin_url("knox.authtoken", "delete", instance.pk), {"post": "yes"})

    assert response.status_code == 302
    with pytest.raises(AuthenticationFailed):
        TokenAuthentication().authenticate(APIRequestFactory().get("/", HTTP_AUTHORIZATION=f"Bearer {token}"))


@pytest.mark.django_db
def test_instrument_admin_derives_symbol_and_nautilus_id_from_key(client, db):
    client.force_login(UserFactory(username="root2", is_staff=True, is_superuser=True))
    VenueFactory(code="BINANCE-FUTURES", adapter="binance_futures")
    form = {
        "venue": "BINANCE-FUTURES", "instrument_key": "BINANCE-FUTURES:PERPETUAL:BTC-USDT@LIN",
        "venue_symbol": "", "nautilus_instrument_id": "", "base_currency": "BTC", "quote_currency": "USDT",
        "settlement_currency": "USDT", "tick_size": "0.1", "lot_size": "0.001", "min_notional": "100",
        "contract_multiplier": "1", "enabled": "on",
    }

    response = client.post(admin_url("venues.instrument", "add"), form)

    assert response.status_code == 302, response.content.decode()[:3000]
    instrument = Instrument.objects.get(instrument_key="BINANCE-FUTURES:PERPETUAL:BTC-USDT@LIN")
    assert (instrument.venue_symbol, instrument.nautilus_instrument_id) == ("BTCUSDT", "BTCUSDT-PERP.BINANCE")
    assert instrument.equivalence_key == "PERPETUAL:BTC-USDT@LIN"


def test_knox_admin_new_token_is_shown_once_but_never_stored_in_a_cookie(client, data):
    # Arrange: a superuser issues a token for a strategy's service account in the admin
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    account = data["orders.strategy"].service_account

    # Act: the add form, then the page it redirects to (which shows the token once)
    added = client.post(reverse("admin:knox_authtoken_add"), {"user": account.pk})
    shown = client.get(added["Location"])

    # Assert: the token is shown, and no cookie carried it (messages are kept server-side, in the session)
    assert added.status_code == 302
    token_messages = [str(m) for m in shown.context["messages"] if str(m).startswith("TOKEN ")]
    assert len(token_messages) == 1
    token = token_messages[0].removeprefix("TOKEN ")
    assert all(token not in morsel.value for morsel in added.cookies.values())
    assert "messages" not in added.cookies
