"""Template helpers of the page shell (``templates/base.html``): the user's role and admin access."""

from __future__ import annotations

from django import template

register = template.Library()

#: Role groups (odum_live/migrations/0001_groups_and_permissions.py), strongest first.
ROLE_GROUPS = ("risk manager", "trader", "viewer")


def user_role_of(user) -> str:
    """Return the role shown beside the user name: superuser, a role group, or ``"user"``."""
    if not getattr(user, "is_authenticated", False):
        return ""
    if user.is_superuser:
        return "superuser"
    names = set(user.groups.values_list("name", flat=True))
    return next((role for role in ROLE_GROUPS if role in names), "user")


@register.simple_tag
def user_role(user) -> str:
    """``{% user_role user %}``: the user's role (see :func:`user_role_of`)."""
    return user_role_of(user)


@register.filter
def sees_admin(user) -> bool:
    """``user|sees_admin``: staff (which the admin needs) — risk managers and superusers."""
    return bool(getattr(user, "is_authenticated", False) and user.is_staff)
