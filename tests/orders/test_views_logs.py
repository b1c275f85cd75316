"""The execution log (/live/logs): selector, page, filters, cursor pages, scope and the live topic ``logs``."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from odum_live.live import LiveTopicRefused
from orders import views_logs
from orders.models import OrderEvent
from orders.selectors_logs import LogFilterError, LogFilters, execution_log, log_entry, log_filters_parse
from orders.services import order_submit
from risk.models import RiskLimit, Scope
from tests.orders.conftest import typed_request
from tests.orders.factories import OrderEventFactory, OrderFactory, StrategyFactory, UserFactory
from tests.live_helpers import live_fragment_after
from tests.orders.web_fixtures import logged_in, person_in
from tests.risk.factories import RiskLimitFactory
from tests.venues.factories import VenueFactory

E = OrderEvent.Type
FUT = "BINANCE-FUTURES:PERPETUAL:BTC-USDT@LIN"
T0 = timezone.now().replace(microsecond=0) - timedelta(hours=1)


def event_types(response) -> list[str]:
    """Event types of the log rows on the page, in order."""
    import re

    return re.findall(r'data-event-id="\d+">\s*<td class="mono">[^<]*</td>\s*<td><span[^>]*>[^<]*</span></td>\s*'
                      r'<td>([A-Z_]+)</td>', response.content.decode())


@pytest.fixture
def desk(strategy):
    """A person who trades strategy alpha only (no orders.view_order)."""
    user = UserFactory(username="alpha-desk")
    strategy.traders.add(user)
    return user


@pytest.fixture
def timeline(strategy):
    """Alpha: RECEIVED, ROUTED, FILLED on spot; beta: DENIED on futures — one minute apart."""
    spot = OrderFactory(strategy=strategy, operation_id="op-spot")
    fut = OrderFactory(strategy=StrategyFactory(id="beta"), operation_id="op-fut", venue="BINANCE-FUTURES",
                       instrument_key=FUT, routed_instrument_key=FUT, status="DENIED")
    rows = [(spot, E.RECEIVED, {}), (spot, E.ROUTED, {"venue": "BINANCE-SPOT", "reason": "lowest cost"}),
            (spot, E.FILLED, {"last_qty": "0.01", "last_px": "40000.5", "fee": "0.4", "fee_currency": "USDT",
                              "liquidity": "TAKER", "filled_quantity": "0.01", "leaves_quantity": "0"}),
            (fut, E.DENIED, {"reason": "max_order_quantity: 0.01 > 0.001"})]
    return [OrderEventFactory(order=order, type=kind, payload=payload, ts=T0 + timedelta(minutes=i))
            for i, (order, kind, payload) in enumerate(rows)]


@pytest.mark.django_db
def test_logs_anonymous_redirects_to_login(client):
    assert client.get("/live/logs")["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_logs_lists_every_event_newest_first_with_details(timeline):
    response = logged_in(person_in("viewer")).get("/live/logs")

    body = response.content.decode()
    assert response.status_code == 200
    assert event_types(response) == ["DENIED", "FILLED", "ROUTED", "RECEIVED"]
    assert "denied: max_order_quantity: 0.01 &gt; 0.001" in body
    assert "fill 0.01 @ 40000.5 fee 0.4 USDT (TAKER)" in body
    assert "routed to BINANCE-SPOT" in body and "lowest cost" in body
    assert 'ws-connect="/ws/live/?topics=logs:all"' in body


@pytest.mark.parametrize(("params", "expected"), [
    ({"kind": "risk"}, ["DENIED"]),
    ({"kind": ["fill", "routing"]}, ["FILLED", "ROUTED"]),
    ({"venue": "BINANCE-FUTURES"}, ["DENIED"]),
    ({"instrument": FUT}, ["DENIED"]),
    ({"strategy": "alpha"}, ["FILLED", "ROUTED", "RECEIVED"]),
    ({"since": (T0 + timedelta(minutes=1)).isoformat(), "until": (T0 + timedelta(minutes=2)).isoformat()},
     ["FILLED", "ROUTED"]),
])
@pytest.mark.django_db
def test_logs_filters(timeline, params, expected):
    assert event_types(logged_in(person_in("viewer")).get("/live/logs", params)) == expected


@pytest.mark.django_db
def test_logs_filter_form_every_label_names_a_control_and_the_kinds_have_a_legend(timeline):
    import re

    body = logged_in(person_in("viewer")).get("/live/logs").content.decode()

    ids = set(re.findall(r' id="([^"]+)"', body))
    for label in re.findall(r"<label\b[^>]*>.*?</label>", body, re.S):
        target = re.search(r'for="([^"]+)"', label)
        assert (target and target.group(1) in ids) or "<input" in label, label
    assert re.search(r"<fieldset[^>]*>\s*<legend[^>]*>kind</legend>", body)


@pytest.mark.django_db
def test_logs_person_sees_only_strategies_they_trade(timeline, desk):
    assert event_types(logged_in(desk).get("/live/logs")) == ["FILLED", "ROUTED", "RECEIVED"]


@pytest.mark.parametrize(("params", "field"), [
    ({"kind": "gossip"}, "kind"), ({"instrument": "BINANCE-SPOT:SPOT_PAIR"}, "instrument"),
    ({"since": "yesterday"}, "since"), ({"since": "2025-01-02T00:00:00Z", "until": "2025-01-01T00:00:00Z"}, "until"),
    ({"cursor": "!!!"}, "cursor"), ({"venue": "BINANCE\x00"}, "venue"), ({"strategy": "alpha\x00"}, "strategy"),
])
@pytest.mark.django_db
def test_logs_malformed_filter_is_400_naming_field(timeline, params, field):
    response = logged_in(person_in("viewer")).get("/live/logs", params)

    assert response.status_code == 400
    assert f'<p class="error">{field}: ' in response.content.decode()


@pytest.mark.parametrize("bad", [{"since": "yesterday"}, {"cursor": "!!!"}])
@pytest.mark.django_db
def test_logs_malformed_filter_keeps_every_other_filter_in_the_form(timeline, bad):
    # Arrange
    VenueFactory(code="BINANCE-FUTURES")
    params = {"kind": ["fill", "routing"], "venue": "BINANCE-FUTURES", "strategy": "beta", "instrument": FUT,
              "until": "2030-01-01T00:00:00Z", **bad}

    # Act
    response = logged_in(person_in("viewer")).get("/live/logs", params)

    # Assert: refused, and the form still holds what was sent, the bad field too
    body = response.content.decode()
    assert response.status_code == 400
    for kind in ("fill", "routing"):
        assert f'value="{kind}" style="width: auto" checked>' in body
    assert "<option selected>BINANCE-FUTURES</option>" in body and "<option selected>beta</option>" in body
    assert f'id="f-instrument" name="instrument" list="instrument-keys" value="{FUT}"' in body
    assert 'name="until" value="2030-01-01T00:00:00Z"' in body
    if "since" in bad:
        assert 'name="since" value="yesterday"' in body


@pytest.mark.parametrize("field", ["venue", "strategy"])
@pytest.mark.django_db
def test_logs_filter_with_nul_is_400_with_the_shared_reason(timeline, field):
    response = logged_in(person_in("viewer")).get("/live/logs", {field: "x\x00"})

    assert response.status_code == 400
    assert f'<p class="error">{field}: must not contain the NUL character (\\u0000)</p>' in response.content.decode()


@pytest.mark.django_db
def test_log_entry_of_an_algorithm_parent_filled_through_a_slice_names_the_slice_and_the_parents_figures(strategy):
    # Arrange: the parent's entry written when its second TWAP slice filled (orders.services.venue_events)
    parent = OrderFactory(strategy=strategy, exec_algorithm="TWAP", quantity=Decimal("0.02"))
    event = OrderEventFactory(order=parent, type=E.PARTIALLY_FILLED, payload={
        "kind": "FILLED", "filled_quantity": "0.010000000000000000", "avg_fill_price": "39482.740000000000000000",
        "fees": "0.394827400000000000", "leaves_quantity": "0.010000000000000000", "source": "children",
        "child_client_order_id": "OL035-E2"})

    # Act
    entry = log_entry(event)

    # Assert: what moved the parent and where it stands, not an empty detail
    assert entry.detail == "slice OL035-E2 filled; filled 0.01, leaves 0.01, avg price 39482.74, fees 0.3948274"


@pytest.mark.django_db
def test_log_entry_of_an_algorithm_parent_gives_its_fees_per_currency(strategy):
    # Arrange: the parent's entry when its second slice filled, paying BNB after a first slice's USDT
    parent = OrderFactory(strategy=strategy, exec_algorithm="TWAP", quantity=Decimal("0.03"))
    event = OrderEventFactory(order=parent, type=E.PARTIALLY_FILLED, payload={
        "kind": "FILLED", "filled_quantity": "0.02", "avg_fill_price": "40015", "fees": "0.40001",
        "fee_totals": [{"currency": "USDT", "amount": "0.4"}, {"currency": "BNB", "amount": "0.00001"}],
        "leaves_quantity": "0.01", "source": "children", "child_client_order_id": "OL035-E2"})

    # Act
    entry = log_entry(event)

    # Assert: not "fees 0.40001"
    assert entry.detail == ("slice OL035-E2 filled; filled 0.02, leaves 0.01, avg price 40015, "
                            "fees 0.4 USDT + 0.00001 BNB")


@pytest.mark.django_db
def test_log_entry_fill_and_routing_figures_are_canonical_decimals(strategy):
    # Arrange: figures recorded at a fixed scale (an order's totals to 18 places, router costs to 6)
    order = OrderFactory(strategy=strategy, routing_decision={"candidates": [
        {"venue": "BINANCE-SPOT", "eligible": True, "total_bps": "10.050000"}]})
    fill = OrderEventFactory(order=order, type=E.FILLED, payload={
        "last_qty": "0.005", "last_px": "39487.320000", "fee": "0.1974366", "fee_currency": "USDT",
        "liquidity": "TAKER", "filled_quantity": "0.020000000000000000", "leaves_quantity": "0E-18"})
    routed = OrderEventFactory(order=order, type=E.ROUTED, payload={"venue": "BINANCE-SPOT", "reason": "as named"})

    # Act / Assert
    assert log_entry(fill).detail == "fill 0.005 @ 39487.32 fee 0.1974366 USDT (TAKER); filled 0.02, leaves 0"
    assert "(candidates: BINANCE-SPOT 10.05 bps)" in log_entry(routed).detail


@pytest.mark.django_db
def test_execution_log_cursor_pages_through_everything_once(timeline):
    # Act: pages of one entry each
    seen, cursor = [], ""
    for _ in range(10):
        page = execution_log(visible_strategy_ids=None, filters=LogFilters(), cursor=cursor, page_size=1)
        seen.extend(entry.event.pk for entry in page.entries)
        cursor = page.next_cursor
        if not cursor:
            break

    # Assert
    assert seen == [e.pk for e in reversed(timeline)]


@pytest.mark.django_db
def test_logs_older_page_is_not_live_and_links_back(timeline):
    client = logged_in(person_in("viewer"))
    first = execution_log(visible_strategy_ids=None, filters=LogFilters(), page_size=2)

    response = client.get("/live/logs", {"cursor": first.next_cursor})

    body = response.content.decode()
    assert event_types(response) == ["ROUTED", "RECEIVED"]  # everything after the cursor
    assert "ws-connect" not in body and ">newest</a>" in body


def test_log_filters_parse_naive_time_is_utc():
    filters = log_filters_parse({"since": "2025-01-01T10:00"})

    assert filters.since.isoformat() == "2025-01-01T10:00:00+00:00"


def test_log_filters_parse_reports_every_bad_field():
    with pytest.raises(LogFilterError) as caught:
        log_filters_parse({"kind": "nope", "until": "later"})

    assert set(caught.value.fields) == {"kind", "until"}


# --- live topic ---------------------------------------------------------------------------------

@pytest.mark.django_db
def test_logs_live_argument_round_trips_filters_and_scopes_groups(desk):
    argument = views_logs.live_argument(LogFilters(kinds=("risk",), instrument=FUT, strategy="alpha"))

    assert views_logs._filters_of(argument) == LogFilters(kinds=("risk",), instrument=FUT, strategy="alpha")
    assert views_logs.live_groups(desk, argument=argument) == ["strategy.alpha"]
    assert views_logs.live_groups(desk, argument="all") == ["strategy.alpha"]
    with pytest.raises(LiveTopicRefused, match="beta"):
        views_logs.live_groups(desk, argument=views_logs.live_argument(LogFilters(strategy="beta")))
    with pytest.raises(LiveTopicRefused):
        views_logs.live_groups(desk, argument="@@@")


@pytest.mark.django_db
def test_logs_live_render_prepends_only_matching_events(timeline):
    viewer = person_in("viewer")
    ids = [e.pk for e in timeline]
    argument = views_logs.live_argument(LogFilters(kinds=("fill",)))

    html = views_logs.live_render({"type": "orders.updated", "event_ids": ids}, viewer, argument=argument)

    assert html.lstrip().startswith('<tbody hx-swap-oob="afterbegin:#log-rows">')
    assert html.count('class="log-entry') == 1 and f'data-event-id="{timeline[2].pk}"' in html
    assert views_logs.live_render({"type": "orders.updated", "event_ids": [timeline[0].pk]}, viewer,
                                  argument=argument) is None


@pytest.mark.django_db(transaction=True)
def test_logs_live_topic_pushes_risk_denial_of_new_order(tradable, strategy):
    # Arrange: a limit that denies the next order; the viewer's log page follows kind=risk
    RiskLimitFactory(scope=Scope.STRATEGY, scope_key=strategy.id, kind=RiskLimit.Kind.MAX_ORDER_QUANTITY,
                     value=Decimal("0.001"))
    argument = views_logs.live_argument(LogFilters(kinds=("risk",)))

    # Act: the order is submitted (and published after commit)
    html = live_fragment_after(user=person_in("viewer"), topics=f"logs:{argument}",
                               act=lambda: order_submit(strategy=strategy, actor="alice", data=typed_request()))

    # Assert: one row, the DENIED event with its reason (RECEIVED is filtered out)
    assert html.count('class="log-entry') == 1
    assert "<td>DENIED</td>" in html and "denied: " in html and "0.001" in html
