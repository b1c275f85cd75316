"""positions.selectors: positions aggregated by canonical instrument across venues."""

from decimal import Decimal

import pytest

from positions.selectors import position_aggregates
from tests.orders.factories import StrategyFactory
from tests.positions.factories import PositionFactory

D = Decimal
INV = "PERPETUAL:BTC-USD@INV"
LIN = "PERPETUAL:BTC-USDT@LIN"


@pytest.mark.django_db
def test_position_aggregates_single_inverse_position_reports_its_stored_avg_entry_price():
    # Arrange: one inverse position whose entry price 1/p does not fit 28 digits
    PositionFactory(strategy=StrategyFactory(id="s-inv"), venue="DERIBIT", instrument_key=f"DERIBIT:{INV}",
                    equivalence_key=INV, quantity=D("244"), avg_entry_price=D("58354.36"))

    # Act
    (agg,) = position_aggregates(strategy_ids=None)

    # Assert: the stored price, not 58354.36000000000000000000001
    assert agg.venues[0].avg_entry_price == D("58354.36")
    assert str(agg.venues[0].avg_entry_price.normalize()) == "58354.36"
    assert agg.avg_entry_price == D("58354.36")


@pytest.mark.django_db
def test_position_aggregates_avg_entry_price_across_venues_has_at_most_18_decimal_places():
    # Arrange: 2 at 40000 and 1 at 41000: 40333.33… recurring
    strategy = StrategyFactory(id="s-lin")
    for venue, quantity, price in (("BINANCE-FUTURES", "2", "40000"), ("BYBIT", "1", "41000")):
        PositionFactory(strategy=strategy, venue=venue, instrument_key=f"{venue}:{LIN}", equivalence_key=LIN,
                        quantity=D(quantity), avg_entry_price=D(price))

    # Act
    (agg,) = position_aggregates(strategy_ids=None)

    # Assert: quantized as positions.maths quantizes (NUMERIC(36,18), half-even)
    assert agg.avg_entry_price == D("40333.333333333333333333")
    assert agg.avg_entry_price.as_tuple().exponent >= -18
