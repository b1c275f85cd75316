"""Management commands ``seed_demo`` and ``issue_api_token``."""

import io
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import CommandError
from knox.auth import TokenAuthentication
from knox.models import AuthToken
from rest_framework.test import APIRequestFactory

from orders.models import Strategy
from risk.models import RiskLimit, Scope, TradingState
from tests.orders.factories import StrategyFactory
from venues.models import Instrument, Venue

ROOT = Path(__file__).resolve().parent.parent
User = get_user_model()


def run(command: str, *args) -> tuple[str, str]:
    """Run a management command in-process; return (stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    call_command(command, *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def row_counts() -> dict[str, int]:
    """Rows of every table seed_demo writes, including the many-to-many links it adds."""
    return {
        "venues": Venue.objects.count(),
        "instruments": Instrument.objects.count(),
        "strategies": Strategy.objects.count(),
        "strategy traders": Strategy.traders.through.objects.count(),
        "users": User.objects.count(),
        "group memberships": User.groups.through.objects.count(),
        "risk limits": RiskLimit.objects.count(),
        "risk limit history": RiskLimit.history.count(),
        "trading states": TradingState.objects.count(),
        "trading state history": TradingState.history.count(),
    }


def authenticate_bearer(token: str):
    """Authenticate ``Authorization: Bearer <token>`` with knox; return (user, auth_token) or None."""
    request = APIRequestFactory().get("/api/orders", HTTP_AUTHORIZATION=f"Bearer {token}")
    return TokenAuthentication().authenticate(request)


# --- seed_demo --------------------------------------------------------------------------------
@pytest.mark.django_db
def test_seed_demo_run_twice_changes_nothing_the_second_time():
    # Arrange
    first_out, _ = run("seed_demo")
    counts_after_first = row_counts()

    # Act
    second_out, _ = run("seed_demo")

    # Assert
    assert row_counts() == counts_after_first
    assert "nothing to do" in second_out and "nothing changed" in second_out
    assert "created" not in second_out.replace("created 0", "")
    assert "already exist" in second_out and "manage.py changepassword" in second_out
    assert "created" in first_out and counts_after_first["risk limits"] > 0


@pytest.mark.django_db
def test_seed_demo_venues_and_instruments_follow_the_recorded_rules():
    run("seed_demo")

    spot = Instrument.objects.get(instrument_key="BINANCE-SPOT:SPOT_PAIR:BTC-USDT")
    perp = Instrument.objects.get(instrument_key="BINANCE-FUTURES:PERPETUAL:BTC-USDT@LIN")
    assert (spot.venue_id, spot.nautilus_instrument_id, spot.venue_symbol) == (
        "BINANCE-SPOT",
        "BTCUSDT.BINANCE",
        "BTCUSDT",
    )
    assert (spot.tick_size, spot.lot_size, spot.min_notional) == (Decimal("0.01"), Decimal("0.000001"), Decimal("10"))
    assert (perp.venue_id, perp.nautilus_instrument_id, perp.venue_symbol) == (
        "BINANCE-FUTURES",
        "BTCUSDT-PERP.BINANCE",
        "BTCUSDT",
    )
    assert (perp.tick_size, perp.lot_size, perp.min_notional) == (Decimal("0.1"), Decimal("0.001"), Decimal("100"))
    assert perp.equivalence_key == "PERPETUAL:BTC-USDT@LIN" and perp.settlement_currency == "USDT"
    for venue in Venue.objects.all():
        assert venue.mode == Venue.Mode.PAPER and venue.kind == Venue.Kind.NAUTILUS
        assert venue.config["api_key_env"] == "BINANCE_API_KEY"
        venue.clean()  # raises when the config holds something that looks like a secret
    assert Venue.objects.get(code="BINANCE-SPOT").maker_fee_bps == Decimal("10")
    assert Venue.objects.get(code="BINANCE-FUTURES").adapter == "binance_futures"


@pytest.mark.django_db
def test_seed_demo_users_get_roles_and_working_printed_passwords():
    out, _ = run("seed_demo")

    credentials = dict(
        line.strip().split(" / ") for line in out.splitlines() if line.startswith("  ") and " / " in line
    )
    trader = authenticate(username="trader", password=credentials["trader"])
    risk = authenticate(username="risk", password=credentials["risk"])
    assert trader is not None and risk is not None
    assert list(trader.groups.values_list("name", flat=True)) == ["trader"] and not trader.is_staff
    assert list(risk.groups.values_list("name", flat=True)) == ["risk manager"] and risk.is_staff
    for strategy in Strategy.objects.filter(pk__in=["demo", "demo-2"]):
        assert list(strategy.traders.all()) == [trader]
        assert strategy.service_account.username == f"svc-{strategy.pk}"
        assert strategy.service_account.groups.filter(name="strategy service").exists()
        assert not strategy.service_account.has_usable_password()


@pytest.mark.django_db
def test_seed_demo_seeds_global_and_strategy_limits_and_active_switches():
    run("seed_demo")

    for scope_key in ("", "demo", "demo-2"):
        kinds = set(RiskLimit.objects.filter(scope_key=scope_key).values_list("kind", flat=True))
        assert kinds == set(RiskLimit.Kind.values), scope_key
    assert RiskLimit.objects.filter(scope=Scope.STRATEGY).count() == 2 * len(RiskLimit.Kind.values)
    states = {(s.scope, s.scope_key): s for s in TradingState.objects.all()}
    assert set(states) == {
        (Scope.GLOBAL, ""),
        (Scope.VENUE, "BINANCE-SPOT"),
        (Scope.VENUE, "BINANCE-FUTURES"),
        (Scope.STRATEGY, "demo"),
        (Scope.STRATEGY, "demo-2"),
    }
    assert all(s.state == TradingState.State.ACTIVE and s.reason == "seeded" for s in states.values())


@pytest.mark.django_db
def test_seed_demo_rerun_keeps_operator_changes():
    # Arrange: a risk manager tightened a limit, halted trading and disabled a venue.
    run("seed_demo")
    RiskLimit.objects.filter(scope=Scope.GLOBAL, kind=RiskLimit.Kind.MAX_ORDER_QUANTITY).update(value=Decimal("1"))
    TradingState.objects.filter(scope=Scope.GLOBAL).update(state=TradingState.State.HALTED, reason="incident 42")
    Venue.objects.filter(code="BINANCE-FUTURES").update(enabled=False)

    # Act
    out, _ = run("seed_demo")

    # Assert
    assert RiskLimit.objects.get(scope=Scope.GLOBAL, kind=RiskLimit.Kind.MAX_ORDER_QUANTITY).value == Decimal("1")
    halted = TradingState.objects.get(scope=Scope.GLOBAL)
    assert (halted.state, halted.reason) == (TradingState.State.HALTED, "incident 42")
    assert Venue.objects.get(code="BINANCE-FUTURES").enabled is False
    assert "nothing to do" in out


@pytest.mark.django_db
def test_seed_demo_without_groups_fails_naming_the_migration():
    Group.objects.filter(name="trader").delete()

    with pytest.raises(CommandError, match="group 'trader' does not exist: run `manage.py migrate`"):
        run("seed_demo")


# --- issue_api_token --------------------------------------------------------------------------
@pytest.mark.django_db
def test_issue_api_token_prints_one_line_that_authenticates_as_bearer():
    # Arrange
    run("seed_demo")

    # Act
    out, err = run("issue_api_token", "demo")

    # Assert
    lines = out.splitlines()
    assert len(lines) == 1 and lines[0] == out.strip() and " " not in lines[0]
    user, auth_token = authenticate_bearer(lines[0])
    assert user.username == "svc-demo" and user.groups.filter(name="strategy service").exists()
    assert auth_token.expiry is None
    assert "demo" in err and lines[0] not in err


@pytest.mark.django_db
def test_issue_api_token_creates_missing_service_account():
    # Arrange: a strategy created in the admin, without a service account.
    strategy = StrategyFactory(id="alpha", service_account=None)

    # Act
    out, err = run("issue_api_token", "alpha")

    # Assert
    strategy.refresh_from_db()
    assert strategy.service_account.username == "svc-alpha"
    assert strategy.service_account.groups.filter(name="strategy service").exists()
    assert not strategy.service_account.has_usable_password()
    assert authenticate_bearer(out.strip())[0] == strategy.service_account
    assert "created service account user 'svc-alpha'" in err


@pytest.mark.django_db
def test_issue_api_token_expiry_days_sets_expiry():
    StrategyFactory(id="beta")

    out, err = run("issue_api_token", "beta", "--expiry-days", "7")

    token = AuthToken.objects.get(user__username="svc-beta")
    assert token.expiry is not None
    assert 6.9 < (token.expiry - token.created).total_seconds() / 86400 < 7.1
    assert "expires" in err
    assert authenticate_bearer(out.strip()) is not None


@pytest.mark.django_db
def test_issue_api_token_revoked_token_no_longer_authenticates():
    StrategyFactory(id="gamma")
    out, _ = run("issue_api_token", "gamma")

    AuthToken.objects.filter(user__username="svc-gamma").delete()  # what revoking in the admin does

    from rest_framework.exceptions import AuthenticationFailed

    with pytest.raises(AuthenticationFailed):
        authenticate_bearer(out.strip())


@pytest.mark.django_db
def test_issue_api_token_unknown_strategy_names_it():
    StrategyFactory(id="known-one")

    with pytest.raises(CommandError, match=r"unknown strategy 'nope' \(known strategies: known-one\)"):
        run("issue_api_token", "nope")
    assert AuthToken.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("days", ["0", "-3"])
def test_issue_api_token_non_positive_expiry_is_refused(days):
    StrategyFactory(id="delta")

    with pytest.raises(CommandError, match=f"--expiry-days must be a positive number of days, got {days}"):
        run("issue_api_token", "delta", "--expiry-days", days)


# --- the real manage.py, in a fresh process ---------------------------------------------------
def test_manage_py_seed_then_issue_token_prints_only_the_token(tmp_path):
    """Through ``manage.py`` itself: nothing but the token may reach stdout (import noise included)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL", "REDIS_URL", "CELERY_"))}
    env.update(DJANGO_SETTINGS_MODULE="odum_live.settings", SQLITE_PATH=str(tmp_path / "db.sqlite3"))

    def manage(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240
        )

    for args in (["migrate", "--noinput", "-v", "0"], ["seed_demo"]):
        result = manage(*args)
        assert result.returncode == 0, result.stderr

    token = manage("issue_api_token", "demo")

    assert token.returncode == 0, token.stderr
    assert len(token.stdout.splitlines()) == 1 and token.stdout.endswith("\n")
    assert len(token.stdout.strip()) >= 64  # knox: 64 hex characters (+ optional prefix)
    assert "Issued API token for strategy 'demo'" in token.stderr
