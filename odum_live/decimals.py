"""Decimal text: one way to print prices, quantities and amounts across the API, pages, CLI and admin."""

from __future__ import annotations

from decimal import Context, Decimal


def plain_decimal(value: Decimal | int | str) -> str:
    """Return ``value`` as plain decimal text: no exponent, no trailing zeros (``Decimal("1.50")`` → ``"1.5"``).

    NUMERIC(36,18) columns come back with 18 places (``0.001000000000000000``) and ``normalize``
    alone may give an exponent (``1E+3``); this gives ``0.001`` and ``1000``. Every digit is kept:
    a NUMERIC(36,18) value has up to 36 significant digits, an exact sum or product of them more,
    and the default 28-digit context would round them.

    Parameters
    ----------
    value : Decimal | int | str
        A finite number.

    Returns
    -------
    str
        ``"0"`` for any zero (no ``-0``).

    Raises
    ------
    decimal.InvalidOperation
        If ``value`` is a string that is not a number.
    """
    number = Decimal(value)
    if number == 0:
        return "0"
    # normalize() rounds to its context's precision: give it every digit the number has.
    return format(number.normalize(Context(prec=len(number.as_tuple().digits))), "f")
