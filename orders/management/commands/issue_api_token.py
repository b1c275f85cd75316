"""``manage.py issue_api_token <strategy> [--expiry-days N]``: a knox API token for a strategy.

Prints the token, and nothing else, on standard output so that scripts can capture it
(``TOKEN=$(manage.py issue_api_token demo)``); every message goes to standard error. The token is
shown once: knox stores only its digest. Revoke tokens in the admin (Knox › Auth tokens).
"""

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from knox.models import AuthToken

from orders.management.service_accounts import service_account_ensure
from orders.models import Strategy


class Command(BaseCommand):
    help = (
        "Issue an API token for a strategy's service account (svc-<strategy>, created if missing) "
        "and print only the token on stdout. Use it as 'Authorization: Bearer <token>'."
    )

    def add_arguments(self, parser):
        parser.add_argument("strategy", help="Strategy id, e.g. demo.")
        parser.add_argument(
            "--expiry-days",
            type=int,
            default=None,
            help="Days until the token expires (positive integer). Default: never; revoke it in the admin.",
        )

    def handle(self, *args, strategy: str, expiry_days: int | None, **options):
        """Create the token and write it to stdout; raise CommandError for bad input."""
        if expiry_days is not None and expiry_days <= 0:
            raise CommandError(f"--expiry-days must be a positive number of days, got {expiry_days}")
        try:
            strategy_row = Strategy.objects.get(pk=strategy)
        except Strategy.DoesNotExist:
            known = ", ".join(Strategy.objects.values_list("pk", flat=True)) or "none; run manage.py seed_demo"
            raise CommandError(f"unknown strategy {strategy!r} (known strategies: {known})") from None

        with transaction.atomic():
            user, changes = service_account_ensure(strategy=strategy_row)
            kwargs = {"expiry": timedelta(days=expiry_days)} if expiry_days is not None else {}
            instance, token = AuthToken.objects.create(user=user, **kwargs)

        for change in changes:
            self.stderr.write(change, self.style.SUCCESS)
        expires = f"expires {instance.expiry:%Y-%m-%d %H:%M} UTC" if instance.expiry else "does not expire"
        self.stderr.write(
            f"Issued API token for strategy {strategy_row.pk!r} (user {user.get_username()!r}); it {expires}. "
            "It is shown once: store it now.",
            self.style.SUCCESS,
        )
        if not strategy_row.enabled:
            self.stderr.write(f"Strategy {strategy_row.pk!r} is disabled: its orders are refused until enabled.",
                              self.style.WARNING)
        self.stdout.write(token)
