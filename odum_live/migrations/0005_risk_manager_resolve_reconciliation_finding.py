"""Let the risk manager mark reconciliation findings resolved.

``positions.change_reconciliationfinding`` grants only the admin's "Mark resolved" action
(positions/admin.py, :func:`positions.services.reconciliation_findings_resolve`): the admin keeps
the rows read-only for everyone. An EXTERNAL_FILL finding (a fill the OMS did not originate) stays
open until a person has dealt with it.
"""

import importlib

from django.db import migrations

GROUPS = ("risk manager",)
APP_LABEL, CODENAME = "positions", "change_reconciliationfinding"

_GRANTS = importlib.import_module("odum_live.migrations.0002_open_order_exposure_permissions")
grant, revoke = _GRANTS.permission_grant(app_label=APP_LABEL, codename=CODENAME, groups=GROUPS)


class Migration(migrations.Migration):
    dependencies = [("odum_live", "0004_view_reconciliation_finding")]

    operations = [migrations.RunPython(grant, revoke)]
