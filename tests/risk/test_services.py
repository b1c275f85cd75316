"""risk.services: trading_state_set, open_exposure_adjust, open_exposure_rebuild."""

import logging
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from risk.models import OpenOrderExposure, Scope, TradingState
from risk.services import open_exposure_adjust, open_exposure_rebuild, trading_state_set
from tests.orders.factories import OrderFactory
from tests.risk.factories import OpenOrderExposureFactory
from tests.venues.factories import VenueFactory

pytestmark = pytest.mark.django_db
HALTED, REDUCING = TradingState.State.HALTED, TradingState.State.REDUCING
BTC_USDT = "BINANCE-SPOT:SPOT_PAIR:BTC-USDT"


# --- trading_state_set ---------------------------------------------------------------------------
def test_trading_state_set_new_scope_creates_row_with_actor_and_history(strategy):
    # Act
    row = trading_state_set(scope=Scope.STRATEGY, scope_key="demo", state=HALTED, reason="runaway loop",
                            actor="alice")

    # Assert
    assert (row.scope, row.scope_key, row.state, row.reason, row.changed_by) == (
        "STRATEGY", "demo", "HALTED", "runaway loop", "alice")
    assert row.history.get().history_change_reason == "runaway loop"


def test_trading_state_set_existing_scope_updates_it_and_records_history(db):
    # Arrange
    trading_state_set(scope=Scope.GLOBAL, scope_key="", state=HALTED, reason="incident", actor="alice")

    # Act
    row = trading_state_set(scope=Scope.GLOBAL, scope_key="", state=REDUCING, reason="  wind down  ", actor="bob")

    # Assert
    assert TradingState.objects.count() == 1
    assert (row.state, row.reason, row.changed_by) == ("REDUCING", "wind down", "bob")
    assert [h.state for h in row.history.order_by("history_date")] == ["HALTED", "REDUCING"]


@pytest.mark.parametrize(
    ("fields", "error_key"),
    [
        ({"reason": ""}, "reason"),
        ({"reason": " \n\t"}, "reason"),
        ({"actor": ""}, "actor"),
        ({"state": "PAUSED"}, "state"),
        ({"scope": "DESK"}, "scope"),
        ({"scope": Scope.GLOBAL, "scope_key": "x"}, "scope_key"),
        ({"scope": Scope.STRATEGY, "scope_key": "no-such-strategy"}, "scope_key"),
        ({"scope": Scope.VENUE, "scope_key": "NOWHERE"}, "scope_key"),
        ({"scope": Scope.INSTRUMENT, "scope_key": "BINANCE-SPOT:SPOT_PAIR:BTCUSDT"}, "scope_key"),
        ({"scope": Scope.INSTRUMENT, "scope_key": ""}, "scope_key"),
    ],
)
def test_trading_state_set_invalid_input_is_refused_naming_the_field(db, fields, error_key):
    # Arrange
    args = {"scope": Scope.GLOBAL, "scope_key": "", "state": HALTED, "reason": "why", "actor": "alice", **fields}

    # Act
    with pytest.raises(ValidationError) as excinfo:
        trading_state_set(**args)

    # Assert
    assert error_key in excinfo.value.message_dict
    assert not TradingState.objects.exists()


def test_trading_state_set_existing_venue_and_instrument_keys_are_accepted(db):
    # Arrange
    VenueFactory(code="OKX", adapter="okx")

    # Act
    venue = trading_state_set(scope=Scope.VENUE, scope_key="OKX", state=HALTED, reason="outage", actor="alice")
    instrument = trading_state_set(scope=Scope.INSTRUMENT, scope_key="ANY:PERPETUAL:BTC-USDT@LIN", state=REDUCING,
                                   reason="funding spike", actor="alice")

    # Assert
    assert venue.scope_key == "OKX"
    assert instrument.scope_key == "ANY:PERPETUAL:BTC-USDT@LIN"


