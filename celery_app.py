"""The Celery app: queues and beat schedule.

Queues: ``venues`` is consumed only by the dedicated trading worker
(``celery -A celery_app worker -Q venues``), which hosts the TradingNode; ``default`` takes
everything else (sweepers, exports). Settings come from Django settings with the ``CELERY_`` prefix.
"""

import logging
import os
import signal

from celery import Celery
from celery.signals import celeryd_after_setup, task_prerun, worker_ready, worker_shutdown

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "odum_live.settings")

class OdumCelery(Celery):
    """Celery, reading its Django settings from a copy taken when its configuration first loads.

    Celery looks its settings up on every task it sends or receives (a publish makes six
    look-ups, each trying several key spellings). Against Django's settings object every try is
    a ``getattr`` through ``LazySettings``, and every miss raises and catches an AttributeError:
    ~0.2 ms of CPU per task sent on the benchmark machine (cProfile of ``apply_async``,
    ``celery.utils.collections.ChainMap.__getitem__``). The copy is a plain dict of the
    ``CELERY_``-prefixed names, which are all Celery reads under that namespace, so look-ups are
    dict probes. Changes made through ``app.conf`` after loading behave as before; a Django
    setting changed at run time (``override_settings``) no longer reaches Celery, which nothing
    here does.
    """

    def prepare_config(self, c):
        """Copy the ``CELERY_`` settings into a dict, then Celery's own preparation."""
        return super().prepare_config({key: c[key] for key in c if key.startswith("CELERY_")})


app = OdumCelery("odum_live")
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


logger = logging.getLogger(__name__)
#: Pools that run tasks in the worker's own process, where the TradingNode lives.
_IN_PROCESS_POOLS = {"solo", "threads", "thread"}


def _consumes_venues(consumer) -> bool:
    return "venues" in consumer.app.amqp.queues.consume_from


@task_prerun.connect
def drop_unusable_database_connections(sender=None, **kwargs):
    """Before each task, close this thread's connections that failed or outlived ``CONN_MAX_AGE``.

    Django does this around every request; Celery's fixup, with ``CELERY_DB_REUSE_MAX`` set
    (settings.py), otherwise keeps a connection the database dropped until its next reuse cycle.
    """
    if getattr(getattr(sender, "request", None), "is_eager", False):
        return  # an eager task runs inside its caller's transaction: leave its connection alone
    from django.db import close_old_connections

    close_old_connections()


def _needs_node_lease() -> bool:
    from django.conf import settings

    return settings.ODUM["TRADING_NODE"] == "worker" and bool(settings.REDIS_URL)


@celeryd_after_setup.connect
def acquire_node_lease_in_worker(sender=None, instance=None, **kwargs):
    """Take the trader id's node lease (venues/node/lease.py) before a worker consuming ``venues`` consumes.

    ``celeryd_after_setup`` is sent from the worker's ``on_start``, which its blueprint runs before
    starting any step (pool, consumer: celery/bootsteps.py ``Blueprint.start``), so a worker refused
    here never takes a venue task. Waits up to ``NODE_LEASE_WAIT_SECS`` for another holder (e.g. a
    crashed predecessor's lease expiring), then logs CRITICAL and raises ``WorkerShutdown``: a
    ``SystemExit``, which Celery's signal dispatch does not swallow (it catches ``Exception``) and
    ``WorkController.start`` turns into a stop with that exit code (``EX_UNAVAILABLE``, 69).
    Only in the ``worker`` TRADING_NODE mode with ``REDIS_URL``. A lease lost later (taken by another
    worker, or not renewed for ``NODE_LEASE_TTL_SECS``) stops the node (the host) and this worker (a
    warm shutdown: it takes no more venue tasks).
    """
    from django.conf import settings

    if instance is None or "venues" not in instance.app.amqp.queues.consume_from or not _needs_node_lease():
        return
    import redis
    from celery.exceptions import WorkerShutdown
    from celery.platforms import EX_UNAVAILABLE

    from venues.node.lease import NodeLeaseRefused, acquire_node_lease, lease_key

    odum = settings.ODUM
    trader_id = odum["NODE_TRADER_ID"]
    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=5)
        lease = acquire_node_lease(client=client, trader_id=trader_id, name=str(sender),
                                   ttl_secs=odum["NODE_LEASE_TTL_SECS"], wait_secs=odum["NODE_LEASE_WAIT_SECS"])
    except NodeLeaseRefused as exc:
        logger.critical("trading worker %s NOT started: %s. Another trading worker runs trader %s's node (token "
                        "%s); run one trading worker per NODE_TRADER_ID: stop that worker first, or give this one "
                        "its own NODE_TRADER_ID. This worker exits without consuming queue venues.",
                        sender, exc, trader_id, exc.holder)
        raise WorkerShutdown(EX_UNAVAILABLE) from exc
    except Exception as exc:  # noqa: BLE001 - e.g. Redis unreachable: never trade without the lease
        logger.critical("trading worker %s NOT started: node lease %s could not be taken (%s: %s); this worker "
                        "exits without consuming queue venues", sender, lease_key(trader_id), type(exc).__name__, exc)
        raise WorkerShutdown(EX_UNAVAILABLE) from exc
    lease.on_lost(_stop_worker_for_lost_lease)


def _stop_worker_for_lost_lease(reason: str) -> None:
    # The host stops the node when its lease is lost (venues/node/host.py); the worker must stop consuming
    # queue venues too, or each venue task it takes waits NODE_READY_WAIT_SECS and is rejected while the
    # lease's holder could have sent it. SIGTERM to this process is Celery's warm shutdown: the task in hand
    # ends, the rest stay queued for the holder (acks_late); the lease is left to its holder.
    logger.critical("trading worker stops consuming queue venues: %s", reason)
    os.kill(os.getpid(), signal.SIGTERM)


@worker_ready.connect
def start_trading_node_in_worker(sender=None, **kwargs):
    """Start the TradingNode in a worker consuming queue ``venues`` (``ODUM['TRADING_NODE']``: worker)."""
    from django.conf import settings

    if sender is None or not _consumes_venues(sender) or settings.ODUM["TRADING_NODE"] != "worker":
        return
    pool = getattr(getattr(sender, "controller", None), "pool_cls", None) or sender.app.conf.worker_pool
    pool = pool if isinstance(pool, str) else pool.__module__.rsplit(".", 1)[-1]
    if pool not in _IN_PROCESS_POOLS:
        logger.critical("trading node NOT started: pool %r runs tasks in child processes; start the trading "
                        "worker with -P solo (one node per process); venue commands will be rejected", pool)
        return
    from venues.node.host import NodeStartError, start_trading_node
    from venues.node.lease import node_lease

    if _needs_node_lease() and node_lease() is None:
        logger.critical("trading node NOT started: this worker holds no node lease (celeryd_after_setup did not "
                        "take it); venue commands will be rejected")
        return
    try:
        start_trading_node(hostname=sender.hostname)
    except NodeStartError as exc:
        logger.critical("trading node failed to start: %s; venue commands will be rejected", exc)


@worker_shutdown.connect
def stop_trading_node_in_worker(sender=None, **kwargs):
    """Stop the node (drain the journal) on worker shutdown (SIGTERM: warm shutdown); then release the node lease.

    The lease is released (compare-and-delete: only if still this worker's) after a clean stop only: a
    node that may still run keeps it until it expires (``NODE_LEASE_TTL_SECS``).
    """
    from venues.node.host import stop_trading_node
    from venues.node.lease import release_node_lease

    if stop_trading_node():
        release_node_lease()
