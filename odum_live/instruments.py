"""Canonical instrument keys: parse, format, and map to NautilusTrader ids and venue symbols.

Grammar (DESIGN.md, "Canonical instrument IDs")::

    [ASSET_CLASS:]VENUE:INSTRUMENT_TYPE:PAYLOAD[@SUFFIX]

    BINANCE-SPOT:SPOT_PAIR:BTC-USDT
    BINANCE-FUTURES:PERPETUAL:BTC-USDT@LIN
    DERIBIT:PERPETUAL:BTC-USD@INV
    DERIBIT:OPTION:BTC-USD-50000-20241231-C
    ANY:PERPETUAL:BTC-USDT@LIN          (the router chooses the venue)

Payload by instrument type:

=================  ===================================  ========================
type               payload                              suffix
=================  ===================================  ========================
SPOT_PAIR          BASE-QUOTE                           none
PERPETUAL          BASE-QUOTE                           LIN or INV (required)
FUTURE             BASE-QUOTE-YYYYMMDD                  LIN or INV (required)
OPTION             BASE-QUOTE-STRIKE-YYYYMMDD-C|P       LIN or INV (optional)
EQUITY             SYMBOL (e.g. AAPL, BRK.B)            none
other types        TOKEN[-TOKEN...] (DeFi, sports)      none
=================  ===================================  ========================

Currencies are 2-16 upper-case letters or digits; the strike is a positive decimal written
canonically (``50000``, ``2.5``; never ``050000`` or ``2.50``), in quote currency; the expiry is a
calendar date in 2000-2099 (venue symbols carry two-digit years).

``LIN`` (linear) contracts are margined and settled in the quote currency, ``INV`` (inverse)
in the base currency. Parsing is strict: every error is an :class:`InstrumentKeyError` naming the
offending part. This module has no NautilusTrader import: it produces the id *strings*, and
``venues/`` turns them into ``InstrumentId`` objects.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal, InvalidOperation

ANY_VENUE = "ANY"

ASSET_CLASSES = ("CRYPTO", "EQUITY", "FX", "COMMODITY", "INDEX", "BOND", "DEFI", "SPORTS")
INSTRUMENT_TYPES = (
    "SPOT_PAIR",
    "PERPETUAL",
    "FUTURE",
    "OPTION",
    "EQUITY",
    "LENDING",
    "STAKING",
    "LIQUIDITY_POOL",
    "SPORTS_MARKET",
)
SETTLEMENTS = ("LIN", "INV")
OPTION_KINDS = ("C", "P")
_PAIR_TYPES = ("SPOT_PAIR", "PERPETUAL", "FUTURE", "OPTION")

# Patterns are applied with ``fullmatch``: ``re.match`` with ``$`` would accept a trailing newline.
_VENUE_RE = re.compile(r"[A-Z0-9]+(?:[-_][A-Z0-9]+)*")
#: The same rule for a database ``CHECK`` (``venues.models.Venue``), anchored: SQL regex search is not ``fullmatch``.
VENUE_CODE_SQL_PATTERN = r"^[A-Z0-9]+([-_][A-Z0-9]+)*$"
_CURRENCY_RE = re.compile(r"[A-Z0-9]{2,16}")
_EQUITY_RE = re.compile(r"[A-Z0-9]{1,12}(?:\.[A-Z0-9]{1,4})?")
_TOKEN_PAYLOAD_RE = re.compile(r"[A-Z0-9]+(?:[-_.][A-Z0-9]+)*")
_STRIKE_RE = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_DATE_RE = re.compile(r"[0-9]{8}")
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
#: CME month codes, used by Bybit's inverse delivery futures (``BTCUSDZ24``).
_MONTH_CODES = "FGHJKMNQUVXZ"
#: Venue symbols write expiries with two-digit years, so keys are limited to one century.
EXPIRY_YEARS = (2000, 2099)


def venue_code_error(code: str) -> str | None:
    """Return why ``code`` cannot be a venue's code, or ``None`` when it can.

    A venue code is the ``VENUE`` part of every canonical key of its listings, so it follows that
    part's rule (upper-case letters/digits joined by '-' or '_'), and it is not ``ANY``, which in a
    key means "the router chooses".
    """
    if not _VENUE_RE.fullmatch(code):
        return "must be upper-case letters/digits joined by '-' or '_' (the VENUE part of an instrument key)"
    if code == ANY_VENUE:
        return f"{ANY_VENUE!r} is reserved: in an instrument key it means the router chooses the venue"
    return None


class InstrumentKeyError(ValueError):
    """A canonical instrument key (or one of its mappings) is malformed.

    Attributes
    ----------
    part : str
        The name of the offending part: ``key``, ``asset_class``, ``venue``, ``instrument_type``,
        ``payload``, ``base``, ``quote``, ``expiry``, ``strike``, ``option_kind`` or ``suffix``.
    value : str
        The offending text.
    reason : str
        What is wrong with it, in words fit for an API error message.
    """

    def __init__(self, part: str, value: str, reason: str):
        self.part = part
        self.value = value
        self.reason = reason
        super().__init__(f"{part} {value!r}: {reason}")

    def __reduce__(self):
        # Keep the three fields across pickling (Celery's prefork pool pickles task exceptions).
        return (type(self), (self.part, self.value, self.reason))


@dataclass(frozen=True, slots=True)
class InstrumentKey:
    """A parsed canonical instrument key.

    Parameters
    ----------
    venue : str
        Venue code (``BINANCE-SPOT``) or ``ANY``.
    instrument_type : str
        One of :data:`INSTRUMENT_TYPES`.
    base, quote : str | None
        Currency codes for pair-like types (``BTC``, ``USDT``).
    symbol : str | None
        The payload for non-pair types (``AAPL``).
    expiry : datetime.date | None
        Expiry date for FUTURE and OPTION.
    strike : decimal.Decimal | None
        Strike price in quote currency for OPTION.
    option_kind : str | None
        ``C`` (call) or ``P`` (put) for OPTION.
    settlement : str | None
        ``LIN`` or ``INV``.
    asset_class : str | None
        One of :data:`ASSET_CLASSES`, when the key carries one.
    """

    venue: str
    instrument_type: str
    base: str | None = None
    quote: str | None = None
    symbol: str | None = None
    expiry: date | None = None
    strike: Decimal | None = None
    option_kind: str | None = None
    settlement: str | None = None
    asset_class: str | None = None

    # -- parsing / formatting -------------------------------------------------------------------
    @classmethod
    def parse(cls, text: str) -> InstrumentKey:
        """Parse a canonical key.

        Parameters
        ----------
        text : str
            ``[ASSET_CLASS:]VENUE:INSTRUMENT_TYPE:PAYLOAD[@SUFFIX]`` (DESIGN.md), e.g.
            ``BINANCE-FUTURES:PERPETUAL:BTC-USDT@LIN``.

        Returns
        -------
        InstrumentKey
            ``str()`` of it gives ``text`` back exactly.

        Raises
        ------
        InstrumentKeyError
            Naming the first offending part (``key``, ``asset_class``, ``venue``,
            ``instrument_type``, ``payload``, ``base``, ``quote``, ``strike``, ``expiry``,
            ``option_kind`` or ``suffix``).
        """
        if not isinstance(text, str) or not text:
            raise InstrumentKeyError("key", str(text), "must be a non-empty string")
        if text != text.strip() or any(c.isspace() for c in text):
            raise InstrumentKeyError("key", text, "must not contain whitespace")
        body, suffix = text, None
        if "@" in text:
            body, _, suffix = text.partition("@")
            if "@" in suffix:
                raise InstrumentKeyError("suffix", suffix, "only one '@SUFFIX' is allowed")
        parts = body.split(":")
        if len(parts) == 4:
            asset_class, venue, instrument_type, payload = parts
            if asset_class not in ASSET_CLASSES:
                raise InstrumentKeyError(
                    "asset_class", asset_class, f"must be one of {', '.join(ASSET_CLASSES)}"
                )
        elif len(parts) == 3:
            asset_class = None
            venue, instrument_type, payload = parts
        else:
            raise InstrumentKeyError(
                "key", text, "expected [ASSET_CLASS:]VENUE:INSTRUMENT_TYPE:PAYLOAD[@SUFFIX]"
            )
        if not _VENUE_RE.fullmatch(venue):
            raise InstrumentKeyError("venue", venue, "must be upper-case letters/digits joined by '-' or '_'")
        if instrument_type not in INSTRUMENT_TYPES:
            raise InstrumentKeyError(
                "instrument_type", instrument_type, f"must be one of {', '.join(INSTRUMENT_TYPES)}"
            )
        fields = _parse_payload(instrument_type, payload)
        _check_suffix(instrument_type, suffix)
        return cls(
            venue=venue,
            instrument_type=instrument_type,
            settlement=suffix,
            asset_class=asset_class,
            **fields,
        )

    def __str__(self) -> str:
        """Format the canonical key (the inverse of :meth:`parse`)."""
        head = f"{self.asset_class}:" if self.asset_class else ""
        tail = f"@{self.settlement}" if self.settlement else ""
        return f"{head}{self.venue}:{self.instrument_type}:{self.payload}{tail}"

    @property
    def payload(self) -> str:
        """The PAYLOAD part, as it is written in the key."""
        t = self.instrument_type
        if t in ("SPOT_PAIR", "PERPETUAL"):
            return f"{self.base}-{self.quote}"
        if t == "FUTURE":
            return f"{self.base}-{self.quote}-{_fmt_date(self.expiry)}"
        if t == "OPTION":
            return f"{self.base}-{self.quote}-{_fmt_strike(self.strike)}-{_fmt_date(self.expiry)}-{self.option_kind}"
        return str(self.symbol)

    # -- derived keys -----------------------------------------------------------------------------
    @property
    def is_any_venue(self) -> bool:
        """True when the key lets the router choose the venue (``ANY:...``)."""
        return self.venue == ANY_VENUE

    @property
    def equivalence_key(self) -> str:
        """The key without venue and asset class (``PERPETUAL:BTC-USDT@LIN``).

        Listings on different venues with the same equivalence key are the same economic
        instrument: the router chooses among them and position limits aggregate across them.
        """
        tail = f"@{self.settlement}" if self.settlement else ""
        return f"{self.instrument_type}:{self.payload}{tail}"

    def with_venue(self, venue: str) -> InstrumentKey:
        """Return the same instrument listed on ``venue`` (a venue code or ``ANY``).

        Raises
        ------
        InstrumentKeyError
            Part ``venue`` when ``venue`` is not a valid venue code.
        """
        if not _VENUE_RE.fullmatch(venue):
            raise InstrumentKeyError("venue", venue, "must be upper-case letters/digits joined by '-' or '_'")
        return replace(self, venue=venue)

    # -- venue mappings ---------------------------------------------------------------------------
    def nautilus_instrument_id(self) -> str:
        """Return the NautilusTrader ``InstrumentId`` string (``SYMBOL.VENUE``) for this listing.

        Conventions of the nautilus_trader 1.221 adapters, verified against their symbol code
        (``adapters/binance/common/symbol.py``: ``BinanceSymbol.parse_as_nautilus``;
        ``adapters/bybit/common/symbol.py``: ``BybitSymbol``, raw symbol + product-type suffix) and
        checked in ``tests/odum_live/test_instruments.py``:

        - Binance (``BINANCE-SPOT``, ``BINANCE-FUTURES``, venue ``BINANCE``): ``BTCUSDT.BINANCE``
          (spot), ``BTCUSDT-PERP.BINANCE`` (USD-M perpetual), ``BTCUSD-PERP.BINANCE`` (COIN-M
          perpetual), ``BTCUSDT_241227.BINANCE`` (delivery).
        - Bybit: raw symbol + ``-SPOT`` / ``-LINEAR`` / ``-INVERSE`` / ``-OPTION``, e.g.
          ``BTCUSDT-LINEAR.BYBIT``, ``BTCUSD-INVERSE.BYBIT``, ``BTCPERP-LINEAR.BYBIT`` (USDC perp).
        - OKX: the instId, e.g. ``BTC-USDT.OKX``, ``BTC-USDT-SWAP.OKX``, ``BTC-USD-241227.OKX``.
        - Venues without a NautilusTrader adapter here (Deribit, Interactive Brokers: external SDK
          venues) get the venue symbol with the venue code (``BTC-PERPETUAL.DERIBIT``,
          ``AAPL.INTERACTIVE_BROKERS``, the value of the IB adapter's ``IB_VENUE``): a stable label,
          not an id any NautilusTrader adapter loads.

        Returns
        -------
        str
            A string ``InstrumentId.from_str`` accepts.

        Raises
        ------
        InstrumentKeyError
            For ``ANY`` keys (part ``venue``), or options on Binance, which NautilusTrader's Binance
            adapter does not trade (part ``instrument_type``).
        """
        family = _venue_family(self)
        symbol = self.venue_symbol()
        if family == "BINANCE":
            if self.instrument_type == "OPTION":
                raise InstrumentKeyError(
                    "instrument_type", self.instrument_type, "NautilusTrader's Binance adapter has no options"
                )
            if self.instrument_type == "PERPETUAL":
                # BinanceSymbol.parse_as_nautilus: BTCUSDT -> BTCUSDT-PERP, BTCUSD_PERP -> BTCUSD-PERP.
                return f"{symbol.removesuffix('_PERP')}-PERP.BINANCE"
            return f"{symbol}.BINANCE"
        if family == "BYBIT":
            kind = {"SPOT_PAIR": "SPOT", "OPTION": "OPTION"}.get(self.instrument_type)
            if kind is None:
                kind = "INVERSE" if self.settlement == "INV" else "LINEAR"
            return f"{symbol}-{kind}.BYBIT"
        return f"{symbol}.{self.venue if family == 'INTERACTIVE_BROKERS' else family}"

    def venue_symbol(self) -> str:
        """Return the symbol the venue's own API uses for this listing.

        Sources (venue API docs and the payloads under ``../shared/data/venue_payloads/``):

        - Binance spot / USD-M / COIN-M: ``BTCUSDT``, ``BTCUSD_PERP``, ``BTCUSDT_241227``; European
          options ``BTC-241227-50000-C``.
        - Bybit v5: ``BTCUSDT`` (USDT perp), ``BTCPERP`` (USDC perp), ``BTCUSD`` (inverse perp),
          ``BTCUSDT-27DEC24`` (USDT future), ``BTC-27DEC24`` (USDC future), ``BTCUSDZ24`` (inverse
          future: CME month code + two-digit year), ``BTC-27DEC24-50000-C`` (option).
        - OKX v5 instId: ``BTC-USDT``, ``BTC-USDT-SWAP``, ``BTC-USD-241227``,
          ``BTC-USD-241227-50000-C``.
        - Deribit: ``BTC-PERPETUAL``, ``BTC_USDC-PERPETUAL``, ``BTC-27DEC24``,
          ``BTC-31DEC24-50000-C``; day without leading zero (``BTC-5JUL24``) and a fractional
          strike written with ``d`` for the decimal point (``XRP_USDC-30MAY25-2d5-C``).
        - Other venues: ``BASE/QUOTE`` for spot pairs, ``BASEQUOTE`` otherwise; the symbol for
          non-pair types (``AAPL``).

        Raises
        ------
        InstrumentKeyError
            For ``ANY`` keys (part ``venue``).
        """
        family = _venue_family(self)
        t = self.instrument_type
        if t not in _PAIR_TYPES:
            return str(self.symbol)
        base, quote = self.base, self.quote
        if family == "BINANCE":
            if t == "SPOT_PAIR":
                return f"{base}{quote}"
            if t == "PERPETUAL":
                return f"{base}{quote}_PERP" if self.settlement == "INV" else f"{base}{quote}"
            if t == "FUTURE":
                return f"{base}{quote}_{self.expiry:%y%m%d}"
            return f"{base}-{self.expiry:%y%m%d}-{_fmt_strike(self.strike)}-{self.option_kind}"
        if family == "BYBIT":
            if t == "OPTION":
                return f"{base}-{_deribit_date(self.expiry)}-{_fmt_strike(self.strike)}-{self.option_kind}"
            if t == "FUTURE":
                if self.settlement == "INV":
                    return f"{base}{quote}{_MONTH_CODES[self.expiry.month - 1]}{self.expiry:%y}"
                if quote == "USDC":
                    return f"{base}-{_deribit_date(self.expiry)}"
                return f"{base}{quote}-{_deribit_date(self.expiry)}"
            if t == "PERPETUAL" and self.settlement == "LIN" and quote == "USDC":
                return f"{base}PERP"
            return f"{base}{quote}"
        if family == "OKX":
            if t == "SPOT_PAIR":
                return f"{base}-{quote}"
            if t == "PERPETUAL":
                return f"{base}-{quote}-SWAP"
            if t == "FUTURE":
                return f"{base}-{quote}-{self.expiry:%y%m%d}"
            return f"{base}-{quote}-{self.expiry:%y%m%d}-{_fmt_strike(self.strike)}-{self.option_kind}"
        if family == "DERIBIT":
            # Deribit names USD-margined (inverse) contracts by the base alone, linear USDC ones BASE_QUOTE.
            root = base if quote == "USD" else f"{base}_{quote}"
            if t == "SPOT_PAIR":
                return f"{base}_{quote}"
            if t == "PERPETUAL":
                return f"{root}-PERPETUAL"
            if t == "FUTURE":
                return f"{root}-{_deribit_date(self.expiry)}"
            strike = _fmt_strike(self.strike).replace(".", "d")
            return f"{root}-{_deribit_date(self.expiry)}-{strike}-{self.option_kind}"
        if t == "SPOT_PAIR":
            return f"{base}/{quote}"
        return f"{base}{quote}"


def parse_instrument_key(text: str) -> InstrumentKey:
    """Parse ``text`` as a canonical key (see :meth:`InstrumentKey.parse`)."""
    return InstrumentKey.parse(text)


def _venue_family(key: InstrumentKey) -> str:
    # BINANCE-SPOT and BINANCE-FUTURES share Binance's symbology; INTERACTIVE_BROKERS has no '-'.
    if key.is_any_venue:
        raise InstrumentKeyError("venue", key.venue, "ANY has no venue mapping; route the order first")
    return key.venue.split("-")[0]


def _parse_payload(instrument_type: str, payload: str) -> dict:
    if not payload:
        raise InstrumentKeyError("payload", payload, "must not be empty")
    if instrument_type not in _PAIR_TYPES:
        pattern = _EQUITY_RE if instrument_type == "EQUITY" else _TOKEN_PAYLOAD_RE
        if not pattern.fullmatch(payload):
            raise InstrumentKeyError("payload", payload, f"is not a valid {instrument_type} symbol")
        return {"symbol": payload}
    expected = {
        "SPOT_PAIR": "BASE-QUOTE",
        "PERPETUAL": "BASE-QUOTE",
        "FUTURE": "BASE-QUOTE-YYYYMMDD",
        "OPTION": "BASE-QUOTE-STRIKE-YYYYMMDD-C|P",
    }[instrument_type]
    pieces = payload.split("-")
    if len(pieces) != expected.count("-") + 1:
        raise InstrumentKeyError("payload", payload, f"expected {expected} for {instrument_type}")
    base, quote = pieces[0], pieces[1]
    for name, code in (("base", base), ("quote", quote)):
        if not _CURRENCY_RE.fullmatch(code):
            raise InstrumentKeyError(name, code, "must be 2-16 upper-case letters or digits")
    if base == quote:
        raise InstrumentKeyError("quote", quote, "must differ from the base currency")
    fields: dict = {"base": base, "quote": quote}
    if instrument_type == "FUTURE":
        fields["expiry"] = _parse_date(pieces[2])
    elif instrument_type == "OPTION":
        fields["strike"] = _parse_strike(pieces[2])
        fields["expiry"] = _parse_date(pieces[3])
        if pieces[4] not in OPTION_KINDS:
            raise InstrumentKeyError("option_kind", pieces[4], "must be C (call) or P (put)")
        fields["option_kind"] = pieces[4]
    return fields


def _check_suffix(instrument_type: str, suffix: str | None) -> None:
    if suffix is None:
        if instrument_type in ("PERPETUAL", "FUTURE"):
            raise InstrumentKeyError("suffix", "", f"{instrument_type} needs @LIN or @INV")
        return
    if instrument_type not in ("PERPETUAL", "FUTURE", "OPTION"):
        raise InstrumentKeyError("suffix", suffix, f"{instrument_type} takes no suffix")
    if suffix not in SETTLEMENTS:
        raise InstrumentKeyError("suffix", suffix, "must be LIN (linear) or INV (inverse)")


def _parse_date(text: str) -> date:
    if not _DATE_RE.fullmatch(text):
        raise InstrumentKeyError("expiry", text, "must be YYYYMMDD")
    try:
        value = date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError as exc:
        raise InstrumentKeyError("expiry", text, f"is not a calendar date ({exc})") from None
    if not EXPIRY_YEARS[0] <= value.year <= EXPIRY_YEARS[1]:
        raise InstrumentKeyError(
            "expiry", text, f"year must be {EXPIRY_YEARS[0]}-{EXPIRY_YEARS[1]} (venues write two-digit years)"
        )
    return value


def _fmt_date(value: date | None) -> str:
    # Not strftime("%Y"): glibc does not zero-pad years below 1000, which breaks the round trip.
    return f"{value.year:04d}{value.month:02d}{value.day:02d}"


def _parse_strike(text: str) -> Decimal:
    if not _STRIKE_RE.fullmatch(text):
        raise InstrumentKeyError("strike", text, "must be a positive decimal number")
    try:
        value = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the regex admits only valid decimals
        raise InstrumentKeyError("strike", text, "must be a positive decimal number") from None
    if value <= 0:
        raise InstrumentKeyError("strike", text, "must be greater than zero")
    if text != _fmt_strike(value):
        raise InstrumentKeyError("strike", text, f"must be written canonically as {_fmt_strike(value)}")
    return value


def _fmt_strike(value: Decimal | None) -> str:
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _deribit_date(value: date | None) -> str:
    # Deribit/Bybit expiry codes: day without leading zero, upper-case month, two-digit year.
    return f"{value.day}{_MONTHS[value.month - 1]}{value:%y}"
