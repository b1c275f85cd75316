"""The paper BINANCE-FUTURES venue on a real TradingNode: one-minute bars only, replayed accelerated.

The recording (``btc_perp_1m_bars_2022-01.csv``) has no quotes: the replay client derives a top
of book from each bar's close, the paper execution client runs the bars through NautilusTrader's
bar execution with the depth model applied, and the OMS gets quotes and marks from the node.
"""

from __future__ import annotations

import itertools
import uuid
from decimal import Decimal

import pytest

from orders.models import Fill, Order
from positions.models import Position
from tests.helpers import SHARED_DATA, eventually, needs_market_data, running_node_host
from tests.orders.factories import OrderFactory
from tests.venues.factories import InstrumentFactory, VenueFactory
from venues.marketdata import market_data
from venues.node.config import node_plan
from venues.replay.client import ReplayDataClientConfig, ReplayInstrumentConfig, bar_base_volume, resolve_sources
from venues.tasks import submit_order

pytestmark = [needs_market_data, pytest.mark.django_db(transaction=True)]

KEY = "BINANCE-FUTURES:PERPETUAL:BTC-USDT@LIN"
IID = "BTCUSDT-PERP.BINANCE"
BARS = {"kind": "bars", "format": "bars_csv", "interval": "1m", "price_rounding": "half_even",
        "path": "market/btc_perp_1m_bars_2022-01.csv"}
# 600x: ten recorded minutes per second; a test sees at most a few hundred bars.
REPLAY = {"data_dir": str(SHARED_DATA), "speed": 600.0, "loop": True, "instruments": {KEY: [BARS]}}
FIRST_BARS = 3000


def _listing():
    venue = VenueFactory(code="BINANCE-FUTURES", adapter="binance_futures", maker_fee_bps=Decimal("2"),
                         taker_fee_bps=Decimal("5"), config={"replay": REPLAY})
    return InstrumentFactory(venue=venue, instrument_key=KEY, nautilus_instrument_id=IID, venue_symbol="BTCUSDT",
                             tick_size=Decimal("0.1"), lot_size=Decimal("0.001"), min_quantity=Decimal("0.001"),
                             max_quantity=None, min_notional=Decimal("100"))


@pytest.fixture(scope="module")
def recorded_bars():
    """The first bars of the recording as the node replays them (prices on the 0.1 tick)."""
    config = ReplayDataClientConfig(
        venue="BINANCE", sources=(BARS,), data_dir=str(SHARED_DATA),
        instrument=ReplayInstrumentConfig(symbol="BTCUSDT-PERP", base_currency="BTC", quote_currency="USDT",
                                          price_precision=1, size_precision=3, price_increment="0.1",
                                          size_increment="0.001"))
    return list(itertools.islice(resolve_sources(config)[0], FIRST_BARS))


@pytest.fixture
def node(transactional_db):
    _listing()
    plan = node_plan()
    assert plan.venues[0].problems == (), plan.venues[0].problems
    with running_node_host(plan, trader_id="TRADER-H25", first_quote_of=KEY, message="first top of book from a bar",
                           md_interval_secs=0.05, mark_interval_secs=0.05) as host:
        yield host


def _order(**values) -> Order:
    values.setdefault("client_order_id", "OF" + uuid.uuid4().hex[:22])
    return OrderFactory(instrument_key=KEY, routed_instrument_key=KEY, venue="BINANCE-FUTURES", **values)


def _status(order: Order, *statuses: str) -> str | None:
    status = Order.objects.values_list("status", flat=True).get(pk=order.pk)
    return status if status in statuses else None


