"""odum_live.broker: kombu's Redis transport with one client per channel (Celery's broker)."""

import os
import uuid

import pytest
from django.conf import settings
from kombu import Connection, Exchange, Queue

from odum_live.broker import Channel

@pytest.fixture
def connection():
    with Connection(os.environ["REDIS_URL"], transport="odum_live.broker:Transport") as conn:
        yield conn


@pytest.mark.redis
def test_production_settings_select_this_transport_for_a_redis_broker():
    from celery_app import app

    with app.connection_for_write() as conn:
        assert isinstance(conn.default_channel, Channel)


@pytest.mark.redis
def test_publish_get_and_ack_reuse_one_client_and_leave_nothing_unacked(connection, redis_client):
    # Arrange: a queue of its own; the channel publishes, takes and acks as Celery's worker does.
    queue = Queue(f"test-broker-{uuid.uuid4().hex}", Exchange("test-broker", type="direct"), routing_key="rk")
    channel = connection.channel()
    producer = connection.Producer(channel)
    bound = queue(channel)
    bound.declare()

    try:
        # Act
        for n in (1, 2):
            producer.publish({"n": n}, exchange=queue.exchange, routing_key="rk", serializer="json")
        client = channel._shared_client
        first = bound.get(no_ack=False)
        second = bound.get(no_ack=False)
        unacked_while_held = redis_client.zcard(channel.unacked_index_key)
        first.ack()
        second.ack()

        # Assert: both messages, in order; one client served every command; the unacked index
        # held both while they were being worked and is empty once they are acked.
        assert [first.payload, second.payload] == [{"n": 1}, {"n": 2}]
        assert client is not None and channel._shared_client is client
        assert unacked_while_held == 2
        assert redis_client.zcard(channel.unacked_index_key) == 0
    finally:
        bound.delete()
        channel.close()


@pytest.mark.redis
def test_a_replaced_pool_gets_a_new_client(connection):
    channel = connection.channel()
    try:
        with channel.conn_or_acquire() as before:
            assert before.ping()
        channel._pool = None  # what kombu does after a connection error (Channel._disconnect_pools)

        with channel.conn_or_acquire() as after:
            assert after.ping()

        assert after is not before and after.connection_pool is channel.pool
    finally:
        channel.close()


def test_embedded_default_keeps_the_memory_broker():
    # The transport is chosen only for a Redis broker URL.
    if settings.CELERY_BROKER_URL.startswith("redis"):
        pytest.skip("this run has a Redis broker")
    assert not hasattr(settings, "CELERY_BROKER_TRANSPORT")
