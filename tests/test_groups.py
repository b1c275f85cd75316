"""The role groups created by ``odum_live/migrations/0001_groups_and_permissions.py``."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

MIGRATION = ("odum_live", "0001_groups_and_permissions")

VIEW_ALL = {
    "orders.view_order",
    "orders.view_fill",
    "orders.view_orderevent",
    "orders.view_strategy",
    "positions.view_position",
    "venues.view_venue",
    "venues.view_instrument",
    "risk.view_risklimit",
    "risk.view_historicalrisklimit",
    "risk.view_tradingstate",
    "risk.view_historicaltradingstate",
}
RISK_MODELS_FULL = {
    f"risk.{action}_{model}"
    for action in ("add", "change", "delete", "view")
    for model in ("risklimit", "tradingstate")
} | {"risk.view_velocitybucket"}

EXPECTED = {
    "trader": {
        "orders.view_order",
        "orders.add_order",
        "orders.change_order",
        "orders.view_fill",
        "orders.view_orderevent",
        "orders.view_strategy",
        "positions.view_position",
        "venues.view_instrument",
        "venues.view_venue",
    },
    "risk manager": VIEW_ALL
    | {"risk.view_openorderexposure", "positions.view_reconciliationfinding",
       "positions.change_reconciliationfinding"}
    | RISK_MODELS_FULL
    | {"venues.change_venue", "orders.trade_any_strategy", "orders.change_order", "knox.view_authtoken",
       "knox.delete_authtoken"},
    "viewer": VIEW_ALL | {"risk.view_openorderexposure", "positions.view_reconciliationfinding"},
    "strategy service": {"orders.add_order", "orders.view_order", "positions.view_position"},
}


def _perms(group: Group) -> set[str]:
    return {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")}


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_group_after_migrate_has_exactly_the_intended_permissions(name):
    # Arrange / Act: the test database was built by `migrate`, which ran the data migration.
    group = Group.objects.get(name=name)

    # Assert
    assert _perms(group) == EXPECTED[name]


@pytest.mark.django_db
def test_groups_trade_any_strategy_only_risk_manager_holds_it():
    holders = set(Group.objects.filter(permissions__codename="trade_any_strategy").values_list("name", flat=True))

    assert holders == {"risk manager"}


@pytest.mark.django_db
def test_groups_history_is_view_only_for_everyone():
    # The audit trail is written by the system only: no role may add, change or delete it.
    editable_history = Permission.objects.filter(
        group__isnull=False, content_type__model__startswith="historical"
    ).exclude(codename__startswith="view_")

    assert list(editable_history.values_list("codename", flat=True)) == []


def _run_data_migrations(keys, *, forwards: bool) -> None:
    """Run the RunPython operations of ``keys`` (in the order given) against their historical apps."""
    loader = MigrationExecutor(connection).loader

    class _SchemaEditor:  # the functions use only ``schema_editor.connection``
        pass

    editor = _SchemaEditor()
    editor.connection = connection
    for key in keys:
        state_apps = loader.project_state(key).apps
        for operation in loader.graph.nodes[key].operations:
            (operation.code if forwards else operation.reverse_code)(state_apps, editor)


@pytest.mark.django_db
def test_groups_migrations_reverse_then_forward_restore_groups():
    # Arrange: every data migration of odum_live, oldest first.
    keys = sorted(key for key in MigrationExecutor(connection).loader.graph.nodes if key[0] == "odum_live")
    assert keys[0] == MIGRATION

    # Act / Assert: backwards removes the groups, forwards brings them back with their permissions.
    _run_data_migrations(reversed(keys), forwards=False)
    assert not Group.objects.filter(name__in=EXPECTED).exists()
    _run_data_migrations(keys, forwards=True)
    assert {name: _perms(Group.objects.get(name=name)) for name in EXPECTED} == EXPECTED


@pytest.mark.django_db
def test_groups_migration_is_recorded_as_applied():
    executor = MigrationExecutor(connection)

    assert MIGRATION in executor.loader.applied_migrations
