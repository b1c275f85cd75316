"""Our ``venues.Instrument`` listings as NautilusTrader instruments (paper venues load them from here).

A paper venue trades the listings of the ``Instrument`` table (issue #3 §1: "Instruments come from
the Instrument table (paper)"), so the node's cache gets them before start, built here:

- ``SPOT_PAIR`` → ``CurrencyPair``;
- ``PERPETUAL`` → ``CryptoPerpetual`` (linear, or inverse for ``@INV`` keys; multiplier = the
  listing's contract multiplier).

Precisions are the number of decimals of the tick / lot (0.01 → 2). Fees are the venue's maker /
taker bps as fractions (10 bps → 0.001), which NautilusTrader's ``MakerTakerFeeModel`` charges on
notional.
"""

from __future__ import annotations

from decimal import Decimal

from nautilus_trader.model.identifiers import InstrumentId, Symbol
from nautilus_trader.model.instruments import CryptoPerpetual, CurrencyPair, Instrument
from nautilus_trader.model.objects import Currency, Money, Price, Quantity

from odum_live.instruments import parse_instrument_key

_BPS = Decimal(10_000)
SUPPORTED_TYPES = ("SPOT_PAIR", "PERPETUAL")


class UnsupportedListing(ValueError):
    """A listing the paper venue cannot simulate (instrument type or missing currencies)."""


def decimals(value: Decimal) -> int:
    """Return the number of decimals of a tick or lot size (``Decimal("0.010")`` → 2, ``1`` → 0)."""
    exponent = value.normalize().as_tuple().exponent
    return max(0, -int(exponent))


def _price(value: Decimal, precision: int) -> Price:
    return Price(value, precision)


def _qty(value: Decimal, precision: int) -> Quantity:
    return Quantity(value, precision)


def nautilus_instrument(listing, *, maker_fee_bps: Decimal, taker_fee_bps: Decimal, ts_ns: int) -> Instrument:
    """Build the NautilusTrader instrument of one listing.

    Parameters
    ----------
    listing : venues.models.Instrument
        The listing (``nautilus_instrument_id``, currencies, tick / lot sizes in quote currency /
        base units, min / max quantity, min notional in quote currency, multiplier, inverse flag).
    maker_fee_bps, taker_fee_bps : Decimal
        The venue's fees, basis points of notional.
    ts_ns : int
        Event / init timestamp, UNIX nanoseconds.

    Returns
    -------
    nautilus_trader.model.instruments.Instrument
        ``CurrencyPair`` or ``CryptoPerpetual``.

    Raises
    ------
    UnsupportedListing
        Another instrument type, no NautilusTrader id, or missing base / quote currency.
    """
    key = parse_instrument_key(listing.instrument_key)
    if key.instrument_type not in SUPPORTED_TYPES:
        raise UnsupportedListing(f"{listing.instrument_key}: the paper venue simulates "
                                 f"{' and '.join(SUPPORTED_TYPES)} only, not {key.instrument_type}")
    if not listing.nautilus_instrument_id:
        raise UnsupportedListing(f"{listing.instrument_key}: no NautilusTrader instrument id")
    if not (listing.base_currency and listing.quote_currency):
        raise UnsupportedListing(f"{listing.instrument_key}: base and quote currencies are required")
    iid = InstrumentId.from_str(listing.nautilus_instrument_id)
    price_precision, size_precision = decimals(listing.tick_size), decimals(listing.lot_size)
    quote = Currency.from_str(listing.quote_currency)
    common = dict(
        instrument_id=iid,
        raw_symbol=Symbol(listing.venue_symbol or iid.symbol.value),
        base_currency=Currency.from_str(listing.base_currency),
        quote_currency=quote,
        price_precision=price_precision,
        size_precision=size_precision,
        price_increment=_price(listing.tick_size, price_precision),
        size_increment=_qty(listing.lot_size, size_precision),
        max_quantity=_qty(listing.max_quantity, size_precision) if listing.max_quantity else None,
        min_quantity=_qty(listing.min_quantity, size_precision) if listing.min_quantity else None,
        min_notional=Money(listing.min_notional, quote) if listing.min_notional else None,
        maker_fee=maker_fee_bps / _BPS,
        taker_fee=taker_fee_bps / _BPS,
        ts_event=ts_ns,
        ts_init=ts_ns,
    )
    if key.instrument_type == "SPOT_PAIR":
        return CurrencyPair(**common)
    settlement = listing.settlement_currency or (listing.base_currency if listing.is_inverse
                                                 else listing.quote_currency)
    return CryptoPerpetual(
        **common,
        settlement_currency=Currency.from_str(settlement),
        is_inverse=listing.is_inverse,
        multiplier=Quantity(listing.contract_multiplier, decimals(listing.contract_multiplier)),
    )
