"""Execution-algorithm parameters: validation shared by the API, the order ticket and the venue layer.

An order's ``exec_algorithm`` picks how the trading node works it (DESIGN.md, "Order flow" step 3):

=========  ==================================================================================
NORMAL     sent as one order; takes no parameters.
TWAP       ``horizon_secs`` (int, s) and ``interval_secs`` (int, s), interval ≤ horizon: the
           quantity is sliced evenly, one slice every ``interval_secs`` over ``horizon_secs``
           (the params of NautilusTrader's ``TWAPExecAlgorithm``; ours is venues/algorithms/twap.py).
           MARKET orders slice into MARKET children; LIMIT orders into LIMIT children at the
           order's price, which must rest (GTC/GTD, not IOC/FOK). The same holds for VWAP.
           Pre-trade risk holds each planned slice, not the parent, to the routed listing's
           maximum quantity (:func:`slice_weights`, risk/engine.py ``max_quantity``).
VWAP       ``horizon_secs``, ``interval_secs`` as TWAP, plus ``max_participation``: the largest
           fraction of the market volume traded per interval, a decimal in (0, 1]; optional
           ``volume_profile``: one non-negative decimal weight per interval (a JSON list of
           ``horizon_secs // interval_secs`` decimal strings, not all zero) giving the slice sizes'
           shape; without it the node derives the shape from recent market volume or slices
           evenly (venues/algorithms/vwap.py), and pre-trade risk holds the parent itself to the
           listing's maximum quantity.
ICEBERG    ``display_qty``: the visible quantity in base units, 0 < display_qty < quantity;
           LIMIT orders only (an iceberg rests on the book). Each clip is an order of
           ``display_qty`` at the limit price: pre-trade risk holds it to the routed listing's lot
           size, minimum and maximum quantity and minimum notional (risk/engine.py, DENIED naming
           it); the parent itself is not held to the maximum.
=========  ==================================================================================

Numbers follow the API's rule (no JSON floats): integers as JSON integers; decimals (``max_participation``,
``volume_profile``'s weights, ``display_qty``) exactly as a top-level decimal of the order message
(:func:`odum_live.fields.decimal_input`: a string of the schema's decimal pattern, no edge whitespace,
exponent, "+", "_" or non-ASCII digit, or a JSON integer of at most 18 digits). Validated params come
back *normalised* (ints as ``int``, decimals as canonical strings) so the stored JSON and the request
fingerprint do not depend on how the client spelled them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from odum_live.decimals import plain_decimal as format_decimal  # re-exported: callers import it from here
from odum_live.fields import DecimalInputError, decimal_input

#: Longest accepted algorithm horizon, seconds (7 days): longer schedules are a config mistake.
MAX_HORIZON_SECS = 7 * 24 * 3600
#: Most slices one order may be cut into (horizon / interval): bounds the node's timer load.
MAX_SLICES = 10_000

ALGORITHMS = ("NORMAL", "TWAP", "VWAP", "ICEBERG")


class AlgorithmParamsError(ValueError):
    """Invalid ``exec_algorithm_params`` (or an order shape the algorithm cannot work).

    Attributes
    ----------
    errors : dict[str, list[str]]
        Messages keyed by the offending parameter name; the key ``order_type`` when the
        algorithm does not accept the order type.
    """

    def __init__(self, errors: dict[str, list[str]]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))


def _positive_int(params: dict, name: str, errors: dict, *, maximum: int) -> int | None:
    if name not in params:
        errors.setdefault(name, []).append("is required")
        return None
    value = params[name]
    if isinstance(value, bool) or not isinstance(value, int):
        errors.setdefault(name, []).append(f"must be a JSON integer number of seconds, got {value!r}")
        return None
    if value <= 0:
        errors.setdefault(name, []).append(f"must be a positive number of seconds, got {value}")
        return None
    if value > maximum:
        errors.setdefault(name, []).append(f"must be at most {maximum} seconds, got {value}")
        return None
    return value


def _decimal(params: dict, name: str, errors: dict) -> Decimal | None:
    if name not in params:
        errors.setdefault(name, []).append("is required")
        return None
    try:
        return decimal_input(params[name])
    except DecimalInputError as exc:
        errors.setdefault(name, []).append(exc.reason)
        return None


def _volume_profile(params: dict, errors: dict, *, slices: int | None) -> list[str] | None:
    # One weight per slice; the shape matters, not the scale, so all-zero is meaningless.
    value = params["volume_profile"]
    if not isinstance(value, list) or not value:
        errors.setdefault("volume_profile", []).append(
            f"must be a non-empty JSON list of decimal strings (one weight per interval), got {value!r}"
        )
        return None
    if len(value) > MAX_SLICES:
        errors.setdefault("volume_profile", []).append(f"has {len(value)} weights; at most {MAX_SLICES} allowed")
        return None
    weights: list[Decimal] = []
    for index, item in enumerate(value):
        try:
            weight = decimal_input(item)
        except DecimalInputError as exc:
            errors.setdefault("volume_profile", []).append(f"item {index} {exc.reason}")
            return None
        if weight < 0:
            errors.setdefault("volume_profile", []).append(f"item {index} must be a non-negative weight, got {item!r}")
            return None
        weights.append(weight)
    if slices is not None and len(weights) != slices:
        errors.setdefault("volume_profile", []).append(
            f"must have one weight per interval: horizon_secs // interval_secs = {slices}, got {len(weights)}"
        )
        return None
    if not any(weights):
        errors.setdefault("volume_profile", []).append("must have at least one positive weight, got all zero")
        return None
    return [format_decimal(weight) for weight in weights]


def _schedule(params: dict, errors: dict) -> dict[str, Any]:
    horizon = _positive_int(params, "horizon_secs", errors, maximum=MAX_HORIZON_SECS)
    interval = _positive_int(params, "interval_secs", errors, maximum=MAX_HORIZON_SECS)
    if horizon is not None and interval is not None:
        if interval > horizon:
            errors.setdefault("interval_secs", []).append(
                f"must be at most horizon_secs ({horizon}), got {interval}"
            )
        elif horizon // interval > MAX_SLICES:
            errors.setdefault("interval_secs", []).append(
                f"gives {horizon // interval} slices over horizon_secs {horizon}; at most {MAX_SLICES} allowed"
            )
    return {"horizon_secs": horizon, "interval_secs": interval}


#: Each algorithm's parameter names (the API, the order ticket and the CLI take exactly these).
ALGORITHM_PARAMS: dict[str, frozenset[str]] = {
    "NORMAL": frozenset(),
    "TWAP": frozenset({"horizon_secs", "interval_secs"}),
    "VWAP": frozenset({"horizon_secs", "interval_secs", "max_participation", "volume_profile"}),
    "ICEBERG": frozenset({"display_qty"}),
}


def validate_exec_algorithm_params(
    *, algorithm: str, params: dict | None, quantity: Decimal | None, order_type: str,
    time_in_force: str | None = None,
) -> dict[str, Any]:
    """Check ``params`` for ``algorithm`` and return them normalised.

    Parameters
    ----------
    algorithm : str
        ``NORMAL``, ``TWAP``, ``VWAP`` or ``ICEBERG``.
    params : dict | None
        The client's ``exec_algorithm_params`` (None is treated as ``{}``).
    quantity : Decimal | None
        Order quantity in base units (checked against ``display_qty``); None skips that check
        (the quantity itself failed validation).
    order_type : str
        ``MARKET`` or ``LIMIT``.
    time_in_force : str | None
        ``GTC``, ``IOC``, ``FOK`` or ``GTD``; a LIMIT TWAP / VWAP must rest (not IOC/FOK: an
        unfilled slice would end the sequence, venues/algorithms/vwap.py). None skips the check.

    Returns
    -------
    dict
        ``{}`` for NORMAL; ints for seconds, canonical decimal strings for fractions and quantities,
        a list of canonical decimal strings for VWAP's ``volume_profile``.

    Raises
    ------
    AlgorithmParamsError
        Naming each bad or unknown parameter (or ``order_type`` for a MARKET iceberg,
        ``time_in_force`` for a LIMIT TWAP / VWAP that does not rest).
    """
    if algorithm not in ALGORITHM_PARAMS:
        raise AlgorithmParamsError({"exec_algorithm": [f"must be one of {', '.join(ALGORITHMS)}"]})
    params = {} if params is None else params
    if not isinstance(params, dict):
        raise AlgorithmParamsError({"exec_algorithm_params": ["must be a JSON object"]})
    errors: dict[str, list[str]] = {}
    for name in sorted(set(params) - ALGORITHM_PARAMS[algorithm]):
        allowed = ", ".join(sorted(ALGORITHM_PARAMS[algorithm])) or "none"
        errors[name] = [f"is not a parameter of {algorithm} (allowed: {allowed})"]
    out: dict[str, Any] = {}
    if algorithm in ("TWAP", "VWAP"):
        out.update(_schedule(params, errors))
    if algorithm == "VWAP":
        participation = _decimal(params, "max_participation", errors)
        if participation is not None:
            if not (Decimal("0") < participation <= Decimal("1")):
                errors.setdefault("max_participation", []).append(
                    f"must be a fraction in (0, 1], got {format_decimal(participation)}"
                )
            else:
                out["max_participation"] = format_decimal(participation)
        if "volume_profile" in params:
            horizon, interval = out.get("horizon_secs"), out.get("interval_secs")
            slices = horizon // interval if horizon and interval and interval <= horizon else None
            profile = _volume_profile(params, errors, slices=slices)
            if profile is not None:
                out["volume_profile"] = profile
    if algorithm in ("TWAP", "VWAP") and order_type == "LIMIT" and time_in_force in ("IOC", "FOK"):
        errors.setdefault("time_in_force", []).append(
            f"a LIMIT {algorithm} must rest (GTC or GTD): an unfilled {time_in_force} slice would end the schedule")
    if algorithm == "ICEBERG":
        if order_type != "LIMIT":
            errors.setdefault("order_type", []).append("ICEBERG works LIMIT orders only (the order rests on the book)")
        display = _decimal(params, "display_qty", errors)
        if display is not None:
            if display <= 0:
                errors.setdefault("display_qty", []).append(
                    f"must be greater than zero (base units), got {format_decimal(display)}"
                )
            elif quantity is not None and display >= quantity:
                errors.setdefault("display_qty", []).append(
                    f"must be less than the order quantity {format_decimal(quantity)}, got {format_decimal(display)}"
                )
            else:
                out["display_qty"] = format_decimal(display)
    if errors:
        raise AlgorithmParamsError(errors)
    return out


def slice_weights(*, algorithm: str, params: dict) -> tuple[Decimal, ...] | None:
    """Return the weights of a TWAP's or VWAP's planned slices, one per interval, when known at submit.

    The node's TWAP cuts the quantity into ``horizon_secs // interval_secs`` equal slices, its VWAP
    along ``volume_profile`` when one is given (venues/algorithms/twap.py, vwap.py), both with
    ``odum_live.slicing.apportion``; pre-trade risk applies the same split to hold each slice to the
    listing's rules (risk/engine.py ``max_quantity``).

    Parameters
    ----------
    algorithm : str
        ``NORMAL``, ``TWAP``, ``VWAP`` or ``ICEBERG``.
    params : dict
        The order's validated ``exec_algorithm_params`` (:func:`validate_exec_algorithm_params`).

    Returns
    -------
    tuple of Decimal or None
        TWAP: N weights of 1; VWAP with ``volume_profile``: its weights; None otherwise (NORMAL,
        ICEBERG, or a VWAP whose profile the node derives from market volume).
    """
    if algorithm == "TWAP":
        horizon, interval = params.get("horizon_secs"), params.get("interval_secs")
        if not (isinstance(horizon, int) and isinstance(interval, int) and 0 < interval <= horizon):
            return None  # not validated params: risk then holds the parent itself to the listing
        return (Decimal(1),) * (horizon // interval)
    if algorithm == "VWAP" and params.get("volume_profile") is not None:
        return tuple(Decimal(weight) for weight in params["volume_profile"])
    return None
