"""SmartOrderRouter: named venues are checked, ANY keys go to the lowest expected cost.

Figures are computed by hand in each test from the books it publishes (prices in quote currency,
sizes in base units, costs in bps); the latency penalty is the default 0.01 bps per ms.
"""

import json
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from orders.models import Order
from routing.router import RouteCandidate, RoutingDecision, SmartOrderRouter
from tests.orders.factories import OrderFactory
from tests.routing.helpers import make_intent, make_listing
from venues.circuit import record_venue_failure
from venues.marketdata import RedisMarketDataStore
from venues.models import Venue

pytestmark = pytest.mark.django_db

SPOT = "BINANCE-SPOT:SPOT_PAIR:BTC-USDT"
ANY_PERP = "ANY:PERPETUAL:BTC-USDT@LIN"
BINANCE_PERP = "BINANCE-FUTURES:PERPETUAL:BTC-USDT@LIN"
BYBIT_PERP = "BYBIT:PERPETUAL:BTC-USDT@LIN"
OKX_PERP = "OKX:PERPETUAL:BTC-USDT@LIN"
DEEP = {"bids": [(99, 10)], "asks": [(101, 10)]}  # mid 100: one unit costs 100 bps to buy
DERIBIT_PERP = "DERIBIT:PERPETUAL:BTC-USD@INV"
OKX_INV_PERP = "OKX:PERPETUAL:BTC-USD@INV"
ANY_INV_PERP = "ANY:PERPETUAL:BTC-USD@INV"
NO_DERIBIT_ADAPTER = "venue DERIBIT: adapter 'deribit' (EXTERNAL_SDK) is not available in this release"


def bps(text):
    return Decimal(text).quantize(Decimal("0.000001"))


def trip(code):
    for _ in range(3):  # CIRCUIT_FAIL_MAX is 3 in these tests
        record_venue_failure(code, ConnectionError("venue unreachable"))


def by_venue(decision):
    return {c.venue: c for c in decision.candidates}


# -- named venue ---------------------------------------------------------------------------------
def test_route_named_venue_listed_and_enabled_routes_there(books):
    # Arrange
    listing = make_listing("BINANCE-SPOT", SPOT, taker="10", latency_ms="5", mode=Venue.Mode.TESTNET)
    books(SPOT, **DEEP)

    # Act
    decision = SmartOrderRouter().route(intent=make_intent(SPOT))

    # Assert
    assert decision.routed
    assert (decision.venue, decision.instrument_key, decision.venue_type) == ("BINANCE-SPOT", SPOT, "NAUTILUS")
    assert decision.listing == listing and decision.venue_obj == listing.venue
    (candidate,) = decision.candidates
    assert candidate.eligible and candidate.mode == "testnet" and candidate.circuit == "closed"
    assert (candidate.fee_bps, candidate.slippage_bps, candidate.latency_bps, candidate.total_bps) == (
        bps("10"), bps("100"), bps("0.05"), bps("110.05"),
    )
    assert "as named" in decision.reason and "testnet" in decision.reason


def test_route_named_external_sdk_venue_without_adapter_not_routed_naming_the_adapter(books):
    # Arrange: an enabled Deribit venue with a fresh book; no external SDK adapter ships in this release
    make_listing("DERIBIT", DERIBIT_PERP, kind=Venue.Kind.EXTERNAL_SDK)
    books(DERIBIT_PERP, **DEEP)

    # Act
    decision = SmartOrderRouter().route(intent=make_intent(DERIBIT_PERP))

    # Assert: refused here, with the cause, not sent on to a trading node that cannot trade it
    assert not decision.routed and decision.venue is None and decision.venue_type is None
    assert decision.reason == f"{DERIBIT_PERP} not routable: {NO_DERIBIT_ADAPTER}"
    (candidate,) = decision.candidates
    assert not candidate.eligible and candidate.reason.startswith(NO_DERIBIT_ADAPTER)
    assert candidate.total_bps == bps("105")  # costed for the record like any ineligible candidate


def test_route_named_venue_with_asset_class_prefix_finds_the_listing(books):
    # Arrange
    make_listing("BINANCE-SPOT", SPOT)

    # Act
    decision = SmartOrderRouter().route(intent=make_intent(f"CRYPTO:{SPOT}"))

    # Assert
    assert decision.routed and decision.instrument_key == SPOT


