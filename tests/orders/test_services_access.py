"""``orders.services.access``: which users' open connections are told that their access changed."""

import pytest
from django.contrib.auth.models import Group, Permission
from knox.models import AuthToken

from orders.services import access
from tests.orders.factories import StrategyFactory, UserFactory


@pytest.fixture
def told(monkeypatch):
    """The user ids each access.changed push named, in order of the pushes."""
    sent: list[list[int]] = []
    monkeypatch.setattr(access, "_send", lambda ids, extra: sent.append(ids))
    return sent


@pytest.mark.django_db
def test_revoking_a_token_tells_its_user(told, django_capture_on_commit_callbacks):
    strategy = StrategyFactory(id="alpha")
    token, _ = AuthToken.objects.create(user=strategy.service_account)

    with django_capture_on_commit_callbacks(execute=True):
        token.delete()

    assert told == [[strategy.service_account.pk]]


@pytest.mark.django_db
def test_changing_a_groups_permissions_tells_its_members_only(told, django_capture_on_commit_callbacks):
    group = Group.objects.create(name="desk")
    members = [UserFactory(username="m1"), UserFactory(username="m2")]
    UserFactory(username="outsider")
    group.user_set.add(*members)
    view_order = Permission.objects.get(content_type__app_label="orders", codename="view_order")

    with django_capture_on_commit_callbacks(execute=True):
        group.permissions.add(view_order)
    with django_capture_on_commit_callbacks(execute=True):
        view_order.group_set.clear()

    assert told == [sorted(u.pk for u in members)] * 2


@pytest.mark.django_db
def test_groups_and_traders_changed_from_either_side_tell_the_users(told, django_capture_on_commit_callbacks):
    user = UserFactory(username="t1")
    group = Group.objects.create(name="desk")
    strategy = StrategyFactory(id="alpha")

    with django_capture_on_commit_callbacks(execute=True):
        user.groups.add(group)
        group.user_set.clear()
        strategy.traders.add(user)
        user.tradable_strategies.remove(strategy)

    assert told == [[user.pk]] * 4


@pytest.mark.django_db
def test_a_login_tells_nobody_a_deactivation_does(told, django_capture_on_commit_callbacks):
    user = UserFactory(username="u1")

    with django_capture_on_commit_callbacks(execute=True):
        user.save(update_fields=["last_login"])
    assert told == []
    with django_capture_on_commit_callbacks(execute=True):
        user.is_active = False
        user.save()

    assert told == [[user.pk]]


@pytest.mark.django_db
def test_detaching_a_strategys_service_account_tells_the_account(told, django_capture_on_commit_callbacks):
    strategy = StrategyFactory(id="alpha")
    account = strategy.service_account

    with django_capture_on_commit_callbacks(execute=True):
        strategy.service_account = None
        strategy.save()

    assert told == [[account.pk]]


@pytest.mark.django_db
def test_a_logout_names_the_ended_session_by_its_fingerprint(monkeypatch, django_capture_on_commit_callbacks):
    # The logout signal comes before Django flushes the session: the message must name it
    from django.test import Client

    from odum_live.live import session_fingerprint

    sent = []
    monkeypatch.setattr(access, "_send", lambda ids, extra: sent.append((ids, extra)))
    user = UserFactory(username="u2")
    client = Client()
    client.force_login(user)
    key = client.session.session_key

    with django_capture_on_commit_callbacks(execute=True):
        client.logout()

    assert sent == [([user.pk], {"ended_session": session_fingerprint(key)})]
