"""Per-venue circuit breakers: stop sending orders to a venue that keeps failing.

One :class:`pybreaker.CircuitBreaker` per venue code (the pattern of Nygard, *Release It!*, 2nd ed.,
ch. 5 "Circuit Breaker"; library: pybreaker 1.4.1, pinned). The venue layer reports outcomes with
:func:`record_venue_failure` / :func:`record_venue_success` (or calls through
:func:`venue_breaker`); the router reads the state with :func:`circuit_statuses`.

State lives in Redis when ``settings.REDIS_URL`` is set (``pybreaker.CircuitRedisStorage``), so
every web and worker process sees the same circuit; in process memory otherwise (the embedded
default, where the venue layer runs in the web process).

Facts from the installed pybreaker source that shape this module:

- ``CircuitRedisStorage`` needs a client with ``decode_responses=False``: it calls
  ``.decode("utf-8")`` on the stored state, which a decoding client returns as ``str``
  (``AttributeError``). Our client is created bytes-mode on purpose.
- Its constructor writes the initial keys (``SETNX``) without catching ``RedisError``, so a Redis
  outage would make building a breaker raise; :class:`_VenueRedisStorage` tolerates that (the state
  getter re-initialises missing keys later).
- Its getters swallow ``RedisError`` and answer "closed", so a breaker cannot tell "closed" from
  "unknown". The router needs the difference: :func:`circuit_statuses` reads the keys itself in one
  ``MGET`` and reports :attr:`CircuitState.UNKNOWN` when Redis does not answer.
- An open circuit stays "open" in storage until somebody calls through it after
  ``reset_timeout``; only then does pybreaker move it to half-open. A router that skipped every
  "open" venue would therefore exclude it for ever. :func:`circuit_statuses` reports an open
  circuit whose reset timeout has elapsed as :attr:`CircuitState.HALF_OPEN` (the next call is the
  trial), exactly as pybreaker's ``CircuitOpenState.before_call`` decides.

Settings (``settings.ODUM``, all optional): ``CIRCUIT_FAIL_MAX`` (consecutive failures that open
the circuit, default 5), ``CIRCUIT_RESET_TIMEOUT_SECS`` (seconds open before a trial call, default
30), ``CIRCUIT_PREFIX`` (Redis key prefix, default ``odum:circuit``), ``CIRCUIT_REDIS_TIMEOUT_SECS``
(socket timeout of the circuit's Redis client, default 0.25).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import StrEnum

import pybreaker
from django.conf import settings
from django.core.signals import setting_changed
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

DEFAULT_FAIL_MAX = 5
DEFAULT_RESET_TIMEOUT_SECS = 30
DEFAULT_PREFIX = "odum:circuit"
DEFAULT_REDIS_TIMEOUT_SECS = 0.25


class CircuitState(StrEnum):
    """A venue circuit's state as the router sees it (pybreaker's three, plus ``unknown``)."""

    CLOSED = pybreaker.STATE_CLOSED
    OPEN = pybreaker.STATE_OPEN
    HALF_OPEN = pybreaker.STATE_HALF_OPEN
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class CircuitStatus:
    """The circuit state of one venue, with a human-readable detail for the decision record.

    Parameters
    ----------
    venue : str
        Venue code.
    state : CircuitState
        ``open`` only while the reset timeout has not elapsed; ``half-open`` when the next call is
        a trial; ``unknown`` when the shared store did not answer.
    detail : str
        Why, in words (failure count, when the trial opens, the Redis error).
    """

    venue: str
    state: CircuitState
    detail: str = ""

    @property
    def is_open(self) -> bool:
        """True only when the circuit is known to be open (orders must not go to the venue)."""
        return self.state is CircuitState.OPEN

    @property
    def is_known(self) -> bool:
        """False when the state could not be read (Redis unreachable)."""
        return self.state is not CircuitState.UNKNOWN


class _VenueRedisStorage(pybreaker.CircuitRedisStorage):
    # pybreaker's Redis storage, tolerant of an outage at construction, exposing its key names.

    def _initialize_redis_state(self, state: str) -> None:
        try:
            super()._initialize_redis_state(state)
        except RedisError as exc:
            logger.warning("circuit storage %s: Redis unavailable at start (%s)", self._namespace_name, exc)

    def status_keys(self) -> tuple[str, str, str]:
        return self._namespace("state"), self._namespace("opened_at"), self._namespace("fail_counter")


class _StateChangeLogger(pybreaker.CircuitBreakerListener):
    # Operators need to see a venue being cut off and restored.

    def state_change(self, cb, old_state, new_state) -> None:
        old = old_state.name if old_state is not None else "-"
        level = logging.WARNING if new_state.name == pybreaker.STATE_OPEN else logging.INFO
        logger.log(level, "venue circuit %s: %s -> %s", cb.name, old, new_state.name)


_lock = threading.Lock()
_breakers: dict[str, pybreaker.CircuitBreaker] = {}
_redis_client = None


def _config() -> dict:
    odum = getattr(settings, "ODUM", {})
    return {
        "fail_max": int(odum.get("CIRCUIT_FAIL_MAX", DEFAULT_FAIL_MAX)),
        "reset_timeout": float(odum.get("CIRCUIT_RESET_TIMEOUT_SECS", DEFAULT_RESET_TIMEOUT_SECS)),
        "prefix": str(odum.get("CIRCUIT_PREFIX", DEFAULT_PREFIX)),
        "redis_timeout": float(odum.get("CIRCUIT_REDIS_TIMEOUT_SECS", DEFAULT_REDIS_TIMEOUT_SECS)),
    }


def _redis():
    global _redis_client
    if _redis_client is None:
        import redis

        timeout = _config()["redis_timeout"]
        # decode_responses=False: CircuitRedisStorage decodes the state bytes itself (see module doc).
        _redis_client = redis.Redis.from_url(
            settings.REDIS_URL, decode_responses=False, socket_timeout=timeout, socket_connect_timeout=timeout
        )
    return _redis_client


def venue_breaker(code: str) -> pybreaker.CircuitBreaker:
    """Return the circuit breaker of venue ``code`` (one per venue code and process, created once).

    Parameters
    ----------
    code : str
        Venue code, e.g. ``BINANCE-SPOT``.

    Returns
    -------
    pybreaker.CircuitBreaker
        Named ``code``; opens after ``CIRCUIT_FAIL_MAX`` consecutive failures and allows a trial
        call ``CIRCUIT_RESET_TIMEOUT_SECS`` seconds later. Its storage is Redis (shared by every
        process) when ``settings.REDIS_URL`` is set, process memory otherwise. Call the venue
        through it (``breaker.call(fn, ...)``) or report outcomes with :func:`record_venue_failure`
        and :func:`record_venue_success`.

    Notes
    -----
    Never raises for a Redis outage: the breaker then behaves as closed (pybreaker's fallback) and
    :func:`circuit_status` reports ``unknown``.
    """
    breaker = _breakers.get(code)
    if breaker is not None:
        return breaker
    with _lock:
        breaker = _breakers.get(code)
        if breaker is None:
            config = _config()
            storage = None
            if settings.REDIS_URL:
                storage = _VenueRedisStorage(
                    pybreaker.STATE_CLOSED, _redis(), namespace=f"{config['prefix']}:{code}"
                )
            breaker = pybreaker.CircuitBreaker(
                fail_max=config["fail_max"],
                reset_timeout=config["reset_timeout"],
                state_storage=storage,
                name=code,
                listeners=[_StateChangeLogger()],
            )
            _breakers[code] = breaker
    return breaker


def circuit_statuses(codes: Iterable[str]) -> dict[str, CircuitStatus]:
    """Return the circuit status of each venue in ``codes``, reading shared state in one round trip.

    Parameters
    ----------
    codes : iterable of str
        Venue codes (duplicates are read once).

    Returns
    -------
    dict[str, CircuitStatus]
        One entry per distinct code. ``open`` means "do not send"; an open circuit whose reset
        timeout has elapsed is ``half-open`` (the next call is the trial that closes or re-opens
        it); ``unknown`` when Redis did not answer (never raised: the caller chooses a policy).
    """
    codes = list(dict.fromkeys(codes))
    if not codes:
        return {}
    now = datetime.now(timezone.utc)
    breakers = {code: venue_breaker(code) for code in codes}
    if not settings.REDIS_URL:
        result = {}
        for code, breaker in breakers.items():
            storage = breaker._state_storage  # pybreaker exposes no public accessor for opened_at
            result[code] = _status(code, breaker.current_state, storage.opened_at, storage.counter, breaker, now)
        return result
    keys: list[str] = []
    for breaker in breakers.values():
        keys.extend(breaker._state_storage.status_keys())
    try:
        values = _redis().mget(keys)
    except RedisError as exc:
        detail = f"circuit state unknown: Redis unavailable ({type(exc).__name__}: {exc})"
        return {code: CircuitStatus(code, CircuitState.UNKNOWN, detail) for code in codes}
    result = {}
    for index, (code, breaker) in enumerate(breakers.items()):
        raw_state, raw_opened, raw_count = values[3 * index : 3 * index + 3]
        state = raw_state.decode() if raw_state is not None else pybreaker.STATE_CLOSED
        opened_at = datetime.fromtimestamp(int(raw_opened), timezone.utc) if raw_opened else None
        count = int(raw_count) if raw_count else 0
        result[code] = _status(code, state, opened_at, count, breaker, now)
    return result


def _status(code, state, opened_at, count, breaker, now) -> CircuitStatus:
    if state == pybreaker.STATE_CLOSED:
        detail = f"{count} consecutive failure(s)" if count else ""
        return CircuitStatus(code, CircuitState.CLOSED, detail)
    if state == pybreaker.STATE_HALF_OPEN:
        return CircuitStatus(code, CircuitState.HALF_OPEN, "half-open: the next call is a trial")
    if state == pybreaker.STATE_OPEN:
        # Mirrors CircuitOpenState.before_call: a trial is allowed once reset_timeout has elapsed.
        if opened_at is not None:
            trial_at = opened_at + timedelta(seconds=breaker.reset_timeout)
            if now < trial_at:
                return CircuitStatus(
                    code, CircuitState.OPEN,
                    f"open since {opened_at:%Y-%m-%dT%H:%M:%SZ}, trial allowed from {trial_at:%Y-%m-%dT%H:%M:%SZ}",
                )
        return CircuitStatus(code, CircuitState.HALF_OPEN, "open, reset timeout elapsed: the next call is a trial")
    return CircuitStatus(code, CircuitState.UNKNOWN, f"circuit state unknown: unexpected stored state {state!r}")


def circuit_status(code: str) -> CircuitStatus:
    """Return the circuit status of venue ``code`` (see :func:`circuit_statuses`)."""
    return circuit_statuses([code])[code]


def is_circuit_open(code: str) -> bool:
    """Return True when venue ``code``'s circuit is known to be open (orders must not go there).

    An unknown state (Redis unreachable) answers False: this function never raises for an outage.
    Callers that must tell "closed" from "unknown" use :func:`circuit_status`.
    """
    return circuit_status(code).is_open


def record_venue_failure(code: str, exc: BaseException) -> None:
    """Count a failed call to venue ``code`` (transport error, timeout, 5xx, lost session).

    Report only failures of the venue itself, never business rejections (insufficient margin, bad
    price): those say nothing about the venue's health. After ``CIRCUIT_FAIL_MAX`` consecutive
    failures the circuit opens; a failure during a trial (half-open) opens it again. A failure
    reported while the circuit is open is not counted (pybreaker does not call through an open
    circuit).

    Parameters
    ----------
    code : str
        Venue code.
    exc : BaseException
        The failure; kept unchanged (its traceback is restored after pybreaker re-raises it).

    Notes
    -----
    Never raises for the circuit's own reasons (tripping, already open, Redis down).
    """
    breaker = venue_breaker(code)
    traceback = exc.__traceback__

    def _failed():
        raise exc

    try:
        breaker.call(_failed)
    except pybreaker.CircuitBreakerError:
        pass  # the failure opened the circuit, or it was already open
    except BaseException as raised:
        if raised is not exc:
            raise
    finally:
        exc.__traceback__ = traceback


def record_venue_success(code: str) -> None:
    """Record a successful call to venue ``code``.

    Resets the consecutive-failure count; during a trial (half-open, or open with the reset
    timeout elapsed) it closes the circuit. A success reported while the circuit is open and the
    timeout has not elapsed (a late answer to a request sent before it opened) changes nothing.

    Parameters
    ----------
    code : str
        Venue code.

    Notes
    -----
    Never raises for the circuit's own reasons (open circuit, Redis down).
    """
    breaker = venue_breaker(code)
    try:
        breaker.call(_noop)
    except pybreaker.CircuitBreakerError:
        pass


def _noop() -> None:
    return None


def reset_circuit_breakers() -> None:
    """Forget this process's breakers and Redis client (tests; after settings change).

    Shared state in Redis is untouched: the next :func:`venue_breaker` call reads it again, as a
    freshly started process would.
    """
    global _redis_client
    with _lock:
        _breakers.clear()
        client, _redis_client = _redis_client, None
    if client is not None:
        client.close()


def _on_setting_changed(*, setting: str, **kwargs) -> None:
    if setting in ("REDIS_URL", "ODUM"):
        reset_circuit_breakers()


setting_changed.connect(_on_setting_changed, dispatch_uid="venues.circuit.reset_on_setting_changed")
