"""``positions/migrations/0006_position_other_fees.py``: the fees stored fills paid in a third currency,
kept apart per position in their own currency, run both ways.

Real migrations on the test database (``transaction=True``: SQLite alters tables only outside a
transaction); every test leaves the database migrated to the latest state.
"""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from positions.models import Position
from tests.orders.factories import FillFactory, OrderFactory, StrategyFactory
from tests.venues.factories import listing_of
from tests.helpers import migrate_to

BEFORE = ("positions", "0005_reconciliation_finding_external_fill")
AFTER = ("positions", "0006_position_other_fees")
SPOT = "BINANCE-SPOT:SPOT_PAIR:BTC-USDT"
INV = "DERIBIT:PERPETUAL:BTC-USD@INV"
UNLISTED = "OKX:PERPETUAL:ETH-USDT@LIN"
T0 = datetime(2026, 12, 1, tzinfo=UTC)

pytestmark = pytest.mark.django_db(transaction=True)


def _booked(old_apps, strategy, key, *fees):
    # An order of ``strategy`` on ``key`` with one fill per (fee, currency) at 40000, and its position row as
    # the journal left it before the migration (the fills' figures do not matter to it).
    old_position = old_apps.get_model("positions", "Position")
    order = OrderFactory(strategy=strategy, status="FILLED", venue=key.split(":")[0], instrument_key=key,
                         routed_instrument_key=key)
    for fee, currency in fees:
        FillFactory(order=order, price=Decimal("40000"), fee=Decimal(fee), fee_currency=currency, ts_event=T0)
    return old_position.objects.create(strategy_id=strategy.pk, venue=order.venue, instrument_key=key,
                                       equivalence_key=key.split(":", 1)[1], quantity=Decimal("0.01"),
                                       avg_entry_price=Decimal("40000")).pk


def test_other_fees_migration_keeps_each_positions_third_currency_fees_apart(at_latest):
    # Arrange: positions stored before the migration, their fills paying in the PnL currency, the pair's
    # other currency (converted at the fill price: not apart) and third currencies
    old_apps = migrate_to(BEFORE)
    alpha, beta = StrategyFactory(id="alpha"), StrategyFactory(id="beta")
    listing_of(SPOT)
    listing_of(INV, contract_multiplier=Decimal("10"))
    spot_alpha = _booked(old_apps, alpha, SPOT, ("0.4", "USDT"), ("0.00001", "BTC"), ("0.01", "BNB"),
                         ("0.0025", "BNB"), ("0", "OKB"))
    spot_beta = _booked(old_apps, beta, SPOT, ("0.4", "USDT"))
    inverse = _booked(old_apps, alpha, INV, ("2", "USD"), ("0.00001", "BTC"), ("2", "USDT"))
    unlisted = _booked(old_apps, alpha, UNLISTED, ("0.4", "USDT"), ("0.001", "ETH"), ("0.5", "BNB"))

    # Act
    migrate_to(AFTER)

    # Assert: per position, in its own currency; USDT on the BTC-USD inverse perpetual is a third currency;
    # a listing that is gone is read by its key (quote USDT, base ETH)
    assert dict(Position.objects.values_list("id", "other_fees")) == {
        spot_alpha: {"BNB": "0.0125"}, spot_beta: {}, inverse: {"USDT": "2"}, unlisted: {"BNB": "0.5"}}


def test_other_fees_migration_stops_on_a_fill_without_position_and_changes_nothing(at_latest):
    # Arrange: a BNB fill whose order's position row is missing
    old_apps = migrate_to(BEFORE)
    strategy = StrategyFactory(id="alpha")
    listing_of(SPOT)
    _booked(old_apps, strategy, SPOT, ("0.01", "BNB"))
    orphan = FillFactory(order=OrderFactory(strategy=StrategyFactory(id="beta"), status="FILLED"), fee=Decimal("1"),
                         fee_currency="BNB")

    # Act / Assert: stopped, naming the fill; the migration is not applied
    with pytest.raises(RuntimeError, match=rf"fills \[{orphan.pk}\] have no position"):
        migrate_to(AFTER)
    assert AFTER not in MigrationExecutor(connection).loader.applied_migrations

    # Act / Assert: backwards from the latest state drops the column
    old_apps.get_model("orders", "Fill").objects.filter(pk=orphan.pk).delete()
    migrate_to(AFTER)
    old_position = migrate_to(BEFORE).get_model("positions", "Position")
    assert "other_fees" not in {f.name for f in old_position._meta.get_fields()}
    assert old_position.objects.count() == 1
