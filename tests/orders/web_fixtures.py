"""Fixtures of the order pages' tests: people in the role groups, logged-in clients."""

import importlib
import uuid

import pytest
from django.contrib.auth.models import Group, Permission
from django.test import Client

from tests.orders.factories import UserFactory


#: The odum_live migrations that grant one more permission to some role groups (after 0001).
LATER_GRANTS = ("0002_open_order_exposure_permissions", "0003_risk_manager_change_order",
                "0004_view_reconciliation_finding", "0005_risk_manager_resolve_reconciliation_finding")


def role_group(name: str) -> Group:
    """The role group ``name`` as the groups migrations make it — made again after a
    ``transaction=True`` test flushed the tables (permissions come back with ``post_migrate``)."""
    group, created = Group.objects.get_or_create(name=name)
    if created:
        migration = importlib.import_module("odum_live.migrations.0001_groups_and_permissions")
        specs = [spec.partition(".")[::2] for spec in migration.GROUP_PERMISSIONS[name]]
        for module in LATER_GRANTS:
            grant = importlib.import_module(f"odum_live.migrations.{module}")
            if name in grant.GROUPS:
                specs.append((grant.APP_LABEL, grant.CODENAME))
        for app_label, code in specs:
            group.permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=code))
    return group


def person_in(group: str, *, username: str | None = None):
    """A user in the role group ``group`` (odum_live/migrations/0001_groups_and_permissions.py)."""
    user = UserFactory(username=username or f"{group.replace(' ', '-')}-{uuid.uuid4().hex[:6]}")
    user.groups.add(role_group(group))
    return user


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def trader(strategy):
    """A trader listed on strategy ``alpha``."""
    user = person_in("trader")
    strategy.traders.add(user)
    return user


@pytest.fixture
def trader_client(trader) -> Client:
    return logged_in(trader)


@pytest.fixture
def viewer_client(db) -> Client:
    return logged_in(person_in("viewer"))