def test_route_named_venue_disabled_listing_not_routed_with_reason(books):
    # Arrange
    make_listing("BINANCE-SPOT", SPOT, enabled=False)
    books(SPOT, **DEEP)

    # Act
    decision = SmartOrderRouter().route(intent=make_intent(SPOT))

    # Assert
    assert not decision.routed and decision.venue is None and decision.listing is None
    assert decision.reason == f"{SPOT} not routable: listing disabled"
    (candidate,) = decision.candidates
    assert not candidate.eligible and candidate.total_bps == bps("105")  # figures kept for the record


def test_route_named_venue_disabled_venue_not_routed_with_reason(books):
    # Arrange
    make_listing("BINANCE-SPOT", SPOT, venue_enabled=False)

    # Act
    decision = SmartOrderRouter().route(intent=make_intent(SPOT))

    # Assert
    assert not decision.routed
    assert decision.reason == f"{SPOT} not routable: venue disabled"


def test_route_named_venue_open_circuit_not_routed_with_reason(books):
    # Arrange
    make_listing("BINANCE-SPOT", SPOT)
    trip("BINANCE-SPOT")

    # Act
    decision = SmartOrderRouter().route(intent=make_intent(SPOT))

    # Assert
    assert not decision.routed
    assert decision.reason.startswith(f"{SPOT} not routable: circuit open (open since ")
    assert decision.candidates[0].circuit == "open"


def test_route_named_venue_without_listing_names_the_missing_listing():
    # Arrange
    make_listing("BINANCE-SPOT", SPOT)

    # Act
    decision = SmartOrderRouter().route(intent=make_intent("BINANCE-SPOT:SPOT_PAIR:ETH-USDT"))

    # Assert
    assert not decision.routed and decision.candidates == ()
    assert decision.reason == "instrument not listed: venue BINANCE-SPOT has no listing of SPOT_PAIR:ETH-USDT"


def test_route_named_venue_unknown_venue_says_not_configured():
    # Act
    decision = SmartOrderRouter().route(intent=make_intent("KRAKEN:SPOT_PAIR:BTC-USDT"))

    # Assert
    assert decision.reason == "instrument not listed: venue KRAKEN is not configured"


# -- ANY: cost model -----------------------------------------------------------------------------
def test_route_any_chooses_lowest_taker_fee_when_books_equal(books):
    # Arrange
    venues = (("BINANCE-FUTURES", BINANCE_PERP, "5"), ("BYBIT", BYBIT_PERP, "3"), ("OKX", OKX_PERP, "7"))
    for code, key, taker in venues:
        make_listing(code, key, taker=taker)
        books(key, **DEEP)

    # Act
    decision = SmartOrderRouter().route(intent=make_intent(ANY_PERP))

    # Assert
    assert decision.venue == "BYBIT" and decision.instrument_key == BYBIT_PERP
    assert [c.venue for c in decision.candidates] == ["BYBIT", "BINANCE-FUTURES", "OKX"]
    assert [c.total_bps for c in decision.candidates] == [bps("103"), bps("105"), bps("107")]
    assert "BYBIT 103.000000 bps (next: BINANCE-FUTURES 105.000000 bps)" in decision.reason


def test_route_any_chooses_deeper_book_by_walked_slippage(books):
    # Arrange: buy 2 with mid 100. A fills 1@101 + 1@102 (VWAP 101.5 = 150 bps);
    # B fills 0.5@101 + 1.5@104 (VWAP 103.25 = 325 bps).
    make_listing("BINANCE-FUTURES", BINANCE_PERP)
    make_listing("BYBIT", BYBIT_PERP)
    books(BINANCE_PERP, bids=[(99, 10)], asks=[(104, 10), (101, 0.5)])  # unsorted on purpose
    books(BYBIT_PERP, bids=[(99, 10)], asks=[(101, 1), (102, 10)])

    # Act
    decision = SmartOrderRouter().route(intent=make_intent(ANY_PERP, quantity="2"))

    # Assert
    candidates = by_venue(decision)
    assert decision.venue == "BYBIT"
    assert candidates["BYBIT"].slippage_bps == bps("150")
    assert candidates["BYBIT"].expected_price == Decimal("101.5")
    assert candidates["BINANCE-FUTURES"].slippage_bps == bps("325")
    assert decision.benchmark_price == Decimal("100") and decision.benchmark == "consolidated_mid"


