"""Fill → position maths: netting with average cost, realized and unrealized PnL.

Pure functions on immutable values; no Django, no I/O, no float. ``positions.services`` applies
them to ``Position`` rows under a row lock.

Conventions
-----------
- ``quantity`` is signed: positive long, negative short, in base units (contracts for
  derivatives). A fill's quantity is unsigned (> 0) and its ``side`` gives the direction:
  buy-like sides (``odum_live.intent.BUY_LIKE_SIDES``) add to a long / reduce a short, the
  sell-like sides (:data:`SELL_LIKE_SIDES`) do the opposite.
- **Netting with average cost**: one net position per listing. A fill in the direction of the
  position (or on a flat position) re-averages the entry price; a fill against it closes
  ``min(|position|, fill)`` at the position's average entry price and realizes PnL on that closed
  quantity; a fill larger than the position *flips* it: the whole position is closed and the
  remainder opens at the fill price. A flat position has no average entry price (``None``).
- **Linear** contracts (spot, USDT/USDC-margined perpetuals and futures) — PnL in the quote
  currency::

      realized  = closed × (price − avg) × sign(position) × multiplier
      unrealized = quantity × (mark − avg) × multiplier
      avg       = Σ qᵢ·pᵢ / Σ qᵢ                       (quantity-weighted arithmetic mean)

- **Inverse** contracts (coin-margined, e.g. Deribit ``BTC-PERPETUAL``, BitMEX ``XBTUSD``:
  ``multiplier`` is the contract's face value in quote currency, 10 USD / 1 USD) — PnL in the
  base (= settlement) currency, e.g. BTC::

      realized  = closed × multiplier × (1/avg − 1/price) × sign(position)
      unrealized = quantity × multiplier × (1/avg − 1/mark)
      avg       = Σ qᵢ / Σ (qᵢ/pᵢ)                      (contract-weighted harmonic mean)

  Sources: BitMEX, "How Do You Calculate Average Entry Price on BitMEX" (average the per-contract
  coin value ``1/price`` weighted by contracts, then invert) and the BitMEX perpetual contracts
  guide (``realised PnL = (1/entry − 1/exit) × contracts`` in XBT); Deribit's inverse futures
  specification settles PnL in the base coin the same way. BitMEX rounds each coin value to 8
  decimal places (satoshis); we keep 18 decimal places, so our books may differ from the venue's
  by sub-satoshi amounts — reconciliation must tolerate that.
- **Fees**: ``fee`` is a signed amount **in the PnL currency** (quote currency for linear
  contracts, base/settlement currency for inverse ones): positive when paid, negative for a rebate
  (venues that pay makers: Bybit, OKX, Binance USD-M futures at some tiers report a negative
  commission, as NautilusTrader's ``OrderFilled.commission`` does). Converting a fee charged in
  another currency is the caller's job: the journal (``orders.services.venue_events``) converts a
  fee in the pair's other currency at the fill price (a linear fill's base-currency fee × price,
  an inverse fill's quote-currency fee ÷ price: the fill's own rate) and keeps a fee in a third
  currency (e.g. BNB, for which no rate is known) apart, in its own currency, with
  :func:`add_other_fee` (the position's ``other_fees``; the fill's order event says so); a third
  currency is never subtracted as if it were the PnL currency, nor converted at a guessed rate
  (NautilusTrader's ``Position`` likewise counts only a commission in its settlement currency). A
  fee reduces ``realized_pnl`` (a rebate raises it) and accumulates in ``fees`` (net fees paid),
  so ``realized_pnl`` is net of the fees in the PnL currency and of those converted at their fill
  price, and not of ``other_fees``.

Precision
---------
Every input must have at most 18 decimal places and every result is quantized to 18 decimal
places with ROUND_HALF_EVEN: the database stores NUMERIC(36,18) (``odum_live.fields``), so the
value we compute is the value we store. Intermediate arithmetic runs in a local context of
:data:`PRECISION` significant digits, enough for the product of three NUMERIC(36,18) values to be
exact; only divisions (the averages, inverse PnL) round before the final quantization. A result
whose integer part does not fit NUMERIC(36,18) (≥ 10**18) raises instead of being truncated by
the database.

PostgreSQL stores every one of these digits. The embedded default's SQLite does not: its NUMERIC
column affinity stores a REAL and Django's SQLite backend reads 15 significant digits back, so an
average such as 40000.016666666666666667 is read as 40000.0166666667 and the PnL computed from it
differs from PostgreSQL's in the last places (e.g. 2E-12 USDT after a four-fill round trip).
"""

