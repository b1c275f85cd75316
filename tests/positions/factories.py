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


def option_positions_settling_in_two_currencies(strategy) -> str:
    """One call option held on Deribit (inverse, BTC-settled, realized 0.01 BTC) and on OKX (linear,
    USD-settled, realized 100 USD), each 1 contract at 0.05; return its equivalence key."""
    from tests.venues.factories import InstrumentFactory, VenueFactory

    eq = "OPTION:BTC-USD-50000-20241231-C"
    for venue, inverse, settles, realized in (("DERIBIT", True, "BTC", "0.01"), ("OKX", False, "USD", "100")):
        InstrumentFactory(venue=VenueFactory(code=venue, adapter=venue.lower()), instrument_key=f"{venue}:{eq}",
                          quote_currency="USD", settlement_currency=settles, is_inverse=inverse)
        PositionFactory(strategy=strategy, venue=venue, instrument_key=f"{venue}:{eq}", equivalence_key=eq,
                        quantity=Decimal("1"), avg_entry_price=Decimal("0.05"), realized_pnl=Decimal(realized))
    return eq