def test_route_any_sell_walks_bids(books):
    # Arrange: sell 2 with mid 100: 1@99 + 1@98 = VWAP 98.5, 150 bps.
    make_listing("BYBIT", BYBIT_PERP)
    books(BYBIT_PERP, bids=[(99, 1), (98, 10)], asks=[(101, 10)])

    # Act
    decision = SmartOrderRouter().route(intent=make_intent(ANY_PERP, side="SELL", quantity="2"))

    # Assert
    assert decision.candidates[0].slippage_bps == bps("150")


def test_route_any_buy_prefers_lower_ask_across_venues(books):
    # Arrange: A 99/101, B 100/102; consolidated mid (100 + 101) / 2 = 100.5. Each is 100 bps from
    # its own mid, so only a common benchmark tells that buying at 101 beats buying at 102.
    make_listing("BINANCE-FUTURES", BINANCE_PERP)
    make_listing("BYBIT", BYBIT_PERP)
    books(BINANCE_PERP, bids=[(100, 10)], asks=[(102, 10)])
    books(BYBIT_PERP, bids=[(99, 10)], asks=[(101, 10)])

    # Act
    decision = SmartOrderRouter().route(intent=make_intent(ANY_PERP))

    # Assert
    candidates = by_venue(decision)
    assert decision.venue == "BYBIT"
    assert candidates["BYBIT"].slippage_bps == bps("49.751244")  # 0.5 / 100.5 × 10 000
    assert candidates["BINANCE-FUTURES"].slippage_bps == bps("149.253731")


def test_route_any_chooses_lower_latency_when_costs_equal(books):
    # Arrange
    make_listing("BINANCE-FUTURES", BINANCE_PERP, latency_ms="100")
    make_listing("OKX", OKX_PERP, latency_ms="20")
    books(BINANCE_PERP, **DEEP)
    books(OKX_PERP, **DEEP)

    # Act
    decision = SmartOrderRouter().route(intent=make_intent(ANY_PERP))

    # Assert
    candidates = by_venue(decision)
    assert decision.venue == "OKX"
    assert candidates["OKX"].latency_bps == bps("0.2") and candidates["BINANCE-FUTURES"].latency_bps == bps("1")


def test_route_any_latency_penalty_follows_setting(books, settings):
    # Arrange
    settings.ODUM = {**settings.ODUM, "ROUTER_LATENCY_PENALTY_BPS_PER_MS": "0.5"}
    make_listing("OKX", OKX_PERP, latency_ms="20")

    # Act
    decision = SmartOrderRouter().route(intent=make_intent(ANY_PERP))

    # Assert
    assert decision.candidates[0].latency_bps == bps("10")
    assert decision.to_json()["cost_model"]["latency_penalty_bps_per_ms"] == "0.5"


def test_route_any_identical_costs_break_tie_by_venue_code(books):
    # Arrange: created in reverse alphabetical order, so row order cannot decide.
    for code, key in (("OKX", OKX_PERP), ("BYBIT", BYBIT_PERP), ("BINANCE-FUTURES", BINANCE_PERP)):
        make_listing(code, key)
        books(key, **DEEP)
    router = SmartOrderRouter()

    # Act
    first = router.route(intent=make_intent(ANY_PERP))
    second = router.route(intent=make_intent(ANY_PERP))

    # Assert
    assert first.venue == "BINANCE-FUTURES"
    assert [c.venue for c in first.candidates] == ["BINANCE-FUTURES", "BYBIT", "OKX"]
    assert first.candidates == second.candidates


