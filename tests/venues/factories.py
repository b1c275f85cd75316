from decimal import Decimal

import factory

from venues.models import Instrument, Venue


class VenueFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Venue
        django_get_or_create = ("code",)

    code = "BINANCE-SPOT"
    name = factory.LazyAttribute(lambda o: o.code.title())
    kind = Venue.Kind.NAUTILUS
    adapter = "binance_spot"
    mode = Venue.Mode.PAPER
    enabled = True
    maker_fee_bps = Decimal("10")  # 0.001 (binance_spot_btcusdt_instrument.txt)
    taker_fee_bps = Decimal("10")
    latency_ms = Decimal("5")


class InstrumentFactory(factory.django.DjangoModelFactory):
    """A BTC-USDT spot listing with the recorded Binance rules (tick 0.01, lot 0.000001)."""

    class Meta:
        model = Instrument
        django_get_or_create = ("instrument_key",)

    venue = factory.SubFactory(VenueFactory)
    instrument_key = factory.LazyAttribute(lambda o: f"{o.venue.code}:SPOT_PAIR:BTC-USDT")
    nautilus_instrument_id = "BTCUSDT.BINANCE"
    venue_symbol = "BTCUSDT"
    base_currency = "BTC"
    quote_currency = "USDT"
    settlement_currency = "USDT"
    tick_size = Decimal("0.01")
    lot_size = Decimal("0.000001")
    min_quantity = Decimal("0.000001")
    max_quantity = Decimal("9000")
    min_notional = Decimal("10")
    enabled = True
