"""Service accounts of strategies, shared by the ``seed_demo`` and ``issue_api_token`` commands.

A strategy service authenticates as its strategy's ``service_account`` (user ``svc-<strategy>``,
group ``strategy service``) with knox tokens; the account has no usable password.
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group
from django.core.management.base import CommandError

from orders.models import Strategy

STRATEGY_SERVICE_GROUP = "strategy service"


def group_get(name: str) -> Group:
    """Return the role group ``name`` created by the ``odum_live`` groups migration.

    Raises
    ------
    CommandError
        When the group does not exist (the database is not migrated).
    """
    try:
        return Group.objects.get(name=name)
    except Group.DoesNotExist:
        raise CommandError(
            f"group {name!r} does not exist: run `manage.py migrate` "
            "(migration odum_live.0001_groups_and_permissions creates the role groups)"
        ) from None


def service_account_username(strategy_id: str) -> str:
    """Return the user name of a strategy's service account: ``svc-<strategy id>``."""
    return f"svc-{strategy_id}"


def service_account_ensure(*, strategy: Strategy) -> tuple[AbstractBaseUser, list[str]]:
    """Return the strategy's service account, creating it when missing.

    The account is ``strategy.service_account`` when set, else user ``svc-<strategy id>``
    (created with an unusable password and attached to the strategy). Either way it is put in the
    ``strategy service`` group.

    Returns
    -------
    tuple
        ``(user, changes)``: ``changes`` describes what this call changed, one line each
        (empty when the account was already complete).

    Raises
    ------
    CommandError
        When ``svc-<strategy id>`` already serves another strategy, or the group is missing.
    """
    group = group_get(STRATEGY_SERVICE_GROUP)
    changes: list[str] = []
    user = strategy.service_account
    if user is None:
        user_model = get_user_model()
        username = service_account_username(strategy.pk)
        user, created = user_model.objects.get_or_create(**{user_model.USERNAME_FIELD: username})
        if created:
            user.set_unusable_password()  # token-only account: no password login
            user.save(update_fields=["password"])
            changes.append(f"created service account user {username!r}")
        else:
            other = Strategy.objects.filter(service_account=user).exclude(pk=strategy.pk).first()
            if other is not None:
                raise CommandError(
                    f"user {username!r} is already the service account of strategy {other.pk!r}; "
                    f"set strategy {strategy.pk!r}'s service account in the admin"
                )
        strategy.service_account = user
        strategy.save(update_fields=["service_account"])
        changes.append(f"made {username!r} the service account of strategy {strategy.pk!r}")
    if not user.groups.filter(pk=group.pk).exists():
        user.groups.add(group)
        changes.append(f"added {user.get_username()!r} to group {group.name!r}")
    return user, changes
