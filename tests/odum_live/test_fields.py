"""Shared input helpers of odum_live/fields.py: the NUL-character check, the request decimal."""

from decimal import Decimal

import pytest

from odum_live.fields import DECIMAL_INTEGER_MAX, DecimalInputError, NulCharacterError, decimal_input, refuse_nul


def test_refuse_nul_text_without_nul_is_returned_unchanged():
    assert refuse_nul(" alpha ", field="strategy") == " alpha "


def test_refuse_nul_text_with_nul_raises_naming_the_field():
    with pytest.raises(NulCharacterError) as exc:
        refuse_nul("alpha\x00", field="strategy")

    assert (exc.value.field, exc.value.reason) == ("strategy", "must not contain the NUL character (\\u0000)")
    assert str(exc.value) == "strategy: must not contain the NUL character (\\u0000)"


@pytest.mark.parametrize(("value", "expected"), [
    ("0.01", Decimal("0.01")), ("-0.5", Decimal("-0.5")), ("5.", Decimal("5")), (".5", Decimal("0.5")),
    ("0.10", Decimal("0.10")), ("9" * 18 + "." + "9" * 18, Decimal("9" * 18 + "." + "9" * 18)),
    (0, Decimal(0)), (DECIMAL_INTEGER_MAX, Decimal(DECIMAL_INTEGER_MAX)),
    (-DECIMAL_INTEGER_MAX, Decimal(-DECIMAL_INTEGER_MAX)),
])
def test_decimal_input_plain_decimal_is_read_exactly(value, expected):
    # Act
    number = decimal_input(value)
    # Assert: the value and its scale as given
    assert number == expected and number.as_tuple() == expected.as_tuple()


@pytest.mark.parametrize(("value", "code"), [
    (0.1, "float"), (1.0, "float"), (True, "type"), (None, "type"), (["1"], "type"), ({"v": "1"}, "type"),
    (DECIMAL_INTEGER_MAX + 1, "integer_digits"), (-DECIMAL_INTEGER_MAX - 1, "integer_digits"),
    (10**100, "integer_digits"), (" 1", "whitespace"), ("1\n", "whitespace"), ("\u00a01", "whitespace"),
    ("1e3", "format"), ("+1", "format"), ("1_000", "format"), ("NaN", "format"), ("-Infinity", "format"),
    ("\u0661", "format"), ("1,5", "format"), ("", "format"), (".", "format"), ("-", "format"), ("1" * 19, "format"),
    ("0." + "1" * 19, "format"), ("0x10", "format"),
])
def test_decimal_input_outside_the_rule_raises_with_the_reason(value, code):
    # Act
    with pytest.raises(DecimalInputError) as exc:
        decimal_input(value)
    # Assert
    assert exc.value.code == code and str(exc.value) == exc.value.reason
