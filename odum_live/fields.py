"""Shared model-field helpers."""
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
