"""Number formats of the positions, logs and status pages (and their CLI twins)."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, localcontext

from django import template

from odum_live.decimals import plain_decimal as decimal_text
from positions.maths import PRECISION

register = template.Library()


def plain_decimal(value) -> str:
    """Return ``value`` as plain decimal text, no exponent, no trailing zeros (``"0.001"``); ``"—"`` for None."""
    return "—" if value is None or value == "" else decimal_text(value)


#: Currencies shown to the cent: fiat and USD stablecoins. Any other currency is a coin (an inverse
#: contract's PnL and fees are in BTC, ETH …) and is shown to :data:`COIN_PLACES` decimals (satoshis):
#: to the cent, a 0.0025 BTC PnL would read 0.00.
CENT_CURRENCIES = frozenset({"USD", "USDT", "USDC", "BUSD", "FDUSD", "TUSD", "USDP", "DAI", "PYUSD", "EUR", "GBP",
                             "JPY", "CHF", "AUD", "CAD", "HKD", "SGD"})
COIN_PLACES = 8


def currency_places(currency: str) -> int:
    """Return the decimals an amount in ``currency`` is shown with: 2 for fiat and USD stablecoins, else 8."""
    return 2 if str(currency).upper() in CENT_CURRENCIES else COIN_PLACES


def money(value, places: int | str = 2) -> str:
    """Return ``value`` rounded half-even to ``places`` decimals with thousands separators; ``"—"`` for None.

    ``places`` may name the amount's currency instead (``"BTC"``): :func:`currency_places` of it.
    Rounded in a context of ``positions.maths.PRECISION`` digits: an amount of two NUMERIC(36,18)
    figures (a notional) has more than the default 28.
    """
    if value is None or value == "":
        return "—"
    if isinstance(places, str) and not places.isdigit():
        places = currency_places(places)
    quantum = Decimal(1).scaleb(-int(places))
    with localcontext(prec=PRECISION):
        return f"{Decimal(value).quantize(quantum, rounding=ROUND_HALF_EVEN):,}"


def fee_amounts(amounts) -> str:
    """Return fees per currency as one exact text, never one sum: ``"0.0125 BNB + 2 USDT"``; ``""`` for none.

    For ``Position.other_fees`` (``positions.selectors``: currency → amount): every digit kept
    (:func:`plain_decimal`), currencies in the mapping's order.
    """
    return " + ".join(f"{plain_decimal(amount)} {currency}" for currency, amount in (amounts or {}).items())


@register.filter(name="fee_amounts")
def fee_amounts_filter(amounts) -> str:
    """``{{ vp.other_fees|fee_amounts }}``: :func:`fee_amounts`."""
    return fee_amounts(amounts)


@register.filter(name="dec")
def dec_filter(value) -> str:
    """``{{ value|dec }}``: :func:`plain_decimal`."""
    return plain_decimal(value)


@register.filter(name="money")
def money_filter(value, places: int | str = 2) -> str:
    """``{{ value|money }}`` / ``{{ value|money:4 }}`` / ``{{ value|money:agg.pnl_currency }}``: :func:`money`."""
    return money(value, places)


@register.filter
def sign_class(value) -> str:
    """``pos`` / ``neg`` / ``""`` for colouring PnL."""
    if value is None:
        return ""
    return "pos" if value > 0 else "neg" if value < 0 else ""
