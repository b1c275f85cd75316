"""Fixtures of the risk tests: a fixed clock, an in-memory quote store, the engine, a listing."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import transaction

from orders.models import Order
from risk.engine import PreTradeRiskEngine, RiskResult
from tests.orders.factories import StrategyFactory
from tests.venues.factories import InstrumentFactory
from venues.marketdata import MarketSnapshot, MemoryMarketDataStore

BTC_USDT = "BINANCE-SPOT:SPOT_PAIR:BTC-USDT"
MID = Decimal("40000")


class FixedClock:
    """A settable clock; starts half-way through a second so 1 s windows never straddle."""

    def __init__(self) -> None:
        base = datetime.now(UTC).replace(microsecond=500_000)
        self.now = base - timedelta(seconds=5)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def publish_quote(store, instrument_key: str, *, mid: Decimal, ts: datetime, half_spread: Decimal = Decimal("0.01")):
    """Publish a bid/ask around ``mid`` at ``ts``."""
    store.publish(MarketSnapshot(instrument_key=instrument_key, ts=ts, bid=mid - half_spread, ask=mid + half_spread,
                                 bid_size=Decimal("5"), ask_size=Decimal("5")))


def checks_named(result: RiskResult, name: str):
    """The check results of ``result`` named ``name``."""
    return [c for c in result.checks if c.check == name]


def only_check(result: RiskResult, name: str):
    """The single check result named ``name`` (fails the test when there are 0 or several)."""
    found = checks_named(result, name)
    assert len(found) == 1, f"expected one {name} result, got {found}"
    return found[0]


def submit(engine, *, intent, listing, venue=None, operation_id=None):
    """Do what the orders submit service does: evaluate and insert the order in one transaction."""
    venue = venue if venue is not None else (listing.venue if listing is not None else None)
    with transaction.atomic():
        result = engine.evaluate(intent=intent, listing=listing, venue=venue)
        order = Order.objects.create(
            strategy_id=intent.strategy_id,
            operation_id=operation_id or f"op-{Order.objects.count()}-{datetime.now(UTC).timestamp()}",
            instrument_key=str(intent.instrument),
            routed_instrument_key=listing.instrument_key if listing is not None else "",
            venue=venue.code if venue is not None else "",
            side=intent.side,
            order_type=intent.order_type,
            quantity=intent.quantity,
            price=intent.price,
            status=Order.Status.ROUTED if result.passed else Order.Status.DENIED,
            rejection_reason=result.reason,
            risk_result=result.to_json(),
        )
    return result, order


@pytest.fixture
def clock():
    return FixedClock()


@pytest.fixture
def store():
    return MemoryMarketDataStore()


@pytest.fixture
def engine(store, clock):
    return PreTradeRiskEngine(market_data_store=store, clock=clock)


@pytest.fixture
def strategy(db):
    return StrategyFactory(id="demo")


@pytest.fixture
def listing(db, strategy):
    return InstrumentFactory()


@pytest.fixture
def fresh_quote(store, clock):
    publish_quote(store, BTC_USDT, mid=MID, ts=clock.now)
