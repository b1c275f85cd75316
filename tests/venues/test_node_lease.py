"""The node-ownership lease (venues/node/lease.py) against real Redis, the trading worker's start path
(celery_app.py) refusing when another worker holds it, and the host stopping when it is lost."""

from __future__ import annotations

import logging
import uuid
from types import SimpleNamespace

import pytest
from celery.exceptions import WorkerShutdown
from celery.platforms import EX_UNAVAILABLE

from tests.helpers import eventually, needs_market_data, running_node_host
from venues.commands import VenueCommandError
from venues.node.lease import NodeLease, NodeLeaseRefused, lease_key, node_lease, release_node_lease

pytestmark = pytest.mark.redis


@pytest.fixture
def trader_id(redis_client):
    trader = f"TESTLEASE-{uuid.uuid4().hex[:8]}"
    yield trader
    release_node_lease()
    redis_client.delete(lease_key(trader))


def _lease(client, trader_id, name, ttl_secs=5.0) -> NodeLease:
    return NodeLease(client, trader_id=trader_id, token=f"{name}:1:{uuid.uuid4().hex[:8]}", ttl_secs=ttl_secs)


def test_lease_free_is_taken_and_a_second_holder_is_refused_naming_the_first(redis_client, trader_id):
    # Arrange
    first, second = _lease(redis_client, trader_id, "first"), _lease(redis_client, trader_id, "second")

    # Act
    first.acquire(wait_secs=0)
    with pytest.raises(NodeLeaseRefused) as refused:
        second.acquire(wait_secs=0.2, poll_secs=0.02)

    # Assert
    assert first.held and not second.held
    assert refused.value.holder == first.token
    assert first.token in str(refused.value)
    assert redis_client.get(lease_key(trader_id)).decode() == first.token


def test_lease_expired_is_taken_over_by_a_waiting_holder_and_the_old_one_cannot_renew(redis_client, trader_id):
    # Arrange: a holder that crashed (never renews) with a short TTL
    crashed = _lease(redis_client, trader_id, "crashed", ttl_secs=0.3)
    successor = _lease(redis_client, trader_id, "next")
    crashed.acquire(wait_secs=0)

    # Act: the successor waits for it to expire
    successor.acquire(wait_secs=10, poll_secs=0.02)

    # Assert: the successor holds it; the old holder's renewal neither extends nor steals it
    assert successor.holder() == successor.token
    assert crashed.renew() is False
    assert successor.token in crashed.lost
    assert successor.holder() == successor.token


def test_lease_kept_outlives_its_ttl_while_a_second_holder_waits(redis_client, trader_id):
    # Arrange: a holder renewing every 0.05 s a lease of 1 s
    holder, second = _lease(redis_client, trader_id, "holder", ttl_secs=1.0), _lease(redis_client, trader_id, "second")
    holder.acquire(wait_secs=0)
    holder.keep(interval_secs=0.05)
    try:
        # Act: another worker waits three lifetimes of the lease
        with pytest.raises(NodeLeaseRefused) as refused:
            second.acquire(wait_secs=3.0, poll_secs=0.05)
    finally:
        released = holder.release()

    # Assert
    assert refused.value.holder == holder.token
    assert holder.lost == ""
    assert released


def test_lease_taken_by_another_token_is_lost_and_reported_once(redis_client, trader_id):
    # Arrange
    holder = _lease(redis_client, trader_id, "holder")
    holder.acquire(wait_secs=0)
    reasons = []
    holder.on_lost(reasons.append)
    holder.keep(interval_secs=0.02)

    # Act: another worker overwrote it (e.g. it expired during a Redis stall and was taken)
    redis_client.set(lease_key(trader_id), "intruder@host:9:abcd")

    # Assert: lost, named, the callback called once; the intruder's lease untouched. (``lost`` is set before
    # the callbacks run, on the keeper's thread: wait for the callback, not for the flag.)
    eventually(lambda: reasons, message="lease loss reported")
    assert reasons == [holder.lost] and "intruder@host:9:abcd" in holder.lost
    assert holder.release() is False
    assert redis_client.get(lease_key(trader_id)).decode() == "intruder@host:9:abcd"


def test_lease_released_is_deleted_and_free_for_the_next_worker(redis_client, trader_id):
    # Arrange
    holder, successor = _lease(redis_client, trader_id, "holder"), _lease(redis_client, trader_id, "next")
    holder.acquire(wait_secs=0)
    holder.keep(interval_secs=0.02)

    # Act
    released = holder.release()
    successor.acquire(wait_secs=0)

    # Assert
    assert released and not holder.held
    assert successor.holder() == successor.token


# -- the trading worker's start path (celery_app.py) -------------------------------------------------

