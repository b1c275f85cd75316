"""Open-order exposure for pre-trade risk: the order-table side of ``risk.exposure``.

- :class:`OrdersOpenOrderSource` implements :class:`risk.exposure.OpenOrderSource` over ``Order``
  rows: the repeated-order look-up (one indexed count) and the authoritative open-order sums used
  to reconcile the running totals.
- :func:`order_exposure_changed` keeps the running totals (``risk.models.OpenOrderExposure``)
  true when an order's open quantity shrinks. **Every service that changes an order's status or
  filled quantity calls it, in the same transaction** (fills and venue events, cancel, reject,
  expire). Missing a call leaves the totals too high — risk denies more, never less — until
  ``risk.services.open_exposure_rebuild`` repairs them.

Quantities in base units (contracts for derivatives), prices in quote currency.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from django.db import connection
from django.db.models import Case, DecimalField, F, Sum, Value, When
from django.db.models.fields.json import KT

from odum_live.fields import DECIMAL_PLACES, MAX_DIGITS
from orders.models import Order
from orders.state import OPEN_STATUSES, OrderStatus
from risk.exposure import OpenOrderTotal
from odum_live.sql import send_query
from risk.services import open_exposure_adjust

_ZERO = Decimal("0")


def _leaves(status: str, quantity: Decimal, filled_quantity: Decimal) -> Decimal:
    # Open quantity counted as exposure: none once the order left the open statuses.
    return quantity - filled_quantity if status in OPEN_STATUSES else _ZERO


class OrdersOpenOrderSource:
    """:class:`risk.exposure.OpenOrderSource` over the ``orders_order`` table."""

    def open_order_totals(self) -> list[OpenOrderTotal]:
        """Return Σ leaves / priced leaves / leaves × price of risk-recorded open orders.

        Grouped by strategy, routed listing and side; one aggregate query over the orders in
        ``OPEN_STATUSES`` whose ``risk_result["recorded"]`` is true (orders the engine counted).
        Scans every open order: reconciliation only.
        """
        dec = DecimalField(max_digits=MAX_DIGITS, decimal_places=DECIMAL_PLACES)
        leaves = F("quantity") - F("filled_quantity")
        rows = (
            Order.objects.filter(status__in=OPEN_STATUSES, risk_result__recorded=True)
            .order_by()
            .values("strategy_id", "routed_instrument_key", "side")
            .annotate(
                leaves=Sum(leaves, output_field=dec),
                priced=Sum(Case(When(price__isnull=False, then=leaves), default=Value(_ZERO), output_field=dec)),
                value=Sum(Case(When(price__isnull=False, then=leaves * F("price")), default=Value(_ZERO),
                               output_field=dec)),
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

        DENIED orders do not count (they never reached a venue). One COUNT on the
        ``order_repeat_idx`` index (strategy, routed_instrument_key, side, created_at).
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
            " AND side = %s AND created_at >= %s AND quantity = %s AND status <> %s"
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
    open_exposure_adjust(
        strategy_id=order.strategy_id,
        instrument_key=order.routed_instrument_key,
        side=order.side,
        leaves_delta=-released,
        priced_delta=-released if priced else _ZERO,
        value_delta=-(released * order.price) if priced else _ZERO,
        checks=checks,
    )
