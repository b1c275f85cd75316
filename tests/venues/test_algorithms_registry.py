"""The exec-algorithm registry and the conversion of our stored params to Nautilus params."""

from decimal import Decimal

import pytest
from nautilus_trader.execution.config import ExecAlgorithmFactory
from nautilus_trader.model.enums import OrderStatus

from orders.algorithms import AlgorithmParamsError, validate_exec_algorithm_params
from venues.algorithms import (
    EXEC_ALGORITHMS,
    exec_algorithm_configs,
    exec_algorithm_id,
    nautilus_exec_algorithm_params,
)
from venues.algorithms.backtest import PrimaryOrder, btcusdt_binance_spot, quote, run_algorithm_backtest
from venues.algorithms.iceberg import IcebergExecAlgorithm
from venues.algorithms.twap import TWAPExecAlgorithm
from venues.algorithms.vwap import VWAPExecAlgorithm

S = 1_000_000_000
T0 = 1_600_000_000 * S
INSTRUMENT = btcusdt_binance_spot()


def _quotes(until_s: int):
    return [quote(INSTRUMENT, T0 + i * S // 2, "40000.00", "40000.01") for i in range(2 * until_s + 1)]


def test_exec_algorithm_configs_build_our_three_algorithms_with_our_ids():
    # Act
    built = [ExecAlgorithmFactory.create(config) for config in exec_algorithm_configs()]

    # Assert
    assert [(type(a), a.id.value) for a in built] == [
        (TWAPExecAlgorithm, "TWAP"),
        (VWAPExecAlgorithm, "VWAP"),
        (IcebergExecAlgorithm, "ICEBERG"),
    ]
    assert {name: spec.exec_algorithm_id for name, spec in EXEC_ALGORITHMS.items()} == {
        "TWAP": "TWAP",
        "VWAP": "VWAP",
        "ICEBERG": "ICEBERG",
    }


def test_exec_algorithm_id_normal_is_none_and_unknown_raises():
    assert exec_algorithm_id("NORMAL") is None
    assert exec_algorithm_id("VWAP") == "VWAP"
    with pytest.raises(ValueError):
        exec_algorithm_id("POV")


@pytest.mark.parametrize(
    "algorithm, stored, expected",
    [
        ("TWAP", {"horizon_secs": 600, "interval_secs": 60}, {"horizon_secs": 600, "interval_secs": 60}),
        (
            "VWAP",
            {"horizon_secs": 180, "interval_secs": 60, "max_participation": "0.1"},
            {"horizon_secs": 180, "interval_secs": 60, "max_participation": "0.1"},
        ),
        (
            "VWAP",
            {"horizon_secs": 180, "interval_secs": 60, "max_participation": "1", "volume_profile": ["1.5", "0", "2"]},
            {"horizon_secs": 180, "interval_secs": 60, "max_participation": "1", "volume_profile": "1.5,0,2"},
        ),
        ("ICEBERG", {"display_qty": "0.25"}, {"display_qty": "0.25"}),
    ],
)
def test_nautilus_params_from_validated_params_have_the_documented_shape(algorithm, stored, expected):
    # Arrange: exactly what the validator stores.
    validated = validate_exec_algorithm_params(
        algorithm=algorithm, params=stored, quantity=Decimal("1"), order_type="MARKET" if algorithm in ("TWAP", "VWAP") else "LIMIT"
    )

    # Act
    params = nautilus_exec_algorithm_params(algorithm, validated)

    # Assert
    assert params == expected
    assert all(isinstance(v, (int, str)) and not isinstance(v, bool) for v in params.values())


@pytest.mark.parametrize(
    "algorithm, params, named",
    [
        ("TWAP", {"horizon_secs": 60}, "interval_secs"),
        ("TWAP", {"horizon_secs": "60", "interval_secs": 10}, "horizon_secs"),
        ("VWAP", {"horizon_secs": 60, "interval_secs": 10, "max_participation": 0.1}, "max_participation"),
        ("ICEBERG", {"display_qty": "0.1", "peak": "1"}, "peak"),
    ],
)
def test_nautilus_params_bad_stored_params_raise_naming_the_param(algorithm, params, named):
    with pytest.raises(AlgorithmParamsError) as exc:
        nautilus_exec_algorithm_params(algorithm, params)
    assert named in exc.value.errors


def test_nautilus_params_for_normal_raise_value_error():
    with pytest.raises(ValueError):
        nautilus_exec_algorithm_params("NORMAL", {})


def test_twap_with_converted_params_slices_on_the_node():
    # Arrange: our TWAP, loaded from our registry, fed our converted params.
    params = nautilus_exec_algorithm_params("TWAP", {"horizon_secs": 6, "interval_secs": 2})
    primary = PrimaryOrder("TWAP", params, Decimal("0.03"), submit_at_ns=T0 + S)

    # Act
    run = run_algorithm_backtest(data=_quotes(10), primaries=[primary])

    # Assert
    pid = run.primary_ids[0]
    assert [o.quantity.as_decimal() for _, o in run.slices(pid)] == [Decimal("0.01")] * 3
    assert run.orders[pid].status == OrderStatus.FILLED


@pytest.mark.parametrize(
    "algorithm, params, order_type",
    [
        ("VWAP", {"horizon_secs": 20, "interval_secs": 10}, "MARKET"),
        ("ICEBERG", {"display_qty": "0.1"}, "LIMIT"),
    ],
)
def test_algorithms_primary_submitted_before_they_run_is_denied_not_dropped(algorithm, params, order_type):
    # Arrange: NautilusTrader starts strategies before exec algorithms; a primary submitted from
    # on_start reaches an algorithm that is not running yet.
    primary = PrimaryOrder(
        algorithm,
        params,
        Decimal("1"),
        order_type=order_type,
        price=Decimal("40000.00") if order_type == "LIMIT" else None,
        submit_at_ns=None,
    )

    # Act
    run = run_algorithm_backtest(data=_quotes(30), primaries=[primary])

    # Assert
    pid = run.primary_ids[0]
    assert run.orders[pid].status == OrderStatus.DENIED
    assert "not running" in run.orders[pid].last_event.reason  # the strategy was not running yet either
