from decimal import Decimal

import factory

from odum_live.instruments import parse_instrument_key
from odum_live.intent import OrderIntent
from risk.models import OpenOrderExposure, RiskLimit, Scope, TradingState


class RiskLimitFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RiskLimit
        django_get_or_create = ("scope", "scope_key", "kind")

    scope = Scope.GLOBAL
    scope_key = ""
    kind = RiskLimit.Kind.MAX_ORDER_QUANTITY
    value = Decimal("10")
    enabled = True


class TradingStateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TradingState
        django_get_or_create = ("scope", "scope_key")

    scope = Scope.GLOBAL
    scope_key = ""
    state = TradingState.State.ACTIVE
    reason = "test"


class OpenOrderExposureFactory(factory.django.DjangoModelFactory):
    """A running open-order total (as the engine records it for accepted orders)."""

    class Meta:
        model = OpenOrderExposure
        django_get_or_create = ("strategy_id", "instrument_key", "side")

    strategy_id = "demo"
    instrument_key = "BINANCE-SPOT:SPOT_PAIR:BTC-USDT"
    side = "BUY"
    venue = factory.LazyAttribute(lambda o: o.instrument_key.split(":")[0])
    equivalence_key = factory.LazyAttribute(lambda o: parse_instrument_key(o.instrument_key).equivalence_key)
    leaves_quantity = Decimal("0")
    priced_quantity = factory.LazyAttribute(lambda o: o.leaves_quantity)
    priced_value = Decimal("0")


def order_intent(**overrides) -> OrderIntent:
    """An OrderIntent: strategy ``demo`` buys 0.01 BTC-USDT on BINANCE-SPOT at 40000 (LIMIT GTC)."""
    fields = {
        "strategy_id": "demo",
        "instrument": "BINANCE-SPOT:SPOT_PAIR:BTC-USDT",
        "side": "BUY",
        "order_type": "LIMIT",
        "quantity": Decimal("0.01"),
        "price": Decimal("40000"),
    }
    fields.update(overrides)
    if isinstance(fields["instrument"], str):
        fields["instrument"] = parse_instrument_key(fields["instrument"])
    return OrderIntent(**fields)
