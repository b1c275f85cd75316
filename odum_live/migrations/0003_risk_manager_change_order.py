"""Give the risk manager ``orders.change_order``: the permission to cancel orders.

One trading policy for the API, the pages and the command line (the lead's decision, session 14;
:meth:`orders.selectors.OrderAccess.trade_refusal`): a person cancels only with
``orders.change_order`` *and* the right to trade the order's strategy. Risk managers trade every
strategy (``orders.trade_any_strategy``) so they can cancel any strategy's orders in an incident
(0001); until now the pages let that permission stand in for ``orders.change_order``. The admin
keeps orders read-only for everyone (``ReadOnlyAdminMixin``), so this grants cancelling only.
"""

import importlib

from django.db import migrations

GROUPS = ("risk manager",)
APP_LABEL, CODENAME = "orders", "change_order"

_GRANTS = importlib.import_module("odum_live.migrations.0002_open_order_exposure_permissions")
grant, revoke = _GRANTS.permission_grant(app_label=APP_LABEL, codename=CODENAME, groups=GROUPS)


class Migration(migrations.Migration):
    dependencies = [("odum_live", "0002_open_order_exposure_permissions")]

    operations = [migrations.RunPython(grant, revoke)]
