"""Fill → position maths: worked examples with exact results, input validation, properties."""

import pickle
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from odum_live.intent import BUY_LIKE_SIDES
from positions.maths import (
    KNOWN_SIDES,
    QUANTUM,
    PositionMathsError,
    PositionState,
    add_other_fee,
    apply_fill,
    fee_in_pnl_currency,
    unrealized_pnl,
)

D = Decimal
FLAT = PositionState()


def fills(state, *steps, multiplier=D(1), inverse=False):
    """Apply ``(side, quantity, price[, fee])`` steps in order; return the final state."""
    for step in steps:
        side, quantity, price, fee = (*step, "0")[:4]
        state = apply_fill(state, side=side, quantity=D(quantity), price=D(price), fee=D(fee),
                           multiplier=multiplier, inverse=inverse)
    return state


def long(quantity, avg, realized="0", fees="0"):
    return PositionState(quantity=D(quantity), avg_entry_price=D(avg), realized_pnl=D(realized), fees=D(fees))


# --- worked examples: linear ---------------------------------------------------------------------

def test_apply_fill_flat_buy_opens_long_at_fill_price():
    # Act
    state = fills(FLAT, ("BUY", "2", "100", "0.1"))

    # Assert
    assert state == PositionState(quantity=D(2), avg_entry_price=D(100), realized_pnl=D("-0.1"), fees=D("0.1"))


def test_apply_fill_with_a_rebate_raises_realized_pnl_and_lowers_fees():
    # Act: a maker fill on a venue that pays makers (negative fee)
    state = fills(FLAT, ("BUY", "2", "100", "-0.1"))

    # Assert
    assert state == PositionState(quantity=D(2), avg_entry_price=D(100), realized_pnl=D("0.1"), fees=D("-0.1"))


def test_apply_fill_buy_on_long_reaverages_entry_price():
    # Arrange: long 2 @ 100
    state = long("2", "100")

    # Act: + 1 @ 130 -> (2·100 + 1·130) / 3 = 110
    state = fills(state, ("BUY", "1", "130"))

    # Assert
    assert (state.quantity, state.avg_entry_price, state.realized_pnl) == (D(3), D(110), D(0))


def test_apply_fill_repeating_average_is_quantized_half_even_to_18_places():
    # Act: (1·100 + 2·101) / 3 = 100.6666…
    state = fills(FLAT, ("BUY", "1", "100"), ("BUY", "2", "101"))

    # Assert
    assert state.avg_entry_price == D("100.666666666666666667")
    assert state.avg_entry_price.as_tuple().exponent == -18


def test_apply_fill_partial_close_realizes_on_closed_quantity_and_keeps_average():
    # Arrange: long 3 @ 110, 0.1 fees paid so far
    state = long("3", "110", realized="-0.1", fees="0.1")

    # Act: sell 1 @ 150 with fee 0.05 -> (150 - 110) · 1 = 40
    state = fills(state, ("SELL", "1", "150", "0.05"))

    # Assert
    assert state == long("2", "110", realized="39.85", fees="0.15")


def test_apply_fill_full_close_realizes_loss_and_goes_flat_without_average():
    # Arrange
    state = long("2", "110", realized="39.85", fees="0.15")

    # Act: (90 - 110) · 2 = -40
    state = fills(state, ("SELL", "2", "90"))

    # Assert
    assert state == PositionState(quantity=D(0), avg_entry_price=None, realized_pnl=D("-0.15"), fees=D("0.15"))
    assert state.is_flat


def test_apply_fill_sell_larger_than_long_flips_to_short_at_fill_price():
    # Arrange: long 2 @ 100
    state = long("2", "100")

    # Act: sell 5 @ 120, fee 0.6: closes 2 for (120 - 100) · 2 = 40, opens 3 short @ 120
    state = fills(state, ("SELL", "5", "120", "0.6"))

    # Assert
    assert state == PositionState(quantity=D(-3), avg_entry_price=D(120), realized_pnl=D("39.4"), fees=D("0.6"))


