import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from orders.selectors import (
    StrategyForbidden,
    StrategyNotFound,
    StrategyRequired,
    order_access_for,
    order_visible_queryset,
    strategy_for_submit,
)
from tests.orders.factories import OrderFactory, UserFactory

pytestmark = pytest.mark.django_db


def _grant(user, codename):
    user.user_permissions.add(Permission.objects.get(codename=codename, content_type__app_label="orders"))
    return type(user).objects.get(pk=user.pk)  # fresh instance: permission cache


def test_access_strategy_service_sees_only_its_strategy_even_with_view_permission(strategy, other_strategy):
    svc = _grant(strategy.service_account, "view_order")
    OrderFactory(strategy=strategy)
    OrderFactory(strategy=other_strategy)
    access = order_access_for(user=svc)
    assert {o.strategy_id for o in order_visible_queryset(access=access)} == {"alpha"}
    assert access.can_trade("alpha") and not access.can_trade("beta")


def test_access_person_with_view_permission_sees_all(strategy, other_strategy, person):
    OrderFactory(strategy=strategy)
    OrderFactory(strategy=other_strategy)
    access = order_access_for(user=_grant(person, "view_order"))
    assert order_visible_queryset(access=access).count() == 2
    assert not access.can_trade("alpha")  # seeing is not trading


def test_access_trader_sees_and_trades_their_strategies_only(strategy, other_strategy, person):
    strategy.traders.add(person)
    OrderFactory(strategy=strategy)
    OrderFactory(strategy=other_strategy)
    access = order_access_for(user=person)
    assert {o.strategy_id for o in order_visible_queryset(access=access)} == {"alpha"}
    assert access.can_trade("alpha") and not access.can_trade("beta")


def test_access_person_without_anything_sees_nothing(strategy, person):
    OrderFactory(strategy=strategy)
    assert order_visible_queryset(access=order_access_for(user=person)).count() == 0


def test_strategy_for_submit_service_account_implies_its_strategy(strategy, django_assert_num_queries):
    user = get_user_model().objects.get(pk=strategy.service_account_id)  # a session: nothing preloaded
    with django_assert_num_queries(1):
        assert strategy_for_submit(user=user, strategy_id=None) == strategy


def test_strategy_for_submit_bearer_token_user_needs_no_query(strategy, django_assert_num_queries):
    from rest_framework.test import APIRequestFactory

    from orders.api.authentication import BearerTokenAuthentication
    from tests.orders.factories import make_token

    token = make_token(strategy.service_account)
    request = APIRequestFactory().get("/", HTTP_AUTHORIZATION=f"Bearer {token}")
    user, _ = BearerTokenAuthentication().authenticate(request)
    with django_assert_num_queries(0):
        assert strategy_for_submit(user=user, strategy_id=None) == strategy


def test_strategy_for_submit_service_token_naming_another_strategy_is_forbidden(strategy, other_strategy):
    with pytest.raises(StrategyForbidden) as exc:
        strategy_for_submit(user=strategy.service_account, strategy_id="beta")
    assert "bound to strategy 'alpha'" in str(exc.value)


def test_strategy_for_submit_person_needs_a_strategy_id(person):
    with pytest.raises(StrategyRequired):
        strategy_for_submit(user=person, strategy_id=None)


def test_strategy_for_submit_unknown_strategy_is_not_found(person):
    with pytest.raises(StrategyNotFound):
        strategy_for_submit(user=person, strategy_id="nope")


def test_strategy_for_submit_listed_trader_costs_four_queries(strategy, person, django_assert_num_queries):
    strategy.traders.add(person)
    person = _grant(person, "add_order")
    # not a service account; the named strategy with is_trader; the user's and their groups' permissions
    with django_assert_num_queries(4):
        assert strategy_for_submit(user=person, strategy_id="alpha") == strategy


def test_strategy_for_submit_listed_trader_without_add_order_is_forbidden_naming_it(strategy, person):
    strategy.traders.add(person)

    with pytest.raises(StrategyForbidden) as exc:
        strategy_for_submit(user=person, strategy_id="alpha")

    assert (exc.value.code, exc.value.strategy_id) == ("permission_denied", "alpha")
    assert "orders.add_order" in str(exc.value)


def test_strategy_for_submit_trade_any_permission_allows_any_strategy(strategy, person):
    _grant(person, "trade_any_strategy")
    assert strategy_for_submit(user=_grant(person, "add_order"), strategy_id="alpha") == strategy


@pytest.mark.parametrize(("codenames", "action", "allowed"), [
    (("add_order",), "submit", True),
    (("change_order",), "cancel", True),
    (("change_order", "view_order"), "submit", False),
    (("add_order", "view_order"), "cancel", False),
    ((), "submit", False),
])
def test_trade_refusal_listed_person_needs_the_actions_permission(strategy, person, codenames, action, allowed):
    # Arrange
    strategy.traders.add(person)
    for codename in codenames:
        person = _grant(person, codename)
    # Act
    refusal = order_access_for(user=person).trade_refusal(action, "alpha")
    # Assert
    assert (refusal is None) == allowed
    if not allowed:
        assert refusal.code == "permission_denied" and refusal.strategy_id == "alpha"


def test_trade_refusal_permission_without_the_strategy_is_strategy_forbidden(strategy, other_strategy, person):
    strategy.traders.add(person)
    access = order_access_for(user=_grant(_grant(person, "add_order"), "change_order"))

    refusals = [access.trade_refusal(action, "beta") for action in ("submit", "cancel")]

    assert [(r.code, r.strategy_id) for r in refusals] == [("strategy_forbidden", "beta")] * 2


def test_trade_refusal_service_account_trades_its_own_strategy_whatever_its_permissions(strategy, other_strategy):
    # Arrange: the strategy service group holds no orders.change_order, yet the service cancels its orders
    access = order_access_for(user=strategy.service_account)
    # Act / Assert
    assert access.trade_refusal("submit", "alpha") is None and access.trade_refusal("cancel", "alpha") is None
    assert access.trade_refusal("cancel", "beta").code == "strategy_forbidden"


def test_strategy_for_submit_unlisted_person_is_forbidden_naming_the_strategy(strategy):
    with pytest.raises(StrategyForbidden) as exc:
        strategy_for_submit(user=UserFactory(username="mallory"), strategy_id="alpha")
    assert exc.value.strategy_id == "alpha" and "'alpha'" in str(exc.value)
