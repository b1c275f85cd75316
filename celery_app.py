"""The Celery app: queues and beat schedule.

Queues: ``venues`` is consumed only by the dedicated trading worker
(``celery -A celery_app worker -Q venues``), which hosts the TradingNode; ``default`` takes
everything else (sweepers, exports). Settings come from Django settings with the ``CELERY_`` prefix.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "odum_live.settings")

app = Celery("odum_live")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_default_queue = "default"
app.conf.task_routes = {"venues.tasks.*": {"queue": "venues"}}
app.conf.beat_schedule = {
    "redispatch-stale-routed-orders": {
        "task": "orders.tasks.redispatch_stale_orders",
        "schedule": 10.0,
    },
    "rebuild-open-order-exposure": {
        "task": "risk.tasks.rebuild_open_exposure",
        "schedule": 300.0,
    },
}
app.autodiscover_tasks(["orders", "risk", "venues"])
