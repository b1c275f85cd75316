"""venues.algorithms.base: the slicing algorithms' quantity rules (pure functions, in size-increment units)."""

from decimal import Decimal

import pytest
from nautilus_trader.model.objects import Price

from venues.algorithms.backtest import btcusdt_binance_spot
from venues.algorithms.base import fit_to_minimum, min_notional_units, units_to_qty


@pytest.mark.parametrize(
    ("send", "remaining", "most", "expected"),
    [
        (11, 21, None, 11),  # leaves 10 = the minimum: sent as asked
        (21, 21, None, 21),  # the whole rest
        (5, 21, None, 0),  # below the minimum and not the whole rest: carried
        (14, 21, None, 11),  # would leave 7: send less (11, off plan by 3) rather than all (21, off by 7)
        (18, 21, None, 21),  # would leave 3: send all (off by 3) rather than less (11, off by 7)
        (18, 21, 18, 11),  # ... unless the cap forbids sending all
        (15, 20, None, 10),  # a tie (10 or 20, both off by 5) goes to the smaller slice
        (12, 15, None, 15),  # less would be 5 (below the minimum): carry (off by 12) or all (off by 3)
        (12, 15, 12, 0),  # ... and with the cap at 12, carry it all
    ],
)
def test_fit_to_minimum_slice_leaving_a_rest_below_the_minimum_is_resized(send, remaining, most, expected):
    # Arrange: a venue minimum of 10 units.
    minimum = 10

    # Act
    sent = fit_to_minimum(send, remaining, minimum, most=most)

    # Assert: the answer, and neither the slice nor the rest strictly between 0 and the minimum.
    assert sent == expected
    assert sent == 0 or sent >= minimum
    assert remaining - sent == 0 or remaining - sent >= minimum


@pytest.mark.parametrize(
    ("min_notional", "price", "expected"),
    [
        ("10", "40000.00", 250),  # 0.00025 BTC × 40 000 = 10 USDT exactly
        ("10", "40000.01", 250),  # 0.000249999… rounds UP to the increment
        ("10", "39999.99", 251),
        ("5", "0.01", 500_000_000),  # a price of one tick: half a thousand BTC
        (None, "40000.00", 0),  # no minimum notional
    ],
)
def test_min_notional_units_is_the_smallest_slice_the_risk_engine_values_at_the_minimum(min_notional, price,
                                                                                      expected):
    # Arrange: BTCUSDT, size increment 0.000001 BTC
    instrument = btcusdt_binance_spot(min_notional=min_notional)
    at = Price.from_str(price)

    # Act
    units = min_notional_units(instrument, at)

    # Assert: the answer, and NautilusTrader's own valuation agrees it is the smallest that passes.
    assert units == expected
    if min_notional is not None:
        minimum = Decimal(min_notional)
        assert instrument.notional_value(units_to_qty(units, instrument), at, True).as_decimal() >= minimum
        assert instrument.notional_value(units_to_qty(units - 1, instrument), at, True).as_decimal() < minimum


def test_min_notional_units_without_a_price_is_zero():
    # Arrange: a MARKET slice before any quote or trade (the RiskEngine then skips its notional check)
    instrument = btcusdt_binance_spot(min_notional="10")

    # Act / Assert
    assert min_notional_units(instrument, None) == 0
