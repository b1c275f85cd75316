"""risk.services.trading_state_set: a HALTED scope cancels its working orders (the kill switch proper)."""

import logging

import pytest
from django.db import transaction

from orders.models import Order, OrderEvent
from risk.models import Scope, TradingState
from risk.services import trading_state_set
from tests.orders.factories import OrderFactory, StrategyFactory
from tests.venues.factories import VenueFactory

pytestmark = pytest.mark.django_db
HALTED, REDUCING, ACTIVE = TradingState.State.HALTED, TradingState.State.REDUCING, TradingState.State.ACTIVE
BTC_SPOT = "BINANCE-SPOT:SPOT_PAIR:BTC-USDT"
BTC_OKX = "OKX:SPOT_PAIR:BTC-USDT"
ETH_SPOT = "BINANCE-SPOT:SPOT_PAIR:ETH-USDT"


def _order(status="ACCEPTED", *, strategy="demo", key=BTC_SPOT, **fields):
    venue = key.split(":")[0]
    return OrderFactory(status=status, strategy=StrategyFactory(id=strategy), venue=venue, instrument_key=key,
                        routed_instrument_key=key, **fields)


def _status(order) -> str:
    return Order.objects.get(pk=order.pk).status


def _halt(on_halt=None, *, scope=Scope.GLOBAL, scope_key="", state=HALTED, reason="exchange incident"):
    return trading_state_set(scope=scope, scope_key=scope_key, state=state, reason=reason, actor="rm-anna",
                             on_halt=on_halt)


@pytest.fixture
def venues(db):
    return [VenueFactory(code="BINANCE-SPOT"), VenueFactory(code="OKX")]


def test_trading_state_set_halted_cancels_every_open_top_level_order_after_commit(
    venues, django_capture_on_commit_callbacks
):
    # Arrange: one order of each open status, a finished one, and a TWAP with a working slice
    routed, accepted, partly = _order("ROUTED"), _order("ACCEPTED"), _order("PARTIALLY_FILLED")
    pending_cancel, filled = _order("PENDING_CANCEL"), _order("FILLED")
    parent = _order("ACCEPTED", exec_algorithm="TWAP")
    child = _order("ACCEPTED", parent=parent)
    swept = []

    # Act
    with django_capture_on_commit_callbacks(execute=True):
        _halt(swept.append)

    # Assert: canceled at once before the venue hand-off, else asked of the venue; the slice is left
    # to its parent's cancel (which cancels its open children and stops the schedule)
    assert _status(routed) == "CANCELED"
    assert [_status(o) for o in (accepted, partly, parent)] == ["PENDING_CANCEL"] * 3
    assert [_status(o) for o in (pending_cancel, filled, child)] == ["PENDING_CANCEL", "FILLED", "ACCEPTED"]
    [sweep] = swept
    assert sweep.canceled == [routed.pk]
    assert sorted(sweep.cancel_requested) == sorted([accepted.pk, partly.pk, parent.pk])
    assert sweep.already_canceling == [pending_cancel.pk] and sweep.failed == []


def test_trading_state_set_halted_timeline_names_the_kill_switch_who_and_why(
    venues, django_capture_on_commit_callbacks
):
    # Arrange
    order = _order("ACCEPTED")

    # Act
    with django_capture_on_commit_callbacks(execute=True):
        _halt(scope=Scope.VENUE, scope_key="BINANCE-SPOT", reason="venue latency spike")

    # Assert
    event = OrderEvent.objects.get(order=order, type=OrderEvent.Type.CANCEL_REQUESTED)
    assert event.actor == "kill-switch:rm-anna"
    reason = event.payload["reason"]
    assert "kill switch" in reason and "VENUE:BINANCE-SPOT" in reason and "rm-anna" in reason
    assert "venue latency spike" in reason


@pytest.mark.parametrize(
    ("scope", "scope_key", "covered"),
    [
        (Scope.VENUE, "OKX", {"okx"}),
        (Scope.STRATEGY, "alpha", {"alpha"}),
        (Scope.INSTRUMENT, BTC_SPOT, {"btc_spot", "alpha"}),
        (Scope.INSTRUMENT, "ANY:SPOT_PAIR:BTC-USDT", {"btc_spot", "alpha", "okx"}),
        (Scope.INSTRUMENT, "CRYPTO:ANY:SPOT_PAIR:BTC-USDT", {"btc_spot", "alpha", "okx"}),
        (Scope.INSTRUMENT, ETH_SPOT, {"eth"}),
    ],
)
def test_trading_state_set_halted_scope_cancels_only_the_orders_the_engine_would_deny(
    venues, django_capture_on_commit_callbacks, scope, scope_key, covered
):
    # Arrange
    orders = {
        "btc_spot": _order(key=BTC_SPOT),
        "okx": _order(key=BTC_OKX),
        "eth": _order(key=ETH_SPOT),
        "alpha": _order(strategy="alpha", key=BTC_SPOT),
    }

    # Act
    with django_capture_on_commit_callbacks(execute=True):
        _halt(scope=scope, scope_key=scope_key)

    # Assert
    assert {name for name, order in orders.items() if _status(order) == "PENDING_CANCEL"} == covered
    assert {name for name, order in orders.items() if _status(order) == "ACCEPTED"} == set(orders) - covered


@pytest.mark.parametrize("state", [REDUCING, ACTIVE])
def test_trading_state_set_reducing_or_active_cancels_nothing(venues, django_capture_on_commit_callbacks, state):
    # Arrange
    order = _order("ACCEPTED")
    swept = []

    # Act
    with django_capture_on_commit_callbacks(execute=True):
        _halt(swept.append, state=state)

    # Assert
    assert _status(order) == "ACCEPTED" and swept == []


def test_trading_state_set_halted_inside_a_transaction_cancels_only_once_it_commits(
    venues, django_capture_on_commit_callbacks
):
    # Arrange
    order = _order("ROUTED")

    # Act: the halt inside a caller's transaction (the admin sets several scopes in one)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        with transaction.atomic():
            _halt()
            status_in_transaction = _status(order)
    for callback in callbacks:
        callback()

    # Assert
    assert (status_in_transaction, _status(order)) == ("ROUTED", "CANCELED")


def test_trading_state_set_halted_one_failed_cancel_is_reported_and_logged_the_rest_canceled(
    venues, django_capture_on_commit_callbacks, monkeypatch, caplog
):
    # Arrange: the second order's cancel fails (a database error, say)
    first, broken, third = _order("ROUTED"), _order("ROUTED"), _order("ROUTED")
    from orders.services import kill_switch

    real_cancel = kill_switch.order_cancel

    def cancel(*, order, **kwargs):
        if order.pk == broken.pk:
            raise RuntimeError("connection reset")
        return real_cancel(order=order, **kwargs)

    monkeypatch.setattr(kill_switch, "order_cancel", cancel)
    swept = []

    # Act
    with caplog.at_level(logging.ERROR), django_capture_on_commit_callbacks(execute=True):
        _halt(swept.append)

    # Assert
    assert [_status(o) for o in (first, broken, third)] == ["CANCELED", "ROUTED", "CANCELED"]
    [sweep] = swept
    assert sweep.failed == [(broken.pk, "RuntimeError: connection reset")]
    assert str(broken.pk) in sweep.summary() and "connection reset" in sweep.summary()
    assert any(str(broken.pk) in r.getMessage() and r.levelno >= logging.ERROR for r in caplog.records)
