"""Let the risk manager and the viewer see the risk engine's open-order exposure totals.

``risk.OpenOrderExposure`` arrived after the role groups (0001); like every row the system writes,
it is view only, for both roles. :func:`permission_grant` is shared with later grants (0003).
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUPS = ("risk manager", "viewer")
APP_LABEL, CODENAME = "risk", "view_openorderexposure"


def permission_grant(*, app_label: str, codename: str, groups: tuple[str, ...]):
    """Return the ``RunPython`` pair (grant, revoke) of the permission ``app_label.codename`` on ``groups``."""

    def grant(apps, schema_editor):
        # Create the app's permissions if needed, then add the permission to the groups.
        app_config = apps.get_app_config(app_label)
        app_config.models_module = True  # historical app configs have none; create_permissions needs one
        create_permissions(app_config, apps=apps, verbosity=0, using=schema_editor.connection.alias)
        app_config.models_module = None
        Permission = apps.get_model("auth", "Permission")
        Group = apps.get_model("auth", "Group")
        permission = Permission.objects.get(content_type__app_label=app_label, codename=codename)
        for group in Group.objects.filter(name__in=groups):
            group.permissions.add(permission)

    def revoke(apps, schema_editor):
        # Take the permission away from the groups again.
        Permission = apps.get_model("auth", "Permission")
        Group = apps.get_model("auth", "Group")
        permission = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
        if permission is not None:
            for group in Group.objects.filter(name__in=groups):
                group.permissions.remove(permission)

    return grant, revoke


grant, revoke = permission_grant(app_label=APP_LABEL, codename=CODENAME, groups=GROUPS)


class Migration(migrations.Migration):
    dependencies = [
        ("odum_live", "0001_groups_and_permissions"),
        ("risk", "0002_open_order_exposure"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
