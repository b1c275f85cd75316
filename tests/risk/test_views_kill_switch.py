"""Kill-switch controls (POST /risk/kill-switch, risk/views.py): who may, what is recorded."""

import pytest

from orders.models import Order
from risk.models import TradingState
from tests.orders.factories import OrderFactory, StrategyFactory
from tests.orders.web_fixtures import logged_in, person_in
from tests.venues.factories import VenueFactory

pytestmark = pytest.mark.django_db
URL = "/risk/kill-switch"


@pytest.mark.parametrize("group", ["trader", "viewer"])
def test_kill_switch_post_without_permission_is_403_and_changes_nothing(group):
    response = logged_in(person_in(group)).post(URL, {"scope": "GLOBAL", "state": "HALTED", "reason": "panic"})

    assert response.status_code == 403
    assert not TradingState.objects.exists()


def test_kill_switch_anonymous_is_sent_to_login(client):
    response = client.post(URL, {"scope": "GLOBAL", "state": "HALTED", "reason": "panic"})

    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert not TradingState.objects.exists()


def test_kill_switch_get_is_405():
    assert logged_in(person_in("risk manager")).get(URL).status_code == 405


def test_kill_switch_risk_manager_halts_then_resumes_venue_recorded_with_actor_reason_and_history():
    # Arrange
    VenueFactory()
    manager = person_in("risk manager", username="rm-anna")
    client = logged_in(manager)

    # Act: halt the venue, then resume it (htmx, as the page posts)
    halted = client.post(URL, {"scope": "VENUE", "scope_key": "BINANCE-SPOT", "state": "HALTED",
                               "reason": "venue latency spike"}, HTTP_HX_REQUEST="true")
    resumed = client.post(URL, {"scope": "VENUE", "scope_key": "BINANCE-SPOT", "state": "ACTIVE",
                                "reason": "latency back to normal"}, HTTP_HX_REQUEST="true")

    # Assert: the row, attributed; both changes in the history; the partial shows them
    assert (halted.status_code, resumed.status_code) == (200, 200)
    row = TradingState.objects.get(scope="VENUE", scope_key="BINANCE-SPOT")
    assert (row.state, row.reason, row.changed_by) == ("ACTIVE", "latency back to normal", "rm-anna")
    history = list(row.history.order_by("history_date").values_list("state", "changed_by", "history_change_reason",
                                                                     "history_user__username"))
    assert history == [("HALTED", "rm-anna", "venue latency spike", "rm-anna"),
                       ("ACTIVE", "rm-anna", "latency back to normal", "rm-anna")]
    body = resumed.content.decode()
    assert body.lstrip().startswith('<section id="kill-switches"')
    assert "venue latency spike" in body and 'data-testid="kill-switch-done"' in body


def test_kill_switch_plain_post_redirects_to_status_with_message():
    StrategyFactory(id="alpha")
    client = logged_in(person_in("risk manager"))

    response = client.post(URL, {"scope": "STRATEGY", "scope_key": "alpha", "state": "REDUCING",
                                 "reason": "drawdown limit"}, follow=True)

    assert response.redirect_chain[-1] == ("/status", 302)
    assert TradingState.objects.get(scope="STRATEGY", scope_key="alpha").state == "REDUCING"
    assert "drawdown limit" in response.content.decode()


@pytest.mark.parametrize(("data", "field"), [
    ({"scope": "GLOBAL", "state": "HALTED", "reason": "  "}, "reason"),
    ({"scope": "VENUE", "scope_key": "NOWHERE", "state": "HALTED", "reason": "x"}, "scope_key"),
    ({"scope": "INSTRUMENT", "scope_key": "BTC", "state": "HALTED", "reason": "x"}, "scope_key"),
    ({"scope": "GLOBAL", "state": "PAUSED", "reason": "x"}, "state"),
    ({"scope": "PLANET", "state": "HALTED", "reason": "x"}, "scope"),
])
def test_kill_switch_invalid_is_400_naming_field_and_changes_nothing(data, field):
    response = logged_in(person_in("risk manager")).post(URL, data, HTTP_HX_REQUEST="true")

    assert response.status_code == 400
    assert f'<p class="error">{field}: ' in response.content.decode()
    assert not TradingState.objects.exists()