def test_node_paper_futures_market_order_fills_completely_at_recorded_closes(node, recorded_bars):
    closes = {bar.close for bar in recorded_bars}
    quantity = Decimal("15")
    # Larger than a quarter of most bars' volume: NautilusTrader's bar execution alone would fill
    # it partially (the depth model deepens each bar's path and quote).
    quarter_volumes = sorted(bar_base_volume(bar, 3) / 4 for bar in recorded_bars[:200])
    assert quantity > quarter_volumes[len(quarter_volumes) // 2]
    order = _order(order_type="MARKET", price=None, side="BUY", quantity=quantity)

    submit_order.apply(args=[str(order.pk)])

    eventually(lambda: _status(order, "FILLED", "REJECTED"), timeout=15, message="market order filled")
    order.refresh_from_db()
    assert order.status == "FILLED", order.rejection_reason
    fills = list(Fill.objects.filter(order=order))
    assert sum(f.quantity for f in fills) == quantity == order.filled_quantity
    assert all(f.price in closes for f in fills), [f.price for f in fills]
    assert all(f.fee_currency == "USDT" and f.fee == f.price * f.quantity * Decimal("0.0005") for f in fills)
    position = Position.objects.get(instrument_key=KEY, venue="BINANCE-FUTURES", strategy=order.strategy)
    assert position.quantity == quantity
    marked = eventually(lambda: Position.objects.filter(pk=position.pk, mark_price__isnull=False).first(),
                        message="position marked from the bars")
    assert marked.mark_price in closes


def test_node_paper_futures_marketable_limit_fills_at_a_recorded_close(node, recorded_bars):
    closes = {bar.close for bar in recorded_bars}
    far_above = (max(closes) * Decimal("1.5")).quantize(Decimal("0.1"))
    order = _order(order_type="LIMIT", price=far_above, side="BUY", quantity=Decimal("0.5"))

    submit_order.apply(args=[str(order.pk)])

    eventually(lambda: _status(order, "FILLED", "REJECTED"), timeout=15, message="marketable limit filled")
    order.refresh_from_db()
    assert order.status == "FILLED", order.rejection_reason
    (fill,) = Fill.objects.filter(order=order)
    assert fill.price in closes and fill.price < far_above


def test_node_paper_futures_publishes_top_of_book_from_bars_and_keeps_the_perpetual(node, recorded_bars):
    closes = {bar.close for bar in recorded_bars}

    snapshot = market_data().get(KEY)

    assert snapshot is not None and snapshot.bid == snapshot.ask and snapshot.bid in closes
    assert snapshot.bid_size > 0 and snapshot.ask_size == snapshot.bid_size
    kind = node.call(lambda: type(node.bridge.cache.instrument(_iid())).__name__)
    assert kind == "CryptoPerpetual"  # the replay client did not replace it with a CurrencyPair
    counts = node.call(lambda: {c.id.value: (c.bars_seen, c.quotes_seen)
                                for c in node.node.kernel.exec_engine._clients.values()})
    bars_seen, quotes_seen = counts["BINANCE"]
    assert bars_seen > 0 and quotes_seen > 0  # bars reached the paper venue's matching engine


def _iid():
    from nautilus_trader.model.identifiers import InstrumentId

    return InstrumentId.from_str(IID)


def test_node_paper_venue_deepens_each_bar_to_four_touch_sizes(node):
    from nautilus_trader.model.data import Bar, BarType
    from nautilus_trader.model.identifiers import ClientId
    from nautilus_trader.model.objects import Price, Quantity

    client = node.node.kernel.exec_engine._clients[ClientId("BINANCE")]
    price = Price.from_str("46377.0")
    bar = Bar(BarType.from_str(f"{IID}-1-MINUTE-LAST-EXTERNAL"), price, price, price, price,
              Quantity.from_str("2.500"), 1, 1)

    deepened = node.call(lambda: client._deepened_bar(bar))

    # Unlimited touch on a listing without a maximum quantity: 10^9 lots of 0.001 BTC.
    assert deepened.volume == Quantity.from_str("4000000.000")
    assert (deepened.open, deepened.close, deepened.ts_event) == (bar.open, bar.close, bar.ts_event)
