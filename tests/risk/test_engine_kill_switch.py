"""PreTradeRiskEngine: kill switches (HALTED at every scope, REDUCING = reduce-only)."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction

from risk.models import Scope, TradingState
from risk.services import trading_state_set
from tests.positions.factories import PositionFactory
from tests.risk.conftest import BTC_USDT, checks_named, submit
from tests.risk.factories import OpenOrderExposureFactory, TradingStateFactory, order_intent
from tests.venues.factories import InstrumentFactory, VenueFactory

pytestmark = pytest.mark.django_db
HALTED, REDUCING, ACTIVE = TradingState.State.HALTED, TradingState.State.REDUCING, TradingState.State.ACTIVE
OKX_BTC_USDT = "OKX:SPOT_PAIR:BTC-USDT"


@pytest.fixture
def okx_listing(db):
    return InstrumentFactory(venue=VenueFactory(code="OKX", adapter="okx"), instrument_key=OKX_BTC_USDT)


def evaluate(engine, listing, dry_run=False, **intent_fields):
    with transaction.atomic():
        return engine.evaluate(intent=order_intent(**intent_fields), listing=listing, venue=listing.venue,
                               dry_run=dry_run)


def kill_switch_failures(result):
    return [c for c in checks_named(result, "kill_switch") if not c.passed]


def test_kill_switch_all_active_passes(engine, listing):
    # Arrange
    TradingStateFactory(scope=Scope.GLOBAL, scope_key="", state=ACTIVE)

    # Act
    result = evaluate(engine, listing)

    # Assert
    assert result.passed
    assert [(c.passed, c.observed) for c in checks_named(result, "kill_switch")] == [(True, "ACTIVE")]


@pytest.mark.parametrize(
    ("scope", "scope_key"),
    [
        (Scope.GLOBAL, ""),
        (Scope.VENUE, "BINANCE-SPOT"),
        (Scope.STRATEGY, "demo"),
        (Scope.INSTRUMENT, BTC_USDT),
        (Scope.INSTRUMENT, "ANY:SPOT_PAIR:BTC-USDT"),
        (Scope.INSTRUMENT, "CRYPTO:ANY:SPOT_PAIR:BTC-USDT"),
    ],
)
def test_kill_switch_halted_at_scope_denies_naming_scope_and_reason(engine, listing, scope, scope_key):
    # Arrange
    trading_state_set(scope=scope, scope_key=scope_key, state=HALTED, reason="exchange incident", actor="risk-mgr")
    label = f"{scope}:{scope_key}" if scope_key else scope

    # Act
    result = evaluate(engine, listing)

    # Assert
    assert not result.passed
    (check,) = kill_switch_failures(result)
    assert (check.limit, check.observed, check.scope) == (f"not HALTED ({label})", "HALTED", label)
    assert result.reason == (
        f"kill_switch: observed HALTED, limit not HALTED ({label}) — trading halted at {label}: exchange incident")


@pytest.mark.parametrize(
    ("scope", "scope_key"),
    [(Scope.VENUE, "OKX"), (Scope.STRATEGY, "other"), (Scope.INSTRUMENT, "ANY:SPOT_PAIR:ETH-USDT")],
)
def test_kill_switch_halted_at_unrelated_scope_passes(engine, listing, scope, scope_key):
    # Arrange
    TradingStateFactory(scope=scope, scope_key=scope_key, state=HALTED, reason="elsewhere")

    # Act
    result = evaluate(engine, listing)

    # Assert
    assert result.passed


def test_kill_switch_resumed_applies_to_the_next_order(engine, listing):
    # Arrange
    trading_state_set(scope=Scope.GLOBAL, scope_key="", state=HALTED, reason="incident", actor="risk-mgr")
    assert not evaluate(engine, listing).passed

    # Act
    trading_state_set(scope=Scope.GLOBAL, scope_key="", state=ACTIVE, reason="incident over", actor="risk-mgr")
    result = evaluate(engine, listing)

    # Assert
    assert result.passed


def test_reducing_sell_against_long_position_passes(engine, listing, strategy):
    # Arrange
    PositionFactory(strategy=strategy, quantity=Decimal("1"))
    TradingStateFactory(scope=Scope.STRATEGY, scope_key="demo", state=REDUCING, reason="drawdown")

    # Act
    result = evaluate(engine, listing, side="SELL", quantity=Decimal("0.5"))

    # Assert
    assert result.passed, result.reason
    (check,) = checks_named(result, "kill_switch")
    assert (check.passed, check.observed, check.limit) == (True, "0.5", "REDUCING (STRATEGY:demo): reduce-only")
    assert check.unit == "BTC"  # the projected position, in base units


def test_reducing_buy_adding_to_long_position_denies(engine, listing, strategy):
    # Arrange
    PositionFactory(strategy=strategy, quantity=Decimal("1"))
    TradingStateFactory(scope=Scope.GLOBAL, scope_key="", state=REDUCING, reason="drawdown")

    # Act
    result = evaluate(engine, listing, side="BUY", quantity=Decimal("0.5"))

    # Assert
    (check,) = kill_switch_failures(result)
    assert check.observed == "1.5"
    assert "does not reduce the position, or would flip it" in check.detail


def test_reducing_sell_flipping_the_position_denies(engine, listing, strategy):
    # Arrange
    PositionFactory(strategy=strategy, quantity=Decimal("1"))
    TradingStateFactory(scope=Scope.GLOBAL, scope_key="", state=REDUCING, reason="drawdown")

    # Act
    result = evaluate(engine, listing, side="SELL", quantity=Decimal("1.5"))

    # Assert
    (check,) = kill_switch_failures(result)
    assert check.observed == "-0.5"


def test_reducing_flat_position_denies_any_order(engine, listing):
    # Arrange
    TradingStateFactory(scope=Scope.GLOBAL, scope_key="", state=REDUCING, reason="drawdown")

    # Act
    result = evaluate(engine, listing, side="SELL", quantity=Decimal("0.5"))

    # Assert
    assert len(kill_switch_failures(result)) == 1


def test_reducing_counts_position_across_venues_and_open_reducing_orders(engine, listing, strategy, store):
    # Arrange: long 0.6 on BINANCE-SPOT + 0.4 on OKX = 1; a SELL 0.7 is already working
    InstrumentFactory(venue=VenueFactory(code="OKX", adapter="okx"), instrument_key="OKX:SPOT_PAIR:BTC-USDT")
    PositionFactory(strategy=strategy, quantity=Decimal("0.6"))
    PositionFactory(strategy=strategy, venue="OKX", instrument_key="OKX:SPOT_PAIR:BTC-USDT", quantity=Decimal("0.4"))
    first, _ = submit(engine, intent=order_intent(side="SELL", quantity=Decimal("0.7")), listing=listing)
    TradingStateFactory(scope=Scope.GLOBAL, scope_key="", state=REDUCING, reason="drawdown")

    # Act (what-ifs: neither is recorded)
    fits = engine.evaluate(intent=order_intent(side="SELL", quantity=Decimal("0.3")), listing=listing,
                           venue=listing.venue, dry_run=True)
    too_much = engine.evaluate(intent=order_intent(side="SELL", quantity=Decimal("0.4")), listing=listing,
                               venue=listing.venue, dry_run=True)

    # Assert
    assert first.passed
    assert fits.passed, fits.reason
    (check,) = kill_switch_failures(too_much)
    assert check.observed == "-0.1"


@pytest.mark.parametrize(("scope", "scope_key"), [(Scope.VENUE, "OKX"), (Scope.INSTRUMENT, OKX_BTC_USDT)])
def test_reducing_venue_scope_judges_the_strategy_position_at_that_venue(engine, listing, strategy, okx_listing,
                                                                         scope, scope_key):
    # Arrange: long 1 on BINANCE-SPOT, nothing on OKX; OKX (or its BTC-USDT listing) is reduce-only
    PositionFactory(strategy=strategy, quantity=Decimal("1"))
    TradingStateFactory(scope=scope, scope_key=scope_key, state=REDUCING, reason="OKX degraded")

    # Act
    result = evaluate(engine, okx_listing, instrument=OKX_BTC_USDT, side="SELL", quantity=Decimal("1"))

    # Assert: the SELL would open a short on OKX
    assert not result.passed
    (check,) = kill_switch_failures(result)
    assert (check.scope, check.observed) == (f"{scope}:{scope_key}", "-1")
    assert check.detail.startswith("position on OKX 0 BTC, open SELL orders on OKX 0, this order -1: ")


def test_reducing_venue_scope_counts_only_open_orders_at_that_venue(engine, listing, strategy, okx_listing):
    # Arrange: long 1 on OKX; SELL 0.6 working on OKX and SELL 0.7 on BINANCE-SPOT; OKX is reduce-only
    PositionFactory(strategy=strategy, venue="OKX", instrument_key=OKX_BTC_USDT, quantity=Decimal("1"))
    OpenOrderExposureFactory(instrument_key=OKX_BTC_USDT, side="SELL", leaves_quantity=Decimal("0.6"),
                             priced_value=Decimal("24000"))
    OpenOrderExposureFactory(side="SELL", leaves_quantity=Decimal("0.7"), priced_value=Decimal("28000"))
    TradingStateFactory(scope=Scope.VENUE, scope_key="OKX", state=REDUCING, reason="OKX degraded")

    # Act (what-ifs: neither is recorded)
    fits = evaluate(engine, okx_listing, dry_run=True, instrument=OKX_BTC_USDT, side="SELL", quantity=Decimal("0.4"))
    too_much = evaluate(engine, okx_listing, dry_run=True, instrument=OKX_BTC_USDT, side="SELL",
                        quantity=Decimal("0.5"))

    # Assert
    assert fits.passed, fits.reason
    (check,) = kill_switch_failures(too_much)
    assert check.observed == "-0.1"


@pytest.mark.parametrize(
    ("scope", "scope_key"),
    [(Scope.GLOBAL, ""), (Scope.STRATEGY, "demo"), (Scope.INSTRUMENT, "ANY:SPOT_PAIR:BTC-USDT")],
)
def test_reducing_other_scopes_judge_the_strategy_position_across_venues(engine, listing, strategy, okx_listing,
                                                                         scope, scope_key):
    # Arrange: long 1 on BINANCE-SPOT, nothing on OKX
    PositionFactory(strategy=strategy, quantity=Decimal("1"))
    TradingStateFactory(scope=scope, scope_key=scope_key, state=REDUCING, reason="drawdown")

    # Act
    result = evaluate(engine, okx_listing, instrument=OKX_BTC_USDT, side="SELL", quantity=Decimal("1"))

    # Assert
    assert result.passed, result.reason
    (check,) = checks_named(result, "kill_switch")
    assert check.observed == "0"
    assert check.detail.startswith("position 1 BTC, open SELL orders 0, this order -1: ")


def test_reducing_venue_and_global_scopes_each_judge_their_own_position(engine, listing, strategy, okx_listing):
    # Arrange: long 1 on BINANCE-SPOT; reduce-only firm-wide and on OKX
    PositionFactory(strategy=strategy, quantity=Decimal("1"))
    TradingStateFactory(scope=Scope.GLOBAL, scope_key="", state=REDUCING, reason="drawdown")
    TradingStateFactory(scope=Scope.VENUE, scope_key="OKX", state=REDUCING, reason="OKX degraded")

    # Act
    result = evaluate(engine, okx_listing, instrument=OKX_BTC_USDT, side="SELL", quantity=Decimal("0.5"))

    # Assert
    assert [(c.scope, c.passed, c.observed) for c in checks_named(result, "kill_switch")] == [
        ("GLOBAL", True, "0.5"), ("VENUE:OKX", False, "-0.5"),
    ]


def test_halted_and_reducing_both_reported(engine, listing, strategy):
    # Arrange
    PositionFactory(strategy=strategy, quantity=Decimal("1"))
    TradingStateFactory(scope=Scope.GLOBAL, scope_key="", state=REDUCING, reason="drawdown")
    TradingStateFactory(scope=Scope.VENUE, scope_key="BINANCE-SPOT", state=HALTED, reason="venue down")

    # Act
    result = evaluate(engine, listing, side="SELL", quantity=Decimal("0.5"))

    # Assert
    assert [(c.scope, c.passed) for c in checks_named(result, "kill_switch")] == [
        ("VENUE:BINANCE-SPOT", False), ("GLOBAL", True),
    ]
    assert not result.passed


def test_trading_state_set_blank_reason_is_refused(db):
    # Act / Assert
    with pytest.raises(ValidationError) as excinfo:
        trading_state_set(scope=Scope.GLOBAL, scope_key="", state=HALTED, reason="   ", actor="risk-mgr")
    assert "reason" in excinfo.value.message_dict
    assert not TradingState.objects.exists()