def _worker(hostname: str, queues=("venues",)):
    # What Celery hands the handlers: the WorkController (celeryd_after_setup) / Consumer (worker_ready).
    app = SimpleNamespace(amqp=SimpleNamespace(queues=SimpleNamespace(consume_from={q: None for q in queues})),
                          conf=SimpleNamespace(worker_pool="solo"))
    return SimpleNamespace(app=app, hostname=hostname, controller=SimpleNamespace(pool_cls="solo"))


@pytest.fixture
def worker_mode(settings, trader_id):
    settings.ODUM = {**settings.ODUM, "TRADING_NODE": "worker", "NODE_TRADER_ID": trader_id,
                     "NODE_LEASE_TTL_SECS": 5.0, "NODE_LEASE_WAIT_SECS": 0.3}
    return settings


def test_worker_start_with_the_lease_held_by_another_worker_exits_before_consuming(
        worker_mode, redis_client, trader_id, caplog):
    # Arrange: another trading worker holds the trader id's lease
    from celery_app import acquire_node_lease_in_worker, start_trading_node_in_worker
    from venues.node.host import trading_node_host

    other = _lease(redis_client, trader_id, "trading@other")
    other.acquire(wait_secs=0)
    worker = _worker("trading@second")

    # Act
    with caplog.at_level(logging.CRITICAL, logger="celery_app"), pytest.raises(WorkerShutdown) as shutdown:
        acquire_node_lease_in_worker(sender=worker.hostname, instance=worker)
    start_trading_node_in_worker(sender=worker)  # were the worker to go on anyway

    # Assert: Celery stops with EX_UNAVAILABLE; the log names the holder; no lease, no node; theirs untouched
    assert isinstance(shutdown.value, SystemExit) and shutdown.value.code == EX_UNAVAILABLE
    refused = [r.getMessage() for r in caplog.records if r.levelno == logging.CRITICAL]
    assert any("NOT started" in m and other.token in m for m in refused), refused
    assert node_lease() is None and trading_node_host() is None
    assert other.holder() == other.token


def test_worker_start_with_the_lease_free_takes_it_and_its_shutdown_releases_it(worker_mode, redis_client, trader_id):
    # Arrange
    from celery_app import acquire_node_lease_in_worker, stop_trading_node_in_worker

    worker = _worker("trading@first")

    # Act / Assert: taken under a token naming the worker; released on the worker's shutdown
    acquire_node_lease_in_worker(sender=worker.hostname, instance=worker)
    lease = node_lease()
    assert lease is not None and lease.token.startswith("trading@first:")
    assert redis_client.get(lease_key(trader_id)).decode() == lease.token
    stop_trading_node_in_worker()
    assert node_lease() is None and redis_client.get(lease_key(trader_id)) is None


def test_worker_not_consuming_venues_takes_no_lease(worker_mode, redis_client, trader_id):
    from celery_app import acquire_node_lease_in_worker

    worker = _worker("default@host", queues=("default",))
    acquire_node_lease_in_worker(sender=worker.hostname, instance=worker)
    assert node_lease() is None and redis_client.get(lease_key(trader_id)) is None


# -- the host on a lost lease ------------------------------------------------------------------------

@needs_market_data
def test_host_whose_lease_is_taken_refuses_commands_and_stops_its_node(transactional_db, redis_client, trader_id):
    # Arrange: a running node holding its lease
    from tests.venues.test_node_host import _listing
    from venues.commands import CancelOrderCommand
    from venues.node.config import node_plan

    from odum_live.health import check_trading_node
    from tests.helpers import forget_trading_node_heartbeats

    _listing()
    forget_trading_node_heartbeats()
    lease = _lease(redis_client, trader_id, "trading@first")
    lease.acquire(wait_secs=0)
    lease.keep(interval_secs=0.02)
    try:
        with running_node_host(node_plan(), trader_id=trader_id, lease=lease, heartbeat_secs=3600) as host:
            assert host.is_ready()
            eventually(lambda: lease.token in check_trading_node().detail, message="health names the lease holder")

            # Act: another worker took the lease
            redis_client.set(lease_key(trader_id), "trading@second:2:beef")

            # Assert: no command taken, the node stopped, the error says why
            eventually(lambda: host.stopped, message="host stopped on the lost lease")
            assert not host.is_ready()
            with pytest.raises(VenueCommandError, match="trading@second:2:beef"):
                host.cancel(CancelOrderCommand(order_id=str(uuid.uuid4()), client_order_id="X", venue="BINANCE-SPOT"))
            eventually(lambda: host._thread is not None and not host._thread.is_alive(), message="node thread ended")
            assert check_trading_node().detail.startswith(f"stopped on {host.worker_id}")
            assert "trading@second:2:beef" in check_trading_node().detail
    finally:
        lease.release()
        forget_trading_node_heartbeats()
    assert redis_client.get(lease_key(trader_id)).decode() == "trading@second:2:beef"
