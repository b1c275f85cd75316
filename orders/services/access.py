"""Tell a user's open WebSocket connections that their access changed, so they check it again.

A connection to ``/ws/orders/`` or ``/ws/live/`` authenticates once, when it opens, and took its
scope (:func:`orders.selectors.order_access_for`) then. Without a signal it would go on receiving
what its user may no longer see: a revoked token's stream kept running, a person removed from the
viewer group kept every strategy's orders. So every change of who may see what sends, after
commit, ``{"type": "access.changed", "group": "user.<id>"}`` (:data:`odum_live.groups.ACCESS_CHANGED`)
to each user concerned; each of their connections re-authenticates (the token, or the session as
stored now) and recomputes its scope, closing with 4401 / 4403 when it may no longer go on.

The changes (receivers connected by :func:`connect_access_receivers`, ``OrdersConfig.ready``):
an API token deleted (revoked in the admin, expired, or with its user); a user saved (deactivated,
new password, superuser flag — not a login's ``last_login``) or deleted; a user's groups or direct
permissions changed; a group's permissions changed (each of its members); a strategy's traders or
service account changed; a logout (``user_logged_out``). The receivers only name the users; the
checks are the consumers' (no rule lives here).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from channels.layers import get_channel_layer
from django.contrib.auth import get_user_model, user_logged_out
from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save

from odum_live.channel_send import run_on_layer
from odum_live.groups import ACCESS_CHANGED, user_group
from odum_live.live import session_fingerprint

logger = logging.getLogger(__name__)


def access_changed_publish(*, user_ids: Iterable[int | None], ended_session_key: str | None = None) -> None:
    """After commit, send ``access.changed`` to the open connections of each of ``user_ids``.

    Parameters
    ----------
    user_ids : Iterable[int | None]
        Primary keys of the users concerned; None entries are ignored.
    ended_session_key : str | None
        The key of a session being logged out: the message names it by
        :func:`odum_live.live.session_fingerprint` (``"ended_session"``), so the connections on it
        close even when they check before Django has flushed it.

    Never raises: the change is committed, only the push can be lost (logged); a connection
    then keeps its old scope until its next check (hourly: :mod:`odum_live.ws_renewal`) or reconnection.
    """
    ids = sorted({int(pk) for pk in user_ids if pk is not None})
    extra = {"ended_session": session_fingerprint(ended_session_key)} if ended_session_key else {}
    if ids:
        transaction.on_commit(lambda: _send(ids, extra))


def _send(ids: list[int], extra: dict) -> None:
    async def send(layer) -> None:
        for pk in ids:
            group = user_group(pk)
            await layer.group_send(group, {"type": ACCESS_CHANGED, "group": group, **extra})

    try:
        layer = get_channel_layer()
        if layer is not None:
            run_on_layer(layer, send)
    except Exception:  # noqa: BLE001 - the change is committed; only the push is lost
        logger.exception("access.changed for users %s could not be sent; their connections keep their scope", ids)


# --- receivers: which users a change concerns ---------------------------------------------------

def _members(group_ids: Iterable[int]) -> list[int]:
    return list(get_user_model().objects.filter(groups__in=list(group_ids)).values_list("pk", flat=True))


def _on_token_deleted(sender, instance, **kwargs) -> None:
    access_changed_publish(user_ids=[instance.user_id])


def _on_user_saved(sender, instance, update_fields=None, **kwargs) -> None:
    if update_fields is not None and set(update_fields) <= {"last_login"}:
        return  # a login: nothing about access changed
    access_changed_publish(user_ids=[instance.pk])


def _on_user_deleted(sender, instance, **kwargs) -> None:
    access_changed_publish(user_ids=[instance.pk])


def _on_user_m2m(sender, instance, action, reverse, pk_set, **kwargs) -> None:
    # User.groups / User.user_permissions: forward from a user, reverse from a group or permission.
    if action not in ("post_add", "post_remove", "pre_clear"):
        return
    if not reverse:
        access_changed_publish(user_ids=[instance.pk])
    elif action == "pre_clear":
        access_changed_publish(user_ids=instance.user_set.values_list("pk", flat=True))
    else:
        access_changed_publish(user_ids=pk_set or ())


def _on_group_permissions(sender, instance, action, reverse, pk_set, **kwargs) -> None:
    # Group.permissions: forward from a group (its members), reverse from a permission (the groups').
    if action not in ("post_add", "post_remove", "pre_clear"):
        return
    if not reverse:
        access_changed_publish(user_ids=_members([instance.pk]))
    elif action == "pre_clear":
        access_changed_publish(user_ids=_members(instance.group_set.values_list("pk", flat=True)))
    else:
        access_changed_publish(user_ids=_members(pk_set or ()))


def _on_strategy_traders(sender, instance, action, reverse, pk_set, **kwargs) -> None:
    # Strategy.traders: forward from a strategy (the traders named), reverse from a user.
    if action not in ("post_add", "post_remove", "pre_clear"):
        return
    if reverse:
        access_changed_publish(user_ids=[instance.pk])
    elif action == "pre_clear":
        access_changed_publish(user_ids=instance.traders.values_list("pk", flat=True))
    else:
        access_changed_publish(user_ids=pk_set or ())


def _on_strategy_pre_save(sender, instance, **kwargs) -> None:
    stored = type(instance).objects.filter(pk=instance.pk).values_list("service_account_id", flat=True).first()
    instance._access_previous_service_account_id = stored


def _on_strategy_saved(sender, instance, created, **kwargs) -> None:
    previous = getattr(instance, "_access_previous_service_account_id", None)
    if created or previous != instance.service_account_id:
        access_changed_publish(user_ids=[previous, instance.service_account_id])


def _on_strategy_deleted(sender, instance, **kwargs) -> None:
    # Its traders lost it too, but their rows of the link are gone by now: they see it on their next check.
    access_changed_publish(user_ids=[instance.service_account_id])


def _on_logout(sender, request=None, user=None, **kwargs) -> None:
    # Sent before Django flushes the session: the message names it, so no check can still find it valid.
    if user is not None:
        session = getattr(request, "session", None)
        access_changed_publish(user_ids=[user.pk], ended_session_key=getattr(session, "session_key", None))


def connect_access_receivers() -> None:
    """Connect the receivers above (``OrdersConfig.ready``); idempotent (``dispatch_uid``)."""
    from knox.models import get_token_model

    from orders.models import Strategy

    user_model = get_user_model()
    uid = "orders.services.access."
    post_delete.connect(_on_token_deleted, sender=get_token_model(), dispatch_uid=uid + "token")
    post_save.connect(_on_user_saved, sender=user_model, dispatch_uid=uid + "user_saved")
    post_delete.connect(_on_user_deleted, sender=user_model, dispatch_uid=uid + "user_deleted")
    m2m_changed.connect(_on_user_m2m, sender=user_model.groups.through, dispatch_uid=uid + "user_groups")
    m2m_changed.connect(_on_user_m2m, sender=user_model.user_permissions.through, dispatch_uid=uid + "user_perms")
    m2m_changed.connect(_on_group_permissions, sender=Group.permissions.through, dispatch_uid=uid + "group_perms")
    m2m_changed.connect(_on_strategy_traders, sender=Strategy.traders.through, dispatch_uid=uid + "traders")
    pre_save.connect(_on_strategy_pre_save, sender=Strategy, dispatch_uid=uid + "strategy_pre_save")
    post_save.connect(_on_strategy_saved, sender=Strategy, dispatch_uid=uid + "strategy_saved")
    post_delete.connect(_on_strategy_deleted, sender=Strategy, dispatch_uid=uid + "strategy_deleted")
    user_logged_out.connect(_on_logout, dispatch_uid=uid + "logout")

