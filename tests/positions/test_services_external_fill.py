"""positions.services: fills of orders the OMS did not originate become EXTERNAL_FILL findings, once per trade."""

import json
import logging
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from odum_live.health import reconciliation_status_item
from orders.models import Fill
from orders.services.venue_events import order_apply_venue_event
from positions.models import Position, ReconciliationFinding
from positions.services import reconciliation_findings_resolve, reconciliation_record_external_fill
from tests.helpers import SHARED_DATA
from tests.orders.factories import StrategyFactory
from tests.positions.factories import PositionFactory
from venues.events import VenueEvent, VenueEventKind

FUTURES = "BINANCE-FUTURES:PERPETUAL:BTC-USDT"
ADL = SHARED_DATA / "venue_payloads/binance/futures/user_data_json/order_update_adl.json"


def _adl_event(**overrides) -> VenueEvent:
    # The recorded Binance USD-M ADL auto-close (a venue-originated order) as the bridge forwards it.
    o = json.loads(ADL.read_text())["o"]
    values = dict(kind=VenueEventKind.EXTERNAL_FILL, client_order_id=o["c"], venue="BINANCE-FUTURES",
                  ts_event=datetime.fromtimestamp(o["T"] / 1000, UTC), venue_order_id=str(o["i"]),
                  trade_id=str(o["t"]), last_qty=Decimal(o["l"]), last_px=Decimal(o["L"]), fee=Decimal(o["n"]),
                  fee_currency=o["N"], side=o["S"], instrument_key=FUTURES, venue_position=Decimal("0"),
                  reason="order of strategy EXTERNAL on the trading node, not of the OMS")
    return VenueEvent(**(values | overrides))


@pytest.mark.django_db
def test_apply_external_fill_twice_records_one_finding_and_books_nothing(caplog):
    # Arrange: the OMS holds 0.005 short (two strategies); the venue's ADL buys it back.
    strategy = StrategyFactory()
    PositionFactory(strategy=strategy, venue="BINANCE-FUTURES", instrument_key=FUTURES, quantity=Decimal("-0.003"))
    PositionFactory(strategy=StrategyFactory(), venue="BINANCE-FUTURES", instrument_key=FUTURES,
                    quantity=Decimal("-0.002"))
    event = _adl_event()

    # Act: delivered twice (a replay, a retry after an unknown outcome)
    with caplog.at_level(logging.ERROR, logger="positions.services"):
        first = order_apply_venue_event(event=event)
    second = order_apply_venue_event(event=event)

    # Assert: one finding with the trade's figures and the listing's break; no fill, positions unchanged.
    assert first.applied and not second.applied
    (finding,) = ReconciliationFinding.objects.all()
    assert (finding.kind, finding.venue, finding.instrument_key, finding.side, finding.quantity, finding.price,
            finding.trade_id, finding.client_order_id, finding.venue_order_id, finding.filled_at) == (
        "EXTERNAL_FILL", "BINANCE-FUTURES", FUTURES, "BUY", event.last_qty, event.last_px, event.trade_id,
        "adl_autoclose_12345", event.venue_order_id, event.ts_event)
    assert (finding.oms_quantity, finding.venue_quantity) == (Decimal("-0.005"), Decimal("0"))
    assert finding.resolved_at is None and "EXTERNAL" in finding.detail
    assert not Fill.objects.exists()
    assert sorted(Position.objects.values_list("quantity", flat=True)) == [Decimal("-0.003"), Decimal("-0.002")]
    assert any(r.levelname == "ERROR" and "adl_autoclose_12345" in r.getMessage() for r in caplog.records)


@pytest.mark.django_db
def test_both_sides_of_one_external_trade_are_two_findings_each_recorded_once():
    # Arrange: two external orders traded with each other: one trade id, a BUY side and a SELL side
    buy, sell = _adl_event(side="BUY"), _adl_event(side="SELL", client_order_id="by-hand-2")

    # Act: each side delivered twice
    applied = [order_apply_venue_event(event=e).applied for e in (buy, sell, buy, sell)]

    # Assert: a fill's identity includes its side (orders.models.Fill): two findings, no duplicates
    assert applied == [True, True, False, False]
    assert sorted(ReconciliationFinding.objects.values_list("side", "client_order_id")) == [
        ("BUY", "adl_autoclose_12345"), ("SELL", "by-hand-2")]


@pytest.mark.django_db
def test_external_fill_finding_is_listed_in_health_until_resolved():
    # Arrange
    finding, created = reconciliation_record_external_fill(
        venue="BINANCE-FUTURES", instrument_key=FUTURES, side="SELL", quantity=Decimal("0.25"),
        price=Decimal("41000.5"), trade_id="T-77", client_order_id="hand-placed-1",
        filled_at=datetime(2026, 12, 1, 9, 30, tzinfo=UTC))
    now = datetime.now(UTC)

    # Act
    open_item = reconciliation_status_item(now=now)
    reconciliation_findings_resolve(finding_ids=[finding.pk])
    resolved_item = reconciliation_status_item(now=now)

    # Assert: amber with the break and the trade while open (venue position unknown: the OMS's plus the fill).
    assert created and (finding.oms_quantity, finding.venue_quantity) == (Decimal("0"), Decimal("-0.25"))
    assert open_item.level == "amber"
    assert (f"{FUTURES}: OMS 0 vs venue -0.25" in open_item.detail
            and "external fill SELL 0.25 @ 41000.5, trade T-77, order hand-placed-1, at 2026-12-01 09:30:00Z"
            in open_item.detail)
    assert resolved_item.level == "green"


@pytest.mark.django_db
@pytest.mark.parametrize(("field", "value", "match"), [
    ("side", "BOTH", "side: must be BUY or SELL"),
    ("quantity", Decimal("0"), "quantity: must be a positive"),
    ("price", Decimal("NaN"), "price: must be a positive"),
    ("trade_id", "", "trade_id: must be a non-empty"),
    ("filled_at", datetime(2026, 12, 1), "filled_at: must be a timezone-aware"),
])
def test_record_external_fill_bad_input_raises_naming_the_field(field, value, match):
    values = dict(venue="BINANCE-FUTURES", instrument_key=FUTURES, side="SELL", quantity=Decimal("0.25"),
                  price=Decimal("41000.5"), trade_id="T-78", client_order_id="hand-placed-2",
                  filled_at=datetime(2026, 12, 1, tzinfo=UTC))

    with pytest.raises(ValueError, match=match):
        reconciliation_record_external_fill(**(values | {field: value}))
    assert not ReconciliationFinding.objects.exists()


def test_external_fill_event_requires_the_listing_and_side():
    with pytest.raises(ValueError, match="instrument_key: required"):
        _adl_event(instrument_key="")
    with pytest.raises(ValueError, match="side: must be one of"):
        _adl_event(side="BOTH")
