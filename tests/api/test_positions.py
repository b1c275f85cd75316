from decimal import Decimal

import pytest

from tests.positions.factories import PositionFactory, option_positions_settling_in_two_currencies
from tests.venues.factories import InstrumentFactory, VenueFactory

pytestmark = pytest.mark.django_db

PERP = "PERPETUAL:BTC-USDT@LIN"


@pytest.fixture
def book(strategy, other_strategy):
    """alpha: long 2 on Binance futures, long 1 on Bybit; beta: short 5 on Bybit; alpha spot flat."""
    for venue in ("BINANCE-FUTURES", "BYBIT"):  # listed: contracts of 1 BTC
        InstrumentFactory(venue=VenueFactory(code=venue, adapter=venue.lower()), instrument_key=f"{venue}:{PERP}")
    PositionFactory(strategy=strategy, venue="BINANCE-FUTURES", instrument_key=f"BINANCE-FUTURES:{PERP}",
                    equivalence_key=PERP, quantity=Decimal("2"), avg_entry_price=Decimal("40000"),
                    realized_pnl=Decimal("10.5"), unrealized_pnl=Decimal("100"), fees=Decimal("1.2"),
                    mark_price=Decimal("40050"))
    PositionFactory(strategy=strategy, venue="BYBIT", instrument_key=f"BYBIT:{PERP}", equivalence_key=PERP,
                    quantity=Decimal("1"), avg_entry_price=Decimal("41000"), realized_pnl=Decimal("-0.5"))
    PositionFactory(strategy=other_strategy, venue="BYBIT", instrument_key=f"BYBIT:{PERP}", equivalence_key=PERP,
                    quantity=Decimal("-5"), avg_entry_price=Decimal("42000"))
    PositionFactory(strategy=strategy)  # spot, flat


def test_list_positions_strategy_token_aggregates_own_across_venues(svc_client, book):
    # Act
    body = svc_client.get("/api/positions").json()
    # Assert
    assert body["count"] == 2
    perp = next(p for p in body["results"] if p["equivalence_key"] == PERP)
    assert perp["instrument_key"] == f"ANY:{PERP}"
    assert perp["quantity"] == "3" and perp["gross_quantity"] == "3"
    assert perp["avg_entry_price"] == "40333.333333333333333333"  # (2 × 40000 + 41000) / 3, 18 places
    assert perp["realized_pnl"] == "10" and perp["unrealized_pnl"] == "100" and perp["fees"] == "1.2"
    assert [v["venue"] for v in perp["venues"]] == ["BINANCE-FUTURES", "BYBIT"]
    bybit = perp["venues"][1]
    assert bybit == {**bybit, "quantity": "1", "avg_entry_price": "41000", "strategies": ["alpha"]}
    assert perp["venues"][0]["mark_price"] == "40050"


def test_list_positions_risk_manager_sees_all_strategies(book):
    from django.contrib.auth.models import Permission

    from tests.orders.conftest import client_for
    from tests.orders.factories import UserFactory

    user = UserFactory(username="rm")
    user.user_permissions.add(Permission.objects.get(codename="view_order"))
    perp = next(p for p in client_for(user).get("/api/positions").json()["results"] if p["equivalence_key"] == PERP)
    assert perp["quantity"] == "-2" and perp["gross_quantity"] == "6"
    assert perp["avg_entry_price"] is None  # long and short legs: no common entry price
    bybit = next(v for v in perp["venues"] if v["venue"] == "BYBIT")
    assert bybit["quantity"] == "-4" and sorted(bybit["strategies"]) == ["alpha", "beta"]


def test_get_position_any_key_with_colon_and_at_aggregates(svc_client, book):
    response = svc_client.get(f"/api/positions/ANY:{PERP}")
    assert response.status_code == 200
    assert response.json()["quantity"] == "3"


def test_get_position_percent_encoded_key_is_accepted(svc_client, book):
    response = svc_client.get("/api/positions/ANY%3APERPETUAL%3ABTC-USDT%40LIN")
    assert response.status_code == 200 and response.json()["quantity"] == "3"


def test_get_position_listing_key_gives_that_listing(svc_client, book):
    body = svc_client.get(f"/api/positions/BYBIT:{PERP}").json()
    assert body["quantity"] == "1" and [v["venue"] for v in body["venues"]] == ["BYBIT"]
    # The key says what the figures cover: that listing, not the instrument on every venue (ANY:)
    assert (body["instrument_key"], body["equivalence_key"]) == (f"BYBIT:{PERP}", PERP)


def test_get_position_malformed_key_is_400_naming_the_part(svc_client, book):
    response = svc_client.get("/api/positions/BYBIT:PERPETUAL:BTC-USDT")
    assert response.status_code == 400
    assert response.json()["fields"]["instrument_key"][0].startswith("suffix")


