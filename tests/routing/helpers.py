"""Builders shared by the router tests: venues with listings, and order intents."""

from decimal import Decimal

from odum_live.instruments import InstrumentKey
from odum_live.intent import OrderIntent
from tests.venues.factories import InstrumentFactory, VenueFactory
from venues.models import Venue


def make_listing(
    code,
    key,
    *,
    maker="2",
    taker="5",
    latency_ms="0",
    enabled=True,
    venue_enabled=True,
    mode=Venue.Mode.PAPER,
    kind=Venue.Kind.NAUTILUS,
):
    """Create a venue (fees in bps, latency in ms) and its listing of canonical ``key``."""
    venue = VenueFactory(
        code=code,
        kind=kind,
        adapter=code.lower().replace("-", "_"),
        mode=mode,
        enabled=venue_enabled,
        maker_fee_bps=Decimal(maker),
        taker_fee_bps=Decimal(taker),
        latency_ms=Decimal(latency_ms),
    )
    parsed = InstrumentKey.parse(key)
    return InstrumentFactory(
        venue=venue,
        instrument_key=key,
        nautilus_instrument_id=parsed.nautilus_instrument_id(),
        venue_symbol=parsed.venue_symbol(),
        base_currency=parsed.base or "",
        quote_currency=parsed.quote or "",
        enabled=enabled,
    )


def make_intent(key, *, side="BUY", order_type="MARKET", quantity="1", price=None, tif="GTC"):
    """An order intent for canonical ``key`` (quantity in base units, price in quote currency)."""
    return OrderIntent(
        strategy_id="strategy-test",
        instrument=InstrumentKey.parse(key),
        side=side,
        order_type=order_type,
        quantity=Decimal(quantity),
        price=None if price is None else Decimal(price),
        time_in_force=tif,
    )
