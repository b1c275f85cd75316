"""TWAP: slice a primary order into equal child orders over a horizon, on our slicing base.

Parameters (``exec_algorithm_params`` on the primary): ``horizon_secs`` (int, s) and
``interval_secs`` (int, s, ≤ horizon). N = horizon_secs // interval_secs slices, the first when the
primary arrives, then one every ``interval_secs`` — the grid, and the params, of NautilusTrader's
``nautilus_trader.examples.algorithms.twap.TWAPExecAlgorithm``. The primary's quantity is split
into N equal parts in size-increment units; the increments that do not divide evenly go one each to
the earliest slices (largest-remainder method, odum_live/slicing.py ``apportion``), so the
slices sum exactly to the quantity; a slice below the instrument's minimum (``min_quantity``, and
``min_notional`` at the price the slice is valued at: base.py "Minimum slice") is carried to the
next one, and a slice that would leave a rest below it is resized (VWAP's rule, vwap.py "Slice sizes");
a slice above the instrument's ``max_quantity`` is sent as several children within it at once (base.py
"Maximum slice"; pre-trade risk denies at submit a TWAP whose slices exceed it); the last slice is
the primary itself with whatever is left.

Why not NautilusTrader's own TWAP (it was used until the node ran a TWAP storm):

* it has no policy for a denied or rejected child — when the node's RiskEngine denies a slice
  (its order-rate limit, a reduce-only breach) the sequence keeps its timer, the primary stays
  held and the parent never reaches a terminal state;
* it slices MARKET primaries only and leaves any other primary INITIALIZED for ever, without an
  event;
* it logs and drops bad params instead of denying the primary.

This class is :class:`venues.algorithms.vwap.VWAPExecAlgorithm` with a uniform profile and no
participation cap, so it shares the base's cancel / reject / deny policy (base.py: a child that ends
early aborts the sequence and cancels the unsent remainder; bad params DENY the primary with the
parameter named) and VWAP's order types: MARKET primaries are sliced into MARKET children (GTD
refused), LIMIT primaries into LIMIT children at the primary's price (GTC/GTD/DAY; IOC/FOK refused).
"""

from __future__ import annotations

from fractions import Fraction

from nautilus_trader.model.identifiers import ExecAlgorithmId
from nautilus_trader.model.orders import Order

from venues.algorithms.base import ParamError
from venues.algorithms.vwap import VWAPExecAlgorithm, VWAPExecAlgorithmConfig

_VWAP_ONLY = ("max_participation", "volume_profile")


class TWAPExecAlgorithmConfig(VWAPExecAlgorithmConfig, frozen=True):
    """Configuration for :class:`TWAPExecAlgorithm`.

    Parameters
    ----------
    exec_algorithm_id : ExecAlgorithmId, default ``TWAP``
        The id primaries name in ``exec_algorithm_id``.
    """

    exec_algorithm_id: ExecAlgorithmId | None = ExecAlgorithmId("TWAP")


class TWAPExecAlgorithm(VWAPExecAlgorithm):
    """Equal slices of a primary over ``horizon_secs`` every ``interval_secs`` (see module docstring).

    Parameters
    ----------
    config : TWAPExecAlgorithmConfig, optional
        Defaults to ``TWAPExecAlgorithmConfig()`` (id ``TWAP``).
    """

    def __init__(self, config: TWAPExecAlgorithmConfig | None = None) -> None:
        super().__init__(config or TWAPExecAlgorithmConfig())

    def _profile(self, primary: Order, params: dict, n: int, interval_ns: int) -> tuple[list, str]:
        given = [name for name in _VWAP_ONLY if params.get(name) is not None]
        if given:
            raise ParamError(given[0], "is not a parameter of TWAP (use VWAP)")
        return [Fraction(1)] * n, "uniform"
