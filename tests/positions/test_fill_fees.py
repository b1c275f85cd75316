"""A fill's fee on its way from the journal (``orders.services.venue_events``) into the position: in the
position's PnL currency (quote for linear listings, settlement/base for inverse ones), converted at the
fill price from the other currency of the pair, left out when it is in a third currency (BNB)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from orders.models import Order
from orders.services import order_apply_venue_event
from positions.models import Position
from positions.selectors import position_aggregates
from tests.orders.factories import OrderFactory, StrategyFactory
from tests.venues.factories import listing_of
from venues.events import VenueEvent, VenueEventKind

D = Decimal
T0 = timezone.now().replace(microsecond=0) - timedelta(hours=1)
INV = "DERIBIT:PERPETUAL:BTC-USD@INV"
PERP = "BINANCE-FUTURES:PERPETUAL:BTC-USDT@LIN"

pytestmark = pytest.mark.django_db


def _fill(key, *, side="BUY", qty="100", px="40000", fee="0", fee_currency="", trade_id="T1"):
    # One order on ``key`` (SUBMITTED) and its whole fill; return the position after it.
    strategy = StrategyFactory(id="fees")
    order = OrderFactory(strategy=strategy, instrument_key=key, routed_instrument_key=key, venue=key.split(":")[0],
                         side=side, quantity=D(qty), price=D(px), status=Order.Status.SUBMITTED)
    result = order_apply_venue_event(event=VenueEvent(
        kind=VenueEventKind.FILLED, client_order_id=order.client_order_id, venue=order.venue, ts_event=T0,
        trade_id=trade_id, last_qty=D(qty), last_px=D(px), fee=D(fee), fee_currency=fee_currency, liquidity="TAKER"))
    assert result.applied
    return Position.objects.get(strategy=strategy, instrument_key=key)


def test_fill_fee_in_quote_currency_of_an_inverse_listing_is_converted_to_its_base_currency():
    # Arrange: Deribit BTC perpetual, 10 USD a contract, PnL in BTC
    listing_of(INV, contract_multiplier=D("10"))

    # Act: a 2 USD fee at 40000
    position = _fill(INV, fee="2", fee_currency="USD")

    # Assert: 2 / 40000 = 0.00005 BTC
    assert (position.fees, position.realized_pnl) == (D("0.00005"), D("-0.00005"))


def test_fill_fee_in_a_third_currency_is_left_out_of_the_position():
    # Arrange
    listing_of(PERP)

    # Act: Binance's BNB fee discount: the fee is neither USDT nor BTC
    position = _fill(PERP, qty="0.5", fee="0.01", fee_currency="BNB")

    # Assert: never subtracted from a USDT PnL as if it were USDT
    assert (position.quantity, position.fees, position.realized_pnl) == (D("0.5"), D(0), D(0))


def test_fill_fee_of_a_listing_without_quote_currency_is_in_the_pnl_currency_its_key_names():
    # Arrange: a listing whose quote_currency was left blank; its key names USDT, and the positions'
    # reads say its PnL is in USDT
    listing_of(PERP, quote_currency="", settlement_currency="")

    # Act: a 0.4 USDT fee
    position = _fill(PERP, qty="0.01", fee="0.4", fee_currency="USDT")

    # Assert: the fee is in the position's PnL currency, so it is subtracted as it is
    [aggregate] = position_aggregates(strategy_ids=None)
    assert aggregate.pnl_currency == "USDT"
    assert (position.fees, position.realized_pnl) == (D("0.4"), D("-0.4"))


def test_fill_fee_in_base_currency_of_a_listing_without_base_currency_is_converted_at_the_fill_price():
    # Arrange: blank currencies; the key names BTC and USDT
    listing_of(PERP, base_currency="", quote_currency="", settlement_currency="")

    # Act: 0.00001 BTC at 40000
    position = _fill(PERP, qty="0.01", fee="0.00001", fee_currency="BTC")

    # Assert: 0.4 USDT
    assert (position.fees, position.realized_pnl) == (D("0.4"), D("-0.4"))
