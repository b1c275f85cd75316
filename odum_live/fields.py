"""Shared model-field helpers."""
from django.db import models

# NUMERIC(36,18): every price, quantity and amount (seed spec; CONVENTIONS.md "Decimal end to end").
MAX_DIGITS = 36
DECIMAL_PLACES = 18


def DecimalField(*args, **kwargs) -> models.DecimalField:  # noqa: N802 - reads like a field class
    """Return a ``NUMERIC(36,18)`` ``DecimalField``; keyword arguments pass through."""
    kwargs.setdefault("max_digits", MAX_DIGITS)
    kwargs.setdefault("decimal_places", DECIMAL_PLACES)
    return models.DecimalField(*args, **kwargs)
