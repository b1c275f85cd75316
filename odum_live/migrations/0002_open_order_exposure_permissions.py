"""Let the risk manager and the viewer see the risk engine's open-order exposure totals.

``risk.OpenOrderExposure`` arrived after the role groups (0001); like every row the system writes,
it is view only, for both roles.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUPS = ("risk manager", "viewer")
CODENAME = "view_openorderexposure"


def grant(apps, schema_editor):
    """Create the risk app's permissions if needed, then add the view permission to the groups."""
    app_config = apps.get_app_config("risk")
    app_config.models_module = True  # historical app configs have none; create_permissions needs one
    create_permissions(app_config, apps=apps, verbosity=0, using=schema_editor.connection.alias)
    app_config.models_module = None
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    permission = Permission.objects.get(content_type__app_label="risk", codename=CODENAME)
    for group in Group.objects.filter(name__in=GROUPS):
        group.permissions.add(permission)


def revoke(apps, schema_editor):
    """Take the view permission away from the groups again."""
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    permission = Permission.objects.filter(content_type__app_label="risk", codename=CODENAME).first()
    if permission is not None:
        for group in Group.objects.filter(name__in=GROUPS):
            group.permissions.remove(permission)


class Migration(migrations.Migration):
    dependencies = [
        ("odum_live", "0001_groups_and_permissions"),
        ("risk", "0002_open_order_exposure"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
