from decimal import Decimal

import factory
from django.contrib.auth import get_user_model

from orders.fills import trade_side
from orders.models import Order, Strategy


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pw-for-tests-1")  # hashed at build: no second save


class StrategyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Strategy
        django_get_or_create = ("id",)

    id = factory.Sequence(lambda n: f"strategy-{n}")
    name = factory.LazyAttribute(lambda o: f"Strategy {o.id}")
    enabled = True
    service_account = factory.SubFactory(UserFactory, username=factory.LazyAttribute(lambda u: f"svc-{u.factory_parent.id}"))


class OrderFactory(factory.django.DjangoModelFactory):
    """A stored order row (bypasses the services: use for read-side tests only)."""

    class Meta:
        model = Order

    strategy = factory.SubFactory(StrategyFactory)
    operation_id = factory.Sequence(lambda n: f"op-{n}")
    instrument_key = "BINANCE-SPOT:SPOT_PAIR:BTC-USDT"
    routed_instrument_key = "BINANCE-SPOT:SPOT_PAIR:BTC-USDT"
    venue = "BINANCE-SPOT"
    venue_type = Order.VenueType.NAUTILUS
    side = Order.Side.BUY
    order_type = Order.OrderType.LIMIT
    quantity = Decimal("0.01")
    price = Decimal("40000")
    status = Order.Status.ROUTED


# --- order API / services (owned by the order-services engineer) --------------------------------
import uuid as _uuid  # noqa: E402
from datetime import timedelta  # noqa: E402

from django.utils import timezone  # noqa: E402
from knox.models import AuthToken  # noqa: E402

from orders.models import Fill, OrderEvent  # noqa: E402


def make_token(user) -> str:
    """Issue a knox API token for ``user`` and return its plain text (for ``Authorization: Bearer``)."""
    _, token = AuthToken.objects.create(user=user)
    return token


class FillFactory(factory.django.DjangoModelFactory):
    """A stored fill row (read-side tests only: the journal writer owns fills)."""

    class Meta:
        model = Fill

    order = factory.SubFactory(OrderFactory)
    venue = factory.LazyAttribute(lambda o: o.order.venue or "BINANCE-SPOT")
    instrument_key = factory.LazyAttribute(lambda o: o.order.routed_instrument_key)  # as the journal writer
    venue_trade_id = factory.Sequence(lambda n: f"T{n}")
    side = factory.LazyAttribute(lambda o: trade_side(o.order.side))  # as the journal writer
    price = Decimal("40000")
    quantity = Decimal("0.005")
    fee = Decimal("0.2")
    fee_currency = "USDT"
    liquidity = Fill.Liquidity.TAKER
    ts_event = factory.LazyFunction(timezone.now)


class OrderEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OrderEvent

    order = factory.SubFactory(OrderFactory)
    type = OrderEvent.Type.RECEIVED
    actor = "test"
    ts = factory.LazyFunction(timezone.now)


def algorithm_family(strategy, *, fee_currencies=("USDT", "USDT", "USDT")):
    """Store a TWAP parent filled 0.02 at avg 40010 (fees 0.4) by its primary and two slices; return (parent, slices).

    The primary filled 0.005 @ 40000 (fee 0.1), slice 1 0.005 @ 40020 and slice 2 0.01 @ 40010 (fee 0.15 each),
    a second apart in that order (trade ids ``T-primary``, ``T-slice-1``, ``T-slice-2``); ``fee_currencies``
    are the three fills' fee currencies, in that order. The parent's figures are the family's, as the journal
    writer stores them (``Order.fees`` the plain sum of the fees).
    """
    primary_ccy, *slice_ccys = fee_currencies
    parent = OrderFactory(strategy=strategy, status="FILLED", exec_algorithm="TWAP", quantity=Decimal("0.02"),
                          filled_quantity=Decimal("0.02"), avg_fill_price=Decimal("40010"), fees=Decimal("0.4"))
    now = timezone.now()
    FillFactory(order=parent, price=Decimal("40000"), quantity=Decimal("0.005"), fee=Decimal("0.1"),
                fee_currency=primary_ccy, venue_trade_id="T-primary", ts_event=now)
    slices = []
    for n, (price, qty) in enumerate(((Decimal("40020"), Decimal("0.005")), (Decimal("40010"), Decimal("0.01"))), 1):
        child = OrderFactory(strategy=strategy, parent=parent, operation_id=f"op-slice-{n}", quantity=qty,
                             filled_quantity=qty, avg_fill_price=price, fees=Decimal("0.15"), status="FILLED")
        FillFactory(order=child, price=price, quantity=qty, fee=Decimal("0.15"), fee_currency=slice_ccys[n - 1],
                    venue_trade_id=f"T-slice-{n}", ts_event=now + timedelta(seconds=n))
        slices.append(child)
    return parent, slices


def order_body(**overrides) -> dict:
    """A valid JSON order message (LIMIT BUY 0.01 BTC-USDT on Binance spot at 40000), with overrides.

    An override of ``None`` removes the key.
    """
    body = {
        "operation_id": f"op-{_uuid.uuid4().hex}",
        "instrument_key": "BINANCE-SPOT:SPOT_PAIR:BTC-USDT",
        "side": "BUY",
        "quantity": "0.01",
        "price": "40000",
        "order_type": "LIMIT",
        "time_in_force": "GTC",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}
