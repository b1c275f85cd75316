"""The bridge strategy's translation of NautilusTrader order events (venues/node/bridge.py; no node, no database)."""

from decimal import Decimal

from nautilus_trader.core.uuid import UUID4
from nautilus_trader.model.currencies import USDT
from nautilus_trader.model.enums import LiquiditySide, OrderSide, OrderType
from nautilus_trader.model.events import OrderFilled
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
from venues.node.bridge import BridgeConfig, BridgeStrategy

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
