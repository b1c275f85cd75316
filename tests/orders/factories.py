from decimal import Decimal

import factory
from django.contrib.auth import get_user_model

from orders.models import Order, Strategy


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.PostGenerationMethodCall("set_password", "pw-for-tests-1")


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
