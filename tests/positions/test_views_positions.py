"""The positions page (/live/positions), its chart partial and its live topic ``positions`` on /ws/live/."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone

from odum_live.groups import ORDERS_UPDATED, POSITIONS_GROUP, POSITIONS_UPDATED
from positions import services, views
from positions.services import position_apply_fill, position_mark
from tests.orders.factories import StrategyFactory, UserFactory
from tests.live_helpers import live_fragment_after
from tests.orders.web_fixtures import logged_in, person_in
from tests.positions.factories import option_positions_settling_in_two_currencies
from tests.venues.factories import InstrumentFactory

D = Decimal
SPOT = "BINANCE-SPOT:SPOT_PAIR:BTC-USDT"
T0 = timezone.now().replace(microsecond=0) - timedelta(minutes=30)


def fill(strategy_id, side, quantity, price, *, ts=T0):
    with transaction.atomic():
        return position_apply_fill(strategy_id=strategy_id, venue="BINANCE-SPOT", instrument_key=SPOT, side=side,
                                   quantity=D(quantity), price=D(price), fee=D("0.5"), ts=ts)


@pytest.fixture
def alpha(db):
    InstrumentFactory()
    return StrategyFactory(id="alpha")


@pytest.fixture
def trader(alpha):
    """A person listed on strategy alpha only, without orders.view_order: sees alpha's positions."""
    user = UserFactory(username="alpha-desk")
    alpha.traders.add(user)
    return user


@pytest.fixture(autouse=True)
def _no_publish_backlog():
    services._publish_state.update(last=float("-inf"), timer=None)
    yield
    if services._publish_state["timer"] is not None:
        services._publish_state["timer"].cancel()


