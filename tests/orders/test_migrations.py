"""``orders/migrations/0002_fill_listing_identity.py`` and ``0003_fill_side_identity.py``: fills backfilled
with their listing, then their side, each run both ways.

Real migrations on the test database (``transaction=True``: SQLite alters tables only outside a
transaction); every test leaves the database migrated to the latest state.
"""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from orders.models import Fill
from tests.orders.factories import OrderFactory, StrategyFactory
from tests.helpers import migrate_to

BEFORE = ("orders", "0001_initial")
AFTER = ("orders", "0002_fill_listing_identity")
LATEST = ("orders", "0003_fill_side_identity")
BTC = "BINANCE-SPOT:SPOT_PAIR:BTC-USDT"
ETH = "BINANCE-SPOT:SPOT_PAIR:ETH-USDT"
T0 = datetime(2026, 12, 1, tzinfo=UTC)

pytestmark = pytest.mark.django_db(transaction=True)


def _fill(model, order, trade_id, **fields):
    return model.objects.create(order_id=order.pk, venue="BINANCE-SPOT", venue_trade_id=trade_id,
                                price=Decimal("40000"), quantity=Decimal("0.001"), fee=Decimal("0"),
                                fee_currency="USDT", ts_event=T0, **fields)


def test_fill_listing_migration_backfills_each_fill_from_its_order(at_latest):
    # Arrange: fills stored before the migration, on two listings (the orders table is unchanged by it)
    old_apps = migrate_to(BEFORE)
    strategy = StrategyFactory(id="alpha")
    btc = OrderFactory(strategy=strategy, status="FILLED")
    eth = OrderFactory(strategy=strategy, status="FILLED", instrument_key=ETH, routed_instrument_key=ETH)
    old_fill = old_apps.get_model("orders", "Fill")
    stored = {_fill(old_fill, btc, "1").pk: BTC, _fill(old_fill, btc, "2").pk: BTC, _fill(old_fill, eth, "3").pk: ETH}

    # Act
    new_fill = migrate_to(AFTER).get_model("orders", "Fill")

    # Assert: each fill has its order's listing; a trade id is unique per listing, not per venue
    assert dict(new_fill.objects.values_list("id", "instrument_key")) == stored
    _fill(new_fill, eth, "1", instrument_key=ETH)
    with pytest.raises(IntegrityError), transaction.atomic():
        _fill(new_fill, btc, "1", instrument_key=BTC)
    with pytest.raises(IntegrityError), transaction.atomic():
        _fill(new_fill, btc, "4", instrument_key="")


def test_fill_listing_migration_backwards_refuses_a_trade_id_two_listings_share(at_latest):
    # Arrange: trade id 1 on BTC-USDT and on ETH-USDT of one venue (Binance numbers trades per symbol)
    fill_0002 = migrate_to(AFTER).get_model("orders", "Fill")
    strategy = StrategyFactory(id="alpha")
    btc = OrderFactory(strategy=strategy, status="FILLED")
    eth = OrderFactory(strategy=strategy, status="FILLED", instrument_key=ETH, routed_instrument_key=ETH)
    _fill(fill_0002, btc, "1", instrument_key=BTC)
    shared = _fill(fill_0002, eth, "1", instrument_key=ETH)

    # Act / Assert: backwards stops, naming the trade id, and leaves the migration applied
    with pytest.raises(RuntimeError, match=r"venue trade ids \[\('BINANCE-SPOT', '1'\)\]"):
        migrate_to(BEFORE)
    assert AFTER in MigrationExecutor(connection).loader.applied_migrations
    assert fill_0002.objects.count() == 2

    # Act / Assert: without the shared trade id it goes back, the old rule with it
    shared.delete()
    old_fill = migrate_to(BEFORE).get_model("orders", "Fill")
    assert AFTER not in MigrationExecutor(connection).loader.applied_migrations
    with pytest.raises(IntegrityError), transaction.atomic():
        _fill(old_fill, eth, "1")


def test_fill_side_migration_backfills_each_fill_from_its_orders_side(at_latest):
    # Arrange: fills stored before the migration, of a BUY, a SELL and a SUPPLY (buy-like) order
    old_fill = migrate_to(AFTER).get_model("orders", "Fill")
    strategy = StrategyFactory(id="alpha")
    buy = OrderFactory(strategy=strategy, status="FILLED")
    sell = OrderFactory(strategy=strategy, status="FILLED", side="SELL")
    supply = OrderFactory(strategy=strategy, status="FILLED", side="SUPPLY")
    stored = {_fill(old_fill, buy, "1", instrument_key=BTC).pk: "BUY",
              _fill(old_fill, sell, "2", instrument_key=BTC).pk: "SELL",
              _fill(old_fill, supply, "3", instrument_key=BTC).pk: "BUY"}

    # Act
    migrate_to(LATEST)

    # Assert: each fill has its side; a trade id is unique per listing and side (a self-trade has both)
    assert dict(Fill.objects.values_list("id", "side")) == stored
    _fill(Fill, sell, "1", instrument_key=BTC, side="SELL")
    with pytest.raises(IntegrityError), transaction.atomic():
        _fill(Fill, supply, "1", instrument_key=BTC, side="BUY")
    with pytest.raises(IntegrityError), transaction.atomic():
        _fill(Fill, buy, "4", instrument_key=BTC, side="")


def test_fill_side_migration_backwards_refuses_a_self_trade(at_latest):
    # Arrange: trade 1 of BTC-USDT stored for both sides (our BUY traded with our SELL)
    strategy = StrategyFactory(id="alpha")
    buy = OrderFactory(strategy=strategy, status="FILLED")
    sell = OrderFactory(strategy=strategy, status="FILLED", side="SELL")
    _fill(Fill, buy, "1", instrument_key=BTC, side="BUY")
    seller = _fill(Fill, sell, "1", instrument_key=BTC, side="SELL")

    # Act / Assert: backwards stops, naming the trade, and leaves the migration applied
    with pytest.raises(RuntimeError, match=r"trades \[\('BINANCE-SPOT', 'BINANCE-SPOT:SPOT_PAIR:BTC-USDT', '1'\)\]"):
        migrate_to(AFTER)
    assert LATEST in MigrationExecutor(connection).loader.applied_migrations
    assert Fill.objects.count() == 2

    # Act / Assert: without the self-trade it goes back, the per-listing rule with it
    seller.delete()
    old_fill = migrate_to(AFTER).get_model("orders", "Fill")
    assert LATEST not in MigrationExecutor(connection).loader.applied_migrations
    with pytest.raises(IntegrityError), transaction.atomic():
        _fill(old_fill, sell, "1", instrument_key=BTC)
