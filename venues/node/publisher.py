"""Market data from the node to the OMS, at a bounded rate: snapshots for risk / router, marks for positions.

The bridge strategy calls :meth:`MarketDataPublisher.on_quote` / :meth:`on_bar` on the node's loop
thread for every tick; those only overwrite the latest value per listing (no I/O on the loop). A
daemon thread publishes, every ``interval_secs`` (default 0.25 s), the latest
:class:`~venues.marketdata.MarketSnapshot` of each listing that changed into the market-data store
(Redis in production, memory in the embedded default: :func:`venues.marketdata.market_data`), and
at most every ``mark_interval_secs`` (default 1 s) marks that listing's positions to the mid
through :func:`positions.services.position_mark` (issue #3 §3 "marks at a bounded rate", §5).

Failure policy: a store or database error is logged and counted (``errors``, ``last_error``),
and the next round tries again with the then-latest value: a quote the store refused is published
next round unless a newer one has arrived. A mark that fails keeps its quote as well: the
next round once the mark interval has passed marks the listing with the latest quote it has (that
one, unless a newer one arrived meanwhile), so a quiet instrument's positions are not left on an
old mark, or unmarked, until its next quote; the failure is logged at ERROR with the listing, the
mid and the error.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from django.db import close_old_connections, connections

from odum_live.instruments import parse_instrument_key
from venues.marketdata import BookLevel, MarketSnapshot, market_data
from venues.node.bridge import nanos_to_datetime

logger = logging.getLogger(__name__)


class MarketDataPublisher:
    """Coalesce ticks per listing and publish them on a thread (see the module docstring).

    Parameters
    ----------
    interval_secs : float
        Seconds between publishing rounds (> 0).
    mark_interval_secs : float
        Minimum seconds between two marks of one listing's positions (>= 0).
    clock : Callable[[], float]
        Monotonic seconds the mark interval is measured on (default :func:`time.monotonic`;
        tests pass a fake clock to step time without sleeping).
    """

    def __init__(self, *, interval_secs: float = 0.25, mark_interval_secs: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if interval_secs <= 0:
            raise ValueError(f"interval_secs must be > 0, got {interval_secs}")
        self._interval = interval_secs
        self._mark_interval = mark_interval_secs
        self._clock = clock
        self._unmarked: dict[str, MarketSnapshot] = {}  # latest quote of a listing skipped by the mark bound
        self._marked: dict[str, MarketSnapshot] = {}  # latest quote each listing's positions were marked to
        self._last_check: dict[str, float] = {}
        self._lock = threading.Lock()
        self._pending: dict[str, MarketSnapshot] = {}
        self._quoted: set[str] = set()  # listings that have had a quote (bars never replace quotes)
        self._last_ts: dict[str, datetime] = {}
        self._last_mark: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.published = 0
        self.marks = 0
        self.errors = 0
        self.last_error = ""

    # -- loop thread --------------------------------------------------------------------------------

    def on_quote(self, instrument_key: str, tick) -> None:
        """Keep the latest quote of ``instrument_key`` (called on the node's loop thread)."""
        bid, ask = tick.bid_price.as_decimal(), tick.ask_price.as_decimal()
        bid_size, ask_size = tick.bid_size.as_decimal(), tick.ask_size.as_decimal()
        snapshot = MarketSnapshot(
            instrument_key=instrument_key, ts=nanos_to_datetime(tick.ts_event), bid=bid, ask=ask,
            bid_size=bid_size, ask_size=ask_size, bids=(BookLevel(bid, bid_size),), asks=(BookLevel(ask, ask_size),),
        )
        with self._lock:
            self._pending[instrument_key] = snapshot
            self._quoted.add(instrument_key)

    def on_bar(self, instrument_key: str, bar) -> None:
        """Keep a bar's close as the latest price of a listing that has no quotes (bid = ask = close).

        A listing that ever had a quote keeps its quotes: a bar (no sizes, a minute old by its
        nature) never replaces one. The replay client already derives a quote from each bar of a
        bars-only recording (:func:`venues.replay.client.quote_tick_from_bar`), so this is the
        fallback for a bar feed without quotes from any other source.
        """
        close = bar.close.as_decimal()
        snapshot = MarketSnapshot(instrument_key=instrument_key, ts=nanos_to_datetime(bar.ts_event), bid=close,
                                  ask=close, last=close)
        with self._lock:
            if instrument_key not in self._quoted:
                self._pending[instrument_key] = snapshot

    # -- publisher thread ---------------------------------------------------------------------------

    def start(self) -> MarketDataPublisher:
        """Start the publishing thread (idempotent)."""
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="odum-md-publisher", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Publish what is pending once more, then stop the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def last_market_data(self) -> dict[str, str]:
        """Return ``{instrument_key: ISO time of the last published tick}``."""
        with self._lock:
            return {key: ts.isoformat() for key, ts in self._last_ts.items()}

    def publish_pending(self) -> int:
        """Publish what is pending now (the thread's round; callable directly). Return snapshots published.

        Also marks, once its mark interval has passed, a listing whose latest published quote was
        not marked because it came within the interval: positions end on the latest mid even when
        the quotes stop. For the same reason, a listing whose quotes have stopped is checked once
        per mark interval for positions behind its last mark — a row a fill held locked when the
        mark came (``position_mark`` skips it), a position opened since — and marked again if any.
        """
        with self._lock:
            pending, self._pending = self._pending, {}
        count = 0
        if pending:
            store = market_data()
            for key, snapshot in pending.items():
                try:
                    store.publish(snapshot)
                except Exception as exc:  # noqa: BLE001 - one listing's failure must not stop the others
                    with self._lock:  # retried next round, unless a newer quote has arrived meanwhile
                        self._pending.setdefault(key, snapshot)
                    self._fail(f"market data publish for {key}", exc, then="retrying with the latest quote next round")
                    continue
                count += 1
                with self._lock:
                    self._last_ts[key] = snapshot.ts
                self._mark(key, snapshot)
            self.published += count
        for key, snapshot in list(self._unmarked.items()):
            if key not in pending:
                self._mark(key, snapshot)
        for key, snapshot in list(self._marked.items()):
            if key not in pending and key not in self._unmarked:
                self._mark_behind(key, snapshot)
        return count

    def _mark_behind(self, key: str, snapshot: MarketSnapshot) -> None:
        # Without new quotes nothing else would ever mark these rows.
        now = self._clock()
        if now - max(self._last_mark.get(key, float("-inf")), self._last_check.get(key, float("-inf"))) \
                < self._mark_interval:
            return
        self._last_check[key] = now
        from positions.selectors import position_behind_mark_exists

        try:
            behind = position_behind_mark_exists(instrument_key=key, venue=parse_instrument_key(key).venue,
                                                 ts=snapshot.ts)
        except Exception as exc:  # noqa: BLE001
            self._fail(f"position mark check for {key}", exc)
            return
        if behind:
            self._mark(key, snapshot)

    def _mark(self, key: str, snapshot: MarketSnapshot) -> None:
        now = self._clock()
        mid = snapshot.mid
        if mid is None:
            return
        if now - self._last_mark.get(key, float("-inf")) < self._mark_interval:
            self._unmarked[key] = snapshot  # marked by a later round once the interval has passed
            return
        self._unmarked.pop(key, None)
        from positions.services import position_mark

        mark_price = mid.quantize(Decimal(1).scaleb(-18)).normalize()
        try:
            position_mark(instrument_key=key, venue=parse_instrument_key(key).venue, mark_price=mark_price,
                          ts=snapshot.ts)
        except Exception as exc:  # noqa: BLE001
            # Keep the quote: nothing else would mark a quiet listing. Retried once the mark interval has
            # passed (the bound counts attempts, so a failing database is not hit every round).
            self._unmarked[key] = snapshot
            self._last_mark[key] = now
            self._fail(f"position mark for {key} at mid {mark_price} (quote of {snapshot.ts.isoformat()})", exc,
                       level=logging.ERROR, then="retrying with the latest quote after the mark interval")
            return
        self._last_mark[key] = now
        self._marked[key] = snapshot
        self.marks += 1

    def _fail(self, what: str, exc: BaseException, *, level: int = logging.WARNING, then: str = "") -> None:
        self.errors += 1
        self.last_error = f"{what}: {type(exc).__name__}: {exc}"
        logger.log(level, "%s failed: %s: %s%s", what, type(exc).__name__, exc, f"; {then}" if then else "")

    def _run(self) -> None:
        try:
            while not self._stop.wait(self._interval):
                self._round()
            self._round()
        finally:
            connections.close_all()  # this thread's connections; nobody else closes them

    def _round(self) -> None:
        try:
            close_old_connections()
            self.publish_pending()
        except Exception as exc:  # noqa: BLE001 - the thread must outlive any one failed round
            self._fail("market data round", exc)
