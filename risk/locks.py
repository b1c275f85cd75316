"""Serialization locks of the pre-trade risk engine.

Velocity, position and exposure checks read state that the order being checked will change. Two
orders checked at once could each see the other's order missing and jointly breach a limit, so
the engine serializes orders that share a limit before it reads that state, and holds the lock
until the caller's transaction — which inserts the order — commits.

PostgreSQL: transaction-level advisory locks, ``pg_advisory_xact_lock(namespace, key)`` (released
at commit or rollback; PostgreSQL docs, "Advisory Locks"). Each resource name ("GLOBAL",
"STRATEGY:demo", "EQUIVALENCE:SPOT_PAIR:BTC-USDT", …) maps to a 32-bit key in the engine's own
namespace (the two-int form never collides with one-bigint advisory locks other code may take).
All keys of one evaluation are taken in one statement, in ascending key order, so two
evaluations never wait on each other in a cycle. A hash collision only serializes more.

SQLite (the embedded default): there is nothing to take. ``settings.DATABASES`` opens every
transaction with ``BEGIN IMMEDIATE``, which takes SQLite's single write lock at the start of the
caller's ``transaction.atomic()``: every order-writing transaction already runs alone, from its
first read to its commit. In DEFERRED mode SQLite would still never let two writers both commit
on stale reads (the second gets SQLITE_BUSY), it would fail instead of wait.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, connections

#: Advisory-lock namespace (first int of the two-int form): ASCII "RSK1".
LOCK_NAMESPACE = 0x52534B31


class TransactionRequired(RuntimeError):
    """``evaluate(dry_run=False)`` was called outside ``transaction.atomic()``.

    A lock taken outside a transaction would be released at once, and the order insert that must
    follow under it would not be covered: a programming error, never silently tolerated.
    """


def lock_key(resource: str) -> int:
    """Return the signed 32-bit advisory-lock key of ``resource`` (BLAKE2b of its UTF-8 text)."""
    return int.from_bytes(hashlib.blake2b(resource.encode(), digest_size=4).digest(), "big", signed=True)


def require_transaction(*, using: str = DEFAULT_DB_ALIAS) -> None:
    """Raise unless the connection ``using`` is inside ``transaction.atomic()``.

    Raises
    ------
    TransactionRequired
        Outside an atomic block.
    """
    if not connections[using].in_atomic_block:
        raise TransactionRequired(
            "PreTradeRiskEngine.evaluate(dry_run=False) must run inside transaction.atomic(): its "
            "locks and recorded usage belong to the transaction that inserts the order"
        )


def acquire(*, resources: Iterable[str], using: str = DEFAULT_DB_ALIAS) -> tuple[int, ...]:
    """Take the engine's lock on every resource, until the current transaction ends.

    Parameters
    ----------
    resources : iterable of str
        Resource names; duplicates are taken once.
    using : str
        Database alias.

    Returns
    -------
    tuple of int
        The advisory-lock keys taken, ascending (empty on SQLite, or with no resources).

    Raises
    ------
    TransactionRequired
        Outside ``transaction.atomic()``.
    ImproperlyConfigured
        On a database other than PostgreSQL or SQLite (no serialization strategy is defined).
    """
    require_transaction(using=using)
    keys = tuple(sorted({lock_key(r) for r in resources}))
    connection = connections[using]
    vendor = connection.vendor
    if vendor == "sqlite":
        return ()
    if vendor != "postgresql":
        raise ImproperlyConfigured(f"risk.locks has no serialization strategy for the {vendor} database")
    if keys:
        # One round trip; PostgreSQL evaluates the select list left to right, i.e. in key order.
        sql = "SELECT " + ", ".join(["pg_advisory_xact_lock(%s, %s)"] * len(keys))
        params: list[int] = []
        for key in keys:
            params += [LOCK_NAMESPACE, key]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
    return keys
