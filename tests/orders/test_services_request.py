from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from orders.services.request import OrderRequestExpired, OrderRequestInvalid, order_request_build

BASE = {
    "operation_id": "op-1",
    "instrument_key": "BINANCE-SPOT:SPOT_PAIR:BTC-USDT",
    "side": "BUY",
    "order_type": "LIMIT",
    "quantity": Decimal("0.01"),
    "price": Decimal("40000"),
}


def _errors(**overrides):
    with pytest.raises(OrderRequestInvalid) as exc:
        order_request_build(**{**BASE, **overrides})
    return exc.value.errors


def test_build_valid_limit_order_applies_defaults_and_parses_the_key():
    request = order_request_build(**BASE)
    assert (request.time_in_force, request.exec_algorithm, request.operation) == ("GTC", "NORMAL", "trade")
    assert request.instrument.venue == "BINANCE-SPOT"


def test_build_malformed_instrument_key_names_the_part():
    errors = _errors(instrument_key="binance:SPOT_PAIR:BTC-USDT")
    assert errors["instrument_key"][0].startswith("venue 'binance':")


@pytest.mark.parametrize("quantity", [Decimal("0"), Decimal("-1")])
def test_build_non_positive_quantity_is_refused(quantity):
    assert "quantity" in _errors(quantity=quantity)


def test_build_limit_without_price_is_refused():
    assert "price" in _errors(price=None)


def test_build_market_with_price_is_refused():
    assert "price" in _errors(order_type="MARKET")


def test_build_limit_value_at_the_storage_bound_is_refused_on_price():
    # Act: quantity × price = 10**18 exactly; NUMERIC(36,18) holds at most 18 integer digits
    errors = _errors(quantity=Decimal("1000"), price=Decimal("1000000000000000"))
    # Assert
    assert errors["price"] == ["quantity × price must be below 1000000000000000000 (quote currency), got "
                               "1000000000000000000: the order's value is stored as NUMERIC(36,18), at most 18 "
                               "integer digits"]


def test_build_limit_value_just_below_the_storage_bound_is_accepted():
    # Act: quantity × price = 10**18 - 10**-18, the largest NUMERIC(36,18) value
    request = order_request_build(**{**BASE, "quantity": Decimal("1"),
                                     "price": Decimal("999999999999999999.999999999999999999")})
    # Assert
    assert request.price == Decimal("999999999999999999.999999999999999999")


def test_build_gtd_without_expire_time_is_refused():
    assert "expire_time" in _errors(time_in_force="GTD")


def test_build_gtd_in_the_past_is_refused():
    assert "expire_time" in _errors(time_in_force="GTD", expire_time=timezone.now() - timedelta(seconds=1))


def test_build_gtd_in_the_past_as_only_fault_raises_expired_carrying_the_request():
    # Arrange
    expire = timezone.now() - timedelta(seconds=1)
    # Act
    with pytest.raises(OrderRequestExpired) as exc:
        order_request_build(**BASE, time_in_force="GTD", expire_time=expire)
    # Assert: a replay of a stored order can still be answered with it (orders.services.submit)
    assert exc.value.errors == {"expire_time": [f"must be in the future, got {expire.isoformat()}"]}
    assert (exc.value.request.operation_id, exc.value.request.expire_time) == ("op-1", expire)


def test_build_gtd_in_the_past_with_another_fault_raises_invalid_naming_both():
    # Act
    with pytest.raises(OrderRequestInvalid) as exc:
        order_request_build(**{**BASE, "quantity": Decimal("0")}, time_in_force="GTD",
                            expire_time=timezone.now() - timedelta(seconds=1))
    # Assert
    assert not isinstance(exc.value, OrderRequestExpired)
    assert set(exc.value.errors) == {"quantity", "expire_time"}


def test_build_expire_time_without_gtd_is_refused():
    assert "expire_time" in _errors(expire_time=timezone.now() + timedelta(hours=1))


def test_build_market_gtd_is_refused_on_time_in_force():
    errors = _errors(order_type="MARKET", price=None, time_in_force="GTD", expire_time=timezone.now() + timedelta(hours=1))
    assert "time_in_force" in errors


def test_build_bad_algorithm_param_is_nested_under_exec_algorithm_params():
    errors = _errors(exec_algorithm="TWAP", exec_algorithm_params={"horizon_secs": 60, "interval_secs": 600})
    assert "interval_secs" in errors["exec_algorithm_params"]


def test_build_trade_with_bet_side_is_refused():
    assert "side" in _errors(side="BACK")


def test_build_bet_without_odds_is_refused():
    assert "odds" in _errors(operation="bet", side="BACK")


def test_build_transfer_needs_distinct_venues():
    errors = _errors(operation="transfer", source_venue="BINANCE-SPOT", target_venue="BINANCE-SPOT")
    assert "target_venue" in errors


def test_build_sequence_without_group_is_refused():
    assert "sequence_in_group" in _errors(sequence_in_group=1)


def test_build_expected_deltas_float_is_refused():
    assert "expected_deltas" in _errors(expected_deltas={"BTC": 0.01})


