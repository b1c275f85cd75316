"""Shared model-field and input helpers."""
import re
from decimal import Decimal

from django.db import models

# NUMERIC(36,18): every price, quantity and amount (seed spec; CONVENTIONS.md "Decimal end to end").
MAX_DIGITS = 36
DECIMAL_PLACES = 18
#: Every NUMERIC(36,18) value is below this in absolute value (18 integer digits): 10**18. PostgreSQL
#: refuses a larger one ("numeric field overflow"); SQLite would store it, so check against this first.
NUMERIC_BOUND = Decimal(10) ** (MAX_DIGITS - DECIMAL_PLACES)
#: Largest JSON integer a request decimal takes (18 integer digits, NUMERIC(36,18)); its negative is the smallest.
DECIMAL_INTEGER_MAX = 10 ** (MAX_DIGITS - DECIMAL_PLACES) - 1

#: A request's decimal string: an optional "-", up to 18 integer and 18 fraction digits (NUMERIC(36,18)), at
#: least one digit, nothing else (no edge whitespace, exponent, "+", "_" or non-ASCII digit). The API's
#: rule and its OpenAPI schema's ``pattern`` alike (ECMA-262 syntax, which Python's ``re`` reads the same).
DECIMAL_STRING_PATTERN = (
    rf"^-?(?:[0-9]{{1,{MAX_DIGITS - DECIMAL_PLACES}}}(?:\.[0-9]{{0,{DECIMAL_PLACES}}})?|\.[0-9]{{1,{DECIMAL_PLACES}}})$"
)
_DECIMAL_STRING = re.compile(DECIMAL_STRING_PATTERN)

#: Why :func:`decimal_input` refuses a value, by error code (the API's ``fields`` reasons).
DECIMAL_INPUT_REASONS = {
    "float": "must be a decimal string such as \"0.01\" or a JSON integer: JSON numbers with a fraction or "
             "exponent are binary floats and lose precision.",
    "type": "must be a decimal string such as \"0.01\" or a JSON integer",
    "integer_digits": f"must be a JSON integer of at most {MAX_DIGITS - DECIMAL_PLACES} digits "
                      f"(NUMERIC({MAX_DIGITS},{DECIMAL_PLACES})): from -{DECIMAL_INTEGER_MAX} to {DECIMAL_INTEGER_MAX}",
    "whitespace": "must not have leading or trailing whitespace",
    "format": f"must be a plain decimal string such as \"0.01\": an optional \"-\", at most "
              f"{MAX_DIGITS - DECIMAL_PLACES} ASCII digits, an optional \".\" and at most {DECIMAL_PLACES} more "
              f"(no exponent, \"+\" or separators)",
}


class DecimalInputError(ValueError):
    """A request decimal that :func:`decimal_input` refuses.

    Attributes
    ----------
    code : str
        A key of :data:`DECIMAL_INPUT_REASONS`: ``float``, ``type``, ``integer_digits``, ``whitespace`` or
        ``format``.
    reason : str
        Its reason, for error bodies keyed by field (``str()`` is the same).
    """

    def __init__(self, code: str):
        self.code, self.reason = code, DECIMAL_INPUT_REASONS[code]
        super().__init__(self.reason)


def decimal_input(value) -> Decimal:
    """Return a request's decimal (a price, quantity, amount, fraction) as a ``Decimal``, read exactly.

    The one rule for every decimal a client sends, top-level field or value inside a JSON object
    (``exec_algorithm_params``, ``expected_deltas``): a string matching :data:`DECIMAL_STRING_PATTERN`
    (the OpenAPI schema's ``pattern``) or a JSON integer from ``-DECIMAL_INTEGER_MAX`` to
    :data:`DECIMAL_INTEGER_MAX` (the schema's ``minimum`` / ``maximum``): what NUMERIC(36,18) stores.
    JSON floats are refused: a JSON parser reads ``0.1`` as a binary float, not 0.1.

    Parameters
    ----------
    value : str | int
        As parsed from JSON (or typed on a form / command line: a string).

    Returns
    -------
    Decimal
        Finite, at most 18 integer and 18 fraction digits; the sign and scale as given (``"0.10"``
        keeps its trailing zero: :func:`odum_live.decimals.plain_decimal` prints it canonically).

    Raises
    ------
    DecimalInputError
        ``float`` for a JSON float, ``type`` for a boolean, null, array or object, ``integer_digits``
        for an integer beyond 18 digits, ``whitespace`` for a string with edge whitespace and
        ``format`` for any other string outside the pattern (an exponent, "+", "_", a non-ASCII
        digit, "NaN", too many digits, "").
    """
    if isinstance(value, float):
        raise DecimalInputError("float")
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise DecimalInputError("type")
    if isinstance(value, int):
        if abs(value) > DECIMAL_INTEGER_MAX:  # compared, not str()-ed: a huge int has no str() in Python 3.11
            raise DecimalInputError("integer_digits")
        return Decimal(value)
    if value != value.strip():
        raise DecimalInputError("whitespace")
    if not _DECIMAL_STRING.fullmatch(value):
        raise DecimalInputError("format")
    return Decimal(value)


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
