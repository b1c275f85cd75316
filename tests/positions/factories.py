from decimal import Decimal

import factory

from positions.models import Position
from tests.orders.factories import StrategyFactory


class PositionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Position

    strategy = factory.SubFactory(StrategyFactory)
    venue = "BINANCE-SPOT"
    instrument_key = "BINANCE-SPOT:SPOT_PAIR:BTC-USDT"
    equivalence_key = "SPOT_PAIR:BTC-USDT"
    quantity = Decimal("0")
    avg_entry_price = None
