"""The kill switch's cancel sweep: a HALTED scope's working orders are canceled, not only new ones denied.

FIA, "Best Practices for Automated Trading Risk Controls" (2010), and CME Globex's kill switch: a
kill switch cancels all working orders and blocks new ones. The pre-trade engine blocks the new
ones (``risk.engine``, ``kill_switch``); :func:`orders_cancel_in_halted_scope` cancels the working
ones. ``risk.services.trading_state_set`` runs it once a HALTED state has committed.

What reaches no venue after the halt, and why:

- Orders open when the sweep reads: each is canceled through :func:`orders.services.order_cancel`
  (the one cancel path). ROUTED → CANCELED at once, and the trading worker drops its submit
  command (or the sweeper's re-send) as IGNORED; at a venue → PENDING_CANCEL and a cancel to the
  venue. An execution algorithm's parent is canceled, never its slices: its cancel carries its open
  slices' ids to the node, which cancels them and runs no further slice step.
- Orders that commit after the sweep read (risk-checked just before the halt committed), ROUTED
  orders the sweep has not reached yet, and the sweeper's re-sends: the trading worker's claim
  refuses any order in a HALTED scope (:mod:`orders.services.venue_commands`), so nothing in the
  scope is claimed once the halt has committed; such an order is canceled there, through the same
  service, with the same actor and reason.
"""

from __future__ import annotations

import logging

from django.db.models import QuerySet

from odum_live.instruments import parse_instrument_key
from orders.models import Order
from orders.services.cancel import OrderNotCancelable, order_cancel
from orders.state import CANCELABLE_STATUSES, OrderStatus
from risk.models import Scope
from risk.selectors import scope_covers, scope_label_of
from risk.services import HaltSweep

logger = logging.getLogger(__name__)

#: The statuses the sweep reads: those that admit a cancel, and a cancel already pending (reported).
_SWEPT_STATUSES = sorted(CANCELABLE_STATUSES | {OrderStatus.PENDING_CANCEL})


def kill_switch_actor(set_by: str) -> str:
    """Return the actor recorded on what a kill switch set by ``set_by`` does to an order."""
    return f"kill-switch:{set_by}"


def kill_switch_reason(*, scope_label: str, set_by: str, reason: str) -> str:
    """Return the reason recorded on an order a HALTED kill switch cancels: the switch, who set it, why."""
    return f"kill switch {scope_label} HALTED by {set_by}: {reason}"


def _open_in_scope(scope: str, scope_key: str) -> QuerySet:
    # The scope's top-level open orders, narrowed in SQL; INSTRUMENT keys are matched as the engine
    # matches them (scope_covers) on the listings that share the key's equivalence key.
    orders = Order.objects.filter(parent__isnull=True, status__in=_SWEPT_STATUSES)
    if scope == Scope.VENUE:
        orders = orders.filter(venue=scope_key)
    elif scope == Scope.STRATEGY:
        orders = orders.filter(strategy_id=scope_key)
    elif scope == Scope.INSTRUMENT:
        orders = orders.filter(routed_instrument_key__endswith=":" + parse_instrument_key(scope_key).equivalence_key)
    return orders.only("id", "status", "strategy_id", "venue", "routed_instrument_key").order_by("created_at", "id")


def orders_cancel_in_halted_scope(*, scope: str, scope_key: str, set_by: str, reason: str) -> HaltSweep:
    """Cancel every open top-level order in a HALTED scope; return what was done.

    Call it after the HALTED state has committed (``risk.services.trading_state_set`` does). Each
    order is canceled in its own transaction by :func:`orders.services.order_cancel`, with actor
    ``kill-switch:<set_by>`` and a reason naming the switch, who set it and why. A failure to
    cancel one order is logged (ERROR) and reported, and the sweep goes on with the next one; it
    never raises.

    Parameters
    ----------
    scope : str
        ``risk.models.Scope`` value. GLOBAL covers every order; VENUE the orders routed to that
        venue; STRATEGY the strategy's; INSTRUMENT the orders routed to the listing, or to any
        venue's listing of the instrument for an ``ANY:`` key (:func:`risk.selectors.scope_covers`).
    scope_key : str
        As validated by ``risk.services.scope_key_validate`` (empty for GLOBAL).
    set_by : str
        Who set the kill switch.
    reason : str
        Why it was set.

    Returns
    -------
    risk.services.HaltSweep
        The orders canceled at once, asked to cancel at the venue, already canceling, ended
        meanwhile, and failed (with the error); ``error`` when the open orders could not be read.
    """
    label = scope_label_of(scope, scope_key)
    sweep = HaltSweep(scope_label=label)
    actor = kill_switch_actor(set_by)
    why = kill_switch_reason(scope_label=label, set_by=set_by, reason=reason)
    try:
        candidates = [
            order for order in _open_in_scope(scope, scope_key)
            if scope_covers(scope=scope, scope_key=scope_key, strategy_id=order.strategy_id, venue_code=order.venue,
                            instrument_key=order.routed_instrument_key)
        ]
    except Exception as exc:  # noqa: BLE001 - the halt stands; the person must learn nothing was canceled
        logger.exception("kill switch %s: the open orders could not be read, none canceled", label)
        sweep.error = f"{type(exc).__name__}: {exc}"
        return sweep
    for order in candidates:
        if order.status == OrderStatus.PENDING_CANCEL:
            sweep.already_canceling.append(order.pk)
            continue
        try:
            done = order_cancel(order=order, actor=actor, reason=why)
        except OrderNotCancelable as exc:
            (sweep.already_canceling if exc.status == OrderStatus.PENDING_CANCEL else sweep.moved_on).append(order.pk)
            continue
        except Exception as exc:  # noqa: BLE001 - one order's failure must not leave the others working
            logger.exception("kill switch %s: order %s could not be canceled and is still working", label, order.pk)
            sweep.failed.append((order.pk, f"{type(exc).__name__}: {exc}"))
            continue
        (sweep.canceled if done.status == OrderStatus.CANCELED else sweep.cancel_requested).append(order.pk)
    log = logger.warning if sweep.ok else logger.error
    log("kill switch HALTED by %s: %s", set_by, sweep.summary())
    return sweep
