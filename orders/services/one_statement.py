"""A status transition and its ``OrderEvent`` in one PostgreSQL statement (the hot paths' fast form).

The trading worker's most frequent state changes — the claim (ROUTED → SUBMITTED) and the venue's
acknowledgement (SUBMITTED → ACCEPTED) — each cost five or six statements through the ORM (locked
read, update, event insert, begin, commit): most of their time on the benchmark machine
(bench/e2e_latency.py). For the common case they are one statement here: an ``UPDATE … WHERE
<the expected status> RETURNING`` and the event ``INSERT … SELECT`` from its result, in one
``WITH``. The UPDATE takes the row lock and re-checks the expected status under it, exactly as the
services' locked read does; when no row matches (unknown order, another status, another venue) the
caller falls back to its general path, which decides and records why. The transition itself is
checked against the state machine (``orders.state.check_transition``) before it is written.

PostgreSQL only (data-modifying ``WITH``): elsewhere it changes nothing and returns None, and the
caller's general path applies.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import connection
from django.utils import timezone

from odum_live.sql import instances_from_rows, send_query
from orders.models import Order, OrderEvent
from orders.state import check_transition


def transition_in_one_statement(
    *, where: dict[str, Any], source: str, target: str, set_columns: dict[str, str], values: dict[str, Any],
    event_type: str, actor: str, ts: datetime, payload: dict, returning: tuple[str, ...],
    conditions: tuple[str, ...] = (),
) -> Order | None:
    """Move the one order matching ``where`` from ``source`` to ``target`` and record its event.

    Parameters
    ----------
    where : dict[str, Any]
        Column → value the order must match besides ``status = source`` (e.g. ``{"id": pk}``).
    source, target : str
        The status expected under the row lock, and the new one (a legal transition).
    set_columns : dict[str, str]
        Further columns to set → SQL expression over named parameters of ``values`` (e.g.
        ``{"accepted_at": "COALESCE(accepted_at, %(ts)s)"}``); ``updated_at`` is always set to now.
    values : dict[str, Any]
        Named parameters used by ``set_columns``.
    event_type : str
        ``OrderEvent.type`` of the recorded event (status_before = source, status_after = target).
    actor : str
        The event's actor.
    ts : datetime
        The event's time (UTC).
    payload : dict
        The event's payload (JSON).
    returning : tuple[str, ...]
        ``Order`` fields to load on the returned instance (the rest are deferred).
    conditions : tuple[str, ...]
        Further SQL conditions the row must meet, over named parameters of ``values`` (the order
        table's columns qualified by its name), e.g. the claim's "no HALTED kill switch may cover it".

    Returns
    -------
    Order | None
        The updated order (fields ``returning``); None when no order matched, or when the database
        is not PostgreSQL (nothing written: the caller's general path applies).

    Raises
    ------
    orders.state.IllegalTransition
        ``source`` → ``target`` is not a legal transition.
    django.db.OperationalError
        Database unavailable; nothing is written.
    """
    if "id" not in returning:
        raise ValueError("returning: must include 'id' (the recorded event's order)")
    check_transition(source, target)
    if connection.vendor != "postgresql":
        return None
    opts, events = Order._meta, OrderEvent._meta
    params: dict[str, Any] = {**values, "_source": source, "_target": target, "_now": timezone.now(),
                              "_event_type": event_type, "_actor": actor, "_ts": ts,
                              "_payload": events.get_field("payload").get_db_prep_save(payload, connection)}
    for i, value in enumerate(where.values()):
        params[f"_where{i}"] = value
    key = (tuple(where), tuple(set_columns.items()), returning, conditions)
    sql = _STATEMENTS.get(key)
    if sql is None:
        assignments = ["status = %(_target)s", "updated_at = %(_now)s"]
        assignments += [f"{opts.get_field(name).column} = {expression}" for name, expression in set_columns.items()]
        matches = ["status = %(_source)s"]
        matches += [f"{opts.get_field(name).column} = %(_where{i})s" for i, name in enumerate(where)]
        matches += [f"({condition})" for condition in conditions]
        columns = ", ".join(opts.get_field(name).column for name in returning)
        sql = _STATEMENTS[key] = f"""WITH changed AS (
                UPDATE {opts.db_table} SET {", ".join(assignments)}
                WHERE {" AND ".join(matches)}
                RETURNING {columns}
            ), recorded AS (
                INSERT INTO {events.db_table} (order_id, type, status_before, status_after, payload, actor, ts)
                SELECT id, %(_event_type)s, %(_source)s, %(_target)s, %(_payload)s, %(_actor)s, %(_ts)s FROM changed
            )
            SELECT {columns} FROM changed"""
    # Rows to instances as a queryset would (converters applied), without a raw queryset's per-call
    # column resolution: the statement's shape is fixed per call site, so its SQL is built once.
    rows = instances_from_rows(Order, returning, send_query(sql, params).fetchall())
    return rows[0] if rows else None


#: The statement of each call site's shape (where columns, set expressions, returned fields, conditions).
_STATEMENTS: dict[tuple, str] = {}
