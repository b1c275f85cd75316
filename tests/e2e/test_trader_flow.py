"""The trader's path in a real browser (issue 4 §4): log in, submit a MARKET order from the ticket, watch
it reach FILLED in /live/orders and the position appear without reloading, open the order's detail.

- Browser: Playwright's Python package driving Debian's Chromium (``/usr/bin/chromium``, headless;
  ``apt-get install chromium`` — ``.ci/run`` installs it). Missing chromium is a skip on a
  developer's machine and a **failure** under ``CI=true``.
- Server: a real ``daphne odum_live.asgi:application`` process on a free port, on this test run's
  database (committed data: ``transaction=True``) and transports — SQLite and in-memory layers in
  the embedded run; PostgreSQL, channels_redis and Redis market data in the PostgreSQL + Redis run —
  with the TradingNode embedded in it (``TRADING_NODE=embedded``, Celery eager) and the paper
  BINANCE-SPOT venue replaying the recorded BTCUSDT data of ``../shared/data`` (``seed_demo``).
  Skipped with a reason when that data is absent.
- A screenshot of each page visited goes to ``tests/e2e/screenshots/<run>/`` (the path is printed).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.core.management import call_command
from django.test import Client

from tests.helpers import eventually, needs_market_data
from tests.orders.web_fixtures import role_group

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
KEY = "BINANCE-SPOT:SPOT_PAIR:BTC-USDT"
PASSWORD = "e2e-" + uuid.uuid4().hex
#: Milliseconds Playwright waits for a page change (a fill needs the node's next quote).
WAIT_MS = 20_000

pytestmark = [pytest.mark.e2e, needs_market_data, pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]


def _chromium_or_skip() -> None:
    if CHROMIUM.exists():
        return
    message = f"{CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium; .ci/run does)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)  # CI must never pass by skipping the browser test
    pytest.skip(message)


def _wait_up_to(context, ms: int) -> None:
    # The context's actions and navigations, and every expect() (its own 5 s default otherwise,
    # playwright/_impl/_assertions.py; a process-wide option), wait up to ``ms`` for a page change.
    from playwright.sync_api import expect

    context.set_default_timeout(ms)
    expect.set_options(timeout=ms)


@contextmanager
def logged_in_page(person, live_server, path: str, *, wait_ms: int) -> Iterator:
    """Yield a headless Chromium page logged in as ``person`` on ``live_server`` at ``path``.

    Playwright waits up to ``wait_ms`` for page changes (:func:`_wait_up_to`); a confirm dialog
    (htmx's ``hx-confirm``) is accepted. The browser is closed on leaving.
    """
    from playwright.sync_api import sync_playwright

    _chromium_or_skip()
    session = Client()
    session.force_login(person)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                    args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            context = browser.new_context()
            _wait_up_to(context, wait_ms)
            context.add_cookies([{"name": "sessionid", "value": session.cookies["sessionid"].value,
                                  "url": live_server.url}])
            page = context.new_page()
            page.on("dialog", lambda dialog: dialog.accept())
            page.goto(f"{live_server.url}{path}")
            yield page
        finally:
            browser.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _server_env(port: int) -> dict[str, str]:
    """The server's environment: this run's test database and transports, node embedded, debug pages."""
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "CELERY_BROKER_URL")}
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        env.pop("DATABASE_URL", None)
        env["SQLITE_PATH"] = str(db["NAME"])
    else:
        from tests.integration.test_trading_worker import _database_url

        env["DATABASE_URL"] = _database_url()
        env["DB_CONN_MAX_AGE"] = "0"
    env.update({
        "DJANGO_SETTINGS_MODULE": "odum_live.settings",
        "DJANGO_DEBUG": "1",  # static files from the finders (whitenoise), no HTTPS redirect
        "TRADING_NODE": "embedded",
        "CELERY_TASK_ALWAYS_EAGER": "1",
        "NODE_CACHE_REDIS": "0",  # NautilusTrader's own cache would go to Redis DB 0
        "NODE_TRADER_ID": f"E2E-{port}",
        "PYTHONUNBUFFERED": "1",
    })
    return env


@contextmanager
def daphne_serving(log_path: Path, **env: str) -> Iterator[str]:
    """Run ``daphne odum_live.asgi:application`` on a free port; yield its base URL once it serves.

    The server's environment is :func:`_server_env` (this run's database and transports, the node
    embedded) updated with ``env`` (e.g. ``TRADING_NODE="off"``). Its output goes to ``log_path``,
    whose end is printed when the block fails. The server is stopped on leaving.
    """
    port = _free_port()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([str(Path(sys.executable).parent / "daphne"), "-b", "127.0.0.1", "-p", str(port),
                                 "odum_live.asgi:application"], cwd=ROOT, env={**_server_env(port), **env},
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"

    def up():
        assert proc.poll() is None, f"daphne exited:\n{log_path.read_text(errors='replace')[-4000:]}"
        try:
            return requests.get(f"{url}/accounts/login/", timeout=2).status_code == 200
        except requests.ConnectionError:
            return False

    try:
        eventually(up, timeout=60, interval=0.2, message="daphne serving the login page")
        yield url
    except BaseException:
        print(log_path.read_text(errors="replace")[-6000:])
        raise
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def seed_demo() -> None:
    """Seed the demo data (``manage.py seed_demo``), the role groups it needs made again first."""
    for group in ("trader", "risk manager", "viewer", "strategy service"):
        role_group(group)  # gone when an earlier transaction=True test flushed the tables
    call_command("seed_demo", stdout=open(os.devnull, "w"))


@pytest.fixture
def server(tmp_path) -> Iterator[str]:
    """Seed the demo data, start daphne with the embedded node; yield its base URL."""
    _chromium_or_skip()
    seed_demo()
    # Hashed with the server's hasher (the test settings hash with MD5, which the server refuses).
    get_user_model().objects.filter(username="trader").update(
        password=PBKDF2PasswordHasher().encode(PASSWORD, PBKDF2PasswordHasher().salt(), iterations=1000))

    with daphne_serving(tmp_path / "daphne.log") as url:
        yield url


@pytest.fixture
def shots() -> Iterator:
    """``shot(page, name)`` saves a full-page screenshot; the folder is printed."""
    run = "postgres" if settings.DATABASES["default"]["ENGINE"].endswith("postgresql") else "embedded"
    folder = ROOT / "tests" / "e2e" / "screenshots" / run
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    taken = []

    def shot(page, name: str) -> None:
        page.screenshot(path=str(folder / f"{len(taken) + 1:02d}-{name}.png"), full_page=True)
        taken.append(name)

    yield shot
    print(f"\ne2e screenshots ({len(taken)}): {folder}")


def test_trader_submits_market_order_and_watches_it_fill_live(server, shots):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                    args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            _wait_up_to(context, WAIT_MS)

            # Log in (the pages send an anonymous visitor to the login page).
            ticket = context.new_page()
            ticket.goto(f"{server}/live/execute")
            expect(ticket).to_have_url(re.compile(r"/accounts/login/"))
            ticket.fill("#id_username", "trader")
            ticket.fill("#id_password", PASSWORD)
            shots(ticket, "login")
            ticket.click("button[type=submit]")
            expect(ticket).to_have_url(re.compile(r"/live/execute$"))
            expect(ticket.get_by_test_id("user")).to_have_text("trader")

            # The Orders page (and Positions, when present) open before the order exists: what they
            # show later arrives over /ws/live/, without a reload.
            orders = context.new_page()
            orders.goto(f"{server}/live/orders")
            expect(orders.locator("#orders-empty")).to_be_visible()
            orders.evaluate("window.__not_reloaded = true")  # gone if the page ever reloads
            positions = context.new_page()
            has_positions = positions.goto(f"{server}/live/positions").status == 200
            if has_positions:
                expect(positions.locator("body")).not_to_contain_text("SPOT_PAIR:BTC-USDT")  # a fresh database
                positions.evaluate("window.__not_reloaded = true")

            # The ticket: paper BINANCE-SPOT BTC-USDT, MARKET BUY 0.05; the CLI preview follows the form.
            ticket.select_option("#f-venue", "BINANCE-SPOT")
            expect(ticket.locator("#f-instrument")).to_have_value(KEY)
            ticket.select_option("#f-type", "MARKET")
            ticket.select_option("#f-side", "BUY")
            ticket.fill("#f-qty", "0.05")
            expect(ticket.get_by_test_id("cli-preview")).to_contain_text(f"--instrument {KEY} --side BUY --type MARKET "
                                                                          "--qty 0.05")
            # What-if until the node's quotes are in (before, risk denies for missing market data).
            def routable() -> bool:
                ticket.get_by_role("button", name="What-if").click()
                return "would be ROUTED" in ticket.get_by_test_id("what-if").inner_text()

            eventually(routable, timeout=60, interval=1.0, message="what-if says the order would be ROUTED")
            shots(ticket, "execute-what-if")

            ticket.get_by_role("button", name="Submit").click()
            result = ticket.get_by_test_id("ticket-result")
            expect(result).to_contain_text("(new)")
            order_id = re.search(r"order ([0-9a-f-]{36})", result.inner_text()).group(1)
            expect(ticket.get_by_test_id("ticket-status")).to_have_attribute("data-status", "FILLED")
            expect(ticket.get_by_test_id("ticket-status")).to_contain_text("filled 0.05/0.05")
            expect(result).not_to_contain_text("ROUTED")  # one status on the card: the live line's
            shots(ticket, "execute-filled")

            # The Orders page got the row and saw it reach FILLED, never reloaded.
            row = orders.locator(f"#order-{order_id}")
            expect(row.get_by_test_id("status")).to_have_text("FILLED")
            expect(row.get_by_test_id("filled")).to_have_text("0.05")
            assert orders.evaluate("window.__not_reloaded") is True
            shots(orders, "orders-filled")

            if has_positions:
                expect(positions.locator("body")).to_contain_text("SPOT_PAIR:BTC-USDT")
                assert positions.evaluate("window.__not_reloaded") is True
                shots(positions, "positions")
            else:
                print("TODO(h22 join): /live/positions not present in this checkout; position assertion skipped")

            # The order's detail: timeline through the fill, the fill itself.
            row.locator("a").first.click()
            expect(orders).to_have_url(re.compile(rf"/live/orders/{order_id}$"))
            expect(orders.locator("#order-detail")).to_have_attribute("data-status", "FILLED")
            expect(orders.locator("tr.fill-row")).to_have_count(1)
            expect(orders.locator(".timeline li.done", has_text="fills")).to_be_visible()
            # A paper MARKET order fills on submit, never ACCEPTED: said so, not "accepted: -"
            expect(orders.locator("#order-detail")).to_contain_text("— (filled on submit, never resting; first fill ")
            shots(orders, "order-detail")
        finally:
            browser.close()
