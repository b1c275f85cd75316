"""Live topics of the order pages on ``/ws/live/`` (:mod:`odum_live.live`), registered at start-up.

=====================  =====================================================  ==========================
topic                  sends, on every committed order change in scope          partial (same as the page)
=====================  =====================================================  ==========================
``orders``             the order's row (``id="order-<id>"``)                    ``orders/_row.html``
``order:<order id>``   the detail body, for the order or one of its children    ``orders/_detail.html``
``ticket:<order id>``  the ticket's live status of the order just submitted     ``orders/_ticket_status.html``
=====================  =====================================================  ==========================

Groups: ``orders`` for a user holding ``orders.view_order`` (sees every strategy), else
``strategy.<id>`` of each strategy they may see (:func:`orders.selectors.order_access_for`), the
groups :mod:`orders.services.publish` sends ``orders.updated`` to. Every render re-reads the order
through a selector in the user's scope, so nothing outside it is ever rendered.
"""

from __future__ import annotations

import uuid

from django.template.loader import render_to_string

from odum_live.groups import ORDERS_GROUP, ORDERS_UPDATED, strategy_group
from odum_live.live import CONNECTED, LiveTopicRefused, register_live_topic
from orders.models import Order
from orders.selectors import (
    OrderAccess,
    order_access_for,
    order_get_detail,
    order_get_visible,
    order_rows,
    order_with_family_fills,
)


def _groups(access: OrderAccess, strategy_id: str | None = None) -> list[str]:
    if access.visible_strategy_ids is None:
        return [ORDERS_GROUP]
    if strategy_id is not None:
        return [strategy_group(strategy_id)]
    return [strategy_group(s) for s in sorted(access.visible_strategy_ids)]


def _order_id(argument: str) -> uuid.UUID:
    try:
        return uuid.UUID(argument)
    except ValueError:
        raise LiveTopicRefused(f"{argument!r} is not an order id") from None


# -- orders: the rows of the Orders page ----------------------------------------------------------
def orders_groups(user) -> list[str]:
    """Groups of the ``orders`` topic: every change the user may see."""
    return _groups(order_access_for(user=user))


def orders_render(message: dict, user) -> str | None:
    """Render the changed order's row (``orders/_row.html``, out-of-band by id), or None."""
    if message.get("type") != ORDERS_UPDATED:
        return None
    access = order_access_for(user=user)
    order = order_rows(access=access).filter(pk=message.get("order_id")).first()
    if order is None:
        return None
    return render_to_string("orders/_row.html", {"order": order, "oob": True,
                                                 "can_cancel": access.may("cancel", order.strategy_id)})


# -- order:<id>: the detail page ------------------------------------------------------------------
def _one_order_groups(user, *, argument: str) -> list[str]:
    access = order_access_for(user=user)
    order = order_get_visible(access=access, order_id=_order_id(argument))
    if order is None:
        raise LiveTopicRefused(f"no order {argument}")
    return _groups(access, order.strategy_id)


def _concerns(message: dict, argument: str) -> bool:
    # This order, or one of its child orders (algorithm slices move the parent's progress bar).
    if message.get("type") == CONNECTED["type"]:
        return True
    if message.get("type") != ORDERS_UPDATED:
        return False
    if message.get("order_id") == argument:
        return True
    return Order.objects.filter(pk=message.get("order_id"), parent_id=argument).exists()


def order_render(message: dict, user, *, argument: str) -> str | None:
    """Render the detail body of order ``argument`` (``orders/_detail.html``, out-of-band), or None."""
    if not _concerns(message, argument):
        return None
    access = order_access_for(user=user)
    order = order_get_detail(access=access, order_id=argument)
    if order is None:
        return None
    return render_to_string("orders/_detail.html", {"order": order, "oob": True,
                                                    "can_cancel": access.may("cancel", order.strategy_id)})


# -- ticket:<id>: the Execute page's result ------------------------------------------------------
def ticket_render(message: dict, user, *, argument: str) -> str | None:
    """Render the live status of the order just submitted (``orders/_ticket_status.html``), or None."""
    if message.get("type") not in (ORDERS_UPDATED, CONNECTED["type"]):
        return None
    if message.get("type") == ORDERS_UPDATED and message.get("order_id") != argument:
        return None
    order = order_get_visible(access=order_access_for(user=user), order_id=argument)
    if order is None:
        return None
    return render_to_string("orders/_ticket_status.html",
                            {"order": order_with_family_fills(order=order), "oob": True})  # fees per currency


def register() -> None:
    """Register the order topics (``OrdersConfig.ready``)."""
    register_live_topic("orders", groups=orders_groups, render=orders_render)
    register_live_topic("order", groups=_one_order_groups, render=order_render, takes_argument=True)
    register_live_topic("ticket", groups=_one_order_groups, render=ticket_render, takes_argument=True)
