from decimal import Decimal

import factory

from risk.models import RiskLimit, Scope, TradingState


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