def test_apply_fill_short_side_reduce_add_and_flip_realize_with_negative_sign():
    # Act / Assert, step by step
    state = fills(FLAT, ("SELL", "4", "50"))
    assert (state.quantity, state.avg_entry_price) == (D(-4), D(50))

    state = fills(state, ("BUY", "1", "40"))  # (40 - 50) · 1 · (-1) = +10
    assert (state.quantity, state.avg_entry_price, state.realized_pnl) == (D(-3), D(50), D(10))

    state = fills(state, ("SELL", "2", "60"))  # short add: (3·50 + 2·60) / 5 = 54
    assert (state.quantity, state.avg_entry_price, state.realized_pnl) == (D(-5), D(54), D(10))

    state = fills(state, ("BUY", "6", "44"))  # closes 5: (44 - 54) · 5 · (-1) = +50; opens 1 long @ 44
    assert state == PositionState(quantity=D(1), avg_entry_price=D(44), realized_pnl=D(60), fees=D(0))


def test_apply_fill_buy_like_and_sell_like_sides_net_like_buy_and_sell():
    # Act: STAKE adds like BUY, WITHDRAW reduces like SELL
    state = fills(FLAT, ("STAKE", "10", "2"), ("WITHDRAW", "4", "3"))

    # Assert
    assert state == long("6", "2", realized="4")


def test_apply_fill_linear_multiplier_scales_realized_pnl():
    # Arrange: 10 contracts of 0.01 BTC (OKX BTC-USDT-SWAP face value)
    state = fills(FLAT, ("BUY", "10", "60000"), multiplier=D("0.01"))

    # Act: (61000 - 60000) · 10 · 0.01 = 100 USDT
    state = fills(state, ("SELL", "10", "61000", "0.5"), multiplier=D("0.01"))

    # Assert
    assert state == PositionState(quantity=D(0), avg_entry_price=None, realized_pnl=D("99.5"), fees=D("0.5"))


def test_apply_fill_results_have_18_decimal_places():
    # Act
    state = fills(FLAT, ("BUY", "1.5", "3"), ("SELL", "0.5", "4", "0.001"))

    # Assert
    for value in (state.quantity, state.avg_entry_price, state.realized_pnl, state.fees):
        assert value.as_tuple().exponent == -18


# --- worked examples: inverse --------------------------------------------------------------------

def test_apply_fill_inverse_adds_average_harmonically_and_realize_in_base_currency():
    # Deribit BTC-PERPETUAL: 1 contract = 10 USD; PnL in BTC. Checked by hand:
    #   buy 1000 @ 40000 and 1000 @ 50000 (USD 10,000 each)
    #   avg = 2000 / (1000/40000 + 1000/50000) = 2000 / 0.045 = 44444.444…  (not the arithmetic 45000)
    #   BTC paid: 10000/40000 + 10000/50000 = 0.25 + 0.20 = 0.45 BTC for USD 20,000
    #   sell 2000 @ 50000: 20000/50000 = 0.40 BTC -> long inverse PnL = 0.45 - 0.40 = 0.05 BTC
    #   = 2000 · 10 · (1/44444.44… - 1/50000) = 20000 · (0.0000225 - 0.00002) = 0.05
    # Act
    opened = fills(FLAT, ("BUY", "1000", "40000"), ("BUY", "1000", "50000"), multiplier=D(10), inverse=True)
    closed = fills(opened, ("SELL", "2000", "50000", "0.0001"), multiplier=D(10), inverse=True)

    # Assert
    assert opened.avg_entry_price == D("44444.444444444444444444")
    assert closed == PositionState(quantity=D(0), avg_entry_price=None, realized_pnl=D("0.0499"), fees=D("0.0001"))


def test_apply_fill_inverse_partial_close_matches_bitmex_worked_example():
    # BitMEX perpetual guide: long 1000 XBTUSD (1 USD each) @ 1000, sell 500 @ 1500:
    # (1/1000 - 1/1500) · 500 = 1/6 XBT ≈ 0.17 XBT (BitMEX rounds to 2 places in the text).
    # Act
    state = fills(FLAT, ("BUY", "1000", "1000"), ("SELL", "500", "1500"), inverse=True)

    # Assert
    assert state == long("500", "1000", realized="0.166666666666666667")