def test_get_position_without_position_is_404(svc_client, book):
    assert svc_client.get("/api/positions/ANY:PERPETUAL:ETH-USDT@LIN").status_code == 404


def test_get_position_of_other_strategy_only_is_404(other_svc_client, book):
    # beta holds nothing on Binance futures
    assert other_svc_client.get(f"/api/positions/BINANCE-FUTURES:{PERP}").status_code == 404


def test_list_positions_inverse_contracts_average_entry_is_harmonic_across_venues(svc_client, strategy):
    # Arrange: 1000 contracts at 40000 on one venue, 1000 at 50000 on another (inverse, USD-margined)
    inv = "PERPETUAL:BTC-USD@INV"
    for venue, price in (("DERIBIT", "40000"), ("BYBIT", "50000")):
        InstrumentFactory(venue=VenueFactory(code=venue, adapter=venue.lower()), instrument_key=f"{venue}:{inv}",
                          quote_currency="USD", is_inverse=True, contract_multiplier=Decimal("10"))
        PositionFactory(strategy=strategy, venue=venue, instrument_key=f"{venue}:{inv}", equivalence_key=inv,
                        quantity=Decimal("1000"), avg_entry_price=Decimal(price))
    # Act
    body = svc_client.get("/api/positions").json()
    # Assert: 2000 / (1000/40000 + 1000/50000) = 44444.44…, not the arithmetic 45000
    (position,) = [p for p in body["results"] if p["instrument_key"] == f"ANY:{inv}"]
    assert Decimal(position["avg_entry_price"]).quantize(Decimal("0.01")) == Decimal("44444.44")


@pytest.mark.parametrize("url", ["/api/positions", f"/api/positions/ANY:{PERP}"])
def test_positions_strategy_filter_with_nul_is_400_naming_strategy(svc_client, book, url):
    # Act
    response = svc_client.get(url, {"strategy": "alpha\x00"})
    # Assert
    assert response.status_code == 400
    assert response.json()["fields"]["strategy"] == ["must not contain the NUL character (\\u0000)"]


@pytest.mark.parametrize("url", ["/api/positions", f"/api/positions/ANY:{PERP}"])
def test_positions_unknown_parameter_is_400_naming_it(book, url):
    from django.contrib.auth.models import Permission

    from tests.orders.conftest import client_for
    from tests.orders.factories import UserFactory

    # Arrange: a risk manager sees every strategy
    user = UserFactory(username="rm")
    user.user_permissions.add(Permission.objects.get(codename="view_order"))
    # Act: "strategy_id=" (the orders' field name; the filter is "strategy") was ignored and gave the
    # position summed over every strategy, as if it were alpha's
    response = client_for(user).get(url, {"strategy_id": "alpha"})
    # Assert
    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["strategy_id"]
    assert "strategy" in response.json()["fields"]["strategy_id"][0]


def test_get_position_sums_venues_in_base_units_of_the_underlying(svc_client, strategy):
    # Arrange: 1 BTC on Binance (1 contract) and 100 OKX contracts of 0.01 BTC
    for venue, multiplier, quantity in (("BINANCE-FUTURES", "1", "1"), ("OKX", "0.01", "100")):
        InstrumentFactory(venue=VenueFactory(code=venue, adapter=venue.lower()), instrument_key=f"{venue}:{PERP}",
                          contract_multiplier=Decimal(multiplier))
        PositionFactory(strategy=strategy, venue=venue, instrument_key=f"{venue}:{PERP}", equivalence_key=PERP,
                        quantity=Decimal(quantity), avg_entry_price=Decimal("40000"))

    # Act
    body = svc_client.get(f"/api/positions/ANY:{PERP}").json()

    # Assert
    assert (body["quantity"], body["gross_quantity"], body["base_unit"]) == ("2", "2", "BTC")
    assert [v["quantity"] for v in body["venues"]] == ["1", "100"]


def test_get_position_pnl_of_listings_settling_in_different_currencies_is_null_with_each_currency(svc_client,
                                                                                                   strategy):
    # Arrange: one option on Deribit (inverse, BTC-settled) and OKX (linear, USD-settled)
    eq = option_positions_settling_in_two_currencies(strategy)

    # Act
    body = svc_client.get(f"/api/positions/ANY:{eq}").json()

    # Assert
    assert (body["realized_pnl"], body["unrealized_pnl"], body["fees"], body["pnl_currency"]) == (
        None, None, None, None)
    assert [(v["realized_pnl"], v["pnl_currency"]) for v in body["venues"]] == [("0.01", "BTC"), ("100", "USD")]


