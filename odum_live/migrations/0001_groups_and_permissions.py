"""Create the four role groups and give each its permissions.

Roles (DESIGN.md, "Who uses it"):

``trader``
    Works orders through the order ticket and the API: views, submits (add) and cancels (change)
    orders, and reads fills, the order timeline, positions, instruments, venues and strategies.
    A trader may trade only the strategies that list them in ``Strategy.traders``; the
    ``orders.trade_any_strategy`` permission is deliberately *not* given to traders.
``risk manager``
    Owns risk: add, change, delete and view on the risk limits and kill switches, and view on what
    the system writes in the risk app: the history models django-simple-history adds (who changed
    a limit or a kill switch, when, before/after; an audit trail nobody edits by hand) and the
    velocity buckets of the risk engine. Views everything else,
    may switch venues on and off (``venues.change_venue``; the admin narrows that to the
    ``enabled`` flag), may revoke API tokens (``knox.delete_authtoken``) and holds
    ``orders.trade_any_strategy`` so they can cancel or flatten any strategy in an incident.
``viewer``
    Read only: view permissions on orders, fills, order events, strategies, positions, venues,
    instruments, risk limits and trading states (with their history).
``strategy service``
    The service account of a strategy (``svc-<strategy>``): submits and reads orders, reads
    positions, through the token-authenticated API.

Permissions do not exist yet on a fresh database when this migration runs (Django creates them in
``post_migrate``), so they are created here first with
``django.contrib.auth.management.create_permissions``, the standard recipe. Every permission is
named explicitly (no "whole app" wildcard), so the result does not depend on which later
migrations of the apps happen to run first; models added later join the groups through a
follow-up data migration here.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

#: Apps whose models the role permissions refer to.
_APPS = ("orders", "risk", "venues", "positions", "knox")

#: Risk models the risk manager edits (what the system writes is view only).
_RISK_OWNED = ("risklimit", "tradingstate")

#: Viewable models per app (risk includes the simple-history tables).
_VIEW_ALL = {
    "orders": ("order", "fill", "orderevent", "strategy"),
    "positions": ("position",),
    "venues": ("venue", "instrument"),
    "risk": ("risklimit", "historicalrisklimit", "tradingstate", "historicaltradingstate"),
}
_RISK_MANAGER_VIEW = {"risk.view_velocitybucket"}

GROUP_PERMISSIONS: dict[str, list[str]] = {
    "trader": [
        "orders.view_order",
        "orders.add_order",
        "orders.change_order",
        "orders.view_fill",
        "orders.view_orderevent",
        "orders.view_strategy",
        "positions.view_position",
        "venues.view_instrument",
        "venues.view_venue",
    ],
    "risk manager": sorted(
        {f"{app}.view_{model}" for app, models in _VIEW_ALL.items() for model in models}
        | _RISK_MANAGER_VIEW
        | {
            *(f"risk.{action}_{model}" for action in ("add", "change", "delete") for model in _RISK_OWNED),
            "venues.change_venue",
            "orders.trade_any_strategy",
            "knox.view_authtoken",
            "knox.delete_authtoken",
        }
    ),
    "viewer": sorted(f"{app}.view_{model}" for app, models in _VIEW_ALL.items() for model in models),
    "strategy service": [
        "orders.add_order",
        "orders.view_order",
        "positions.view_position",
    ],
}


def _permissions_for(Permission, specs: list[str]):
    """Resolve ``app_label.codename`` specs to Permission rows; a missing one is an error naming it."""
    found = []
    for spec in specs:
        app_label, codename = spec.split(".", 1)
        rows = list(Permission.objects.filter(content_type__app_label=app_label, codename=codename))
        if len(rows) != 1:
            raise RuntimeError(f"permission {spec!r}: expected exactly one, found {len(rows)}")
        found.extend(rows)
    return found


def create_groups(apps, schema_editor):
    """Create the permissions of the role apps, then the groups with their permissions."""
    for app_label in ("auth", "contenttypes", *_APPS):
        app_config = apps.get_app_config(app_label)
        # Historical app configs carry no models module; create_permissions skips those without one.
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0, using=schema_editor.connection.alias)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, specs in GROUP_PERMISSIONS.items():
        group, _ = Group.objects.using(schema_editor.connection.alias).get_or_create(name=name)
        group.permissions.set(_permissions_for(Permission, specs))


def delete_groups(apps, schema_editor):
    """Remove the role groups (the permissions themselves belong to their apps and stay)."""
    Group = apps.get_model("auth", "Group")
    Group.objects.using(schema_editor.connection.alias).filter(name__in=GROUP_PERMISSIONS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("knox", "0009_extend_authtoken_field"),
        ("orders", "0001_initial"),
        ("positions", "0001_initial"),
        ("risk", "0001_initial"),
        ("venues", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_groups, delete_groups)]
