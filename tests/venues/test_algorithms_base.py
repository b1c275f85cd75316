"""venues.algorithms.base: the slicing algorithms' quantity rules (pure functions, in size-increment units)."""

import pytest

from venues.algorithms.base import fit_to_minimum


@pytest.mark.parametrize(
    ("send", "remaining", "most", "expected"),
    [
        (11, 21, None, 11),  # leaves 10 = the minimum: sent as asked
        (21, 21, None, 21),  # the whole rest
        (5, 21, None, 0),  # below the minimum and not the whole rest: carried
        (14, 21, None, 11),  # would leave 7: send less (11, off plan by 3) rather than all (21, off by 7)
        (18, 21, None, 21),  # would leave 3: send all (off by 3) rather than less (11, off by 7)
        (18, 21, 18, 11),  # ... unless the cap forbids sending all
        (15, 20, None, 10),  # a tie (10 or 20, both off by 5) goes to the smaller slice
        (12, 15, None, 15),  # less would be 5 (below the minimum): carry (off by 12) or all (off by 3)
        (12, 15, 12, 0),  # ... and with the cap at 12, carry it all
    ],
)
def test_fit_to_minimum_slice_leaving_a_rest_below_the_minimum_is_resized(send, remaining, most, expected):
    # Arrange: a venue minimum of 10 units.
    minimum = 10

    # Act
    sent = fit_to_minimum(send, remaining, minimum, most=most)

    # Assert: the answer, and neither the slice nor the rest strictly between 0 and the minimum.
    assert sent == expected
    assert sent == 0 or sent >= minimum
    assert remaining - sent == 0 or remaining - sent >= minimum
