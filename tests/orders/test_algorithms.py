from decimal import Decimal

import pytest

from orders.algorithms import AlgorithmParamsError, validate_exec_algorithm_params


def _validate(algorithm, params, *, quantity=Decimal("1"), order_type="LIMIT"):
    return validate_exec_algorithm_params(algorithm=algorithm, params=params, quantity=quantity, order_type=order_type)


def test_normal_without_params_returns_empty_dict():
    assert _validate("NORMAL", None) == {}


def test_normal_with_params_names_the_param():
    with pytest.raises(AlgorithmParamsError) as exc:
        _validate("NORMAL", {"horizon_secs": 60})
    assert set(exc.value.errors) == {"horizon_secs"}


def test_twap_valid_params_are_returned_as_ints():
    assert _validate("TWAP", {"horizon_secs": 600, "interval_secs": 60}, order_type="MARKET") == {
        "horizon_secs": 600, "interval_secs": 60}


def test_twap_resting_limit_order_is_accepted():
    assert validate_exec_algorithm_params(algorithm="TWAP", params={"horizon_secs": 600, "interval_secs": 60},
                                          quantity=Decimal("1"), order_type="LIMIT", time_in_force="GTC") == {
        "horizon_secs": 600, "interval_secs": 60}


@pytest.mark.parametrize("algorithm, params", [
    ("TWAP", {"horizon_secs": 600, "interval_secs": 60}),
    ("VWAP", {"horizon_secs": 600, "interval_secs": 60, "max_participation": "0.1"}),
])
@pytest.mark.parametrize("tif", ["IOC", "FOK"])
def test_sliced_limit_order_that_does_not_rest_is_refused_naming_time_in_force(algorithm, params, tif):
    with pytest.raises(AlgorithmParamsError) as exc:
        validate_exec_algorithm_params(algorithm=algorithm, params=params, quantity=Decimal("1"),
                                       order_type="LIMIT", time_in_force=tif)
    assert set(exc.value.errors) == {"time_in_force"}
    assert f"unfilled {tif} slice" in exc.value.errors["time_in_force"][0]


@pytest.mark.parametrize(
    "params, bad",
    [
        ({"interval_secs": 60}, "horizon_secs"),
        ({"horizon_secs": 600}, "interval_secs"),
        ({"horizon_secs": 0, "interval_secs": 60}, "horizon_secs"),
        ({"horizon_secs": -5, "interval_secs": 1}, "horizon_secs"),
        ({"horizon_secs": 600, "interval_secs": 60.0}, "interval_secs"),
        ({"horizon_secs": "600", "interval_secs": 60}, "horizon_secs"),
        ({"horizon_secs": True, "interval_secs": 60}, "horizon_secs"),
        ({"horizon_secs": 60, "interval_secs": 120}, "interval_secs"),
        ({"horizon_secs": 600, "interval_secs": 60, "slices": 3}, "slices"),
        ({"horizon_secs": 10**7, "interval_secs": 60}, "horizon_secs"),
    ],
)
def test_twap_bad_params_name_the_param(params, bad):
    with pytest.raises(AlgorithmParamsError) as exc:
        _validate("TWAP", params)
    assert bad in exc.value.errors


def test_vwap_participation_is_normalised_to_a_decimal_string():
    out = _validate("VWAP", {"horizon_secs": 600, "interval_secs": 60, "max_participation": "0.100"})
    assert out == {"horizon_secs": 600, "interval_secs": 60, "max_participation": "0.1"}


@pytest.mark.parametrize("value", ["0", "-0.1", "1.01", 0.1, "abc", "NaN", None])
def test_vwap_participation_outside_zero_one_is_refused(value):
    with pytest.raises(AlgorithmParamsError) as exc:
        _validate("VWAP", {"horizon_secs": 600, "interval_secs": 60, "max_participation": value})
    assert "max_participation" in exc.value.errors


def test_vwap_participation_of_one_is_accepted():
    assert _validate("VWAP", {"horizon_secs": 60, "interval_secs": 60, "max_participation": 1})["max_participation"] == "1"


def test_iceberg_display_below_quantity_is_accepted():
    assert _validate("ICEBERG", {"display_qty": "0.10"}, quantity=Decimal("1")) == {"display_qty": "0.1"}


@pytest.mark.parametrize("display", ["0", "-1", "1", "2"])
def test_iceberg_display_not_between_zero_and_quantity_is_refused(display):
    with pytest.raises(AlgorithmParamsError) as exc:
        _validate("ICEBERG", {"display_qty": display}, quantity=Decimal("1"))
    assert "display_qty" in exc.value.errors


def test_iceberg_market_order_is_refused_on_order_type():
    with pytest.raises(AlgorithmParamsError) as exc:
        _validate("ICEBERG", {"display_qty": "0.1"}, order_type="MARKET")
    assert "order_type" in exc.value.errors


def test_params_not_an_object_is_refused():
    with pytest.raises(AlgorithmParamsError) as exc:
        _validate("TWAP", ["horizon_secs", 60])
    assert "exec_algorithm_params" in exc.value.errors


def test_vwap_volume_profile_is_normalised_to_decimal_strings():
    params = {"horizon_secs": 180, "interval_secs": 60, "max_participation": "0.1", "volume_profile": ["1.50", 2, "0"]}
    assert _validate("VWAP", params)["volume_profile"] == ["1.5", "2", "0"]


def test_vwap_without_volume_profile_returns_no_profile_key():
    out = _validate("VWAP", {"horizon_secs": 180, "interval_secs": 60, "max_participation": "0.1"})
    assert "volume_profile" not in out


@pytest.mark.parametrize(
    "profile",
    [
        ["1", "2"],  # two weights for three intervals
        ["1", "2", "3", "4"],
        ["0", "0", "0"],
        ["1", "-1", "1"],
        ["1", 0.5, "1"],
        ["1", "abc", "1"],
        ["1", "NaN", "1"],
        ["1", "Infinity", "1"],
        ["1", True, "1"],
        ["1", None, "1"],
        "1,2,3",
        [],
        {"0": "1"},
    ],
)
def test_vwap_bad_volume_profile_names_volume_profile(profile):
    params = {"horizon_secs": 180, "interval_secs": 60, "max_participation": "0.1", "volume_profile": profile}
    with pytest.raises(AlgorithmParamsError) as exc:
        _validate("VWAP", params)
    assert set(exc.value.errors) == {"volume_profile"}


def test_vwap_volume_profile_length_uses_floor_of_horizon_over_interval():
    params = {"horizon_secs": 200, "interval_secs": 60, "max_participation": "1", "volume_profile": ["1", "1", "1"]}
    assert len(_validate("VWAP", params)["volume_profile"]) == 3


def test_twap_volume_profile_is_refused():
    with pytest.raises(AlgorithmParamsError) as exc:
        _validate("TWAP", {"horizon_secs": 120, "interval_secs": 60, "volume_profile": ["1", "1"]}, order_type="MARKET")
    assert set(exc.value.errors) == {"volume_profile"}
