from decimal import Decimal

import factory

from odum_live.instruments import parse_instrument_key
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


def listing_of(instrument_key: str, **fields) -> Instrument:
    """The ``venues.Instrument`` listing of ``instrument_key``, made with its venue when missing.

    Linear with contract multiplier 1 unless ``fields`` say otherwise; ``is_inverse`` follows an
    ``@INV`` suffix, the currencies a pair key's base and quote (settling in the base when inverse).
    For tests that mark positions: ``positions.services.position_mark`` refuses a key without a listing.
    """
    key = parse_instrument_key(instrument_key)
    inverse = fields.get("is_inverse", key.settlement == "INV")
    terms = {"is_inverse": inverse}
    if key.base and key.quote:
        terms.update(base_currency=key.base, quote_currency=key.quote,
                     settlement_currency=key.base if inverse else key.quote)
    venue = VenueFactory(code=key.venue, adapter=key.venue.lower().replace("-", "_"))
    return InstrumentFactory(venue=venue, instrument_key=instrument_key, **{**terms, **fields})
