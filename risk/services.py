"""Writes of pre-trade risk: kill switches and the open-order exposure totals.

- :func:`trading_state_set` — the one way a kill switch changes (admin actions, UI, CLI); a HALTED
  scope also cancels its working orders once the change commits (:class:`HaltSweep` says what it did).
- :func:`open_exposure_adjust` — add or subtract an order's open quantity in
  :class:`~risk.models.OpenOrderExposure` (the engine adds, ``orders.exposure`` subtracts);
  :func:`open_exposure_add_start` — the addition, refused when a total would not fit NUMERIC(36,18).
- :func:`open_exposure_value` — what an open quantity at its limit price counts in those totals.
- :func:`open_exposure_rebuild` — recompute those totals from the order table (reconciliation).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_UP, Decimal, localcontext

from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connections, transaction
from django.utils import timezone

from odum_live.fields import NUMERIC_BOUND
from odum_live.instruments import InstrumentKeyError, parse_instrument_key
from odum_live.sql import in_pipeline, send_query
from positions.maths import PRECISION, QUANTUM
from risk.exposure import OpenOrderSource, OpenOrderTotal, default_open_order_source
from risk.models import OpenOrderExposure, Scope, TradingState, _clean_scope_key
from venues.models import Venue

logger = logging.getLogger(__name__)

_ZERO = Decimal("0")


# --- kill switches -------------------------------------------------------------------------------
def scope_key_validate(*, scope: str, scope_key: str) -> str:
    """Return ``scope_key`` stripped, after checking it names something that exists.

    A kill switch or limit keyed by a typo would silently cover nothing, so beyond the model's own
    checks (empty for GLOBAL, a parseable key for INSTRUMENT) the venue or strategy must exist and
    an instrument key must be written canonically (that is how orders are matched).

    Parameters
    ----------
    scope : str
        ``risk.models.Scope`` value.
    scope_key : str
        Venue code, strategy id or canonical instrument key; empty for GLOBAL.

    Raises
    ------
    django.core.exceptions.ValidationError
        With a ``scope`` or ``scope_key`` entry saying what is wrong.
    """
    if scope not in Scope.values:
        raise ValidationError({"scope": f"must be one of {', '.join(Scope.values)}, not {scope!r}"})
    scope_key = (scope_key or "").strip()
    scope_key = _clean_scope_key(scope, scope_key)
    if scope == Scope.VENUE and not Venue.objects.filter(code=scope_key).exists():
        raise ValidationError({"scope_key": f"no venue with code {scope_key!r}"})
    if scope == Scope.STRATEGY:
        # Looked up by name: risk must not import orders (orders imports risk).
        strategy_model = apps.get_model("orders", "Strategy")
        if not strategy_model.objects.filter(pk=scope_key).exists():
            raise ValidationError({"scope_key": f"no strategy with id {scope_key!r}"})
    if scope == Scope.INSTRUMENT:
        canonical = str(parse_instrument_key(scope_key))
        if canonical != scope_key:
            raise ValidationError({"scope_key": f"write the instrument key canonically: {canonical!r}"})
    return scope_key


@dataclass
class HaltSweep:
    """What setting a scope HALTED did to the working orders in it (order ids, as ``uuid.UUID``).

    Attributes
    ----------
    scope_label : str
        The halted scope, e.g. ``"VENUE:OKX"`` or ``"GLOBAL"``.
    canceled : list
        Orders CANCELED at once: ROUTED, never handed to a venue.
    cancel_requested : list
        Orders now PENDING_CANCEL: the cancel is on its way to the venue (an execution algorithm's
        parent cancels its open slices and stops its schedule with it).
    already_canceling : list
        Orders whose cancel was already pending.
    moved_on : list
        Orders that ended (filled, canceled, rejected …) between the read and their cancel.
    failed : list of (order id, error text)
        Orders whose cancel failed: still working, each logged as an error.
    error : str
        Why the open orders could not even be read (nothing was canceled); empty otherwise.
    """

    scope_label: str
    canceled: list = field(default_factory=list)
    cancel_requested: list = field(default_factory=list)
    already_canceling: list = field(default_factory=list)
    moved_on: list = field(default_factory=list)
    failed: list = field(default_factory=list)
    error: str = ""

    @property
    def ok(self) -> bool:
        """True when every working order of the scope is canceled or has its cancel pending."""
        return not (self.failed or self.error)

    def summary(self) -> str:
        """One line for the person who halted: what was canceled, and every failure with its order id."""
        if self.error:
            return (f"{self.scope_label}: open orders NOT canceled, they could not be read ({self.error}); "
                    "set HALTED again to retry")
        text = (f"{self.scope_label}: {_orders(self.canceled)} canceled, "
                f"{_orders(self.cancel_requested)} asked to cancel at the venue")
        if self.already_canceling:
            text += f", {_orders(self.already_canceling)} already canceling"
        if self.failed:
            text += f"; {_orders(self.failed)} NOT canceled, still working: " + "; ".join(
                f"{order_id}: {error}" for order_id, error in self.failed)
        return text


def _orders(ids: list) -> str:
    return f"{len(ids)} order" + ("" if len(ids) == 1 else "s")


def trading_state_set(*, scope: str, scope_key: str, state: str, reason: str, actor: str,
                      on_halt: Callable[[HaltSweep], None] | None = None) -> TradingState:
    """Set the kill switch of one scope: ACTIVE, REDUCING (reduce-only) or HALTED.

    The change applies to the very next order evaluated (the engine reads states fresh). The row
    is created on first use; django-simple-history records every change with ``reason`` as the
    history change reason (first 100 characters; the full text stays on the row).

    HALTED also stops what is already working (FIA "Best Practices for Automated Trading Risk
    Controls", 2010, and CME Globex's kill switch: cancel all working orders, block new ones):
    once the change commits — at the end of this call, or of the caller's transaction when it
    holds one — every open top-level order in the scope is canceled through
    ``orders.services.order_cancel`` (``orders.services.kill_switch.orders_cancel_in_halted_scope``;
    the scope covers the orders the engine would deny: :func:`risk.selectors.scope_covers`). A ROUTED
    order is CANCELED at once; one at a venue goes PENDING_CANCEL and its cancel to the venue; an
    execution algorithm's parent cancels its slices and stops its schedule. Each order's timeline
    names the kill switch, ``actor`` and ``reason``. A failure to cancel one order is logged and
    reported and does not stop the others. REDUCING and ACTIVE cancel nothing. Setting HALTED
    again sweeps again.

    Parameters
    ----------
    scope : str
        ``GLOBAL``, ``VENUE``, ``STRATEGY`` or ``INSTRUMENT``.
    scope_key : str
        Empty for GLOBAL; an existing venue code or strategy id; a canonical instrument key (an
        ``ANY:`` key covers every venue's listing of the instrument).
    state : str
        ``ACTIVE``, ``REDUCING`` or ``HALTED`` (``TradingState.State``).
    reason : str
        Why; required, not blank (FIA "Best Practices for Automated Trading Risk Controls": kill
        switch use is logged with its reason).
    actor : str
        Who sets it (user name or component); required.
    on_halt : Callable[[HaltSweep], None], optional
        Called with what the halt did, after the commit, when ``state`` is HALTED (e.g. to show it
        to the person who halted). A rolled-back change sweeps nothing and never calls it.

    Returns
    -------
    TradingState
        The saved row.

    Raises
    ------
    django.core.exceptions.ValidationError
        Blank reason or actor, unknown state, or an invalid scope / scope key (see
        :func:`scope_key_validate`).
    """
    errors: dict[str, str] = {}
    reason = (reason or "").strip()
    actor = (actor or "").strip()
    if not reason:
        errors["reason"] = "a reason is required for every trading-state change"
    if not actor:
        errors["actor"] = "the actor (who sets the state) is required"
    if state not in TradingState.State.values:
        errors["state"] = f"must be one of {', '.join(TradingState.State.values)}, not {state!r}"
    if errors:
        raise ValidationError(errors)
    scope_key = scope_key_validate(scope=scope, scope_key=scope_key)
    for attempt in (1, 2):
        try:
            with transaction.atomic():
                row = TradingState.objects.select_for_update().filter(scope=scope, scope_key=scope_key).first()
                if row is None:
                    row = TradingState(scope=scope, scope_key=scope_key)
                row.state, row.reason, row.changed_by = state, reason, actor
                row._change_reason = reason[:100]  # simple-history's change-reason column is 100 chars
                row.save()
                if state == TradingState.State.HALTED:
                    transaction.on_commit(functools.partial(_halt_sweep, scope=scope, scope_key=scope_key,
                                                            set_by=actor, reason=reason, on_halt=on_halt))
            break
        except IntegrityError:
            # Another request created the row first: the second attempt updates it.
            if attempt == 2:
                raise
    logger.warning("trading state %s set to %s by %s: %s", row, state, actor, reason)
    return row


def _halt_sweep(*, scope: str, scope_key: str, set_by: str, reason: str,
                on_halt: Callable[[HaltSweep], None] | None) -> None:
    # Imported here: orders imports risk, never the other way round at import time.
    from orders.services.kill_switch import orders_cancel_in_halted_scope

    sweep = orders_cancel_in_halted_scope(scope=scope, scope_key=scope_key, set_by=set_by, reason=reason)
    if on_halt is not None:
        on_halt(sweep)


# --- open-order exposure totals ------------------------------------------------------------------
def open_exposure_value(*, quantity: Decimal, price: Decimal) -> Decimal:
    """Return what ``quantity`` open at limit ``price`` counts in ``OpenOrderExposure.priced_value``.

    The exact product (never rounded to the default context's 28 digits: two NUMERIC(36,18) values
    make up to 72), rounded **away from zero** to the column's 18 decimal places, so a stored total
    never counts less than its open orders are worth (risk denies more, never less). The engine adds
    this value of an order's quantity; a release subtracts the difference of this value before and
    after (``orders.exposure.order_exposure_changed``), never the value of the released part, so an
    order's additions and releases cancel exactly and the total stays Σ over open orders of this
    value, whatever the fills.

    Parameters
    ----------
    quantity : Decimal
        Open quantity, base units (contracts for derivatives), ≥ 0, NUMERIC(36,18).
    price : Decimal
        Limit price, quote currency, NUMERIC(36,18).

    Returns
    -------
    Decimal
        Quote currency, 18 decimal places.
    """
    with localcontext(prec=PRECISION):
        return (quantity * price).quantize(QUANTUM, rounding=ROUND_UP)


def open_exposure_adjust(
    *,
    strategy_id: str,
    instrument_key: str,
    side: str,
    leaves_delta: Decimal,
    priced_delta: Decimal,
    value_delta: Decimal,
    using: str = DEFAULT_DB_ALIAS,
    checks: list[Callable[[], None]] | None = None,
) -> bool:
    """Add to (all deltas ≥ 0) or subtract from (all ≤ 0) one open-order total, in one statement.

    Call inside the transaction that creates or changes the order, so the totals commit or roll
    back with it. A subtraction never takes a total below zero; one that finds no row, or would
    go below zero, is logged as drift (the totals were missing that order) and
    :func:`open_exposure_rebuild` repairs it.

    Parameters
    ----------
    strategy_id : str
        Owning strategy.
    instrument_key : str
        Routed listing (canonical key, not ``ANY``).
    side : str
        ``Order.Side`` value.
    leaves_delta : Decimal
        Change of open quantity, base units.
    priced_delta : Decimal
        Change of the open quantity of orders with a limit price, base units.
    value_delta : Decimal
        Change of Σ open quantity × limit price, quote currency.
    using : str
        Database alias.
    checks : list[Callable[[], None]] | None
        Where to leave the drift check of a subtraction (whether a row was found), for the caller
        to run once the statement's result is in (after its pipeline's read: odum_live.sql); by
        default, and outside a pipeline, it runs here, at once.

    Returns
    -------
    bool
        True, except for an addition refused because a total would reach ``NUMERIC_BOUND``
        (see :func:`open_exposure_add_start`): then nothing changed.

    Raises
    ------
    ValueError
        Mixed signs, or an instrument key that does not parse (or is ``ANY``).
    """
    deltas = (leaves_delta, priced_delta, value_delta)
    if all(d == 0 for d in deltas):
        return True
    if all(d >= 0 for d in deltas):
        return open_exposure_add_start(strategy_id=strategy_id, instrument_key=instrument_key, side=side,
                                       leaves_delta=leaves_delta, priced_delta=priced_delta,
                                       value_delta=value_delta, using=using)()
    connection = connections[using]
    table = OpenOrderExposure._meta.db_table
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    if not all(d <= 0 for d in deltas):
        raise ValueError(f"open exposure deltas must share one sign, got {deltas}")
    sets = ", ".join(
        f"{col} = CASE WHEN {col} + %s < 0 THEN 0 ELSE {col} + %s END"
        for col in ("leaves_quantity", "priced_quantity", "priced_value")
    )
    sql = (f"UPDATE {table} SET {sets}, updated_at = %s WHERE strategy_id = %s AND instrument_key = %s AND side = %s"
           " RETURNING 1")
    params = [d for d in deltas for _ in (0, 1)] + [now, strategy_id, instrument_key, side]
    sent = send_query(sql, params, using=using)

    def check() -> None:
        if not sent.fetchall():
            logger.error(
                "open exposure drift: no total for %s %s %s to subtract %s from; run open_exposure_rebuild",
                strategy_id, side, instrument_key, leaves_delta,
            )

    if checks is None or not in_pipeline(using=using):
        check()
    else:
        checks.append(check)
    return True


def open_exposure_add_start(
    *,
    strategy_id: str,
    instrument_key: str,
    side: str,
    leaves_delta: Decimal,
    priced_delta: Decimal,
    value_delta: Decimal,
    using: str = DEFAULT_DB_ALIAS,
) -> Callable[[], bool]:
    """Send the addition of an order to its open-order total; return the reader of whether it was made.

    The columns are NUMERIC(36,18): a total of 10**18 or more (``odum_live.fields.NUMERIC_BOUND``)
    cannot be stored (PostgreSQL raises "numeric field overflow", failing the whole transaction;
    SQLite would store a rounded float). So the upsert adds only when every new total stays below
    the bound, decided by the database under the row's lock (concurrent additions cannot jointly
    overflow), and otherwise changes nothing. In a psycopg pipeline the statement travels with the
    statements sent after it, up to the first read.

    Parameters
    ----------
    strategy_id, instrument_key, side : str
        As :func:`open_exposure_adjust` (a routed listing key, not ``ANY``).
    leaves_delta, priced_delta : Decimal
        Open quantity to add (≥ 0), base units (contracts for derivatives).
    value_delta : Decimal
        Σ quantity × limit price to add (≥ 0), quote currency.
    using : str
        Database alias.

    Returns
    -------
    Callable[[], bool]
        Call once: True when added, False when a total would have reached the bound.

    Raises
    ------
    ValueError
        A negative delta, or an instrument key that does not parse (or is ``ANY``).
    """
    deltas = (leaves_delta, priced_delta, value_delta)
    if any(d < 0 for d in deltas):
        raise ValueError(f"open exposure additions must not be negative, got {deltas}")
    try:
        key = parse_instrument_key(instrument_key)
    except InstrumentKeyError as exc:
        raise ValueError(f"open exposure needs a routed listing key: {exc}") from exc
    if key.is_any_venue:
        raise ValueError(f"open exposure needs a routed listing key, not {instrument_key!r}")
    if any(d >= NUMERIC_BOUND for d in deltas):
        return lambda: False
    connection = connections[using]
    table = OpenOrderExposure._meta.db_table
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    bound = int(NUMERIC_BOUND)  # a literal: SQLite would compare a bound parameter as text
    columns = ("leaves_quantity", "priced_quantity", "priced_value")
    sql = (
        f"INSERT INTO {table} (strategy_id, instrument_key, side, venue, equivalence_key,"
        " leaves_quantity, priced_quantity, priced_value, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (strategy_id, instrument_key, side) DO UPDATE SET "
        + ", ".join(f"{col} = {table}.{col} + excluded.{col}" for col in columns)
        + ", updated_at = excluded.updated_at WHERE "
        + " AND ".join(f"{table}.{col} + excluded.{col} < {bound}" for col in columns)
        + " RETURNING 1"
    )
    params = [strategy_id, instrument_key, side, key.venue, key.equivalence_key, *deltas, now]
    sent = send_query(sql, params, using=using)
    return lambda: bool(sent.fetchall())


@dataclass(frozen=True, slots=True)
class ExposureDrift:
    """One open-order total that differed from the order table when rebuilt.

    ``recorded`` and ``actual`` are (leaves_quantity, priced_quantity, priced_value): base units,
    base units, quote currency.
    """

    strategy_id: str
    instrument_key: str
    side: str
    recorded: tuple[Decimal, Decimal, Decimal]
    actual: tuple[Decimal, Decimal, Decimal]


def open_exposure_rebuild(
    *, source: OpenOrderSource | None = None, using: str = DEFAULT_DB_ALIAS
) -> tuple[ExposureDrift, ...]:
    """Recompute every open-order total from the order table; return what differed.

    Meant for a periodic reconciliation (Celery beat) and after an incident; it scans every open
    order, so never per order. On PostgreSQL the totals table is locked against writers (SHARE ROW
    EXCLUSIVE) for the duration: evaluations and order updates wait, then apply on top of the
    rebuilt rows, so nothing is lost or counted twice. On SQLite the transaction already runs alone.

    Parameters
    ----------
    source : OpenOrderSource, optional
        Default: :func:`risk.exposure.default_open_order_source`.
    using : str
        Database alias.

    Returns
    -------
    tuple of ExposureDrift
        Empty when the totals were exact.
    """
    source = source or default_open_order_source()
    with transaction.atomic(using=using):
        connection = connections[using]
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(f"LOCK TABLE {OpenOrderExposure._meta.db_table} IN SHARE ROW EXCLUSIVE MODE")
        actual: dict[tuple[str, str, str], OpenOrderTotal] = {
            (t.strategy_id, t.instrument_key, t.side): t for t in source.open_order_totals()
        }
        rows = {(r.strategy_id, r.instrument_key, r.side): r for r in OpenOrderExposure.objects.using(using)}
        drift = []
        for key in sorted(set(actual) | set(rows)):
            total, row = actual.get(key), rows.get(key)
            want = (total.leaves_quantity, total.priced_quantity, total.priced_value) if total else (_ZERO,) * 3
            have = (row.leaves_quantity, row.priced_quantity, row.priced_value) if row else (_ZERO,) * 3
            if want == have:
                continue
            drift.append(
                ExposureDrift(strategy_id=key[0], instrument_key=key[1], side=key[2], recorded=have, actual=want)
            )
            if row is None:
                parsed = parse_instrument_key(key[1])
                row = OpenOrderExposure(
                    strategy_id=key[0], instrument_key=key[1], side=key[2],
                    venue=parsed.venue, equivalence_key=parsed.equivalence_key,
                )
            row.leaves_quantity, row.priced_quantity, row.priced_value = want
            row.save(using=using)
    for d in drift:
        logger.error("open exposure drift repaired: %s", d)
    return tuple(drift)
