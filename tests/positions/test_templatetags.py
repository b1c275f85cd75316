"""Number formats of the positions pages (positions/templatetags/positions_ui.py)."""

from decimal import Decimal

from positions.templatetags.positions_ui import money


def test_money_rounds_a_notional_beyond_28_digits_instead_of_failing():
    # A notional of two NUMERIC(36,18) values (quantity × price) can reach 10**36: to the cent that is
    # 39 digits, more than the default decimal context's 28, where quantize raised InvalidOperation.
    value = Decimal("123456789012345678901234567890.125")
    assert money(value) == "123,456,789,012,345,678,901,234,567,890.12"
    assert money(value, "BTC") == "123,456,789,012,345,678,901,234,567,890.12500000"


def test_money_rounds_half_even_and_shows_none_as_a_dash():
    assert money(Decimal("2.345")) == "2.34"
    assert money(Decimal("2.355")) == "2.36"
    assert money(None) == "—"
