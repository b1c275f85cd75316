"""Per-venue circuit breakers (venues/circuit.py): counting, opening, trials, sharing, outages.

The same tests run on process memory (no REDIS_URL) and on Redis (REDIS_URL set); the tests marked
``redis`` check what only Redis gives: state shared between processes.
"""

import logging
import os

import pybreaker
import pytest

from venues.circuit import (
    CircuitState,
    circuit_status,
    circuit_statuses,
    is_circuit_open,
    record_venue_failure,
    record_venue_success,
    reset_circuit_breakers,
    venue_breaker,
)

VENUE = "BYBIT"


def fail(code, times):
    for _ in range(times):
        record_venue_failure(code, ConnectionError("venue unreachable"))


def test_circuit_new_venue_is_closed():
    # Act
    status = circuit_status(VENUE)

    # Assert
    assert status.state is CircuitState.CLOSED and not status.is_open and status.is_known
    assert not is_circuit_open(VENUE)


def test_circuit_fewer_failures_than_fail_max_stays_closed_and_counts():
    # Act
    fail(VENUE, 2)  # CIRCUIT_FAIL_MAX is 3 in these tests

    # Assert
    status = circuit_status(VENUE)
    assert status.state is CircuitState.CLOSED and status.detail == "2 consecutive failure(s)"


def test_circuit_fail_max_consecutive_failures_opens_it():
    # Act
    fail(VENUE, 3)

    # Assert
    status = circuit_status(VENUE)
    assert is_circuit_open(VENUE)
    assert status.state is CircuitState.OPEN and "trial allowed from" in status.detail


def test_circuit_success_resets_consecutive_failures():
    # Arrange
    fail(VENUE, 2)

    # Act
    record_venue_success(VENUE)
    fail(VENUE, 2)

    # Assert
    assert circuit_status(VENUE).state is CircuitState.CLOSED


def test_circuit_is_per_venue():
    # Act
    fail(VENUE, 3)

    # Assert
    assert circuit_statuses([VENUE, "OKX", VENUE]) == {
        VENUE: circuit_status(VENUE),
        "OKX": circuit_status("OKX"),
    }
    assert is_circuit_open(VENUE) and not is_circuit_open("OKX")
    assert venue_breaker(VENUE) is venue_breaker(VENUE) and venue_breaker(VENUE) is not venue_breaker("OKX")


def test_circuit_record_failure_while_open_does_not_raise_or_count():
    # Arrange
    fail(VENUE, 3)

    # Act
    fail(VENUE, 5)

    # Assert
    assert is_circuit_open(VENUE)


def test_circuit_record_failure_keeps_callers_traceback():
    # Arrange
    try:
        raise TimeoutError("no answer in 5 s")
    except TimeoutError as caught:
        exc = caught
    traceback = exc.__traceback__

    # Act
    record_venue_failure(VENUE, exc)

    # Assert
    assert exc.__traceback__ is traceback


def test_circuit_open_past_reset_timeout_reports_half_open_and_success_closes(settings):
    # Arrange
    settings.ODUM = {**settings.ODUM, "CIRCUIT_RESET_TIMEOUT_SECS": 0}
    fail(VENUE, 3)

    # Act
    before = circuit_status(VENUE)
    record_venue_success(VENUE)

    # Assert
    assert before.state is CircuitState.HALF_OPEN and not before.is_open
    assert circuit_status(VENUE).state is CircuitState.CLOSED


def test_circuit_failed_trial_opens_it_again(settings):
    # Arrange
    settings.ODUM = {**settings.ODUM, "CIRCUIT_RESET_TIMEOUT_SECS": 0}
    fail(VENUE, 3)
    assert circuit_status(VENUE).state is CircuitState.HALF_OPEN

    # Act
    fail(VENUE, 1)
    venue_breaker(VENUE).reset_timeout = 60  # now the new opening is within its timeout

    # Assert
    assert circuit_status(VENUE).state is CircuitState.OPEN


def test_circuit_opening_is_logged_as_warning(caplog):
    # Act
    with caplog.at_level(logging.INFO, logger="venues.circuit"):
        fail(VENUE, 3)

    # Assert
    assert any(r.levelno == logging.WARNING and f"venue circuit {VENUE}: closed -> open" in r.getMessage()
               for r in caplog.records)


def test_circuit_redis_unreachable_is_unknown_and_never_raises(settings):
    # Arrange
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1

    # Act
    breaker = venue_breaker(VENUE)
    fail(VENUE, 3)
    record_venue_success(VENUE)
    status = circuit_status(VENUE)

    # Assert
    assert isinstance(breaker, pybreaker.CircuitBreaker)
    assert status.state is CircuitState.UNKNOWN and not status.is_known
    assert status.detail.startswith("circuit state unknown: Redis unavailable (ConnectionError")
    assert is_circuit_open(VENUE) is False


# -- Redis only ------------------------------------------------------------------------------------
@pytest.mark.redis
def test_circuit_redis_state_is_shared_with_other_processes(circuit_prefix, redis_client):
    # Arrange: another process = another breaker on its own connection, same namespace.
    import redis

    other_client = redis.Redis.from_url(os.environ["REDIS_URL"])
    other = pybreaker.CircuitBreaker(
        fail_max=3,
        state_storage=pybreaker.CircuitRedisStorage(
            pybreaker.STATE_CLOSED, other_client, namespace=f"{circuit_prefix}:OKX"
        ),
    )

    # Act
    fail(VENUE, 3)  # this process trips BYBIT
    other.open()  # the other process trips OKX
    reset_circuit_breakers()  # forget everything local, as a freshly started process would

    # Assert
    assert redis_client.get(f"{circuit_prefix}:{VENUE}:pybreaker:state") == b"open"
    assert is_circuit_open(VENUE) and is_circuit_open("OKX")
    other_client.close()


@pytest.mark.redis
def test_circuit_redis_trial_success_in_one_process_closes_for_all(circuit_prefix, settings):
    # Arrange
    settings.ODUM = {**settings.ODUM, "CIRCUIT_RESET_TIMEOUT_SECS": 0}
    fail(VENUE, 3)

    # Act
    record_venue_success(VENUE)
    reset_circuit_breakers()

    # Assert
    assert circuit_status(VENUE).state is CircuitState.CLOSED


@pytest.mark.redis
def test_circuit_redis_storage_needs_a_bytes_client(circuit_prefix):
    # Arrange: why venues.circuit builds its client with decode_responses=False.
    import redis

    decoding = redis.Redis.from_url(os.environ["REDIS_URL"], decode_responses=True)
    storage = pybreaker.CircuitRedisStorage(pybreaker.STATE_CLOSED, decoding, namespace=f"{circuit_prefix}:X")

    # Act / Assert
    with pytest.raises(AttributeError, match="decode"):
        storage.state  # noqa: B018
    ours = venue_breaker(VENUE)._state_storage._redis
    assert ours.connection_pool.connection_kwargs["decode_responses"] is False
    decoding.close()