def test_route_any_equal_totals_break_tie_by_lower_fee(books):
    # Arrange: 5 + 100 + 0 against 4 + 100 + 1 (100 ms): same total, OKX has the lower fee.
    make_listing("BINANCE-FUTURES", BINANCE_PERP, taker="5")
    make_listing("OKX", OKX_PERP, taker="4", latency_ms="100")
    books(BINANCE_PERP, **DEEP)
    books(OKX_PERP, **DEEP)

    # Act
    decision = SmartOrderRouter().route(intent=make_intent(ANY_PERP))

    # Assert
    assert [c.total_bps for c in decision.candidates] == [bps("105"), bps("105")]
    assert decision.venue == "OKX"


def test_route_resting_limit_not_crossing_uses_maker_fee_and_zero_slippage(books):
    # Arrange
    make_listing("BYBIT", BYBIT_PERP, maker="2", taker="5")
    books(BYBIT_PERP, **DEEP)

    # Act
    decision = SmartOrderRouter().route(
        intent=make_intent(ANY_PERP, order_type="LIMIT", price="100", tif="GTC")
    )

    # Assert
    (candidate,) = decision.candidates
    assert (candidate.fee_bps, candidate.slippage_bps, candidate.total_bps) == (bps("2"), bps("0"), bps("2"))
    assert "limit does not cross the book: rests" in candidate.reason


def test_route_ioc_limit_not_crossing_uses_taker_fee(books):
    # Arrange
    make_listing("BYBIT", BYBIT_PERP, maker="2", taker="5")
    books(BYBIT_PERP, **DEEP)

    # Act
    decision = SmartOrderRouter().route(intent=make_intent(ANY_PERP, order_type="LIMIT", price="100", tif="IOC"))

    # Assert
    assert (decision.candidates[0].fee_bps, decision.candidates[0].slippage_bps) == (bps("5"), bps("0"))


def test_route_resting_limit_prefers_lower_maker_fee(books):
    # Arrange: BINANCE has the lower taker fee, BYBIT the lower maker fee.
    make_listing("BINANCE-FUTURES", BINANCE_PERP, maker="2", taker="4")
    make_listing("BYBIT", BYBIT_PERP, maker="1", taker="6")
    books(BINANCE_PERP, **DEEP)
    books(BYBIT_PERP, **DEEP)

    # Act
    resting = SmartOrderRouter().route(intent=make_intent(ANY_PERP, order_type="LIMIT", price="100", tif="GTD"))
    market = SmartOrderRouter().route(intent=make_intent(ANY_PERP))

    # Assert
    assert resting.venue == "BYBIT" and market.venue == "BINANCE-FUTURES"


def test_route_marketable_resting_limit_blends_taker_and_maker_fees(books):
    # Arrange: buy 2 limit 101.5 on asks 101@1, 102@10: 1 fills at 101, 1 rests at 101.5.
    make_listing("BYBIT", BYBIT_PERP, maker="2", taker="5")
    books(BYBIT_PERP, bids=[(99, 10)], asks=[(101, 1), (102, 10)])

    # Act
    decision = SmartOrderRouter().route(
        intent=make_intent(ANY_PERP, order_type="LIMIT", price="101.5", quantity="2", tif="GTC")
    )

    # Assert
    (candidate,) = decision.candidates
    assert candidate.fee_bps == bps("3.5")  # half taker 5, half maker 2
    assert candidate.slippage_bps == bps("125")  # VWAP 101.25 against mid 100
    assert "rests at the limit" in candidate.reason


def test_route_book_short_of_size_prices_remainder_at_penalty_and_stays_eligible(books):
    # Arrange: buy 5. A: 1@101 + 1@102 visible, 3 more at 102 × 1.005 = 102.51
    # -> VWAP 510.53 / 5 = 102.106 = 210.6 bps. B: 1@101 + 4@102 = VWAP 101.8 = 180 bps.
    make_listing("BINANCE-FUTURES", BINANCE_PERP)
    make_listing("BYBIT", BYBIT_PERP)
    books(BINANCE_PERP, bids=[(99, 10)], asks=[(101, 1), (102, 1)])
    books(BYBIT_PERP, bids=[(99, 10)], asks=[(101, 1), (102, 10)])

    # Act
    decision = SmartOrderRouter().route(intent=make_intent(ANY_PERP, quantity="5"))

    # Assert
    candidates = by_venue(decision)
    assert decision.venue == "BYBIT"
    thin = candidates["BINANCE-FUTURES"]
    assert thin.eligible and thin.slippage_bps == bps("210.6")
    assert "visible depth fills 2 of 5" in thin.reason and "+ 50 bps" in thin.reason


