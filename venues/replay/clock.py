"""Replay schedule: merge recorded sources by time and map recorded time onto wall-clock time.

Pure and deterministic given ``start``: nothing here sleeps or reads the clock after
construction. The replay data client iterates the schedule, sleeps until each ``due_at`` (or
publishes at once when it is behind) and hands the re-stamped record to NautilusTrader.

Lazy: the merge holds one pending record per source (``heapq.merge`` over the readers'
generators), so a month of 1-minute bars streams without ever being loaded whole.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from venues.replay.errors import ReplayDataError
from venues.replay.records import Record

_MICRO = timedelta(microseconds=1)


def _speed(value: object) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        raise TypeError(f"speed must be a number, got {value!r}")
    speed = Decimal(str(value))
    if not speed.is_finite() or speed <= 0:
        raise ValueError(f"speed must be > 0, got {value!r}")
    return speed


def scale(offset: timedelta, speed: Decimal) -> timedelta:
    """Return ``offset / speed`` rounded to the microsecond (half-even; monotonic in ``offset``).

    Parameters
    ----------
    offset : timedelta
        Recorded time elapsed since the first record (>= 0).
    speed : Decimal
        Replay speed factor (> 0): 1 = real time, 10 = ten times faster.
    """
    micros = Decimal(offset // _MICRO) / speed
    return timedelta(microseconds=int(micros.to_integral_value(rounding=ROUND_HALF_EVEN)))


class ReplaySchedule:
    """Merge recorded sources by time and stamp each record with its wall-clock due time.

    The first record of a pass plays at that pass's start; a record recorded at ``ts`` plays at
    ``start + (ts - first_ts) / speed``. Records with equal ``ts`` keep source order, then file
    order. With ``loop=True`` the sources are replayed again after the last record, the next pass
    starting at ``last_due_at + loop_gap``, so due times never decrease across passes (and strictly
    increase from one pass to the next when ``loop_gap > 0``).

    With ``align=True`` each source is first shifted in time so that its first record coincides
    with the earliest first record of all sources; the merge then orders records by that shifted
    time. Use it for recordings of different dates replayed side by side (the shared book
    snapshots are from 2020-09, the bars from 2022-01: merged on recorded time, the bars would
    start some 16 months of recorded time after the book). Within one source spacing is kept.

    Parameters
    ----------
    sources : Sequence[Iterable[Record]]
        Record streams, each non-decreasing in ``ts``. For ``loop=True`` each must be re-iterable
        (a :class:`~venues.replay.sources.ReplaySource`, a list), not a one-shot iterator.
    speed : int | Decimal | str | float
        Replay speed factor, > 0 (×N); converted with ``Decimal(str(speed))``.
    start : datetime, optional
        Wall-clock time (UTC-aware) of the first record; default: UTC now at construction.
    loop : bool
        Replay forever.
    loop_gap : timedelta
        Wall-clock pause between the last record of a pass and the first of the next (>= 0;
        default 1 s, long enough for a subscriber to see the restart as a gap rather than a jump).
    align : bool
        Start every source at the same instant (see above) instead of merging on recorded time.

    Raises
    ------
    TypeError, ValueError
        Bad ``speed``, naive ``start``, negative ``loop_gap``, a one-shot iterator with ``loop``.
    ReplayDataError
        While iterating: a source whose time goes backwards, or ``loop=True`` with no records
        (a loop that would never advance).
    """

    def __init__(
        self,
        sources: Sequence[Iterable[Record]],
        *,
        speed: int | Decimal | str | float = 1,
        start: datetime | None = None,
        loop: bool = False,
        loop_gap: timedelta = timedelta(seconds=1),
        align: bool = False,
    ) -> None:
        self.speed = _speed(speed)
        start = datetime.now(UTC) if start is None else start
        if start.tzinfo is None or start.utcoffset() != timedelta(0):
            raise ValueError(f"start must be UTC-aware, got {start!r}")
        if loop_gap < timedelta(0):
            raise ValueError(f"loop_gap must be >= 0, got {loop_gap!r}")
        self.sources = list(sources)
        if loop:
            for source in self.sources:
                if iter(source) is source:
                    raise TypeError(f"loop=True needs re-iterable sources, got a one-shot iterator {source!r}")
        self.start = start
        self.loop = loop
        self.loop_gap = loop_gap
        self.align = align

    def due_at(self, ts: datetime, *, first_ts: datetime, start: datetime) -> datetime:
        """Return the wall-clock time a record recorded at ``ts`` plays in a pass that began at
        ``start`` with its first record recorded at ``first_ts``."""
        return start + scale(ts - first_ts, self.speed)

    def _merged(self) -> Iterator[tuple[datetime, Record]]:
        """Yield ``(merge_ts, record)`` in merge order; ``merge_ts`` is ``record.ts`` shifted when aligning."""
        def tagged(index: int, source: Iterable[Record], records: Iterator[Record], shift: timedelta):
            prev = None
            for seq, record in enumerate(records):
                if prev is not None and record.ts < prev:
                    raise ReplayDataError(
                        f"source {index} ({source!r}) goes back in time at record {seq + 1}: "
                        f"{record.ts.isoformat()} after {prev.isoformat()}",
                        field="ts",
                    )
                prev = record.ts
                yield record.ts + shift, index, seq, record

        streams = [iter(source) for source in self.sources]
        shifts = [timedelta(0)] * len(streams)
        if self.align:
            # peek each source's first record (one record each, not the whole file)
            firsts = [next(stream, None) for stream in streams]
            streams = [stream if first is None else itertools.chain((first,), stream)
                       for first, stream in zip(firsts, streams)]
            present = [first.ts for first in firsts if first is not None]
            if present:
                earliest = min(present)
                shifts = [timedelta(0) if first is None else earliest - first.ts for first in firsts]
        merged = heapq.merge(*(tagged(i, source, stream, shift)
                               for i, (source, stream, shift) in enumerate(zip(self.sources, streams, shifts))))
        for merge_ts, _, _, record in merged:
            yield merge_ts, record

    def __iter__(self) -> Iterator[tuple[datetime, Record]]:
        """Yield ``(due_at, record)`` with ``record.ts`` replaced by ``due_at`` (UTC)."""
        start = self.start
        while True:
            first_ts = None
            due = start
            for merge_ts, record in self._merged():
                if first_ts is None:
                    first_ts = merge_ts
                due = self.due_at(merge_ts, first_ts=first_ts, start=start)
                yield due, record.with_ts(due)
            if not self.loop:
                return
            if first_ts is None:
                raise ReplayDataError("loop=True but the sources hold no records")
            if self.loop_gap == timedelta(0) and due == start:
                # a pass spanning no time with no gap would replay forever at one instant
                raise ReplayDataError("loop=True with loop_gap=0 and all records at one instant never advances")
            start = due + self.loop_gap