from __future__ import annotations

import decimal
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from odum_live.decimals import plain_decimal
from odum_live.intent import BUY_LIKE_SIDES

#: Sides that add to a short position / reduce a long one (the complement of BUY_LIKE_SIDES
#: within ``orders.models.Order.Side``).
SELL_LIKE_SIDES = frozenset({"SELL", "BORROW", "WITHDRAW", "LAY"})
KNOWN_SIDES = BUY_LIKE_SIDES | SELL_LIKE_SIDES

#: Scale of every stored amount: NUMERIC(36,18).
DECIMAL_PLACES = 18
MAX_INTEGER_DIGITS = 18
QUANTUM = Decimal(1).scaleb(-DECIMAL_PLACES)
_LIMIT = Decimal(10) ** MAX_INTEGER_DIGITS
#: Significant digits of intermediate results: 3 × 36 digits (a product of three stored values)
#: plus guard digits.
PRECISION = 120

ZERO = Decimal(0)
ONE = Decimal(1)

_CONTEXT = decimal.Context(
    prec=PRECISION,
    rounding=decimal.ROUND_HALF_EVEN,
    traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow],
)


class PositionMathsError(ValueError):
    """An input to the position maths (or a result) is invalid.

    Attributes
    ----------
    field : str
        The name of the offending argument or result (``quantity``, ``price``, ``fee``, ``side``,
        ``multiplier``, ``mark``, ``state``, ``realized_pnl`` …).
    """

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")

    def __reduce__(self):
        # Keep both fields across pickling (Celery task exceptions are pickled).
        return (type(self), (self.field, self.message))


@dataclass(frozen=True, slots=True)
class PositionState:
    """The netted state of one position.

    Parameters
    ----------
    quantity : Decimal
        Signed, base units (contracts for derivatives): > 0 long, < 0 short, 0 flat.
    avg_entry_price : Decimal | None
        Average entry price in quote currency (arithmetic mean for linear contracts, harmonic for
        inverse ones); None exactly when the position is flat.
    realized_pnl : Decimal
        Realized PnL net of fees, in the PnL currency (quote for linear, base for inverse).
    fees : Decimal
        Net fees paid, in the PnL currency: negative when maker rebates exceed the fees paid.

    Raises
    ------
    PositionMathsError
        Field ``state`` when ``avg_entry_price`` is set on a flat position, missing or ≤ 0 on an
        open one; the field's name when a value is not a finite Decimal.
    """

    quantity: Decimal = ZERO
    avg_entry_price: Decimal | None = None
    realized_pnl: Decimal = ZERO
    fees: Decimal = ZERO

    def __post_init__(self) -> None:
        for name in ("quantity", "realized_pnl", "fees"):
            _require_decimal(name, getattr(self, name))
        if self.quantity == 0:
            if self.avg_entry_price is not None:
                raise PositionMathsError("state", f"a flat position has no avg_entry_price (got {self.avg_entry_price})")
        else:
            if self.avg_entry_price is None:
                raise PositionMathsError("state", f"an open position ({self.quantity}) needs an avg_entry_price")
            _require_decimal("avg_entry_price", self.avg_entry_price)
            if self.avg_entry_price <= 0:
                raise PositionMathsError("state", f"avg_entry_price must be > 0 (got {self.avg_entry_price})")

    @property
    def is_flat(self) -> bool:
        """True when the position holds nothing."""
        return self.quantity == 0


