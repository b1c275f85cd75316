"""odum_live/decimals.py: one plain-decimal text for the API, pages, CLI and admin."""

from decimal import Decimal

import pytest

from odum_live.decimals import plain_decimal


@pytest.mark.parametrize("text, expected", [
    ("0.001000000000000000", "0.001"),
    ("1000", "1000"),
    ("-0E-18", "0"),
    # 36 significant digits (NUMERIC(36,18)'s widest), and a sum of two such values (37): more than the
    # default 28-digit context holds
    ("123456789012345678.123456789012345678", "123456789012345678.123456789012345678"),
    ("10000000000000.000000000000000001000", "10000000000000.000000000000000001"),
    ("-999999999999999999.999999999999999999", "-999999999999999999.999999999999999999"),
])
def test_plain_decimal_keeps_every_digit_and_drops_trailing_zeros(text, expected):
    assert plain_decimal(Decimal(text)) == expected