# --- open_exposure_adjust ------------------------------------------------------------------------
def test_open_exposure_adjust_adds_to_a_new_then_existing_total(db):
    # Act
    for _ in range(2):
        open_exposure_adjust(strategy_id="demo", instrument_key=BTC_USDT, side="BUY", leaves_delta=Decimal("0.5"),
                             priced_delta=Decimal("0.5"), value_delta=Decimal("20000"))

    # Assert
    row = OpenOrderExposure.objects.get()
    assert (row.leaves_quantity, row.priced_quantity, row.priced_value) == (
        Decimal("1"), Decimal("1"), Decimal("40000"))
    assert (row.venue, row.equivalence_key) == ("BINANCE-SPOT", "SPOT_PAIR:BTC-USDT")


def test_open_exposure_adjust_subtraction_never_goes_below_zero(db):
    # Arrange
    OpenOrderExposureFactory(leaves_quantity=Decimal("0.5"), priced_value=Decimal("20000"))

    # Act
    open_exposure_adjust(strategy_id="demo", instrument_key=BTC_USDT, side="BUY", leaves_delta=Decimal("-0.8"),
                         priced_delta=Decimal("-0.8"), value_delta=Decimal("-32000"))

    # Assert
    row = OpenOrderExposure.objects.get()
    assert (row.leaves_quantity, row.priced_quantity, row.priced_value) == (0, 0, 0)


def test_open_exposure_adjust_subtraction_without_total_logs_drift(db, caplog):
    # Act
    with caplog.at_level(logging.ERROR, logger="risk.services"):
        open_exposure_adjust(strategy_id="demo", instrument_key=BTC_USDT, side="BUY", leaves_delta=Decimal("-1"),
                             priced_delta=Decimal("0"), value_delta=Decimal("0"))

    # Assert
    assert "open exposure drift: no total for demo BUY" in caplog.text
    assert not OpenOrderExposure.objects.exists()


@pytest.mark.parametrize(
    ("key", "deltas"),
    [
        (BTC_USDT, (Decimal("1"), Decimal("-1"), Decimal("0"))),
        ("ANY:SPOT_PAIR:BTC-USDT", (Decimal("1"), Decimal("1"), Decimal("1"))),
        ("not-a-key", (Decimal("1"), Decimal("1"), Decimal("1"))),
    ],
)
def test_open_exposure_adjust_mixed_signs_or_unrouted_key_raise(db, key, deltas):
    # Act / Assert
    with pytest.raises(ValueError):
        open_exposure_adjust(strategy_id="demo", instrument_key=key, side="BUY", leaves_delta=deltas[0],
                             priced_delta=deltas[1], value_delta=deltas[2])


# --- open_exposure_rebuild -------------------------------------------------------------------------
def test_open_exposure_rebuild_repairs_drift_from_the_order_table(strategy):
    # Arrange: two recorded open orders, one recorded filled order, one unrecorded open order
    recorded = {"recorded": True, "passed": True}
    OrderFactory(strategy=strategy, quantity=Decimal("1"), price=Decimal("40000"), risk_result=recorded)
    OrderFactory(strategy=strategy, quantity=Decimal("2"), filled_quantity=Decimal("0.5"), price=None,
                 order_type="MARKET", status="PARTIALLY_FILLED", risk_result=recorded)
    OrderFactory(strategy=strategy, quantity=Decimal("5"), status="FILLED", filled_quantity=Decimal("5"),
                 risk_result=recorded)
    OrderFactory(strategy=strategy, quantity=Decimal("7"), risk_result={})
    OpenOrderExposureFactory(leaves_quantity=Decimal("9"), priced_quantity=Decimal("9"), priced_value=Decimal("1"))
    OpenOrderExposureFactory(side="SELL", leaves_quantity=Decimal("3"), priced_value=Decimal("120000"))

    # Act
    drift = open_exposure_rebuild()
    again = open_exposure_rebuild()

    # Assert
    assert [(d.side, d.recorded, d.actual) for d in drift] == [
        ("BUY", (Decimal("9"), Decimal("9"), Decimal("1")), (Decimal("2.5"), Decimal("1"), Decimal("40000"))),
        ("SELL", (Decimal("3"), Decimal("3"), Decimal("120000")), (0, 0, 0)),
    ]
    assert again == ()
    buy = OpenOrderExposure.objects.get(side="BUY")
    assert (buy.leaves_quantity, buy.priced_quantity, buy.priced_value) == (
        Decimal("2.5"), Decimal("1"), Decimal("40000"))