def validate_fill(
    *, side: str, quantity: Decimal, price: Decimal, fee: Decimal, multiplier: Decimal = ONE
) -> None:
    """Check a fill's inputs; return nothing or raise.

    Parameters
    ----------
    side : str
        One of :data:`KNOWN_SIDES`.
    quantity : Decimal
        Base units (contracts), > 0, at most 18 decimal places.
    price : Decimal
        Quote currency per base unit, > 0, at most 18 decimal places.
    fee : Decimal
        PnL currency, signed (negative: a rebate), at most 18 decimal places.
    multiplier : Decimal
        Contract multiplier (face value for inverse contracts), > 0.

    Raises
    ------
    PositionMathsError
        Naming the offending field: not a Decimal (float is refused), not finite, out of range,
        more than 18 decimal places, or an unknown side.
    """
    if side not in KNOWN_SIDES:
        raise PositionMathsError("side", f"unknown side {side!r}; expected one of {sorted(KNOWN_SIDES)}")
    _require_amount("quantity", quantity, positive=True)
    _require_amount("price", price, positive=True)
    _require_amount("fee", fee, positive=False)
    _require_amount("multiplier", multiplier, positive=True)


def apply_fill(
    state: PositionState,
    *,
    side: str,
    quantity: Decimal,
    price: Decimal,
    fee: Decimal,
    multiplier: Decimal = ONE,
    inverse: bool = False,
) -> PositionState:
    """Return the position after one fill (netting with average cost).

    Parameters
    ----------
    state : PositionState
        The position before the fill.
    side : str
        Fill side; buy-like sides add, sell-like sides subtract (see module docstring).
    quantity : Decimal
        Filled quantity, base units (contracts), > 0.
    price : Decimal
        Fill price, quote currency, > 0.
    fee : Decimal
        Fee of this fill in the PnL currency (quote for linear, base for inverse), signed:
        positive when paid, negative for a rebate.
    multiplier : Decimal
        Contract multiplier (``venues.Instrument.contract_multiplier``); for inverse contracts
        the face value of one contract in quote currency.
    inverse : bool
        True for inverse (coin-settled) contracts (``venues.Instrument.is_inverse``).

    Returns
    -------
    PositionState
        New quantity, average entry price (None when flat), realized PnL (previous + PnL on the
        closed quantity − fee) and fees (previous + fee), each quantized to 18 decimal places
        with ROUND_HALF_EVEN.

    Raises
    ------
    PositionMathsError
        For invalid inputs (see :func:`validate_fill`), and field ``realized_pnl``,
        ``avg_entry_price``, ``quantity`` or ``fees`` when a result does not fit NUMERIC(36,18).
    """
    if not isinstance(state, PositionState):
        raise PositionMathsError("state", f"must be a PositionState, got {type(state).__name__}")
    validate_fill(side=side, quantity=quantity, price=price, fee=fee, multiplier=multiplier)
    with decimal.localcontext(_CONTEXT):
        signed = quantity if side in BUY_LIKE_SIDES else -quantity
        held = state.quantity
        avg = state.avg_entry_price
        pnl = ZERO
        if held == 0 or (held > 0) == (signed > 0):
            # Opening or adding: re-average the entry price over the whole position.
            avg = price if held == 0 else _average(abs(held), avg, quantity, price, inverse=inverse)
        else:
            # Reducing, closing or flipping: realize PnL on the closed quantity at the old average.
            closed = min(abs(held), quantity)
            direction = ONE if held > 0 else -ONE
            pnl = _pnl(closed * direction, avg, price, multiplier, inverse=inverse)
            remainder = quantity - closed
            if abs(held) == closed:
                avg = price if remainder > 0 else None
        new_quantity = held + signed
        return PositionState(
            quantity=_quantize("quantity", new_quantity),
            avg_entry_price=None if new_quantity == 0 else _quantize("avg_entry_price", avg),
            realized_pnl=_quantize("realized_pnl", state.realized_pnl + _quantize("realized_pnl", pnl) - fee),
            fees=_quantize("fees", state.fees + fee),
        )