def test_apply_fill_inverse_short_closed_lower_gains_base_currency():
    # Arrange: short 100 contracts of 10 USD @ 50000
    state = fills(FLAT, ("SELL", "100", "50000"), multiplier=D(10), inverse=True)

    # Act: -100 · 10 · (1/50000 - 1/40000) = -1000 · (-0.000005) = 0.005 BTC
    state = fills(state, ("BUY", "100", "40000"), multiplier=D(10), inverse=True)

    # Assert
    assert state.realized_pnl == D("0.005")


# --- unrealized PnL ------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("state", "mark", "multiplier", "inverse", "expected"),
    [
        (long("2", "110"), "120", "1", False, "20"),
        (long("-3", "50"), "45", "1", False, "15"),
        (long("10", "60000"), "59000", "0.01", False, "-100"),
        # BitMEX guide: long 1000 @ 1000, mark 1250 -> (1/1000 - 1/1250) · 1000 = 0.2 XBT
        (long("1000", "1000"), "1250", "1", True, "0.2"),
        # short 100 × 10 USD @ 50000, mark 40000 -> -1000 · (1/50000 - 1/40000) = 0.005 BTC
        (long("-100", "50000"), "40000", "10", True, "0.005"),
        (FLAT, "123", "1", False, "0"),
        (FLAT, "123", "10", True, "0"),
    ],
)
def test_unrealized_pnl_at_mark_matches_hand_computed_value(state, mark, multiplier, inverse, expected):
    # Act
    result = unrealized_pnl(state, mark=D(mark), multiplier=D(multiplier), inverse=inverse)

    # Assert
    assert result == D(expected)
    assert result.as_tuple().exponent == -18


def test_unrealized_pnl_mark_not_positive_raises_naming_mark():
    # Act / Assert
    with pytest.raises(PositionMathsError, match="^mark: must be > 0") as excinfo:
        unrealized_pnl(long("1", "10"), mark=D(0))
    assert excinfo.value.field == "mark"


# --- validation ----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"quantity": D(0)}, "quantity"),
        ({"quantity": D("-1")}, "quantity"),
        ({"quantity": 1.0}, "quantity"),
        ({"quantity": D("NaN")}, "quantity"),
        ({"quantity": D("0.0000000000000000001")}, "quantity"),
        ({"price": D(0)}, "price"),
        ({"price": D("-5")}, "price"),
        ({"price": D("Infinity")}, "price"),
        ({"price": "100"}, "price"),
        ({"fee": D("Infinity")}, "fee"),
        ({"fee": 0.1}, "fee"),
        ({"side": "HOLD"}, "side"),
        ({"side": "buy"}, "side"),
        ({"multiplier": D(0)}, "multiplier"),
        ({"price": D("1000000000000000000")}, "price"),
    ],
)
def test_apply_fill_invalid_input_raises_value_error_naming_field(overrides, field):
    # Arrange
    kwargs = {"side": "BUY", "quantity": D(1), "price": D(100), "fee": D(0), **overrides}

    # Act / Assert
    with pytest.raises(ValueError, match=f"^{field}: ") as excinfo:
        apply_fill(FLAT, **kwargs)
    assert excinfo.value.field == field


def test_apply_fill_trailing_zeros_beyond_18_places_are_accepted():
    # Act: the value is representable at 18 places, only its exponent is longer
    state = apply_fill(FLAT, side="BUY", quantity=D("1.00000000000000000000"), price=D(5), fee=D(0))

    # Assert
    assert state.quantity == D(1)


def test_apply_fill_result_beyond_numeric_36_18_raises_naming_result():
    # Arrange: long 1000 @ 1, 1000 contracts × 1000 multiplier
    state = fills(FLAT, ("BUY", "1000", "1"), multiplier=D(1000))

    # Act / Assert: (999999999999999999 - 1) · 1000 · 1000 ≈ 1e24 does not fit NUMERIC(36,18)
    with pytest.raises(PositionMathsError, match="^realized_pnl: .*NUMERIC"):
        fills(state, ("SELL", "1000", "999999999999999999"), multiplier=D(1000))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"quantity": D(0), "avg_entry_price": D(10)},
        {"quantity": D(1), "avg_entry_price": None},
        {"quantity": D(1), "avg_entry_price": D(0)},
    ],
)
def test_position_state_inconsistent_average_raises_state_error(kwargs):
    # Act / Assert
    with pytest.raises(PositionMathsError, match="^state: "):
        PositionState(**kwargs)


