"""Production settings: ``manage.py check --deploy`` is clean with the production environment.

Each check runs ``manage.py`` in a fresh process with ``odum_live.settings`` so the settings are
evaluated from exactly the environment given (the test process has ``tests.settings`` loaded and
test-only variables such as ``DJANGO_SECURE_SSL_REDIRECT=0`` set).
"""

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def production_env(**overrides: str) -> dict[str, str]:
    """The process environment without any settings variable, plus a production configuration."""
    settings_vars = ("DJANGO_", "DATABASE_URL", "REDIS_URL", "CELERY_", "SQLITE_PATH", "ODUM_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(settings_vars)}
    env.update(
        DJANGO_SETTINGS_MODULE="odum_live.settings",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),  # 67 random URL-safe characters
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/odum",
        REDIS_URL="redis://127.0.0.1:6379/0",
    )
    env.update(overrides)
    return env


def check_deploy(env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run ``manage.py check --deploy --fail-level WARNING`` with ``env``."""
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_with_production_env_reports_no_issues():
    result = check_deploy(production_env())

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_without_ssl_redirect_reports_w008():
    # The check itself can fail: turning a production safeguard off must be reported.
    result = check_deploy(production_env(DJANGO_SECURE_SSL_REDIRECT="0"))

    assert result.returncode != 0
    assert "security.W008" in result.stderr


def test_production_settings_without_secret_key_refuse_to_start():
    env = production_env()
    del env["DJANGO_SECRET_KEY"]

    result = check_deploy(env)

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off" in result.stderr


def test_readme_configuration_table_lists_every_variable_settings_reads():
    # Arrange: every env.<cast>("NAME", …) and os.environ lookup in the settings module.
    import re

    settings_source = (ROOT / "odum_live" / "settings.py").read_text()
    names = set(re.findall(r"\benv(?:\.[a-z_]+)?\(\s*[\"']([A-Z][A-Z0-9_]*)[\"']", settings_source))
    names |= set(re.findall(r"os\.environ(?:\.get)?[\[(]\s*[\"']([A-Z][A-Z0-9_]*)[\"']", settings_source))
    readme = (ROOT / "README.md").read_text()

    # Act
    undocumented = sorted(name for name in names if f"| `{name}` |" not in readme)

    # Assert
    assert "DATABASE_URL" in names and len(names) > 10  # the scan itself works
    assert undocumented == [], f"add these to README.md, section Configuration: {undocumented}"


def test_production_settings_exempt_internal_probes_from_the_https_redirect():
    # Arrange: production settings evaluated fresh (DEBUG off, SSL redirect on)
    env = {**os.environ, "DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": "x" * 60,
           "DJANGO_SETTINGS_MODULE": "odum_live.settings"}
    env.pop("DJANGO_SECURE_SSL_REDIRECT", None)
    code = ("import django; django.setup(); from django.test import Client; c = Client(HTTP_HOST='127.0.0.1');"
            "print(c.get('/metrics').status_code, c.get('/api/orders').status_code)")
    # Act
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    # Assert: /metrics answers over plain HTTP, the API still redirects to https
    assert out.stdout.split()[-2:] == ["200", "301"]


def _read_prepare_threshold(**overrides: str) -> subprocess.CompletedProcess:
    # psycopg's threshold on a PostgreSQL connection of production settings, evaluated fresh.
    # Connecting needs no server: the threshold is read from the settings' connection parameters.
    code = ("import django; django.setup(); from django.db import connection;"
            "print(connection.get_connection_params().get('prepare_threshold'))")
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=production_env(**overrides),
                          capture_output=True, text=True, timeout=120)


def _prepare_threshold(**overrides: str) -> str:
    out = _read_prepare_threshold(**overrides)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()[-1]


def test_production_settings_prepare_repeated_statements_unless_turned_off():
    # psycopg prepares a statement on its 5th run on a connection: PostgreSQL plans it once.
    assert _prepare_threshold() == "5"
    assert _prepare_threshold(DB_PREPARE_THRESHOLD="2") == "2"
    # Empty: no prepared statements (Django's own default), for transaction-mode poolers.
    assert _prepare_threshold(DB_PREPARE_THRESHOLD="") == "None"


def test_production_settings_refuse_a_prepare_threshold_that_is_not_a_whole_number():
    for bad in ("five", "-1", "2.5"):
        out = _read_prepare_threshold(DB_PREPARE_THRESHOLD=bad)

        assert out.returncode != 0
        assert "ImproperlyConfigured: DB_PREPARE_THRESHOLD must be a whole number" in out.stderr
        assert repr(bad) in out.stderr


def _node_cache_redis(env: dict[str, str]) -> str:
    # ODUM["NODE_CACHE_REDIS"] of settings evaluated fresh with ``env``.
    code = "import django; django.setup(); from django.conf import settings; print(settings.ODUM['NODE_CACHE_REDIS'])"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()[-1]


def test_production_settings_persist_the_node_cache_in_redis_unless_turned_off():
    # Issue #3 §6: in production (REDIS_URL set) the node's cache lives in Redis so a restart resumes.
    assert _node_cache_redis(production_env()) == "True"
    assert _node_cache_redis(production_env(NODE_CACHE_REDIS="0")) == "False"
    # The embedded default (no REDIS_URL) keeps it in memory.
    embedded = {k: v for k, v in production_env().items() if k not in ("REDIS_URL", "DATABASE_URL")}
    assert _node_cache_redis({**embedded, "DJANGO_DEBUG": "1"}) == "False"


def _transports(env: dict[str, str]) -> subprocess.CompletedProcess:
    # The channel layer, Celery's eagerness and the node's place of settings evaluated fresh with ``env``.
    code = ("import django; django.setup(); from django.conf import settings;"
            "print(settings.CHANNEL_LAYERS['default']['BACKEND'], settings.CELERY_TASK_ALWAYS_EAGER,"
            " settings.ODUM['TRADING_NODE'])")
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_production_settings_without_redis_url_refuse_to_start_naming_it():
    # Arrange: DATABASE_URL set, DEBUG off, REDIS_URL forgotten
    env = production_env()
    del env["REDIS_URL"]

    # Act
    out = _transports(env)

    # Assert: a configuration error naming the variable, not a web process with a TradingNode inside
    assert out.returncode != 0, out.stdout
    assert "ImproperlyConfigured: REDIS_URL must be set" in out.stderr
    assert "ODUM_EMBEDDED_TRANSPORTS=1" in out.stderr


def test_production_settings_without_redis_url_use_the_embedded_transports_only_when_asked_to():
    # Arrange: the embedded transports chosen explicitly (a single-process deployment on PostgreSQL)
    env = production_env(ODUM_EMBEDDED_TRANSPORTS="1")
    del env["REDIS_URL"]

    # Act
    out = _transports(env)

    # Assert
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-3:] == ["channels.layers.InMemoryChannelLayer", "True", "embedded"]


def test_debug_settings_on_postgresql_without_redis_url_keep_the_embedded_transports():
    # Arrange: a developer's PostgreSQL with DEBUG on: no production, no refusal
    env = production_env(DJANGO_DEBUG="1")
    del env["REDIS_URL"]

    # Act
    out = _transports(env)

    # Assert
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == "embedded"
