"""Shared model-field and input helpers."""
from decimal import Decimal

from django.db import models

# NUMERIC(36,18): every price, quantity and amount (seed spec; CONVENTIONS.md "Decimal end to end").
MAX_DIGITS = 36
DECIMAL_PLACES = 18
#: Every NUMERIC(36,18) value is below this in absolute value (18 integer digits): 10**18. PostgreSQL
#: refuses a larger one ("numeric field overflow"); SQLite would store it, so check against this first.
NUMERIC_BOUND = Decimal(10) ** (MAX_DIGITS - DECIMAL_PLACES)


def DecimalField(*args, **kwargs) -> models.DecimalField:  # noqa: N802 - reads like a field class
    """Return a ``NUMERIC(36,18)`` ``DecimalField``; keyword arguments pass through."""
    kwargs.setdefault("max_digits", MAX_DIGITS)
    kwargs.setdefault("decimal_places", DECIMAL_PLACES)
    return models.DecimalField(*args, **kwargs)


#: Why a text holding the NUL character is refused: PostgreSQL cannot store it in ``text`` nor
#: ``jsonb`` and refuses it as a query parameter (a 500 there), so every input is checked first,
#: on every database alike.
NUL_REASON = "must not contain the NUL character (\\u0000)"


class NulCharacterError(ValueError):
    """A text input holds the NUL character.

    Attributes
    ----------
    field : str
        The input's name (``strategy``, ``reason``, ``token`` …).
    reason : str
        :data:`NUL_REASON`, for error bodies keyed by field; ``str()`` is ``"<field>: <reason>"``.
    """

    def __init__(self, field: str):
        self.field, self.reason = field, NUL_REASON
        super().__init__(f"{field}: {NUL_REASON}")


def refuse_nul(value: str, *, field: str) -> str:
    """Return ``value`` unchanged when it holds no NUL character (``"\\x00"``).

    Parameters
    ----------
    value : str
        A text input (query parameter, form field, header).
    field : str
        Its name, for the message.

    Raises
    ------
    NulCharacterError
        Naming ``field`` when ``value`` holds a NUL character.
    """
    if "\x00" in value:
        raise NulCharacterError(field)
    return value
