"""The bridge strategy's translation of NautilusTrader order events (venues/node/bridge.py; no node, no database)."""

from decimal import Decimal

import pytest
from nautilus_trader.core.uuid import UUID4
from nautilus_trader.model.currencies import USDT
from nautilus_trader.model.enums import LiquiditySide, OrderSide, OrderType
from nautilus_trader.model.events import OrderCanceled, OrderFilled, OrderRejected
from nautilus_trader.model.identifiers import (
    AccountId,
    ClientOrderId,
    InstrumentId,
    StrategyId,
    TradeId,
    TraderId,
    VenueOrderId,
)
from nautilus_trader.model.objects import Money, Price, Quantity

from venues.events import VenueEventKind
from venues.node.bridge import BridgeConfig, BridgeStrategy, venue_event_from_nautilus

KEY = "BINANCE-FUTURES:PERPETUAL:BTC-USDT@LIN"
IID = "BTCUSDT-PERP.BINANCE"


def test_bridge_maker_fill_with_a_rebate_is_forwarded_with_a_negative_fee():
    # Arrange: a maker fill on a venue that pays makers (a negative commission: a rebate of 0.02 USDT)
    sink = []
    bridge = BridgeStrategy(BridgeConfig(order_id_tag="BRIDGE",
                                         listings=((IID, "BINANCE-FUTURES", KEY, "BINANCE", "", ()),)),
                            event_sink=sink.append)
    fill = OrderFilled(
        trader_id=TraderId("ODUM-001"), strategy_id=StrategyId("BridgeStrategy-BRIDGE"),
        instrument_id=InstrumentId.from_str(IID), client_order_id=ClientOrderId("OLrebate000000000000001"),
        venue_order_id=VenueOrderId("1"), account_id=AccountId("BINANCE-001"), trade_id=TradeId("T-rebate-1"),
        position_id=None, order_side=OrderSide.BUY, order_type=OrderType.LIMIT,
        last_qty=Quantity.from_str("0.010"), last_px=Price.from_str("40000.0"), currency=USDT,
        commission=Money(Decimal("-0.02"), USDT), liquidity_side=LiquiditySide.MAKER,
        event_id=UUID4(), ts_event=1_600_000_000_000_000_000, ts_init=1_600_000_000_000_000_000,
    )

    # Act
    bridge.on_order_event(fill)

    # Assert: the trade reaches the journal (a dropped fill would leave the order open and the position wrong)
    (event,) = sink
    assert (event.kind, event.last_qty, event.last_px) == (VenueEventKind.FILLED, Decimal("0.010"), Decimal("40000.0"))
    assert (event.fee, event.fee_currency) == (Decimal("-0.02"), "USDT")
    # with the listing and side, so that a fill of an order the OMS does not know can still be recorded
    assert (event.instrument_key, event.side) == (KEY, "BUY")
    assert bridge.events_untranslatable == 0


def _closing(kind, *, reconciliation: bool, ts_event: int, ts_init: int = 1_600_000_000_000_000_000):
    # NautilusTrader's OrderCanceled / OrderRejected of one order, as a venue sends it or as the node's
    # reconciliation makes it (``reconciliation=True``; without a venue report ts_event is ts_init).
    ids = dict(trader_id=TraderId("ODUM-001"), strategy_id=StrategyId("BridgeStrategy-BRIDGE"),
               instrument_id=InstrumentId.from_str(IID), client_order_id=ClientOrderId("OLlost0000000000000001"),
               account_id=AccountId("BINANCE-001"), event_id=UUID4(), ts_event=ts_event, ts_init=ts_init,
               reconciliation=reconciliation)
    if kind is OrderRejected:
        return OrderRejected(reason="UNKNOWN", **ids)
    return OrderCanceled(venue_order_id=VenueOrderId("1"), **ids)


@pytest.mark.parametrize("kind", [OrderCanceled, OrderRejected])
def test_bridge_order_closed_by_the_nodes_reconciliation_without_a_venue_report_says_the_venue_did_not_confirm(kind):
    # Arrange: the node gave up on a venue that never answered (its in-flight check: a cancel left pending,
    # an order never acknowledged) and closed the order itself, with no venue report behind it
    made_up = _closing(kind, reconciliation=True, ts_event=1_600_000_000_000_000_000)
    # Act
    event = venue_event_from_nautilus(made_up, venue="BINANCE-FUTURES", is_child=False)
    # Assert: the journal is told the venue confirmed nothing (the order may still work there)
    assert event.kind == (VenueEventKind.CANCELED if kind is OrderCanceled else VenueEventKind.REJECTED)
    assert event.reason.startswith("not confirmed by the venue: the trading node's reconciliation closed the order")
    assert "check the order at the venue" in event.reason
    assert ("(UNKNOWN)" in event.reason) is (kind is OrderRejected)


@pytest.mark.parametrize(("reconciliation", "ts_event"), [(False, 1_600_000_000_000_000_000),
                                                         (True, 1_599_999_999_000_000_000)])
def test_bridge_order_closed_by_the_venue_or_by_a_venue_report_keeps_the_venues_reason(reconciliation, ts_event):
    # A venue's own message, or the node's reconciliation applying a venue report (the report's time)
    for kind, reason in ((OrderCanceled, ""), (OrderRejected, "UNKNOWN")):
        event = venue_event_from_nautilus(_closing(kind, reconciliation=reconciliation, ts_event=ts_event),
                                          venue="BINANCE-FUTURES", is_child=False)
        assert event.reason == reason