def add_other_fee(other_fees: Mapping[str, str], *, currency: str, fee: Decimal) -> dict[str, str]:
    """Return a position's fees in other currencies with one more fee added to its currency's total.

    For a fee in neither the PnL currency nor the pair's other currency (see "Fees" above): no rate
    converts it, so it is kept in its own currency, outside ``realized_pnl`` and ``fees``.

    Parameters
    ----------
    other_fees : Mapping[str, str]
        Currency code → net fees paid in it, as plain decimal text (``Position.other_fees``).
    currency : str
        The fee's currency (``BNB``), non-empty.
    fee : Decimal
        The fee in ``currency``, signed (negative: a rebate), at most 18 decimal places.

    Returns
    -------
    dict[str, str]
        A new mapping, keys sorted, the currency's total exact (18 decimal places at most) as plain
        decimal text (``"0.0125"``); a total that nets to zero stays, as ``"0"``.

    Raises
    ------
    PositionMathsError
        Field ``fee_currency`` for an empty or non-string currency; ``fee`` as :func:`validate_fill`
        says; ``other_fees`` for a stored total that is not a decimal number, or a new total that
        does not fit NUMERIC(36,18).
    """
    if not isinstance(currency, str) or not currency:
        raise PositionMathsError("fee_currency", f"must be a non-empty currency code, got {currency!r}")
    _require_amount("fee", fee, positive=False)
    stored = other_fees.get(currency, "0")
    try:
        held = Decimal(stored) if isinstance(stored, str) else None
    except decimal.InvalidOperation:
        held = None
    if held is None or not held.is_finite():
        raise PositionMathsError("other_fees", f"{currency}: {stored!r} is not a decimal number as text")
    with decimal.localcontext(_CONTEXT):
        total = _quantize("other_fees", held + fee)
    return dict(sorted({**other_fees, currency: plain_decimal(total)}.items()))


def unrealized_pnl(state: PositionState, *, mark: Decimal, multiplier: Decimal = ONE, inverse: bool = False) -> Decimal:
    """Return the unrealized PnL of ``state`` at the mark price.

    Parameters
    ----------
    state : PositionState
        The position.
    mark : Decimal
        Mark price, quote currency, > 0.
    multiplier : Decimal
        Contract multiplier (face value for inverse contracts), > 0.
    inverse : bool
        True for inverse contracts.

    Returns
    -------
    Decimal
        ``quantity × (mark − avg) × multiplier`` (quote currency) for linear contracts,
        ``quantity × multiplier × (1/avg − 1/mark)`` (base currency) for inverse ones; 0 when
        flat. Quantized to 18 decimal places, ROUND_HALF_EVEN.

    Raises
    ------
    PositionMathsError
        Field ``mark`` or ``multiplier`` when not a positive Decimal with ≤ 18 decimal places;
        ``unrealized_pnl`` when the result does not fit NUMERIC(36,18).
    """
    if not isinstance(state, PositionState):
        raise PositionMathsError("state", f"must be a PositionState, got {type(state).__name__}")
    _require_amount("mark", mark, positive=True)
    _require_amount("multiplier", multiplier, positive=True)
    if state.is_flat:
        return ZERO.quantize(QUANTUM)
    with decimal.localcontext(_CONTEXT):
        return _quantize("unrealized_pnl", _pnl(state.quantity, state.avg_entry_price, mark, multiplier, inverse=inverse))


