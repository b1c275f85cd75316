from decimal import Decimal

import pytest

from celery_app import app
from risk.models import OpenOrderExposure
from risk.tasks import rebuild_open_exposure


def test_beat_schedules_the_open_exposure_rebuild():
    entry = app.conf.beat_schedule["rebuild-open-order-exposure"]
    assert entry["task"] == rebuild_open_exposure.name


@pytest.mark.django_db
def test_rebuild_open_exposure_task_repairs_a_total_with_no_open_order():
    # Arrange: a total that no open order backs (e.g. a missed subtraction)
    OpenOrderExposure.objects.create(
        strategy_id="ghost", instrument_key="BINANCE-SPOT:SPOT_PAIR:BTC-USDT", side="BUY", venue="BINANCE-SPOT",
        equivalence_key="SPOT_PAIR:BTC-USDT", leaves_quantity=Decimal("1"),
    )
    # Act
    result = rebuild_open_exposure()
    # Assert
    assert result == {"drift": 1}
    assert OpenOrderExposure.objects.get(strategy_id="ghost").leaves_quantity == 0