def test_kill_switch_htmx_post_without_permission_shows_the_refusal_inside_the_card():
    # Arrange: a risk manager's status page holds the card; the person posting from it no longer may
    page = logged_in(person_in("risk manager")).get("/status").content.decode()
    refused = logged_in(person_in("trader"))

    # Act: the card's own htmx post (hx-target="#kill-switches", hx-swap="outerHTML")
    response = refused.post(URL, {"scope": "GLOBAL", "state": "HALTED", "reason": "panic"}, HTTP_HX_REQUEST="true")

    # Assert: htmx swaps 403 answers (base.html); this one goes into the card's refusal slot, not over the card
    assert response.status_code == 403
    assert (response["HX-Retarget"], response["HX-Reswap"]) == ("#kill-switch-refusal", "innerHTML")
    card = page[page.index('<section id="kill-switches"'):page.index("</section>", page.index('id="kill-switches"'))]
    assert 'id="kill-switch-refusal"' in card
    body = response.content.decode()
    assert 'role="alert"' in body and "risk.change_tradingstate" in body and "<section" not in body
    assert not TradingState.objects.exists()


@pytest.mark.django_db(transaction=True)  # no transaction around the view: the sweep runs before it answers
def test_kill_switch_halt_shows_how_many_working_orders_it_canceled():
    # Arrange: one order not yet at the venue, one working there, one in another venue
    VenueFactory(), VenueFactory(code="OKX")
    routed, working = OrderFactory(status="ROUTED"), OrderFactory(status="ACCEPTED")
    elsewhere = OrderFactory(status="ACCEPTED", venue="OKX", routed_instrument_key="OKX:SPOT_PAIR:BTC-USDT")
    client = logged_in(person_in("risk manager", username="rm-anna"))

    # Act
    response = client.post(URL, {"scope": "VENUE", "scope_key": "BINANCE-SPOT", "state": "HALTED",
                                 "reason": "venue latency spike"}, HTTP_HX_REQUEST="true")

    # Assert
    assert response.status_code == 200
    assert [Order.objects.get(pk=o.pk).status for o in (routed, working, elsewhere)] == [
        "CANCELED", "PENDING_CANCEL", "ACCEPTED"]
    body = response.content.decode()
    assert 'data-testid="kill-switch-halt"' in body
    assert "VENUE:BINANCE-SPOT: 1 order canceled, 1 order asked to cancel at the venue" in body


@pytest.mark.django_db(transaction=True)
def test_kill_switch_halt_an_order_it_could_not_cancel_is_shown_as_an_error_naming_it(monkeypatch):
    # Arrange
    VenueFactory()
    stuck, other = OrderFactory(status="ACCEPTED"), OrderFactory(status="ACCEPTED")
    from orders.services import kill_switch

    real_cancel = kill_switch.order_cancel

    def cancel(*, order, **kwargs):
        if order.pk == stuck.pk:
            raise RuntimeError("connection reset")
        return real_cancel(order=order, **kwargs)

    monkeypatch.setattr(kill_switch, "order_cancel", cancel)
    client = logged_in(person_in("risk manager"))

    # Act: a plain post (no htmx): the status page shows the messages
    response = client.post(URL, {"scope": "GLOBAL", "state": "HALTED", "reason": "incident"}, follow=True)

    # Assert
    assert Order.objects.get(pk=other.pk).status == "PENDING_CANCEL"
    body = response.content.decode()
    assert "1 order NOT canceled, still working" in body and str(stuck.pk) in body and "connection reset" in body