def pnl_currency(*, inverse: bool, base: str, quote: str, settlement: str = "") -> str:
    """Return the currency of a listing's PnL and fees: the one rule of the journal and the reads.

    Parameters
    ----------
    inverse : bool
        ``venues.Instrument.is_inverse``.
    base, quote, settlement : str
        The listing's currencies (``venues.Instrument`` fields, each completed from its canonical
        key's base / quote where the listing leaves it blank); "" when unknown.

    Returns
    -------
    str
        Linear contracts and spot: the quote currency. Inverse contracts: the settlement currency,
        else the base currency (coin-settled). "" when unknown.
    """
    return (settlement or base) if inverse else quote


def fee_in_pnl_currency(*, fee: Decimal, fee_currency: str, price: Decimal, inverse: bool, base: str, quote: str,
                        settlement: str = "") -> Decimal | None:
    """Return a fill's fee in the listing's PnL currency, or None when no rate converts it (see "Fees").

    The one rule of the journal (``orders.services.venue_events``) and of the ``other_fees``
    backfill (``positions/migrations/0005``).

    Parameters
    ----------
    fee : Decimal
        The fill's fee in ``fee_currency``, signed (negative: a rebate).
    fee_currency : str
        Its currency; "" when the venue named none (taken as the PnL currency).
    price : Decimal
        The fill price, quote currency, > 0: the rate a fee in the pair's other currency is converted at.
    inverse, base, quote, settlement : str
        The listing's terms, as :func:`pnl_currency` takes them.

    Returns
    -------
    Decimal | None
        ``fee`` when it is zero or in the PnL currency; a linear listing's base-currency fee × price
        and an inverse listing's quote-currency fee ÷ price, quantized to 18 places half-even;
        None for a fee in any other currency (a third currency, e.g. BNB, or any currency when the
        PnL currency is unknown): :func:`add_other_fee` keeps it apart.
    """
    currency = pnl_currency(inverse=inverse, base=base, quote=quote, settlement=settlement)
    if fee == 0 or not fee_currency or fee_currency == currency:
        return fee
    with decimal.localcontext(_CONTEXT):
        if not inverse and fee_currency == base:
            return _quantize("fee", fee * price)
        if inverse and fee_currency == quote:
            return _quantize("fee", fee / price)
    return None


def _pnl(signed_closed: Decimal, avg: Decimal, price: Decimal, multiplier: Decimal, *, inverse: bool) -> Decimal:
    # signed_closed > 0 closes (or marks) a long, < 0 a short.
    if inverse:
        return signed_closed * multiplier * (ONE / avg - ONE / price)
    return signed_closed * (price - avg) * multiplier


def _average(held: Decimal, avg: Decimal, added: Decimal, price: Decimal, *, inverse: bool) -> Decimal:
    # held, added: unsigned quantities. Inverse: weight the coin value 1/price (harmonic mean).
    if inverse:
        return (held + added) / (held / avg + added / price)
    return (held * avg + added * price) / (held + added)


def _quantize(field: str, value: Decimal) -> Decimal:
    result = value.quantize(QUANTUM, rounding=decimal.ROUND_HALF_EVEN, context=_CONTEXT)
    if abs(result) >= _LIMIT:
        raise PositionMathsError(field, f"{result} does not fit NUMERIC(36,18) (|value| must be < 10**18)")
    return result


def _require_decimal(field: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, Decimal):
        raise PositionMathsError(field, f"must be a Decimal, got {type(value).__name__} {value!r}")
    if not value.is_finite():
        raise PositionMathsError(field, f"must be finite, got {value}")


def _require_amount(field: str, value: object, *, positive: bool) -> None:
    # > 0 when ``positive``, of either sign otherwise (a fee: a rebate is negative); NUMERIC(36,18) either way.
    _require_decimal(field, value)
    if positive and value <= 0:
        raise PositionMathsError(field, f"must be > 0, got {value}")
    if value.quantize(QUANTUM, context=_CONTEXT) != value:
        raise PositionMathsError(field, f"{value} has more than {DECIMAL_PLACES} decimal places (NUMERIC(36,18))")
    if abs(value) >= _LIMIT:
        raise PositionMathsError(field, f"{value} does not fit NUMERIC(36,18) (|value| must be < 10**18)")