def test_get_position_pnl_total_states_its_single_currency(svc_client, book):
    # Act
    body = svc_client.get(f"/api/positions/ANY:{PERP}").json()

    # Assert
    assert (body["realized_pnl"], body["pnl_currency"]) == ("10", "USDT")
    assert {v["pnl_currency"] for v in body["venues"]} == {"USDT"}



def test_positions_fees_in_a_third_currency_are_listed_apart_per_currency_in_list_and_detail(svc_client, book,
                                                                                             strategy):
    # Arrange: alpha's Binance futures position paid 0.01 BNB besides its 1.2 USDT, its Bybit one 2 OKB
    from positions.models import Position

    Position.objects.filter(venue="BINANCE-FUTURES").update(other_fees={"BNB": "0.01"})
    Position.objects.filter(venue="BYBIT", strategy=strategy).update(other_fees={"OKB": "2"})

    # Act
    listed = next(p for p in svc_client.get("/api/positions").json()["results"] if p["equivalence_key"] == PERP)
    detail = svc_client.get(f"/api/positions/ANY:{PERP}").json()
    listing = svc_client.get(f"/api/positions/BINANCE-FUTURES:{PERP}").json()

    # Assert: the USDT fees stay USDT; the others are named with their currency, never added to them
    for body in (listed, detail):
        assert body["fees"] == "1.2" and body["pnl_currency"] == "USDT"
        assert body["other_fees"] == {"BNB": "0.01", "OKB": "2"}
        assert [v["other_fees"] for v in body["venues"]] == [{"BNB": "0.01"}, {"OKB": "2"}]
    assert listing["other_fees"] == {"BNB": "0.01"}
    spot = next(p for p in svc_client.get("/api/positions").json()["results"] if p["equivalence_key"] != PERP)
    assert spot["other_fees"] == {} and spot["venues"][0]["other_fees"] == {}


def test_get_position_figures_are_exact_beyond_28_digits(strategy, other_strategy):
    # Arrange: alpha 10000000000 and beta 0.000000000000000001 contracts of 0.01 BTC, read by a risk manager
    # (the sums need 29 and 31 significant digits)
    from django.contrib.auth.models import Permission

    from tests.orders.conftest import client_for
    from tests.orders.factories import UserFactory

    InstrumentFactory(venue=VenueFactory(code="OKX", adapter="okx"), instrument_key=f"OKX:{PERP}",
                      contract_multiplier=Decimal("0.01"))
    for holder, quantity, realized in ((strategy, "10000000000", "1000000000000"),
                                       (other_strategy, "0.000000000000000001", "0.000000000000000001")):
        PositionFactory(strategy=holder, venue="OKX", instrument_key=f"OKX:{PERP}", equivalence_key=PERP,
                        quantity=Decimal(quantity), avg_entry_price=Decimal("40000"), realized_pnl=Decimal(realized))
    user = UserFactory(username="rm")
    user.user_permissions.add(Permission.objects.get(codename="view_order"))

    # Act
    body = client_for(user).get(f"/api/positions/ANY:{PERP}").json()

    # Assert: exact, not rounded to 28 significant digits
    assert (body["quantity"], body["realized_pnl"]) == ("100000000.00000000000000000001",
                                                        "1000000000000.000000000000000001")
    assert body["venues"][0]["quantity"] == "10000000000.000000000000000001"


def test_get_position_linear_contracts_without_listing_have_null_quantity_naming_the_listing(svc_client, strategy):
    # Arrange: 1 Binance contract of 1 BTC; 100 OKX contracts whose listing was removed
    InstrumentFactory(venue=VenueFactory(code="BINANCE-FUTURES", adapter="binance_futures"),
                      instrument_key=f"BINANCE-FUTURES:{PERP}")
    for venue, quantity in (("BINANCE-FUTURES", "1"), ("OKX", "100")):
        PositionFactory(strategy=strategy, venue=venue, instrument_key=f"{venue}:{PERP}", equivalence_key=PERP,
                        quantity=Decimal(quantity), avg_entry_price=Decimal("40000"))

    # Act
    body = svc_client.get(f"/api/positions/ANY:{PERP}").json()

    # Assert: no 101 BTC; the reason names the listing; each venue line keeps its contracts
    assert (body["quantity"], body["gross_quantity"]) == (None, None)
    assert body["quantity_problem"] == (f"OKX:{PERP}: its listing no longer exists (no venues.Instrument), so its "
                                        f"contract size is unknown")
    assert [v["quantity"] for v in body["venues"]] == ["1", "100"]


def test_list_positions_known_quantity_has_null_problem(svc_client, book):
    body = svc_client.get("/api/positions").json()
    assert [p["quantity_problem"] for p in body["results"]] == [None, None]