def test_route_venue_without_book_ranks_after_venues_with_book(books):
    # Arrange: OKX is cheapest on fees but has no book; BYBIT has one.
    make_listing("OKX", OKX_PERP, taker="1")
    make_listing("BYBIT", BYBIT_PERP, taker="5")
    books(BYBIT_PERP, **DEEP)

    # Act
    decision = SmartOrderRouter().route(intent=make_intent(ANY_PERP))

    # Assert
    candidates = by_venue(decision)
    assert decision.venue == "BYBIT"
    assert candidates["OKX"].eligible and candidates["OKX"].slippage_bps is None
    assert candidates["OKX"].total_bps == bps("1")  # fee + latency only: a lower bound
    assert candidates["OKX"].reason.startswith("no book snapshot; slippage unknown")


def test_route_stale_book_counts_as_no_book(books):
    # Arrange
    make_listing("OKX", OKX_PERP)
    books(OKX_PERP, age_secs=60, **DEEP)

    # Act
    decision = SmartOrderRouter().route(intent=make_intent(ANY_PERP))

    # Assert
    assert decision.routed and decision.benchmark_price is None
    assert decision.candidates[0].slippage_bps is None
    assert decision.candidates[0].reason.startswith("book stale (60.")
    assert "OKX has no fresh book: its total is fee + latency only" in decision.reason


def test_route_any_skips_disabled_venue_and_listing_and_records_why(books):
    # Arrange: the two cheapest are blocked.
    make_listing("BINANCE-FUTURES", BINANCE_PERP, taker="1", venue_enabled=False)
    make_listing("BYBIT", BYBIT_PERP, taker="2", enabled=False)
    make_listing("OKX", OKX_PERP, taker="9")
    for key in (BINANCE_PERP, BYBIT_PERP, OKX_PERP):
        books(key, **DEEP)

    # Act
    decision = SmartOrderRouter().route(intent=make_intent(ANY_PERP))

    # Assert
    candidates = by_venue(decision)
    assert decision.venue == "OKX"
    assert not candidates["BINANCE-FUTURES"].eligible
    assert candidates["BINANCE-FUTURES"].reason.startswith("venue disabled")
    assert not candidates["BYBIT"].eligible and candidates["BYBIT"].reason.startswith("listing disabled")
    assert candidates["BYBIT"].total_bps == bps("102")  # ineligible candidates are still costed
    assert [c.venue for c in decision.candidates] == ["OKX", "BINANCE-FUTURES", "BYBIT"]
    assert "among 1 eligible of 3" in decision.reason


def test_route_any_skips_external_sdk_venue_without_adapter_and_records_why(books):
    # Arrange: Deribit is the cheaper venue, but no external SDK adapter ships in this release
    make_listing("DERIBIT", DERIBIT_PERP, taker="1", kind=Venue.Kind.EXTERNAL_SDK)
    make_listing("OKX", OKX_INV_PERP, taker="9")
    books(DERIBIT_PERP, **DEEP)
    books(OKX_INV_PERP, **DEEP)

    # Act
    decision = SmartOrderRouter().route(intent=make_intent(ANY_INV_PERP))

    # Assert
    skipped = by_venue(decision)["DERIBIT"]
    assert decision.venue == "OKX" and decision.venue_type == "NAUTILUS"
    assert not skipped.eligible and skipped.reason.startswith(NO_DERIBIT_ADAPTER)
    assert "among 1 eligible of 2" in decision.reason
    stored = decision.to_json()["candidates"]
    assert [(c["venue"], c["eligible"]) for c in stored] == [("OKX", True), ("DERIBIT", False)]


def test_route_any_only_external_sdk_venue_without_adapter_names_it(books):
    # Arrange
    make_listing("DERIBIT", DERIBIT_PERP, kind=Venue.Kind.EXTERNAL_SDK)
    books(DERIBIT_PERP, **DEEP)

    # Act
    decision = SmartOrderRouter().route(intent=make_intent(ANY_INV_PERP))

    # Assert
    assert not decision.routed
    assert decision.reason == f"no eligible venue for {ANY_INV_PERP}: DERIBIT: {NO_DERIBIT_ADAPTER}"


