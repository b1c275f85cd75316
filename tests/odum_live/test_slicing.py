"""odum_live.slicing.apportion: the split pre-trade risk and the node's algorithms share."""

from decimal import Decimal
from fractions import Fraction

import pytest

from odum_live.slicing import apportion


@pytest.mark.parametrize(
    ("total", "weights"),
    [
        (31_000, [1, 1, 1]),
        (201, [Decimal(1), Decimal(1)]),
        (1_000_000, [Decimal("0.1"), Decimal("2.5"), Decimal(0), Decimal("7.33")]),
        (999_999, [Fraction(1, 3), Fraction(5, 7), Decimal("0.25")]),
        (7, [Decimal(1)] * 10),
    ],
)
def test_apportion_parts_sum_exactly_and_stay_within_one_unit_of_the_exact_share(total, weights):
    # Act
    parts = apportion(total, weights)

    # Assert
    assert sum(parts) == total
    whole = sum(Fraction(w) for w in weights)
    for part, weight in zip(parts, weights):
        exact = total * Fraction(weight) / whole
        assert exact - 1 < part < exact + 1
        assert weight != 0 or part == 0


def test_apportion_equal_remainders_go_to_the_earliest_parts():
    # Act / Assert: 5 over three equal weights: the two left-over units to the first two
    assert apportion(5, [1, 1, 1]) == [2, 2, 1]


@pytest.mark.parametrize("weights", [[Decimal(-1), Decimal(2)], [Decimal(0), Decimal(0)]])
def test_apportion_negative_or_all_zero_weights_are_refused(weights):
    with pytest.raises(ValueError):
        apportion(10, weights)