@pytest.mark.django_db
def test_positions_anonymous_redirects_to_login(client):
    assert client.get("/live/positions")["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_positions_trader_sees_own_strategies_with_venue_breakdown_totals_and_chart(alpha, trader):
    # Arrange: alpha long 2 @ 100 marked at 110; beta (not the trader's) long 7
    beta = StrategyFactory(id="beta")
    fill(alpha.id, "BUY", "2", "100")
    fill(beta.id, "BUY", "7", "100")
    position_mark(instrument_key=SPOT, venue="BINANCE-SPOT", mark_price=D(110), ts=T0 + timedelta(minutes=2))

    # Act
    response = logged_in(trader).get("/live/positions")

    # Assert: alpha's figures only (quantity 2, unrealized 20, notional 220, realized −0.5 fees)
    body = response.content.decode()
    assert response.status_code == 200
    assert 'data-instrument="ANY:SPOT_PAIR:BTC-USDT"' in body and f'data-listing="{SPOT}"' in body
    assert "<strong>2</strong>" in body and "<td>alpha</td>" in body and "beta" not in body
    assert "20.00 USDT" in body and "220.00" in body and "-0.50" in body
    assert 'data-currency="USDT"' in body  # totals row
    assert 'ws-connect="/ws/live/?topics=positions"' in body
    assert '<svg class="equity-chart" data-currency="USDT"' in body and "<polyline" in body


@pytest.mark.django_db
def test_positions_update_and_mark_times_show_the_date_and_say_utc(alpha, trader):
    # Arrange: a fill half an hour ago, a mark the day before (marks may be older than the fill)
    fill(alpha.id, "BUY", "2", "100")
    marked = (T0 - timedelta(days=1)).replace(hour=7, minute=8, second=9)
    position_mark(instrument_key=SPOT, venue="BINANCE-SPOT", mark_price=D(110), ts=marked)

    # Act
    body = logged_in(trader).get("/live/positions").content.decode()

    # Assert: the times as the other pages show them (date and time, in a column saying UTC), not a bare clock time
    assert "<th>updated (UTC)</th>" in body
    assert f'<td class="mono">{marked:%Y-%m-%d} 07:08:09</td>' in body


@pytest.mark.django_db
def test_positions_without_history_says_so(alpha, trader):
    body = logged_in(trader).get("/live/positions").content.decode()

    assert "No positions yet." in body and "No history yet" in body and "<svg" not in body


@pytest.mark.django_db
def test_positions_inverse_contract_pnl_in_coin_shows_satoshis_not_cents(alpha, trader):
    # Arrange: short 10 Deribit BTC-PERPETUAL contracts (10 USD each) at 50000, marked at 40000:
    # unrealized −100 × (1/50000 − 1/40000) = +0.0005 BTC, which to the cent would read 0.00 BTC
    from tests.venues.factories import VenueFactory

    inv = "DERIBIT:PERPETUAL:BTC-USD@INV"
    InstrumentFactory(venue=VenueFactory(code="DERIBIT", kind="EXTERNAL_SDK", adapter="deribit"), instrument_key=inv,
                      venue_symbol="BTC-PERPETUAL", base_currency="BTC", quote_currency="USD",
                      settlement_currency="BTC", contract_multiplier=D(10), is_inverse=True, tick_size=D("0.5"),
                      lot_size=D(1))
    with transaction.atomic():
        position_apply_fill(strategy_id=alpha.id, venue="DERIBIT", instrument_key=inv, side="SELL", quantity=D(10),
                            price=D(50000), fee=D("0.00001"), multiplier=D(10), inverse=True, ts=T0)
    position_mark(instrument_key=inv, venue="DERIBIT", mark_price=D(40000), ts=T0 + timedelta(minutes=1))

    # Act
    body = logged_in(trader).get("/live/positions").content.decode()

    # Assert: PnL and fees in BTC to 8 places; the notional (face value, USD) to the cent
    assert "0.00050000 BTC" in body  # unrealized
    assert "-0.00001000 BTC" in body  # realized: the fee
    assert '<td class="num">0.00001000</td>' in body  # fees
    assert "100.00 USD" in body
    assert "0.00 BTC" not in body


@pytest.mark.django_db
def test_positions_fees_in_a_third_currency_are_shown_apart_with_their_currency(alpha, trader):
    # Arrange: alpha's BTC-USDT fills paid 0.5 USDT (fill()) and 0.0125 BNB, a BNB fee discount
    with transaction.atomic():
        position_apply_fill(strategy_id=alpha.id, venue="BINANCE-SPOT", instrument_key=SPOT, side="BUY",
                            quantity=D(1), price=D(100), fee=D(0), other_fee=D("0.0125"), other_fee_currency="BNB",
                            ts=T0)
    fill(alpha.id, "BUY", "1", "100")

    # Act
    body = logged_in(trader).get("/live/positions").content.decode()

    # Assert: the USDT fees as before, the BNB beside them on the instrument and listing lines, and a total
    assert body.count("+ 0.0125 BNB</span>") == 2
    assert '<td class="num">0.50 USDT<br><span class="other-fees"' in body
    other = body.split('data-testid="other-fees"', 1)[1].split("</tr>", 1)[0]
    assert "Fees in other currencies, in no PnL" in other and '<th class="num">0.0125 BNB</th>' in other
    assert "-0.50" in body  # realized: the USDT fee only


@pytest.mark.django_db
def test_positions_without_fees_in_other_currencies_show_no_such_line(alpha, trader):
    fill(alpha.id, "BUY", "1", "100")

    body = logged_in(trader).get("/live/positions").content.decode()

    assert 'class="other-fees"' not in body and 'data-testid="other-fees"' not in body


@pytest.mark.django_db
def test_positions_chart_time_axis_says_utc(alpha, trader):
    fill(alpha.id, "BUY", "1", "100", ts=T0)

    body = logged_in(trader).get("/live/positions/chart").content.decode()

    assert f">{T0:%m-%d %H:%M:%S}</text>" in body  # the first point's time, T0 being UTC
    assert "Times in UTC." in body


@pytest.mark.django_db
def test_positions_chart_partial_unknown_window_falls_back_to_default(alpha, trader):
    fill(alpha.id, "BUY", "1", "100")

    response = logged_in(trader).get("/live/positions/chart", {"window": "bogus"})

    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith('<section id="positions-chart"') and "window=24h" in body


@pytest.mark.django_db
def test_positions_live_groups_by_scope(alpha, trader):
    desk = person_in("trader")  # the trader group holds orders.view_order: every strategy

    assert views.live_groups(trader) == [POSITIONS_GROUP, "strategy.alpha"]
    assert views.live_groups(desk) == [POSITIONS_GROUP, "orders"]


@pytest.mark.django_db
def test_positions_live_render_only_for_marks_and_fills(alpha, trader):
    fill(alpha.id, "BUY", "1", "100")

    assert views.live_render({"type": ORDERS_UPDATED, "event_ids": [1], "fill_ids": []}, trader) is None
    assert views.live_render({"type": "status.changed"}, trader) is None
    html = views.live_render({"type": POSITIONS_UPDATED}, trader)
    assert html.lstrip().startswith('<div id="positions-book" hx-swap-oob="true"')
    assert f'data-listing="{SPOT}"' in html


@pytest.mark.django_db(transaction=True)
def test_positions_live_topic_pushes_book_after_mark(alpha, trader):
    # Arrange: a position, and the trader's page subscribed to the topic
    fill(alpha.id, "BUY", "1", "100")

    # Act: a mark commits (as the node's market-data publisher does)
    html = live_fragment_after(user=trader, topics="positions", act=lambda: position_mark(
        instrument_key=SPOT, venue="BINANCE-SPOT", mark_price=D("123.45"), ts=timezone.now()))

    # Assert: the book partial, out of band, with the new mark and unrealized PnL
    assert 'id="positions-book" hx-swap-oob="true"' in html
    assert "123.45" in html and "23.45 USDT" in html


@pytest.mark.django_db
def test_positions_pnl_of_listings_settling_in_different_currencies_shows_a_dash_and_says_why(alpha, trader):
    # Arrange: one option on Deribit (inverse, BTC-settled, realized 0.01 BTC) and OKX (linear, 100 USD)
    eq = option_positions_settling_in_two_currencies(alpha)

    # Act
    body = logged_in(trader).get("/live/positions").content.decode()

    # Assert: no 100.01 of BTC and USD added; each listing keeps its line; the page says why
    assert "100.01" not in body
    assert "0.01000000" in body and "100.00" in body
    assert f"No PnL total for ANY:{eq}: its listings settle in BTC and USD" in body
    assert 'title="PnL in BTC and USD: amounts of different currencies are not added"' in body


@pytest.mark.django_db
def test_positions_quantities_are_exact_beyond_28_digits(alpha, trader):
    # Arrange: 10000000000 + 0.000000000000000001 contracts of 0.01 BTC on OKX (sums of 29 significant digits)
    from tests.positions.factories import PositionFactory
    from tests.venues.factories import VenueFactory

    lin = "PERPETUAL:BTC-USDT@LIN"
    InstrumentFactory(venue=VenueFactory(code="OKX", adapter="okx"), instrument_key=f"OKX:{lin}",
                      contract_multiplier=D("0.01"))
    for holder, quantity in ((alpha, "10000000000"), (StrategyFactory(id="alpha-2"), "0.000000000000000001")):
        holder.traders.add(trader)
        PositionFactory(strategy=holder, venue="OKX", instrument_key=f"OKX:{lin}", equivalence_key=lin,
                        quantity=D(quantity), avg_entry_price=D("40000"))

    # Act
    body = logged_in(trader).get("/live/positions").content.decode()

    # Assert: the instrument in BTC and the listing in contracts, exactly
    assert "<strong>100000000.00000000000000000001</strong> BTC" in body
    assert '<td class="num">10000000000.000000000000000001</td>' in body


@pytest.mark.django_db
def test_positions_linear_contracts_without_listing_show_no_instrument_quantity_and_say_why(alpha, trader):
    # Arrange: 1 Binance contract of 1 BTC; 100 OKX contracts whose listing (0.01 BTC each) was removed
    from tests.positions.factories import PositionFactory
    from tests.venues.factories import VenueFactory

    lin = "PERPETUAL:BTC-USDT@LIN"
    InstrumentFactory(venue=VenueFactory(code="BINANCE-FUTURES", adapter="binance_futures"),
                      instrument_key=f"BINANCE-FUTURES:{lin}")
    for venue, quantity in (("BINANCE-FUTURES", "1"), ("OKX", "100")):
        PositionFactory(strategy=alpha, venue=venue, instrument_key=f"{venue}:{lin}", equivalence_key=lin,
                        quantity=D(quantity), avg_entry_price=D("40000"))

    # Act
    body = logged_in(trader).get("/live/positions").content.decode()

    # Assert: a dash, not 101 BTC; the listing line keeps its 100 contracts; the page names the listing
    reason = f"OKX:{lin}: its listing no longer exists (no venues.Instrument), so its contract size is unknown"
    assert "<strong>101</strong>" not in body and "<strong>—</strong> BTC" in body
    assert '<td class="num">100</td>' in body
    assert f"Quantity unknown for ANY:{lin}: {reason}." in body


@pytest.mark.django_db
def test_positions_chart_legend_and_table_each_say_as_of_when(alpha, trader):
    # Arrange: long 2 @ 100 (a snapshot at the fill), marked at 110 a minute later (a snapshot), then at 120 a
    # second after that: within EQUITY_SNAPSHOT_SECS, so no snapshot; the table shows the latest mark's figures
    fill(alpha.id, "BUY", "2", "100")
    snapshot_at = T0 + timedelta(minutes=1)
    position_mark(instrument_key=SPOT, venue="BINANCE-SPOT", mark_price=D(110), ts=snapshot_at)
    position_mark(instrument_key=SPOT, venue="BINANCE-SPOT", mark_price=D(120), ts=snapshot_at + timedelta(seconds=1))

    # Act
    body = logged_in(trader).get("/live/positions").content.decode()

    # Assert: the table's equity (−0.5 + 40) at the page's time, the legend's (−0.5 + 20) at its snapshot's
    assert "equity 39.50" in body
    assert re.search(r"As of \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC, at each listing's latest mark", body)
    legend = re.search(r'<p class="muted"><span style="color: #1f5fbf">.*?</p>', body, re.S).group(0)
    assert "equity (USDT) 19.50" in legend and " now " not in legend
    assert f"— as of {snapshot_at:%Y-%m-%d %H:%M:%S} UTC (last snapshot;" in legend