def test_position_state_float_quantity_raises_naming_field():
    # Act / Assert
    with pytest.raises(PositionMathsError, match="^quantity: must be a Decimal"):
        PositionState(quantity=1.5, avg_entry_price=D(1))


def test_position_maths_error_pickled_keeps_field_and_message():
    # Arrange
    error = PositionMathsError("fee", "must be >= 0, got -1")

    # Act
    copy = pickle.loads(pickle.dumps(error))

    # Assert
    assert (copy.field, str(copy)) == ("fee", "fee: must be >= 0, got -1")


# --- properties ----------------------------------------------------------------------------------

HALF_ULP = QUANTUM / 2  # largest error of one ROUND_HALF_EVEN quantization to 18 places

quantities = st.integers(1, 100_000).map(lambda n: D(n).scaleb(-3))  # 0.001 … 100, 3 places
prices = st.integers(1, 10_000_000).map(lambda n: D(n).scaleb(-2))  # 0.01 … 100000, 2 places
fees = st.integers(0, 100_000).map(lambda n: D(n).scaleb(-4))  # 0 … 10, 4 places
multipliers = st.sampled_from([D(1), D("0.01"), D("0.001"), D(10), D(100)])
fill_lists = st.lists(st.tuples(st.sampled_from(sorted(KNOWN_SIDES)), quantities, prices, fees), min_size=1,
                      max_size=30)


def signed(side, quantity):
    return quantity if side in BUY_LIKE_SIDES else -quantity


@settings(max_examples=300, deadline=None)
@given(fill_lists, multipliers, st.booleans())
def test_apply_fill_any_sequence_quantity_is_signed_sum_of_fills(sequence, multiplier, inverse):
    # Act
    state = FLAT
    for side, quantity, price, fee in sequence:
        state = apply_fill(state, side=side, quantity=quantity, price=price, fee=fee, multiplier=multiplier,
                           inverse=inverse)

    # Assert
    assert state.quantity == sum(signed(side, quantity) for side, quantity, _, _ in sequence)
    assert (state.avg_entry_price is None) == (state.quantity == 0)


@settings(max_examples=300, deadline=None)
@given(fill_lists, prices, fees, multipliers)
def test_apply_fill_linear_sequence_ending_flat_realizes_minus_signed_cash_flow_minus_fees(
    sequence, close_price, close_fee, multiplier
):
    # Arrange: close whatever is left so the sequence ends flat
    held = sum(signed(side, quantity) for side, quantity, _, _ in sequence)
    if held:
        sequence = [*sequence, ("SELL" if held > 0 else "BUY", abs(held), close_price, close_fee)]

    # Act
    state, bound = FLAT, D(0)
    for side, quantity, price, fee in sequence:
        state = apply_fill(state, side=side, quantity=quantity, price=price, fee=fee, multiplier=multiplier)
        # Error budget of this step (see below): one avg quantization, weighted by the position it
        # prices, plus one PnL quantization.
        bound += HALF_ULP * (abs(state.quantity) * multiplier + 1)

    # Assert: realized = -Σ signed qty · price · multiplier - Σ fee. Without rounding this is exact
    # (cost basis identity). Each step can only move it by quantizing the average entry price (the
    # open position's cost basis |quantity| · avg · multiplier shifts by ≤ |quantity| · multiplier ·
    # 0.5e-18) or by quantizing a realized PnL amount (≤ 0.5e-18); sums of 18-place values are exact.
    expected = -sum(signed(s, q) * p * multiplier for s, q, p, _ in sequence) - sum(f for *_, f in sequence)
    assert state.quantity == 0 and state.avg_entry_price is None
    assert abs(state.realized_pnl - expected) <= bound