def test_route_any_skips_venue_with_open_circuit(books):
    # Arrange
    make_listing("BINANCE-FUTURES", BINANCE_PERP, taker="1")
    make_listing("OKX", OKX_PERP, taker="9")
    books(BINANCE_PERP, **DEEP)
    books(OKX_PERP, **DEEP)
    trip("BINANCE-FUTURES")

    # Act
    decision = SmartOrderRouter().route(intent=make_intent(ANY_PERP))

    # Assert
    blocked = by_venue(decision)["BINANCE-FUTURES"]
    assert decision.venue == "OKX"
    assert not blocked.eligible and blocked.circuit == "open" and blocked.reason.startswith("circuit open")


def test_route_any_half_open_circuit_is_eligible_but_ranked_after_closed(books, settings):
    # Arrange: a reset timeout of 0 makes a tripped circuit half-open at once.
    settings.ODUM = {**settings.ODUM, "CIRCUIT_RESET_TIMEOUT_SECS": 0}
    make_listing("BINANCE-FUTURES", BINANCE_PERP, taker="1")
    make_listing("OKX", OKX_PERP, taker="9")
    books(BINANCE_PERP, **DEEP)
    books(OKX_PERP, **DEEP)
    trip("BINANCE-FUTURES")

    # Act
    decision = SmartOrderRouter().route(intent=make_intent(ANY_PERP))

    # Assert
    recovering = by_venue(decision)["BINANCE-FUTURES"]
    assert decision.venue == "OKX"
    assert recovering.eligible and recovering.circuit == "half-open"


def test_route_any_nothing_eligible_names_each_venue_and_why(books):
    # Arrange
    make_listing("BINANCE-FUTURES", BINANCE_PERP, venue_enabled=False)
    make_listing("BYBIT", BYBIT_PERP)
    trip("BYBIT")

    # Act
    decision = SmartOrderRouter().route(intent=make_intent(ANY_PERP))

    # Assert
    assert not decision.routed
    assert decision.reason.startswith(
        f"no eligible venue for {ANY_PERP}: BINANCE-FUTURES: venue disabled; BYBIT: circuit open"
    )


def test_route_any_without_listings_says_not_listed():
    # Act
    decision = SmartOrderRouter().route(intent=make_intent(ANY_PERP))

    # Assert
    assert not decision.routed
    assert decision.reason == f"instrument not listed: no venue lists PERPETUAL:BTC-USDT@LIN (requested {ANY_PERP})"


def test_route_any_asset_class_mismatch_is_ineligible(books):
    # Arrange
    make_listing("BYBIT", f"EQUITY:{BYBIT_PERP}")

    # Act
    decision = SmartOrderRouter().route(intent=make_intent(f"CRYPTO:{ANY_PERP}"))

    # Assert
    assert not decision.routed
    assert "asset class EQUITY differs from the requested CRYPTO" in decision.reason


# -- failure of shared services ------------------------------------------------------------------
def test_route_circuit_state_unknown_when_redis_down_routes_with_reason(books, settings):
    # Arrange
    make_listing("BYBIT", BYBIT_PERP)
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1

    # Act
    decision = SmartOrderRouter().route(intent=make_intent(ANY_PERP))

    # Assert
    (candidate,) = decision.candidates
    assert decision.routed and decision.venue == "BYBIT"
    assert candidate.eligible and candidate.circuit == "unknown"
    assert "circuit state unknown: Redis unavailable" in candidate.reason
    assert "treated as closed" in candidate.reason
    assert decision.reason.endswith("; circuit unknown")


def test_route_market_data_unavailable_counts_as_no_book():
    # Arrange
    make_listing("BYBIT", BYBIT_PERP)
    router = SmartOrderRouter(market_data_store=RedisMarketDataStore("redis://127.0.0.1:1/0"))

    # Act
    decision = router.route(intent=make_intent(ANY_PERP))

    # Assert
    (candidate,) = decision.candidates
    assert decision.routed and candidate.slippage_bps is None
    assert candidate.reason.startswith("market data unavailable (redis 127.0.0.1:1/0): ConnectionError")
    assert "; slippage unknown" in candidate.reason