def test_build_unknown_field_is_refused():
    with pytest.raises(OrderRequestInvalid) as exc:
        order_request_build(**BASE, status="FILLED")
    assert "status" in exc.value.errors


def test_fingerprint_same_meaning_different_spelling_is_equal():
    a = order_request_build(**BASE)
    b = order_request_build(**{**BASE, "quantity": Decimal("0.0100"), "price": Decimal("4E+4"), "time_in_force": "GTC",
                               "operation_id": "another-op"})
    assert a.fingerprint() == b.fingerprint()


@pytest.mark.parametrize(
    "change",
    [{"quantity": Decimal("0.02")}, {"price": Decimal("40000.01")}, {"side": "SELL"}, {"metadata": {"k": "v"}},
     {"time_in_force": "IOC"}, {"instrument_key": "BINANCE-SPOT:SPOT_PAIR:ETH-USDT"}],
)
def test_fingerprint_any_change_of_meaning_differs(change):
    assert order_request_build(**BASE).fingerprint() != order_request_build(**{**BASE, **change}).fingerprint()


@pytest.mark.parametrize(
    "metadata, same_as",
    [({"size": 1.0}, {"size": 1}), ({"n": 1e3}, {"n": 1000}), ({"x": [-0.0]}, {"x": [0]}),
     ({"big": 1e20}, {"big": 10**20}), ({"nested": {"k": [2.0, "a"]}}, {"nested": {"k": [2, "a"]}})],
)
def test_fingerprint_metadata_numbers_spelled_differently_are_equal(metadata, same_as):
    # Act / Assert: equal JSON numbers, one body
    assert order_request_build(**BASE, metadata=metadata).fingerprint() == \
        order_request_build(**BASE, metadata=same_as).fingerprint()


@pytest.mark.parametrize(
    "metadata, other",
    [({"size": 1}, {"size": "1"}), ({"size": 1.0}, {"size": "1.0"}), ({"size": 1.5}, {"size": 1}),
     ({"size": 0.1}, {"size": "0.1"}), ({"flag": True}, {"flag": 1})],
)
def test_fingerprint_metadata_number_string_or_other_value_differs(metadata, other):
    # Act / Assert: strings stay strings, booleans stay booleans, unequal numbers stay unequal
    assert order_request_build(**BASE, metadata=metadata).fingerprint() != \
        order_request_build(**BASE, metadata=other).fingerprint()


@pytest.mark.parametrize(
    "extra, stored_fingerprint",
    [
        # no float at all (ints, decimals, strings, booleans, null, nested): unchanged
        ({"time_in_force": "GTD", "expire_time": datetime(2030, 1, 1, tzinfo=UTC), "sequence_in_group": 3,
          "atomic_group_id": "g", "expected_deltas": {"BTC": "0.01", "USDT": -400},
          "metadata": {"size": 1, "n": [1, 2, {"k": "v", "b": True, "z": None}], "s": "1.0", "big": 10**20}},
         "0989ec48db8ef180ebba1435af343d8ed4e7f6c10676807108c05ffa10130f59"),
        # floats that are not integral: unchanged
        ({"metadata": {"p": 1.5, "q": [0.1]}}, "dafa9fbabe112187afafec5890d0106cf04583cf0efa09cb4379d9e197b31254"),
    ],
)
def test_fingerprint_of_a_body_without_an_integral_float_is_the_one_stored_before(extra, stored_fingerprint):
    # Arrange: the fingerprints computed by the code before integral floats were canonicalised (5a3a87e), as
    # stored on orders then: a replay of those orders must still match
    request = order_request_build(**BASE, **extra)
    # Act / Assert
    assert request.fingerprint() == stored_fingerprint


def test_legacy_fingerprint_of_an_integral_float_is_the_one_stored_before():
    # Arrange: {"size": 1.0} as fingerprinted before (5a3a87e), when it differed from {"size": 1}
    request = order_request_build(**BASE, metadata={"size": 1.0})
    # Act / Assert
    assert request.legacy_fingerprint() == "bd13034160647a97701ca1b12a2d838283eea793d5838516207dd79ef5c48182"
    assert request.fingerprint() == order_request_build(**BASE, metadata={"size": 1}).fingerprint()


@pytest.mark.parametrize(
    ("algorithm", "params", "weights"),
    [
        ("TWAP", {"horizon_secs": 35, "interval_secs": 10}, (Decimal(1),) * 3),  # 35 // 10 slices, as the node
        ("VWAP", {"horizon_secs": 20, "interval_secs": 10, "max_participation": "0.5",
                  "volume_profile": ["1", "2.5"]}, (Decimal(1), Decimal("2.5"))),
        ("VWAP", {"horizon_secs": 20, "interval_secs": 10, "max_participation": "0.5"}, None),  # sized on the node
        ("ICEBERG", {"display_qty": "0.001"}, None),
        ("NORMAL", {}, None),
    ],
)
def test_intent_carries_the_planned_slice_weights_known_at_submit(algorithm, params, weights):
    # Arrange
    request = order_request_build(**BASE, exec_algorithm=algorithm, exec_algorithm_params=params)

    # Act
    intent = request.to_intent(strategy_id="alpha")

    # Assert
    assert intent.slice_weights == weights
