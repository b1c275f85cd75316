"""Figures of a set of fills: the one rule the journal writer stores and the pages total by."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

from odum_live.fields import DECIMAL_PLACES

_ZERO = Decimal("0")
_QUANTUM = Decimal(1).scaleb(-DECIMAL_PLACES)  # NUMERIC(36,18)


def fill_totals(rows: Iterable[tuple[Decimal, Decimal, Decimal]]) -> tuple[Decimal, Decimal | None, Decimal]:
    """Return the filled quantity, average price and fees of some fills (an order's and its children's).

    Parameters
    ----------
    rows : iterable of (quantity, price, fee)
        Quantity in base units (contracts for derivatives), price in quote currency, fee in the
        fill's fee currency.

    Returns
    -------
    tuple[Decimal, Decimal | None, Decimal]
        Σ quantity; the quantity-weighted average price rounded half-even to the 18 places of
        ``NUMERIC(36,18)`` (None without fills); Σ fee (a plain sum, as ``Order.fees``). Sums are exact.
    """
    rows = list(rows)
    with localcontext() as ctx:
        ctx.prec = 80  # exact sums of NUMERIC(36,18) products
        filled = sum((q for q, _, _ in rows), _ZERO)
        notional = sum((q * p for q, p, _ in rows), _ZERO)
        fees = sum((f for _, _, f in rows), _ZERO)
        avg = (notional / filled).quantize(_QUANTUM, rounding=ROUND_HALF_EVEN) if filled else None
    return filled, avg, fees
