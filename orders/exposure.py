"""Open-order exposure for pre-trade risk: the order-table side of ``risk.exposure``.

- :class:`OrdersOpenOrderSource` implements :class:`risk.exposure.OpenOrderSource` over ``Order``
  rows: the repeated-order look-up (one indexed count) and the authoritative open-order sums used
  to reconcile the running totals.
- :func:`order_exposure_changed` keeps the running totals (``risk.models.OpenOrderExposure``)
  true when an order's open quantity shrinks. **Every service that changes an order's status or
  filled quantity calls it, in the same transaction** (fills and venue events, cancel, reject,
  expire). Missing a call leaves the totals too high — risk denies more, never less — until
  ``risk.services.open_exposure_rebuild`` repairs them. Its arithmetic is exact (a local context of
  ``positions.maths.PRECISION`` digits) and values follow ``risk.services.open_exposure_value``.

Quantities in base units (contracts for derivatives), prices in quote currency.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal, localcontext

from django.db import connection
from django.db.models import Case, DecimalField, F, Sum, Value, When
from django.db.models.fields.json import KT
from django.db.models.functions import Ceil

from odum_live.fields import DECIMAL_PLACES, MAX_DIGITS
from orders.models import Order
from orders.state import OPEN_STATUSES, OrderStatus
from positions.maths import PRECISION, QUANTUM
from risk.exposure import OpenOrderTotal
from odum_live.sql import send_query
from risk.services import open_exposure_adjust, open_exposure_value

_ZERO = Decimal("0")
_PER_QUANTUM = Decimal(10) ** DECIMAL_PLACES


def _leaves(status: str, quantity: Decimal, filled_quantity: Decimal) -> Decimal:
    # Open quantity counted as exposure: none once the order left the open statuses.
    return quantity - filled_quantity if status in OPEN_STATUSES else _ZERO


class OrdersOpenOrderSource:
    """:class:`risk.exposure.OpenOrderSource` over the ``orders_order`` table."""

    def open_order_totals(self) -> list[OpenOrderTotal]:
        """Return Σ leaves / priced leaves / leaves × price of risk-recorded open orders.

        Grouped by strategy, routed listing and side; one aggregate query over the orders in
        ``OPEN_STATUSES`` whose ``risk_result["recorded"]`` is true (orders the engine counted).
        Scans every open order: reconciliation only. Each order's leaves × price is taken as the
        totals store it (``risk.services.open_exposure_value``: rounded up to 18 places) on
        PostgreSQL; SQLite's doubles hold no 18 places to round.
        """
        dec = DecimalField(max_digits=MAX_DIGITS, decimal_places=DECIMAL_PLACES)
        leaves = F("quantity") - F("filled_quantity")
        value = leaves * F("price")
        if connection.vendor == "postgresql":
            # Exact numeric: ceil(value × 10**18) × 10**-18 is open_exposure_value's ROUND_UP for value ≥ 0.
            value = Ceil(value * Value(_PER_QUANTUM, output_field=dec)) * Value(QUANTUM, output_field=dec)
        rows = (
            Order.objects.filter(status__in=OPEN_STATUSES, risk_result__recorded=True)
            .order_by()
            .values("strategy_id", "routed_instrument_key", "side")
            .annotate(
                leaves=Sum(leaves, output_field=dec),
                priced=Sum(Case(When(price__isnull=False, then=leaves), default=Value(_ZERO), output_field=dec)),
                value=Sum(Case(When(price__isnull=False, then=value), default=Value(_ZERO), output_field=dec)),
            )
        )
        return [
            OpenOrderTotal(
                strategy_id=r["strategy_id"], instrument_key=r["routed_instrument_key"], side=r["side"],
                leaves_quantity=r["leaves"] or _ZERO, priced_quantity=r["priced"] or _ZERO,
                priced_value=r["value"] or _ZERO,
            )
            for r in rows
        ]

    def repeat_count(
        self, *, strategy_id: str, instrument_key: str, side: str, quantity: Decimal, since: datetime
    ) -> int:
        """Count orders repeating this one since ``since`` (UTC): same strategy, listing, side, quantity.

        Only orders the strategy sent count (``parent_id IS NULL``): an execution algorithm's child
        slices are the algorithm's, so a TWAP slice of 0.1 does not make the strategy's own 0.1 a
        repeat. DENIED orders do not count (they never reached a venue). One COUNT on the
        ``order_repeat_idx`` index (strategy, routed_instrument_key, side, created_at), the other
        conditions checked on the rows it finds.
        """
        return self.repeat_count_start(strategy_id=strategy_id, instrument_key=instrument_key, side=side,
                                       quantity=quantity, since=since)()

    def repeat_count_start(
        self, *, strategy_id: str, instrument_key: str, side: str, quantity: Decimal, since: datetime
    ) -> Callable[[], int]:
        """Send :meth:`repeat_count`'s query now; return the function that reads its answer (call once).

        In a psycopg pipeline the query then travels with the statements sent after it, up to the
        first one whose result is read.
        """
        # Plain SQL: this runs for every order, and building the ORM query cost more than running it.
        sql = (
            f"SELECT COUNT(*) FROM {Order._meta.db_table} WHERE strategy_id = %s AND routed_instrument_key = %s"
            " AND side = %s AND created_at >= %s AND quantity = %s AND status <> %s AND parent_id IS NULL"
        )
        params = [strategy_id, instrument_key, side, connection.ops.adapt_datetimefield_value(since), quantity,
                  OrderStatus.DENIED.value]
        query = send_query(sql, params)
        return lambda: int(query.fetchall()[0][0])


#: The order's JSON documents, which no state change reads: a venue event's locked read leaves them
#: unread (decoding the risk result, ~5 KB, was a fifth of a journal write: bench/e2e_latency.py).
ORDER_DOCUMENTS = ("risk_result", "routing_decision", "expected_deltas", "metadata")


def orders_for_state_change():
    """Return ``Order`` rows as the state-changing services read them: documents deferred.

    Each row carries ``exposure_recorded`` (annotation: ``risk_result["recorded"]``), which is all
    of the risk result that :func:`order_exposure_changed` needs, so it never loads the deferred
    document.
    """
    return Order.objects.defer(*ORDER_DOCUMENTS).annotate(exposure_recorded=KT("risk_result__recorded"))


def _exposure_recorded(order: Order) -> bool:
    if hasattr(order, "exposure_recorded"):  # from orders_for_state_change(): JSON text, None when absent
        return order.exposure_recorded == "true"
    return bool((order.risk_result or {}).get("recorded"))


def order_exposure_changed(*, order: Order, previous_status: str, previous_filled_quantity: Decimal,
                           checks: list[Callable[[], None]] | None = None) -> None:
    """Subtract from the open-order totals what ``order`` stopped leaving open.

    Call after changing ``order.status`` and/or ``order.filled_quantity`` (saved or not), in the
    same transaction, with the values they had before. Does nothing for an order whose risk check
    did not record exposure (``risk_result["recorded"]`` not true: denied, or created before the
    totals existed), or when its open quantity did not shrink.

    Parameters
    ----------
    order : Order
        The order, with its new status and filled quantity.
    previous_status : str
        Status before the change.
    previous_filled_quantity : Decimal
        Filled quantity before the change, base units.
    checks : list[Callable[[], None]] | None
        Passed to :func:`risk.services.open_exposure_adjust`: where to leave its drift check
        when the caller runs it after a pipeline's read (default: at once).

    Raises
    ------
    ValueError
        When the open quantity would grow (a fill reversed, a terminal order reopened): the
        state machine forbids both, so this is a caller bug.
    """
    if not _exposure_recorded(order):
        return
    with localcontext(prec=PRECISION):  # exact: two NUMERIC(36,18) values differ in up to 37 digits
        before = _leaves(previous_status, order.quantity, previous_filled_quantity)
        after = _leaves(order.status, order.quantity, order.filled_quantity)
        released = before - after
        if released == 0:
            return
        if released < 0:
            raise ValueError(
                f"order {order.id}: open quantity grew from {before} to {after} "
                f"({previous_status} → {order.status}); open exposure only shrinks after acceptance"
            )
        priced = order.price is not None
        # The value after minus the value before, each as stored: the order's releases cancel its addition exactly.
        value_delta = (open_exposure_value(quantity=after, price=order.price)
                       - open_exposure_value(quantity=before, price=order.price)) if priced else _ZERO
        leaves_delta = -released  # negation rounds to the context too: inside it
    open_exposure_adjust(
        strategy_id=order.strategy_id,
        instrument_key=order.routed_instrument_key,
        side=order.side,
        leaves_delta=leaves_delta,
        priced_delta=leaves_delta if priced else _ZERO,
        value_delta=value_delta,
        checks=checks,
    )
