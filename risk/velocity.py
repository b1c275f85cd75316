"""Velocity (message throttle): orders per fixed window, counted in :class:`risk.models.VelocityBucket`.

Windows are fixed and aligned to the clock (a 1 s window starts on the second, a 60 s window on
the minute), the way venues count order rates: Binance's ``rateLimits`` of type ``ORDERS`` with
``interval`` SECOND / MINUTE (Binance Spot API, "General API Information" → "LIMITS"). As there, a
burst may straddle two windows. One bucket row per limit scope and window: ``"<SCOPE>:<key>:1s"``.

Only orders that pass pre-trade risk are counted: a denied order is never sent, so it uses no
venue rate. Counting is race-free on its own: the increment is one guarded upsert
(``… ON CONFLICT DO UPDATE … WHERE count < limit``) whose row lock is held until the caller
commits, and the engine additionally holds its scope lock (``risk.locks``). Rows of finished
windows are deleted when a scope opens its next window, so the table stays at about two rows per
limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import DEFAULT_DB_ALIAS, connections

from risk.models import RiskLimit, VelocityBucket
from risk.selectors import LimitRow

#: Window length in seconds of each velocity kind.
WINDOW_SECS = {RiskLimit.Kind.MAX_ORDERS_PER_SECOND: 1, RiskLimit.Kind.MAX_ORDERS_PER_MINUTE: 60}


@dataclass(frozen=True, slots=True)
class VelocityWindow:
    """The current window of one velocity limit.

    Parameters
    ----------
    limit : LimitRow
        The limit (value in orders per window).
    seconds : int
        Window length, seconds.
    bucket_key : str
        ``VelocityBucket.scope_key``: ``"<SCOPE>:<key>:<seconds>s"``.
    window_start : datetime
        UTC start of the window containing the evaluation time.
    max_orders : int
        Orders admitted per window: the limit value rounded down.
    """

    limit: LimitRow
    seconds: int
    bucket_key: str
    window_start: datetime
    max_orders: int


def velocity_windows(*, limits: tuple[LimitRow, ...], now: datetime) -> tuple[VelocityWindow, ...]:
    """Return the current window of every velocity limit, ordered by bucket key (the lock order).

    Parameters
    ----------
    limits : tuple of LimitRow
        Applicable limits; kinds other than MAX_ORDERS_PER_SECOND / _MINUTE are ignored.
    now : datetime
        Evaluation time, UTC-aware.
    """
    windows = []
    for limit in limits:
        seconds = WINDOW_SECS.get(limit.kind)
        if seconds is None:
            continue
        epoch = int(now.timestamp())
        start = datetime.fromtimestamp(epoch - epoch % seconds, tz=now.tzinfo)
        windows.append(
            VelocityWindow(
                limit=limit,
                seconds=seconds,
                bucket_key=f"{limit.scope}:{limit.scope_key}:{seconds}s",
                window_start=start,
                max_orders=int(limit.value),  # int() truncates: 2.5 orders/s admits 2
            )
        )
    return tuple(sorted(windows, key=lambda w: w.bucket_key))


def velocity_counts(*, windows: tuple[VelocityWindow, ...], using: str = DEFAULT_DB_ALIAS) -> dict[str, int]:
    """Return the orders already counted in each window (0 for a window with no row), one query."""
    if not windows:
        return {}
    connection = connections[using]
    adapt = connection.ops.adapt_datetimefield_value
    where = " OR ".join(["(scope_key = %s AND window_start = %s)"] * len(windows))
    params = [p for w in windows for p in (w.bucket_key, adapt(w.window_start))]
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT scope_key, "count" FROM {VelocityBucket._meta.db_table} WHERE {where}', params)
        found = dict(cursor.fetchall())
    return {w.bucket_key: int(found.get(w.bucket_key, 0)) for w in windows}


def velocity_record(
    *, windows: tuple[VelocityWindow, ...], using: str = DEFAULT_DB_ALIAS
) -> tuple[bool, dict[str, int]]:
    """Count one order in every window, unless that would exceed any window's limit.

    All or nothing: when one window is full, the increments already made are undone and nothing
    stays counted. Call inside the order's transaction (the rows stay locked until it ends).

    Parameters
    ----------
    windows : tuple of VelocityWindow
        From :func:`velocity_windows`.
    using : str
        Database alias.

    Returns
    -------
    (bool, dict)
        Whether the order was admitted, and per bucket key the count *including this order*
        (for a refused order: what the count would have been).
    """
    if not windows:
        return True, {}
    if any(w.max_orders < 1 for w in windows):
        counts = velocity_counts(windows=windows, using=using)
        return False, {key: count + 1 for key, count in counts.items()}
    connection = connections[using]
    adapt = connection.ops.adapt_datetimefield_value
    table = VelocityBucket._meta.db_table
    values = ", ".join(["(%s, %s, 1)"] * len(windows))
    guard = " ".join(["WHEN %s THEN %s"] * len(windows))
    sql = (
        f'INSERT INTO {table} (scope_key, window_start, "count") VALUES {values}'
        f' ON CONFLICT (scope_key, window_start) DO UPDATE SET "count" = {table}."count" + 1'
        f' WHERE {table}."count" < (CASE {table}.scope_key {guard} END)'
        ' RETURNING scope_key, "count"'
    )
    params = [p for w in windows for p in (w.bucket_key, adapt(w.window_start))]
    params += [p for w in windows for p in (w.bucket_key, w.max_orders)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        counted = {key: int(count) for key, count in cursor.fetchall()}
        if len(counted) < len(windows):
            velocity_release(windows=tuple(w for w in windows if w.bucket_key in counted), using=using)
            counts = velocity_counts(windows=windows, using=using)
            return False, {key: count + 1 for key, count in counts.items()}
        opened = [w for w in windows if counted[w.bucket_key] == 1]
        if opened:
            # First order of a new window: drop the scope's finished windows (index prefix scan).
            where = " OR ".join(["(scope_key = %s AND window_start < %s)"] * len(opened))
            cursor.execute(
                f"DELETE FROM {table} WHERE {where}",
                [p for w in opened for p in (w.bucket_key, adapt(w.window_start))],
            )
    return True, counted


def velocity_release(*, windows: tuple[VelocityWindow, ...], using: str = DEFAULT_DB_ALIAS) -> None:
    """Take back one order counted in each of ``windows`` by :func:`velocity_record` (in the same transaction).

    For an order counted and then refused by a later step of its evaluation, so it is not counted
    against the strategy's velocity.
    """
    if not windows:
        return
    connection = connections[using]
    adapt = connection.ops.adapt_datetimefield_value
    where = " OR ".join(["(scope_key = %s AND window_start = %s)"] * len(windows))
    with connection.cursor() as cursor:
        cursor.execute(
            f'UPDATE {VelocityBucket._meta.db_table} SET "count" = "count" - 1 WHERE {where}',
            [p for w in windows for p in (w.bucket_key, adapt(w.window_start))],
        )