@settings(max_examples=300, deadline=None)
@given(fill_lists, multipliers, st.booleans())
def test_apply_fill_open_position_average_lies_within_prices_that_opened_it(sequence, multiplier, inverse):
    state, opening_prices = FLAT, []
    for side, quantity, price, fee in sequence:
        before = state

        # Act
        state = apply_fill(state, side=side, quantity=quantity, price=price, fee=fee, multiplier=multiplier,
                           inverse=inverse)

        # Assert: prices that opened the position since it was last flat or flipped
        adds = before.quantity == 0 or (before.quantity > 0) == (side in BUY_LIKE_SIDES)
        flipped = before.quantity != 0 and state.quantity != 0 and (before.quantity > 0) != (state.quantity > 0)
        if state.quantity == 0:
            opening_prices = []
        elif flipped:
            opening_prices = [price]
        elif adds:
            opening_prices.append(price)
        if opening_prices:
            assert min(opening_prices) <= state.avg_entry_price <= max(opening_prices)
        else:
            assert state.avg_entry_price is None


@settings(max_examples=300, deadline=None)
@given(fill_lists, multipliers, st.booleans())
def test_apply_fill_fees_change_only_by_the_fill_fee(sequence, multiplier, inverse):
    state = FLAT
    for side, quantity, price, fee in sequence:
        before = state

        # Act
        state = apply_fill(state, side=side, quantity=quantity, price=price, fee=fee, multiplier=multiplier,
                           inverse=inverse)

        # Assert
        assert state.fees == before.fees + fee
        adds = before.quantity == 0 or (before.quantity > 0) == (side in BUY_LIKE_SIDES)
        if adds:  # nothing closed: the fee is the only change to realized PnL
            assert state.realized_pnl == before.realized_pnl - fee


# --- fees in another currency ----------------------------------------------------------------------

@pytest.mark.parametrize("fee, currency, inverse, expected", [
    ("0.4", "USDT", False, "0.4"),  # the PnL currency: as it is
    ("0.4", "", False, "0.4"),  # no currency named: taken as the PnL currency
    ("0.00001", "BTC", False, "0.4"),  # a linear pair's base currency: × the fill price
    ("2", "USD", True, "0.00005"),  # an inverse pair's quote currency: ÷ the fill price
    ("0.00001", "BTC", True, "0.00001"),  # inverse: the PnL currency is the base (settlement) coin
    ("0.01", "BNB", False, None),  # a third currency: no rate
    ("2", "USDT", True, None),  # USDT on a BTC-USD inverse pair: a third currency
    ("0", "BNB", False, "0"),  # nothing paid: nothing to keep apart
])
def test_fee_in_pnl_currency_converts_the_pairs_currencies_at_the_fill_price_only(fee, currency, inverse, expected):
    result = fee_in_pnl_currency(fee=D(fee), fee_currency=currency, price=D("40000"), inverse=inverse, base="BTC",
                                 quote="USD" if inverse else "USDT")
    assert result == (None if expected is None else D(expected))


def test_add_other_fee_sums_per_currency_exactly_and_keeps_the_others():
    # Act: a BNB fee, a rebate in BNB, a fee in another currency
    fees = add_other_fee({}, currency="BNB", fee=D("0.000000000000000001"))
    fees = add_other_fee(fees, currency="BNB", fee=D("0.01"))
    fees = add_other_fee(fees, currency="OKB", fee=D("2"))
    fees = add_other_fee(fees, currency="BNB", fee=D("-0.005"))

    # Assert: exact text per currency, sorted; the input mapping is not changed
    assert fees == {"BNB": "0.005000000000000001", "OKB": "2"}
    stored = {"BNB": "1"}
    add_other_fee(stored, currency="BNB", fee=D("1"))
    assert stored == {"BNB": "1"}


@pytest.mark.parametrize("stored, currency, fee, field", [
    ({}, "", D("0.01"), "fee_currency"),
    ({}, None, D("0.01"), "fee_currency"),
    ({}, "BNB", 0.01, "fee"),
    ({}, "BNB", D("0.0000000000000000001"), "fee"),
    ({"BNB": "abc"}, "BNB", D("0.01"), "other_fees"),
    ({"BNB": 1.5}, "BNB", D("0.01"), "other_fees"),
    ({"BNB": "NaN"}, "BNB", D("0.01"), "other_fees"),
    ({"BNB": "999999999999999999"}, "BNB", D("1"), "other_fees"),
])
def test_add_other_fee_refuses_bad_input_naming_the_field(stored, currency, fee, field):
    with pytest.raises(PositionMathsError) as caught:
        add_other_fee(stored, currency=currency, fee=fee)
    assert caught.value.field == field
