"""Slice arithmetic shared by pre-trade risk (risk/engine.py) and the node's execution algorithms
(venues/algorithms/): both must cut an order into the same slices, to the size increment."""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction


def apportion(total_units: int, weights: Sequence[Decimal | Fraction | int]) -> list[int]:
    """Split ``total_units`` in proportion to ``weights``; the parts sum exactly to ``total_units``.

    Each part is first rounded down; the units left over (fewer than ``len(weights)``) go one each
    to the parts with the largest rounded-off remainders, earliest first on ties (the largest
    remainder / Hamilton method), so every part is within one unit of its exact share. Computed
    with integers over the weights' common denominator: exact, and fast enough for the 10 000
    slices an order may have (``orders.algorithms.MAX_SLICES``).

    Parameters
    ----------
    total_units : int
        Quantity to split, in size increments (>= 0).
    weights : sequence of Decimal, Fraction or int
        Non-negative finite weights, at least one positive.

    Returns
    -------
    list[int]
        One part per weight, in units; a zero weight always gets zero.

    Raises
    ------
    ValueError
        If a weight is negative or all weights are zero.
    """
    ratios = [w.as_integer_ratio() for w in weights]
    if any(numerator < 0 for numerator, _ in ratios):
        raise ValueError("weights must be non-negative")
    common = math.lcm(*(denominator for _, denominator in ratios))
    scaled = [numerator * (common // denominator) for numerator, denominator in ratios]
    total_weight = sum(scaled)
    if total_weight == 0:
        raise ValueError("weights must not all be zero")
    shares = [divmod(total_units * w, total_weight) for w in scaled]  # (whole part, remainder / total_weight)
    parts = [whole for whole, _ in shares]
    leftover = total_units - sum(parts)
    by_remainder = sorted(range(len(shares)), key=lambda i: (-shares[i][1], i))
    for i in by_remainder[:leftover]:
        parts[i] += 1
    return parts
