"""venues.node.bridge on a real TradingNode: fills of orders the OMS did not originate become findings.

A second strategy on the node stands in for an order placed by hand on the account, or one the venue
placed itself (liquidation / ADL / auto-close: NautilusTrader's EXTERNAL orders reach the message bus
the same way). Its fill must reach the OMS as an EXTERNAL_FILL reconciliation finding, with no
strategy's position booked from it; the bridge's own orders and its algorithms' children are not
external. Node, listing and helpers are those of ``tests/venues/test_node_host.py``.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from nautilus_trader.common.component import LiveClock
from nautilus_trader.config import StrategyConfig
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.identifiers import ClientId, InstrumentId
from nautilus_trader.trading.strategy import Strategy

from orders.models import Fill
from positions.models import Position, ReconciliationFinding
from tests.helpers import SHARED_DATA, eventually, needs_market_data
from tests.venues import test_node_host
from tests.venues.test_node_host import KEY, _order, _status, _twap_filled
from venues.tasks import submit_order

pytestmark = [needs_market_data, pytest.mark.django_db(transaction=True)]

node, listing = test_node_host.node, test_node_host.listing  # the fixtures, used by name


def _hand_placed_buy(host, quantity: str) -> str:
    # A strategy that is not the bridge, wired to the running node on its loop thread (a running
    # trader takes no new strategy), submits a MARKET order; returns its client_order_id.
    (lp,) = host.plan.listings

    def place() -> str:
        bridge = host.bridge
        other = Strategy(StrategyConfig(strategy_id="HAND-001", order_id_tag="HAND"))
        other.register(trader_id=bridge.trader_id, portfolio=bridge.portfolio, msgbus=bridge.msgbus,
                       cache=bridge.cache, clock=LiveClock())
        other.start()
        iid = InstrumentId.from_str(lp.nautilus_instrument_id)
        order = other.order_factory.market(iid, OrderSide.BUY, bridge.cache.instrument(iid).make_qty(Decimal(quantity)))
        other.submit_order(order, client_id=ClientId(lp.exec_client_id))
        return order.client_order_id.value

    return host.call(place)


def _venue_originated_fill(host, payload: dict) -> None:
    # What NautilusTrader's Binance futures adapter sends for an exchange-generated ADL / liquidation
    # order it has no record of (adapters/binance/futures/schemas/user.py): an OrderStatusReport seeding the
    # order, then the FillReport, both to the live execution engine, which makes it an EXTERNAL order.
    from nautilus_trader.core.uuid import UUID4
    from nautilus_trader.execution.reports import FillReport, OrderStatusReport
    from nautilus_trader.model.enums import LiquiditySide, OrderStatus, OrderType, TimeInForce
    from nautilus_trader.model.identifiers import ClientOrderId, TradeId, VenueOrderId
    from nautilus_trader.model.objects import Money

    (lp,) = host.plan.listings
    o = payload["o"]

    def report() -> None:
        bridge = host.bridge
        iid = InstrumentId.from_str(lp.nautilus_instrument_id)
        instrument = bridge.cache.instrument(iid)
        (account,) = bridge.cache.accounts()
        now = bridge.clock.timestamp_ns()
        side = OrderSide.BUY if o["S"] == "BUY" else OrderSide.SELL
        quantity = instrument.make_qty(Decimal(o["l"]))
        common = dict(account_id=account.id, instrument_id=iid, venue_order_id=VenueOrderId(str(o["i"])),
                      client_order_id=ClientOrderId(o["c"]), report_id=UUID4(), ts_init=now)
        seed = OrderStatusReport(**common, order_side=side, order_type=OrderType.LIMIT, time_in_force=TimeInForce.IOC,
                                 order_status=OrderStatus.ACCEPTED, quantity=quantity,
                                 filled_qty=instrument.make_qty(Decimal(0)), ts_accepted=now, ts_last=now,
                                 price=instrument.make_price(Decimal(o["p"])))
        common["report_id"] = UUID4()
        fill = FillReport(**common, trade_id=TradeId(str(o["t"])), order_side=side, last_qty=quantity,
                          last_px=instrument.make_price(Decimal(o["L"])),
                          commission=Money(Decimal(o["n"]), instrument.quote_currency),
                          liquidity_side=LiquiditySide.TAKER, ts_event=now)
        for item in (seed, fill):
            bridge.msgbus.send(endpoint="ExecEngine.reconcile_execution_report", msg=item)

    host.call(report)


def test_node_fill_of_a_venue_originated_order_is_a_finding_once(node, listing):
    # Arrange: the recorded Binance ADL auto-close (an order the venue placed itself), on the paper listing.
    payload = json.loads((SHARED_DATA / "venue_payloads/binance/futures/user_data_json/order_update_adl.json")
                         .read_text())

    # Act: reported twice (a re-sent stream message): NautilusTrader applies the trade once.
    _venue_originated_fill(node, payload)
    _venue_originated_fill(node, payload)

    # Assert
    finding = eventually(lambda: ReconciliationFinding.objects.filter(kind="EXTERNAL_FILL").first(), timeout=15,
                         message="external fill recorded")
    assert (finding.client_order_id, finding.venue_order_id, finding.trade_id, finding.side, finding.quantity,
            finding.price) == ("adl_autoclose_12345", "8887001", "12346001", "BUY", Decimal("0.005"),
                               Decimal("42000"))
    assert "EXTERNAL" in finding.detail
    assert (finding.oms_quantity, finding.venue_quantity) == (Decimal("0"), Decimal("0.005"))
    assert eventually(lambda: node.journal.stats().queue_depth == 0, message="journal idle")
    assert ReconciliationFinding.objects.count() == 1 and not Position.objects.exists()


def test_node_fill_of_an_order_not_ours_is_a_finding_and_books_no_position(node, listing):
    # Arrange: the OMS's own orders fill first — a plain MARKET order and a TWAP parent whose children
    # (spawned by our algorithm) fill on the node: none of these is external.
    ours = _order(order_type="MARKET", price=None, side="BUY", quantity=Decimal("0.01"))
    submit_order.apply(args=[str(ours.pk)])
    eventually(lambda: _status(ours, "FILLED", "REJECTED"), timeout=15, message="our order filled")
    parent = _twap_filled(quantity="0.002", horizon_secs=2, interval_secs=1)
    assert parent.children.count() >= 1
    oms_positions = dict(Position.objects.values_list("strategy_id", "quantity"))
    assert sum(oms_positions.values()) == Decimal("0.012")
    assert not ReconciliationFinding.objects.exists()  # our orders and children were not reported

    # Act: an order the OMS did not originate fills on the same account.
    external_id = _hand_placed_buy(node, "0.005")

    # Assert: one EXTERNAL_FILL finding with the trade and the listing's break; the OMS's books unchanged.
    finding = eventually(lambda: ReconciliationFinding.objects.filter(kind="EXTERNAL_FILL").first(), timeout=15,
                         message="external fill recorded")
    assert (finding.venue, finding.instrument_key, finding.side, finding.quantity, finding.client_order_id) == (
        "BINANCE-SPOT", KEY, "BUY", Decimal("0.005"), external_id)
    assert finding.trade_id and finding.price > 0 and finding.filled_at is not None
    assert (finding.oms_quantity, finding.venue_quantity) == (Decimal("0.012"), Decimal("0.017"))
    assert "HAND-001" in finding.detail and finding.resolved_at is None
    assert ReconciliationFinding.objects.count() == 1
    assert dict(Position.objects.values_list("strategy_id", "quantity")) == oms_positions
    assert not Fill.objects.filter(venue_trade_id=finding.trade_id).exists()
    assert node.bridge.external_fills_forwarded == 1
