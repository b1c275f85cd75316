"""PreTradeRiskEngine: the listing's max_quantity holds every order that reaches the venue, an algorithm's slices
and clips included, rather than a parent that is never sent whole."""

from decimal import Decimal

import pytest
from django.db import transaction

from tests.risk.conftest import BTC_USDT, only_check
from tests.risk.factories import order_intent
from tests.venues.factories import InstrumentFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def small_max(db, strategy):
    """The BTC-USDT listing with a maximum order size of 100 BTC (Binance LOT_SIZE / MARKET_LOT_SIZE maxQty)."""
    return InstrumentFactory(max_quantity=Decimal("100"))


def evaluate(engine, listing, **intent_fields):
    with transaction.atomic():
        return engine.evaluate(intent=order_intent(**intent_fields), listing=listing, venue=listing.venue)


def twap(quantity: str, slices: int) -> dict:
    # What orders.services.request builds for a TWAP of horizon_secs // interval_secs = `slices`.
    return {"exec_algorithm": "TWAP", "quantity": Decimal(quantity), "slice_weights": (Decimal(1),) * slices}


def test_twap_slice_above_the_listing_max_quantity_is_denied_naming_the_slice(engine, small_max, fresh_quote):
    # Act: 500 BTC over 2 slices: every 250 BTC child would be refused by the venue
    result = evaluate(engine, small_max, **twap("500", 2))

    # Assert: DENIED by max_quantity, on the slice, with limit and observed value
    check = only_check(result, "max_quantity")
    assert not result.passed
    assert (check.passed, check.limit, check.observed) == (False, "100 BTC", "250")
    assert check.scope == f"LISTING:{BTC_USDT}"
    assert "TWAP slice 250 BTC > listing max_quantity 100 BTC" in check.detail
    assert result.reason.startswith("max_quantity: observed 250 BTC, limit 100 BTC — TWAP slice 250 BTC")


def test_twap_parent_above_the_listing_max_quantity_passes_when_every_slice_fits(engine, small_max, fresh_quote):
    # Act: 500 BTC over 10 slices of 50: the parent is never sent whole, only its slices reach the venue
    result = evaluate(engine, small_max, **twap("500", 10))

    # Assert
    check = only_check(result, "max_quantity")
    assert result.passed, result.reason
    assert (check.passed, check.observed) == (True, "50")
    assert "TWAP" in check.detail


@pytest.mark.parametrize(
    ("quantity", "slices", "observed", "passed"),
    [
        ("100.000001", 1, "100.000001", False),  # one slice: the parent itself
        ("200.000001", 2, "100.000001", False),  # the odd increment goes to the first slice, as the node does
        ("200", 2, "100", True),
    ],
)
def test_twap_largest_slice_is_rounded_as_the_algorithm_rounds(
        engine, small_max, fresh_quote, quantity, slices, observed, passed):
    # Act
    check = only_check(evaluate(engine, small_max, **twap(quantity, slices)), "max_quantity")

    # Assert
    assert (check.passed, check.observed) == (passed, observed)


def test_vwap_with_a_volume_profile_is_held_to_its_largest_slice(engine, small_max, fresh_quote):
    # Act: 300 BTC along a 1 : 4 : 1 profile plans 50, 200, 50
    result = evaluate(engine, small_max, exec_algorithm="VWAP", quantity=Decimal("300"),
                      slice_weights=(Decimal(1), Decimal(4), Decimal(1)))

    # Assert
    check = only_check(result, "max_quantity")
    assert (check.passed, check.observed) == (False, "200")
    assert "VWAP slice 200 BTC > listing max_quantity 100 BTC" in check.detail


def test_vwap_without_a_volume_profile_is_held_to_its_parent(engine, small_max, fresh_quote):
    # Act: the slices are sized on the node from market volume: unknown at submit, the parent bounds them
    result = evaluate(engine, small_max, exec_algorithm="VWAP", quantity=Decimal("150"))

    # Assert: fails closed, saying why and how to have the slices checked instead
    check = only_check(result, "max_quantity")
    assert (check.passed, check.observed) == (False, "150")
    assert "volume_profile" in check.detail


def test_iceberg_display_qty_above_the_listing_max_quantity_is_denied_naming_it(engine, small_max, fresh_quote):
    # Act: clips of 120 BTC of a 500 BTC iceberg
    result = evaluate(engine, small_max, exec_algorithm="ICEBERG", quantity=Decimal("500"),
                      display_qty=Decimal("120"))

    # Assert: one max_quantity result, on the clip, and the parent is not held to it
    check = only_check(result, "max_quantity")
    assert (check.passed, check.observed) == (False, "120")
    assert "display_qty" in check.detail


def test_iceberg_parent_above_the_listing_max_quantity_passes_when_its_clips_fit(engine, small_max, fresh_quote):
    # Act
    result = evaluate(engine, small_max, exec_algorithm="ICEBERG", quantity=Decimal("500"),
                      display_qty=Decimal("100"))

    # Assert
    check = only_check(result, "max_quantity")
    assert result.passed, result.reason
    assert (check.passed, check.observed) == (True, "100")


def test_normal_order_above_the_listing_max_quantity_is_still_denied(engine, small_max, fresh_quote):
    # Act
    check = only_check(evaluate(engine, small_max, quantity=Decimal("100.000001")), "max_quantity")

    # Assert
    assert (check.passed, check.observed) == (False, "100.000001")