# -- record and cost ------------------------------------------------------------------------------
def test_route_decision_json_records_every_candidate_figure(books):
    # Arrange
    make_listing("BINANCE-FUTURES", BINANCE_PERP, taker="5", latency_ms="10")
    make_listing("BYBIT", BYBIT_PERP, taker="3", venue_enabled=False)
    make_listing("OKX", OKX_PERP, taker="4")
    books(BINANCE_PERP, **DEEP)
    books(BYBIT_PERP, **DEEP)

    # Act
    decision = SmartOrderRouter().route(intent=make_intent(ANY_PERP))
    data = decision.to_json()
    order = OrderFactory(instrument_key=ANY_PERP, routing_decision=data)
    order.refresh_from_db()

    # Assert
    assert json.loads(json.dumps(data)) == data == order.routing_decision
    assert {c["venue"] for c in data["candidates"]} == {"BINANCE-FUTURES", "BYBIT", "OKX"}
    figures = ("fee_bps", "slippage_bps", "latency_bps", "total_bps")
    for candidate in data["candidates"]:
        assert set(candidate) == {
            "venue", "instrument_key", "eligible", *figures, "reason", "mode", "circuit", "expected_price",
        }
        assert all(candidate[f] is None or isinstance(candidate[f], str) for f in figures)
    binance = next(c for c in data["candidates"] if c["venue"] == "BINANCE-FUTURES")
    assert binance == {
        "venue": "BINANCE-FUTURES", "instrument_key": BINANCE_PERP, "eligible": True,
        "fee_bps": "5.000000", "slippage_bps": "100.000000", "latency_bps": "0.100000", "total_bps": "105.100000",
        "reason": "", "mode": "paper", "circuit": "closed", "expected_price": "101.0000000000",
    }
    assert data["routed"] is True and data["venue"] == "BINANCE-FUTURES" and data["mode"] == "paper"
    assert data["benchmark_price"] == "100" and data["benchmark"] == "consolidated_mid"
    assert Order.objects.filter(routing_decision__venue="BINANCE-FUTURES").count() == 1


def test_route_unrouted_decision_json_has_reason_and_no_venue():
    # Act
    data = SmartOrderRouter().route(intent=make_intent(ANY_PERP)).to_json()

    # Assert
    assert data["routed"] is False and data["venue"] is None and data["mode"] is None
    assert data["candidates"] == [] and data["reason"].startswith("instrument not listed")


def test_route_candidate_and_decision_types_are_frozen(books):
    # Arrange
    make_listing("BYBIT", BYBIT_PERP)
    decision = SmartOrderRouter().route(intent=make_intent(ANY_PERP))

    # Act / Assert
    assert isinstance(decision, RoutingDecision) and isinstance(decision.candidates[0], RouteCandidate)
    with pytest.raises(AttributeError):
        decision.venue = "OKX"


def test_route_any_uses_one_query(books):
    # Arrange
    for code, key in (("BINANCE-FUTURES", BINANCE_PERP), ("BYBIT", BYBIT_PERP), ("OKX", OKX_PERP)):
        make_listing(code, key)
        books(key, **DEEP)
    router = SmartOrderRouter()

    # Act
    with CaptureQueriesContext(connection) as queries:
        decision = router.route(intent=make_intent(ANY_PERP))
        decision.listing.venue.code  # noqa: B018 - the chosen venue is loaded with the listing

    # Assert
    assert decision.routed and len(queries) == 1


def test_route_named_uses_one_query_and_two_when_unlisted(books):
    # Arrange
    make_listing("BINANCE-SPOT", SPOT)
    router = SmartOrderRouter()

    # Act
    with CaptureQueriesContext(connection) as found:
        router.route(intent=make_intent(SPOT))
    with CaptureQueriesContext(connection) as missing:
        router.route(intent=make_intent("BINANCE-SPOT:SPOT_PAIR:ETH-USDT"))

    # Assert
    assert (len(found), len(missing)) == (1, 2)
