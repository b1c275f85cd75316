"""Execution algorithms the trading node hosts, and the mapping from our order params to theirs.

Our ``Order.exec_algorithm`` names map to NautilusTrader ``ExecAlgorithm`` classes; the same
classes run in a ``BacktestEngine`` (tests, venues/algorithms/backtest.py) and in the live
``TradingNode``:

=========  ===================  =====================================================================
ours       ExecAlgorithmId      class
=========  ===================  =====================================================================
TWAP       ``TWAP``             :class:`venues.algorithms.twap.TWAPExecAlgorithm`           
VWAP       ``VWAP``             :class:`venues.algorithms.vwap.VWAPExecAlgorithm`
ICEBERG    ``ICEBERG``          :class:`venues.algorithms.iceberg.IcebergExecAlgorithm`
=========  ===================  =====================================================================

NORMAL orders carry no ``exec_algorithm_id``.

Children and the parent
-----------------------
A primary order submitted with ``exec_algorithm_id`` is held by the algorithm (status INITIALIZED)
and released in child orders ``<primary client_order_id>-E<n>`` (n = 1, 2, …) whose
``exec_spawn_id`` is the primary's client_order_id; the last slice is the primary itself, sent
with whatever quantity is left. Spawning shrinks the primary without an event, so the parent's
leaves quantity is the sum over the primary and its children (NAUTILUS_NOTES.md). Policies on
cancel / reject / deny: venues/algorithms/base.py.

Known limitation: sequence state lives in the algorithm's memory. A node that stops while an
algorithm holds a primary leaves that primary INITIALIZED in the cache; nothing resumes it after
a restart, so the node's host must cancel such primaries at startup (reconciliation).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from nautilus_trader.execution.config import ImportableExecAlgorithmConfig

from orders.algorithms import AlgorithmParamsError, format_decimal


@dataclass(frozen=True)
class ExecAlgorithmSpec:
    """Where NautilusTrader finds one execution algorithm.

    Attributes
    ----------
    exec_algorithm_id : str
        The ``ExecAlgorithmId`` value primaries carry (equal to our algorithm name).
    exec_algorithm_path : str
        ``module:Class`` of the ``ExecAlgorithm``.
    config_path : str
        ``module:Class`` of its ``ExecAlgorithmConfig``.
    config : dict
        Keyword values for the config (JSON-able).
    """

    exec_algorithm_id: str
    exec_algorithm_path: str
    config_path: str
    config: dict[str, Any]

    def importable(self) -> ImportableExecAlgorithmConfig:
        """Return the ``TradingNodeConfig.exec_algorithms`` entry for this algorithm."""
        return ImportableExecAlgorithmConfig(
            exec_algorithm_path=self.exec_algorithm_path,
            config_path=self.config_path,
            config=dict(self.config),
        )


#: Our algorithm name → where the node loads it from.
EXEC_ALGORITHMS: dict[str, ExecAlgorithmSpec] = {
    "TWAP": ExecAlgorithmSpec(
        exec_algorithm_id="TWAP",
        exec_algorithm_path="venues.algorithms.twap:TWAPExecAlgorithm",
        config_path="venues.algorithms.twap:TWAPExecAlgorithmConfig",
        config={"exec_algorithm_id": "TWAP"},
    ),
    "VWAP": ExecAlgorithmSpec(
        exec_algorithm_id="VWAP",
        exec_algorithm_path="venues.algorithms.vwap:VWAPExecAlgorithm",
        config_path="venues.algorithms.vwap:VWAPExecAlgorithmConfig",
        config={"exec_algorithm_id": "VWAP"},
    ),
    "ICEBERG": ExecAlgorithmSpec(
        exec_algorithm_id="ICEBERG",
        exec_algorithm_path="venues.algorithms.iceberg:IcebergExecAlgorithm",
        config_path="venues.algorithms.iceberg:IcebergExecAlgorithmConfig",
        config={"exec_algorithm_id": "ICEBERG"},
    ),
}


def exec_algorithm_configs() -> list[ImportableExecAlgorithmConfig]:
    """Return the ``TradingNodeConfig(exec_algorithms=[...])`` entries for TWAP, VWAP and ICEBERG."""
    return [spec.importable() for spec in EXEC_ALGORITHMS.values()]


def exec_algorithm_id(algorithm: str) -> str | None:
    """Return the ``ExecAlgorithmId`` value for our algorithm name (None for NORMAL).

    Raises
    ------
    ValueError
        If ``algorithm`` is not NORMAL, TWAP, VWAP or ICEBERG.
    """
    if algorithm == "NORMAL":
        return None
    if algorithm not in EXEC_ALGORITHMS:
        raise ValueError(f"unknown exec algorithm {algorithm!r}")
    return EXEC_ALGORITHMS[algorithm].exec_algorithm_id


def _seconds(params: dict, name: str) -> int:
    value = params.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise AlgorithmParamsError({name: [f"must be a positive int number of seconds, got {value!r}"]})
    return value


def _decimal_text(value: object, name: str) -> str:
    if isinstance(value, (bool, float)) or not isinstance(value, (str, int)):
        raise AlgorithmParamsError({name: [f"must be a decimal string, got {value!r}"]})
    try:
        number = Decimal(str(value))
    except ArithmeticError:
        raise AlgorithmParamsError({name: [f"is not a decimal number: {value!r}"]}) from None
    if not number.is_finite():
        raise AlgorithmParamsError({name: [f"must be finite, got {value!r}"]})
    return format_decimal(number)


_KEYS = {
    "TWAP": ({"horizon_secs", "interval_secs"}, set()),
    "VWAP": ({"horizon_secs", "interval_secs", "max_participation"}, {"volume_profile"}),
    "ICEBERG": ({"display_qty"}, set()),
}


def nautilus_exec_algorithm_params(algorithm: str, params: dict) -> dict[str, object]:
    """Convert our stored, validated ``exec_algorithm_params`` into the Nautilus order's params.

    ``params`` is what ``orders.algorithms.validate_exec_algorithm_params`` returned (ints for
    seconds, canonical decimal strings for fractions and quantities, a list of decimal strings for
    ``volume_profile``). The result holds scalars only — NautilusTrader's Rust core types these
    params as ``dict[str, str]`` (``nautilus_pyo3.pyi``) — except that seconds stay ``int``, the
    shape NautilusTrader's own ``TWAPExecAlgorithm`` takes (our TWAP / VWAP read both forms).

    ==========  =========================================================================
    TWAP        ``{"horizon_secs": 600, "interval_secs": 60}``
    VWAP        ``{"horizon_secs": 600, "interval_secs": 60, "max_participation": "0.1"}``
                plus ``"volume_profile": "1,2.5,0,…"`` (comma-joined weights) when given
    ICEBERG     ``{"display_qty": "0.25"}``
    ==========  =========================================================================

    Parameters
    ----------
    algorithm : str
        TWAP, VWAP or ICEBERG (NORMAL orders carry no exec algorithm).
    params : dict
        The order's stored ``exec_algorithm_params``.

    Returns
    -------
    dict[str, object]
        The ``exec_algorithm_params`` for the Nautilus primary order.

    Raises
    ------
    ValueError
        If ``algorithm`` has no Nautilus exec algorithm (NORMAL or unknown).
    AlgorithmParamsError
        If a required key is missing, a key is unknown, or a value has the wrong shape (the
        params were not validated, or were stored by an incompatible version).
    """
    if algorithm not in _KEYS:
        raise ValueError(f"{algorithm!r} has no NautilusTrader exec algorithm")
    required, optional = _KEYS[algorithm]
    missing = sorted(required - set(params))
    unknown = sorted(set(params) - required - optional)
    if missing or unknown:
        errors = {k: ["is required"] for k in missing} | {k: [f"is not a parameter of {algorithm}"] for k in unknown}
        raise AlgorithmParamsError(errors)
    out: dict[str, object] = {}
    for name in ("horizon_secs", "interval_secs"):
        if name in required:
            out[name] = _seconds(params, name)
    if "max_participation" in required:
        out["max_participation"] = _decimal_text(params["max_participation"], "max_participation")
    if "display_qty" in required:
        out["display_qty"] = _decimal_text(params["display_qty"], "display_qty")
    if "volume_profile" in params:
        profile = params["volume_profile"]
        if not isinstance(profile, list) or not profile:
            raise AlgorithmParamsError({"volume_profile": [f"must be a list of decimal strings, got {profile!r}"]})
        out["volume_profile"] = ",".join(_decimal_text(w, "volume_profile") for w in profile)
    return out
