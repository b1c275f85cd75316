"""Let the risk manager and the viewer see reconciliation findings in the admin.

``positions.ReconciliationFinding`` is now in the admin (positions/admin.py); like every row the
system writes it is view only (the grant after this one lets risk managers mark findings resolved).
"""

import importlib

from django.db import migrations

GROUPS = ("risk manager", "viewer")
APP_LABEL, CODENAME = "positions", "view_reconciliationfinding"

_GRANTS = importlib.import_module("odum_live.migrations.0002_open_order_exposure_permissions")
grant, revoke = _GRANTS.permission_grant(app_label=APP_LABEL, codename=CODENAME, groups=GROUPS)


class Migration(migrations.Migration):
    dependencies = [
        ("odum_live", "0003_risk_manager_change_order"),
        ("positions", "0005_reconciliation_finding_external_fill"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
