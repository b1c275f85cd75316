"""Writes of positions: the only code that saves ``Position`` rows (CONVENTIONS.md).

``position_apply_fill`` is called by the journal writer inside the transaction that also stores
the fill and the order status, so the three commit or roll back together. ``position_mark`` is
called with the node's quotes (marks) and may run on its own.

Both record the history of the equity / PnL curve through :func:`position_snapshot_record` (every
fill; marks at most every ``ODUM['EQUITY_SNAPSHOT_SECS']`` per listing), and a mark that moved
positions tells the live pages after commit (:func:`positions_publish_updated`, group
:data:`odum_live.groups.POSITIONS_GROUP`, at most every ``ODUM['POSITIONS_PUBLISH_SECS']``);
fills reach them through the order stream's ``orders.updated`` messages.

The maths lives in :mod:`positions.maths`; see it for the rules (netting with average cost,
linear and inverse PnL, fee currency, 18-decimal quantization).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal

from channels.layers import get_channel_layer
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from odum_live.channel_send import run_on_layer
from odum_live.instruments import InstrumentKey, parse_instrument_key
from odum_live.sql import CompiledQuery, SentRows, pipeline, send_insert, send_update
from positions.maths import (
    PositionMathsError,
    PositionState,
    add_other_fee,
    apply_fill,
    unrealized_pnl,
    validate_fill,
)
from odum_live.groups import POSITIONS_GROUP, POSITIONS_UPDATED
from orders.selectors import order_column
from positions.models import Position, PositionSnapshot, ReconciliationFinding
from venues.models import Instrument

logger = logging.getLogger(__name__)

ONE = Decimal(1)
ZERO = Decimal(0)


def _with_last_snapshot_ts(positions):
    # ``last_snapshot_ts``: the time of the position's latest snapshot (None without one), read with the
    # row so that a fill's snapshot time needs no round trip of its own (see _fill_snapshot_ts).
    latest = PositionSnapshot.objects.filter(position=OuterRef("pk")).order_by("-ts").values("ts")[:1]
    return positions.annotate(last_snapshot_ts=Subquery(latest))


#: The locked read of a strategy's position in a listing, once per fill: compiled once (odum_live/sql.py).
#: Unordered and ``of=self``: ``Position``'s default ordering joins ``orders_strategy``, and a FOR
#: UPDATE over that join locked the strategy row, deadlocking with every order insert's foreign-key
#: check (FOR KEY SHARE) under a TWAP storm (bench/e2e_latency.py).
_LOCKED_POSITION = CompiledQuery(
    lambda strategy_id, venue, instrument_key: _with_last_snapshot_ts(
        Position.objects.select_for_update(of=("self",)).order_by().filter(
            strategy_id=strategy_id, venue=venue, instrument_key=instrument_key)),
    markers=("<strategy_id marker>", "<venue marker>", "<instrument_key marker>"),
)


def position_apply_fill(
    *,
    strategy_id: str,
    venue: str,
    instrument_key: str,
    side: str,
    quantity: Decimal,
    price: Decimal,
    fee: Decimal,
    multiplier: Decimal = ONE,
    inverse: bool = False,
    other_fee: Decimal = ZERO,
    other_fee_currency: str = "",
    ts: datetime,
    locked: SentRows | None = None,
) -> Position:
    """Apply one fill to the strategy's position in a listing; return the saved row.

    Locks the row (``SELECT … FOR UPDATE``) or creates it, applies
    :func:`positions.maths.apply_fill`, keeps ``equivalence_key`` derived from the key, re-computes
    ``unrealized_pnl`` from the stored ``mark_price`` (0 when the position has never been
    marked) and saves. Two concurrent first fills of a new position are safe: the loser of the
    insert race gets the unique-constraint violation inside a savepoint and then locks the
    winner's committed row (``QuerySet.get_or_create`` on a ``select_for_update`` queryset).

    Parameters
    ----------
    strategy_id : str
        Owning strategy (``orders.Strategy`` primary key); must exist.
    venue : str
        Venue code; must equal the venue part of ``instrument_key``.
    instrument_key : str
        Canonical key of the listing (``BINANCE-FUTURES:PERPETUAL:BTC-USDT@LIN``), not ``ANY``.
    side : str
        Fill side (``BUY``, ``SELL``, …; see ``positions.maths.KNOWN_SIDES``).
    quantity : Decimal
        Filled quantity, base units (contracts), > 0, ≤ 18 decimal places.
    price : Decimal
        Fill price, quote currency, > 0, ≤ 18 decimal places.
    fee : Decimal
        Fee in the PnL currency (quote for linear, base/settlement for inverse), signed: positive
        when paid, negative for a rebate.
    multiplier : Decimal
        ``venues.Instrument.contract_multiplier`` of the listing, > 0.
    inverse : bool
        ``venues.Instrument.is_inverse``; must agree with the key's ``@LIN``/``@INV`` suffix when
        the key has one.
    other_fee, other_fee_currency : Decimal, str
        A fee of the fill that no rate converts to the PnL currency (a third currency, e.g. BNB:
        :func:`positions.maths.fee_in_pnl_currency` gave None), in its own currency, signed: added to
        the position's ``other_fees`` (:func:`positions.maths.add_other_fee`), not to ``fees`` or
        ``realized_pnl``. The currency is required when the fee is not zero; "" with a zero fee: none.
    ts : datetime
        Event time of the fill, timezone-aware. Logged with the change; ``Position`` has no
        event-time column (``updated_at`` is the write time). The fill's snapshot (the equity
        curve's history) is taken at ``ts``, or at the time of the position's latest snapshot when
        that is later — a fill booked after a mark or fill of a later time (the journal behind the
        marks, fills booked out of time order, a fill replayed at node start): a snapshot holds
        every fill booked before it, so no fill is hidden behind a snapshot taken without it.
    locked : SentRows | None
        The row's locked read, already sent by the caller (:func:`position_lock_send`, same
        strategy, venue and key) so that it travels with the caller's other reads in a pipeline;
        by default it is read here.

    Returns
    -------
    Position
        The saved row, holding the new values.

    Raises
    ------
    django.db.transaction.TransactionManagementError
        When called outside ``transaction.atomic()``: the position change must commit with the
        fill that caused it.
    PositionMathsError (a ValueError)
        For invalid fill inputs, naming the field (see :func:`positions.maths.validate_fill`;
        ``fee_currency`` for an ``other_fee`` without currency, see :func:`positions.maths.add_other_fee`).
    ValueError
        For a malformed or ``ANY`` key (``InstrumentKeyError``), a ``venue`` that differs from the
        key's, ``inverse`` contradicting the key's settlement suffix, an unknown strategy, or a
        naive ``ts``.
    """
    _require_atomic("position_apply_fill")
    key = _listing_key(instrument_key=instrument_key, venue=venue)
    _require_aware("ts", ts)
    validate_fill(side=side, quantity=quantity, price=price, fee=fee, multiplier=multiplier)
    if other_fee_currency or other_fee != 0:  # checked before the lock: a bad fee changes nothing
        add_other_fee({}, currency=other_fee_currency, fee=other_fee)
    _check_settlement(key=key, inverse=inverse)

    locked = locked or position_lock_send(strategy_id=strategy_id, venue=venue, instrument_key=instrument_key)
    position, created = locked.one(), False
    if position is None:
        position, created = Position.objects.select_for_update().get_or_create(
            strategy_id=strategy_id, venue=venue, instrument_key=instrument_key,
            defaults={"equivalence_key": key.equivalence_key},
        )
    if created and not _strategy_exists(strategy_id):
        # FKs are checked at commit on PostgreSQL; fail here, naming the field, instead.
        raise ValueError(f"strategy_id: unknown strategy {strategy_id!r}")

    before = _state(position)
    after = apply_fill(before, side=side, quantity=quantity, price=price, fee=fee, multiplier=multiplier,
                       inverse=inverse)
    position.quantity = after.quantity
    position.avg_entry_price = after.avg_entry_price
    position.realized_pnl = after.realized_pnl
    position.fees = after.fees
    fields = ["quantity", "avg_entry_price", "realized_pnl", "fees", "equivalence_key", "unrealized_pnl", "updated_at"]
    if other_fee_currency:
        position.other_fees = add_other_fee(position.other_fees, currency=other_fee_currency, fee=other_fee)
        fields.append("other_fees")
    position.equivalence_key = key.equivalence_key
    position.unrealized_pnl = (
        unrealized_pnl(after, mark=position.mark_price, multiplier=multiplier, inverse=inverse)
        if position.mark_price is not None else Decimal(0)
    )
    # The row is locked above: written without a row-count read, so it may travel in a pipeline.
    send_update(position, fields)
    position_snapshot_record(positions=[position], ts=_fill_snapshot_ts(position, ts, created=created),
                            source=SNAPSHOT_FILL)
    logger.info(
        "position fill applied",
        extra={"strategy_id": strategy_id, "instrument_key": instrument_key, "side": side,
               "quantity": str(quantity), "price": str(price), "fee": str(fee),
               "other_fee": f"{other_fee} {other_fee_currency}" if other_fee_currency else "", "ts": ts.isoformat(),
               "position_quantity": str(after.quantity), "realized_pnl": str(after.realized_pnl)},
    )
    return position


def position_lock_send(*, strategy_id: str, venue: str, instrument_key: str) -> SentRows:
    """Send the locked read (``SELECT … FOR UPDATE``) of a strategy's position in a listing; read it later.

    For :func:`position_apply_fill`'s ``locked``: inside a transaction (the lock lasts until it
    ends); in a pipeline it travels with the caller's other reads. The rows: the ``Position``, or
    none when the strategy has no position there yet.
    """
    return _LOCKED_POSITION.send(strategy_id, venue, instrument_key)


#: The same lock, of the position an order's fill goes to, keyed by the order's client_order_id
#: (sub-selects on its unique index): it can be sent before the order's row has been read.
_LOCKED_POSITION_OF_ORDER = CompiledQuery(
    lambda a, b, c: _with_last_snapshot_ts(Position.objects.select_for_update(of=("self",)).order_by().filter(
        strategy_id=order_column(client_order_id=a, column="strategy_id"),
        venue=order_column(client_order_id=b, column="venue"),
        instrument_key=order_column(client_order_id=c, column="routed_instrument_key"))),
    markers=("<client_order_id marker 1>", "<client_order_id marker 2>", "<client_order_id marker 3>"),
)


def position_lock_send_of_order(*, client_order_id: str) -> SentRows:
    """As :func:`position_lock_send`, for the position of the order ``client_order_id`` (its strategy,
    venue and routed listing), before the order itself has been read."""
    return _LOCKED_POSITION_OF_ORDER.send(client_order_id, client_order_id, client_order_id)


def position_mark(*, instrument_key: str, venue: str, mark_price: Decimal, ts: datetime) -> int:
    """Mark every strategy's position in one listing to ``mark_price``; return the rows updated.

    Sets ``mark_price``, ``marked_at = ts`` and ``unrealized_pnl`` (see
    :func:`positions.maths.unrealized_pnl`) under a row lock, in its own transaction (a savepoint
    when the caller has one). A mark older than a row's ``marked_at`` is stale and leaves that row
    alone (quotes may arrive out of order), so it is not counted. A row another transaction holds
    locked (a fill being written) is skipped, not waited for (PostgreSQL ``SKIP LOCKED``), and not
    counted: the next mark takes it.

    The contract multiplier and inverse flag come from the ``venues.Instrument`` listing of
    ``instrument_key``. A key without a listing, linear or inverse, has no safe default and raises
    before any row is touched: the contract size varies by venue (0.01 BTC per OKX BTC-USDT swap,
    1 BTC on Binance; an inverse face value of 10 USD on Deribit BTC, 1 USD on BitMEX XBTUSD), so a
    multiplier of 1 would store a wrong unrealized PnL. This is the rule of the read side
    (``positions.selectors``: quantity unknown) and of the risk engine for unlisted rows.

    Parameters
    ----------
    instrument_key : str
        Canonical key of the listing (not ``ANY``).
    venue : str
        Venue code; must equal the venue part of ``instrument_key``.
    mark_price : Decimal
        Mark price, quote currency, > 0, ≤ 18 decimal places.
    ts : datetime
        Time of the mark, timezone-aware.

    Returns
    -------
    int
        Number of positions updated (0 when none exist or the mark is stale for all).

    Raises
    ------
    PositionMathsError (a ValueError)
        Field ``mark`` for an invalid ``mark_price``.
    ValueError
        For a malformed or ``ANY`` key, a mismatched venue, a naive ``ts``, a key with no
        ``venues.Instrument`` listing while positions of it exist (``"instrument_key: '…' has no
        venues.Instrument listing; its contract multiplier (contract size) is unknown"``; for ``@INV``
        keys ``"… is inverse but has no … (face value) is unknown"``; with no positions there is
        nothing to mark: 0), or a listing whose ``is_inverse`` contradicts the key.
    """
    key = _listing_key(instrument_key=instrument_key, venue=venue)
    _require_aware("ts", ts)
    try:
        multiplier, inverse = _listing_terms(key=key, instrument_key=instrument_key)
    except _ListingMissing:
        if not Position.objects.filter(instrument_key=instrument_key, venue=venue).exists():
            return 0  # nobody holds it: no contract size needed, nothing to mark
        raise
    unrealized_pnl(PositionState(), mark=mark_price, multiplier=multiplier, inverse=inverse)  # validates the mark
    marked = []
    # SKIP LOCKED: a mark never waits for a fill (the journal's write, which holds the row until it
    # commits); the row skipped is marked by the next mark, which supersedes this one anyway. The
    # writes go in a pipeline (odum_live.sql) with the snapshot's, so the rows it locks are held
    # for a round trip or two, not one per statement — a fill never waits long for a mark either.
    with transaction.atomic(), pipeline():
        rows = (Position.objects.select_for_update(skip_locked=True)
                .filter(instrument_key=instrument_key, venue=venue).order_by("pk"))
        for position in rows:
            if position.marked_at is not None and ts < position.marked_at:
                continue
            position.mark_price = mark_price
            position.marked_at = ts
            position.unrealized_pnl = unrealized_pnl(_state(position), mark=mark_price, multiplier=multiplier,
                                                     inverse=inverse)
            send_update(position, ["mark_price", "marked_at", "unrealized_pnl", "updated_at"])  # locked above
            marked.append(position)
        if marked:
            position_snapshot_record(positions=marked, ts=ts, source=SNAPSHOT_MARK)
            transaction.on_commit(positions_publish_updated)
    return len(marked)


# --- equity curve history and live pushes ---------------------------------------------------------
SNAPSHOT_FILL, SNAPSHOT_MARK = "fill", "mark"


def position_snapshot_record(*, positions: Sequence[Position], ts: datetime, source: str) -> int:
    """Record the current figures of ``positions`` as of ``ts`` (the equity / PnL curve's history).

    A fill is always recorded: it changes quantity and realized PnL, which the curve must show
    where they happened. A mark only moves unrealized PnL, so it is recorded at most every
    ``ODUM['EQUITY_SNAPSHOT_SECS']`` seconds (of ``ts``) per position: when any of ``positions``
    has a snapshot newer than that, the mark records nothing — the positions of one listing are
    marked together, so they share the bound. That bounds the table at one row per position per
    interval from marks, plus one per fill.

    Call in the transaction that changed the rows, so the snapshot commits with the change.

    Parameters
    ----------
    positions : Sequence[Position]
        Saved rows holding the new values.
    ts : datetime
        Time of the fill or mark (UTC-aware).
    source : str
        ``"fill"`` or ``"mark"`` (:data:`SNAPSHOT_FILL`, :data:`SNAPSHOT_MARK`).

    Returns
    -------
    int
        Snapshots written (0 when a mark fell inside the interval).

    Raises
    ------
    ValueError
        An unknown ``source`` or a naive ``ts``.
    """
    if source not in (SNAPSHOT_FILL, SNAPSHOT_MARK):
        raise ValueError(f"source: must be {SNAPSHOT_FILL!r} or {SNAPSHOT_MARK!r}, not {source!r}")
    _require_aware("ts", ts)
    if not positions:
        return 0
    if source == SNAPSHOT_MARK:
        interval = timedelta(seconds=settings.ODUM["EQUITY_SNAPSHOT_SECS"])
        recent = PositionSnapshot.objects.filter(position__in=[p.pk for p in positions], ts__gt=ts - interval)
        if interval and recent.exists():
            return 0
    # Their ids are never read: one INSERT with no RETURNING, which may travel in a pipeline.
    send_insert([
        PositionSnapshot(position=p, ts=ts, quantity=p.quantity, mark_price=p.mark_price,
                         realized_pnl=p.realized_pnl, unrealized_pnl=p.unrealized_pnl)
        for p in positions
    ], read_ids=False)
    return len(positions)


_publish_lock = threading.Lock()
_publish_state = {"last": float("-inf"), "timer": None}


def positions_publish_updated() -> None:
    """Tell the live pages that marks changed: ``{"type": "positions.updated", "group": "positions"}``.

    Called after commit by :func:`position_mark`. Marks of many listings arrive every
    ``POSITION_MARK_SECS``, so sends are bounded to one per ``ODUM['POSITIONS_PUBLISH_SECS']``
    seconds per process: a call inside the interval schedules one trailing send at its end
    (never more than one pending), so the last mark is always pushed. The message carries no
    data; consumers re-read positions through :mod:`positions.selectors`.

    Never raises: the marks are committed, only the push can be lost (logged).
    """
    interval = float(settings.ODUM["POSITIONS_PUBLISH_SECS"])
    with _publish_lock:
        wait = _publish_state["last"] + interval - time.monotonic()
        if wait > 0:
            if _publish_state["timer"] is None:
                timer = threading.Timer(wait, _publish_trailing)
                timer.daemon = True
                _publish_state["timer"] = timer
                timer.start()
            return
        _publish_state["last"] = time.monotonic()
    _group_send()


def _publish_trailing() -> None:
    with _publish_lock:
        _publish_state["timer"] = None
        _publish_state["last"] = time.monotonic()
    _group_send()


async def _send_positions_updated(layer) -> None:
    await layer.group_send(POSITIONS_GROUP, {"type": POSITIONS_UPDATED, "group": POSITIONS_GROUP})


def _group_send() -> None:
    try:
        layer = get_channel_layer()
        if layer is not None:
            run_on_layer(layer, _send_positions_updated)
    except Exception:  # noqa: BLE001 - after commit: log, never raise
        logger.exception("publish of %s to group %s failed", POSITIONS_UPDATED, POSITIONS_GROUP)


def reconciliation_record(*, venues: list[str], venue_quantities: dict[tuple[str, str], Decimal],
                          ts: datetime | None = None, detail: str = "") -> list[ReconciliationFinding]:
    """Compare the OMS's net positions with a venue's and record each difference as a finding.

    Never changes a position (issue #3 §6: differences are recorded, never "fixed" by invented
    fills). An open finding of a listing that now agrees is resolved (``resolved_at`` = ``ts``); a
    listing that still differs keeps its open finding (updated figures) rather than a new one per run.

    Parameters
    ----------
    venues : list[str]
        Venue codes compared: every OMS position on them is checked.
    venue_quantities : dict[tuple[str, str], Decimal]
        (venue code, instrument key) → net quantity the venue reports, base units; a listing
        missing here counts as 0 at the venue.
    ts : datetime | None
        Time of the reconciliation (UTC); default now.
    detail : str
        Context recorded with new findings (e.g. "node start, paper venue restarted").

    Returns
    -------
    list[ReconciliationFinding]
        The open findings after this run, for the venues compared.
    """
    ts = ts or timezone.now()
    venues = set(venues) | {venue for venue, _ in venue_quantities}
    oms: dict[tuple[str, str], Decimal] = {}
    for venue, key, quantity in Position.objects.filter(venue__in=venues).values_list("venue", "instrument_key",
                                                                                   "quantity"):
        oms[(venue, key)] = oms.get((venue, key), Decimal(0)) + quantity
    open_findings = []
    with transaction.atomic():
        for venue, key in sorted(set(oms) | set(venue_quantities)):
            ours, theirs = oms.get((venue, key), Decimal(0)), venue_quantities.get((venue, key), Decimal(0))
            current = ReconciliationFinding.objects.select_for_update().filter(
                kind=ReconciliationFinding.Kind.POSITION_MISMATCH, venue=venue, instrument_key=key,
                resolved_at__isnull=True).first()
            if ours == theirs:
                if current is not None:
                    current.resolved_at = ts
                    current.save(update_fields=["resolved_at"])
                continue
            if current is None:
                current = ReconciliationFinding(kind=ReconciliationFinding.Kind.POSITION_MISMATCH, venue=venue,
                                                instrument_key=key, found_at=ts, detail=detail)
            current.oms_quantity, current.venue_quantity = ours, theirs
            current.save()
            logger.warning("reconciliation: %s %s OMS position %s differs from the venue's %s", venue, key, ours,
                           theirs)
            open_findings.append(current)
    return open_findings


def _require_atomic(name: str) -> None:
    if not transaction.get_connection().in_atomic_block:
        raise transaction.TransactionManagementError(
            f"{name} must run inside the caller's transaction.atomic(): the position change commits "
            f"with the fill that caused it"
        )


def _require_aware(field: str, value: object) -> None:
    if not isinstance(value, datetime):
        raise ValueError(f"{field}: must be a datetime, got {type(value).__name__}")
    if timezone.is_naive(value):
        raise ValueError(f"{field}: must be timezone-aware (UTC), got naive {value.isoformat()}")


def _listing_key(*, instrument_key: str, venue: str) -> InstrumentKey:
    key = parse_instrument_key(instrument_key)  # InstrumentKeyError (a ValueError) names the part
    if key.is_any_venue:
        raise ValueError(f"instrument_key: {instrument_key!r} is an ANY key; positions are per venue listing")
    if key.venue != venue:
        raise ValueError(f"venue: {venue!r} differs from the venue of instrument_key {instrument_key!r}")
    return key


def _check_settlement(*, key: InstrumentKey, inverse: bool) -> None:
    # Only a stated suffix can contradict the flag (an OPTION key may omit it).
    if key.settlement is not None and inverse != (key.settlement == "INV"):
        raise ValueError(f"inverse: {inverse} contradicts instrument_key {str(key)!r} (settlement @{key.settlement})")


class _ListingMissing(ValueError):
    """The key has no ``venues.Instrument`` listing: its contract multiplier is unknown."""


def _listing_terms(*, key: InstrumentKey, instrument_key: str) -> tuple[Decimal, bool]:
    listing = (Instrument.objects.filter(instrument_key=instrument_key)
               .values_list("contract_multiplier", "is_inverse").first())
    if listing is None:
        if key.settlement == "INV":
            raise _ListingMissing(
                f"instrument_key: {instrument_key!r} is inverse but has no venues.Instrument listing; "
                f"its contract multiplier (face value) is unknown"
            )
        raise _ListingMissing(
            f"instrument_key: {instrument_key!r} has no venues.Instrument listing; "
            f"its contract multiplier (contract size) is unknown"
        )
    multiplier, inverse = listing
    _check_settlement(key=key, inverse=inverse)
    return multiplier, inverse


def _state(position: Position) -> PositionState:
    try:
        return PositionState(quantity=position.quantity, avg_entry_price=position.avg_entry_price,
                             realized_pnl=position.realized_pnl, fees=position.fees)
    except PositionMathsError as exc:
        raise PositionMathsError(exc.field, f"stored position {position.pk} is inconsistent: {exc.message}") from exc


def _fill_snapshot_ts(position: Position, ts: datetime, *, created: bool) -> datetime:
    # The fill's ts, or the position's latest snapshot time when later (see position_apply_fill): an earlier
    # snapshot time would put the fill before a snapshot taken without it, which the curve would show last.
    if created:
        return ts
    if hasattr(position, "last_snapshot_ts"):  # read with the row's lock
        latest = position.last_snapshot_ts
    else:  # the row another transaction created while we inserted (get_or_create's race)
        latest = PositionSnapshot.objects.filter(position=position).order_by("-ts").values_list("ts", flat=True).first()
    return ts if latest is None or latest <= ts else latest


def _strategy_exists(strategy_id: str) -> bool:
    strategy_model = Position._meta.get_field("strategy").related_model
    return strategy_model.objects.filter(pk=strategy_id).exists()


def reconciliation_record_external_fill(
        *, venue: str, instrument_key: str, side: str, quantity: Decimal, price: Decimal, trade_id: str,
        client_order_id: str, filled_at: datetime, venue_order_id: str = "", venue_quantity: Decimal | None = None,
        detail: str = "", ts: datetime | None = None) -> tuple[ReconciliationFinding, bool]:
    """Record a fill of an order the OMS did not originate as an EXTERNAL_FILL finding, once per side of a trade.

    A fill's identity is its venue, listing, trade id and side, as ``orders.models.Fill``'s: the two
    sides of one trade between two external orders are two findings, a re-delivery of either none.

    The venue's position moved (a liquidation / ADL / settlement or delivery auto-close, an order
    placed by hand on the account) and no strategy of ours placed the order, so nothing is booked:
    no ``Fill``, no position change (issue #3 §6: differences are recorded, never "fixed" by
    invented fills). The finding is logged at ERROR and stays open (health amber) until a person
    resolves it (:func:`reconciliation_findings_resolve`). See ``ReconciliationFinding`` for what the
    operator sees and does.

    Parameters
    ----------
    venue, instrument_key : str
        Our venue code and instrument key of the listing filled.
    side : str
        ``BUY`` or ``SELL`` (the external order's side).
    quantity : Decimal
        The fill's quantity, base units (contracts for derivatives), > 0.
    price : Decimal
        The fill's price, quote currency, > 0.
    trade_id : str
        The venue's trade id: with venue and listing, the fill's identity (``orders.models.Fill``).
    client_order_id, venue_order_id : str
        The venue's ids of the order filled (``venue_order_id`` "" when unknown).
    filled_at : datetime
        The venue's fill time, timezone-aware (UTC).
    venue_quantity : Decimal | None
        The venue's net position in the listing right after the fill, signed, base units, as the
        trading node holds it; None when unknown: then the OMS's position plus this fill (as if the
        two agreed before it), said so in ``detail``.
    detail : str
        Context (e.g. which strategy of the node owned the order: ``EXTERNAL``).
    ts : datetime | None
        When it was found (UTC); default now.

    Returns
    -------
    tuple[ReconciliationFinding, bool]
        The finding, and whether it was new (False: this trade was recorded before; nothing changed).

    Raises
    ------
    ValueError
        Naming the field: an empty venue / instrument key / trade id / client order id, a side
        other than BUY / SELL, a quantity or price that is not a positive finite Decimal, a naive
        ``filled_at``.
    """
    for name, value in (("venue", venue), ("instrument_key", instrument_key), ("trade_id", trade_id),
                        ("client_order_id", client_order_id)):
        if not isinstance(value, str) or not value:
            raise ValueError(f"{name}: must be a non-empty string")
    if side not in ("BUY", "SELL"):
        raise ValueError(f"side: must be BUY or SELL, got {side!r}")
    for name, value in (("quantity", quantity), ("price", price)):
        if not isinstance(value, Decimal) or not value.is_finite() or value <= 0:
            raise ValueError(f"{name}: must be a positive finite Decimal, got {value!r}")
    if not isinstance(filled_at, datetime) or timezone.is_naive(filled_at):
        raise ValueError(f"filled_at: must be a timezone-aware datetime, got {filled_at!r}")
    key = dict(kind=ReconciliationFinding.Kind.EXTERNAL_FILL, venue=venue, instrument_key=instrument_key,
               trade_id=trade_id, side=side)
    existing = ReconciliationFinding.objects.filter(**key).first()
    if existing is not None:
        logger.info("external fill %s %s trade %s already recorded (finding %s)", venue, instrument_key, trade_id,
                    existing.pk)
        return existing, False
    oms = sum(Position.objects.filter(venue=venue, instrument_key=instrument_key).values_list("quantity", flat=True),
              Decimal(0))
    if venue_quantity is None:
        venue_quantity = oms + (quantity if side == "BUY" else -quantity)
        detail = f"{detail}; venue position not known: the OMS's plus this fill".lstrip("; ")
    finding = ReconciliationFinding(**key, quantity=quantity, price=price, client_order_id=client_order_id,
                                    venue_order_id=venue_order_id, filled_at=filled_at, oms_quantity=oms,
                                    venue_quantity=venue_quantity, detail=detail, found_at=ts or timezone.now())
    try:
        with transaction.atomic():  # a savepoint inside the journal's batch: a lost race leaves the batch intact
            finding.save()
    except IntegrityError:
        existing = ReconciliationFinding.objects.get(**key)  # recorded meanwhile by another writer
        return existing, False
    logger.error("reconciliation: %s %s: %s not originated by the OMS, not booked to any strategy; the OMS's "
                 "position %s, the venue's %s (finding %s)", venue, instrument_key, finding.external_fill_text(),
                 oms, venue_quantity, finding.pk)
    return finding, True


def reconciliation_findings_resolve(*, finding_ids: Sequence[int], ts: datetime | None = None) -> int:
    """Mark open findings resolved (a person has dealt with them); return how many were open.

    Already resolved findings keep their time. Used by the admin's "mark resolved" action.

    Parameters
    ----------
    finding_ids : Sequence[int]
        ``ReconciliationFinding`` ids.
    ts : datetime | None
        The resolution time (UTC); default now.
    """
    resolved = ReconciliationFinding.objects.filter(pk__in=list(finding_ids), resolved_at__isnull=True).update(
        resolved_at=ts or timezone.now())
    logger.info("reconciliation: %d finding(s) marked resolved", resolved)
    return resolved
