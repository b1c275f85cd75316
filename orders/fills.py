"""Figures of a set of fills: the one rule the journal writer stores and the pages total by.

Fees are in each fill's own ``fee_currency`` (Binance charges a spot buy in the base currency, or in BNB
when the account pays with BNB; NautilusTrader's ``OrderFilled.commission`` is a ``Money`` in its
currency). :func:`fill_totals`' Σ fee is their plain sum, the number stored in ``Order.fees``; a total
*shown* as an amount of money is :func:`fee_totals`, one per currency, never a sum across currencies.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

from odum_live.fields import DECIMAL_PLACES
from odum_live.intent import BUY_LIKE_SIDES
from positions.maths import SELL_LIKE_SIDES

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
        ``NUMERIC(36,18)`` (None without fills); Σ fee (a plain sum, as ``Order.fees``: it adds fees of
        different currencies alike — show :func:`fee_totals` instead). Sums are exact.
    """
    rows = list(rows)
    with localcontext() as ctx:
        ctx.prec = 80  # exact sums of NUMERIC(36,18) products
        filled = sum((q for q, _, _ in rows), _ZERO)
        notional = sum((q * p for q, p, _ in rows), _ZERO)
        fees = sum((f for _, _, f in rows), _ZERO)
        avg = (notional / filled).quantize(_QUANTUM, rounding=ROUND_HALF_EVEN) if filled else None
    return filled, avg, fees


@dataclass(frozen=True)
class FeeTotal:
    """The fees of some fills paid in one currency.

    Attributes
    ----------
    currency : str
        The fills' ``fee_currency`` ("" where a venue named none).
    amount : Decimal
        Σ fee in ``currency`` (a maker rebate counts negative).
    """

    currency: str
    amount: Decimal


def fee_totals(rows: Iterable[tuple[Decimal, str]]) -> tuple[FeeTotal, ...]:
    """Return the fees of some fills totalled per fee currency: amounts of different currencies are never added.

    Parameters
    ----------
    rows : iterable of (fee, fee_currency)
        Each fill's fee, in its fee currency.

    Returns
    -------
    tuple[FeeTotal, ...]
        One total per currency, in the order the currencies first appear in ``rows`` (fills oldest first:
        the currency paid first leads); empty without fills. Sums are exact.
    """
    totals: dict[str, Decimal] = {}
    with localcontext() as ctx:
        ctx.prec = 80
        for fee, currency in rows:
            totals[currency] = totals.get(currency, _ZERO) + fee
    return tuple(FeeTotal(currency=currency, amount=amount) for currency, amount in totals.items())


def trade_side(order_side: str) -> str:
    """Return the side of the trade a fill of an order of ``order_side`` is: ``BUY`` or ``SELL``.

    Part of a fill's identity (``orders.models.Fill``: a trade has one buyer and one seller).

    Parameters
    ----------
    order_side : str
        ``orders.models.Order.Side``: the buy-like sides (``odum_live.intent.BUY_LIKE_SIDES``) are
        ``BUY``, the sell-like ones (``positions.maths.SELL_LIKE_SIDES``) ``SELL``.

    Raises
    ------
    ValueError
        Naming ``side`` when it is neither.
    """
    if order_side in BUY_LIKE_SIDES:
        return "BUY"
    if order_side in SELL_LIKE_SIDES:
        return "SELL"
    raise ValueError(f"side: unknown order side {order_side!r}")
