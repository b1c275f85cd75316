"""Number formats of the positions, logs and status pages (and their CLI twins)."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from django import template

from odum_live.decimals import plain_decimal as decimal_text

register = template.Library()


def plain_decimal(value) -> str:
    """Return ``value`` as plain decimal text, no exponent, no trailing zeros (``"0.001"``); ``"—"`` for None."""
    return "—" if value is None or value == "" else decimal_text(value)


def money(value, places: int = 2) -> str:
    """Return ``value`` rounded half-even to ``places`` decimals with thousands separators; ``"—"`` for None."""
    if value is None or value == "":
        return "—"
    quantum = Decimal(1).scaleb(-int(places))
    return f"{Decimal(value).quantize(quantum, rounding=ROUND_HALF_EVEN):,}"


@register.filter(name="dec")
def dec_filter(value) -> str:
    """``{{ value|dec }}``: :func:`plain_decimal`."""
    return plain_decimal(value)


@register.filter(name="money")
def money_filter(value, places: int = 2) -> str:
    """``{{ value|money }}`` / ``{{ value|money:4 }}``: :func:`money`."""
    return money(value, places)


@register.filter
def sign_class(value) -> str:
    """``pos`` / ``neg`` / ``""`` for colouring PnL."""
    if value is None:
        return ""
    return "pos" if value > 0 else "neg" if value < 0 else ""
