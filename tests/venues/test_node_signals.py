"""venues.node.host: the TradingNode never takes the process's signals (issue #3 §1).

Building a ``TradingNode`` with a loop installs SIGTERM / SIGINT / SIGABRT handlers and resets SIGINT
(``NautilusKernel._setup_loop``, NAUTILUS_NOTES.md); in the trading worker those signals belong to
Celery (SIGTERM: warm shutdown, which stops the node), in the embedded default to the web server.
The host builds every node with that step switched off (``_without_signal_handlers``).

The tests put handlers of their own in place first, as the hosting process would have, so a node
that installed or reset any handler (even back to Python's default) is seen. A real node on the
recorded Binance BTCUSDT data, built as ``tests/venues/test_node_host.py`` builds it.
"""

from __future__ import annotations

import signal
import threading

import pytest
from django.db import connections

from tests.helpers import SHARED_DATA, needs_market_data
from tests.venues.factories import InstrumentFactory, VenueFactory
from venues.journal import JournalWriter
from venues.node.config import node_plan
from venues.node.host import TradingNodeHost

pytestmark = [needs_market_data, pytest.mark.django_db(transaction=True)]

KEY = "BINANCE-SPOT:SPOT_PAIR:BTC-USDT"
REPLAY = {"data_dir": str(SHARED_DATA), "speed": 5.0, "loop": True, "instruments": {KEY: [
    {"kind": "quotes", "format": "binance_quotes_parquet",
     "path": "market/binance_spot_btcusdt_quotes_2021-01-08.parquet"},
    {"kind": "trades", "format": "binance_trades_parquet",
     "path": "market/binance_spot_btcusdt_trades_2021-01-08.parquet"},
]}}
#: The kernel's three (SIGTERM, SIGINT, SIGABRT) and SIGHUP, which a worker also owns.
SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGABRT, signal.SIGHUP)


def _handlers() -> dict[signal.Signals, object]:
    return {sig: signal.getsignal(sig) for sig in SIGNALS}


def _wakeup_fd() -> int:
    # Read the process's signal wake-up fd (asyncio's add_signal_handler takes it) without changing it.
    fd = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(fd)
    return fd


@pytest.fixture
def process_signal_handlers():
    """Install a handler of the test's own for each signal (as the hosting process would); restore after."""
    previous = _handlers()
    previous_fd = signal.set_wakeup_fd(-1)

    def owned_by_the_process(signum, frame):  # never called: only its identity matters
        raise AssertionError(f"signal {signum} delivered during the test")

    for sig in SIGNALS:
        signal.signal(sig, owned_by_the_process)
    yield _handlers()
    for sig, handler in previous.items():
        signal.signal(sig, handler)
    signal.set_wakeup_fd(previous_fd)


@pytest.fixture
def host(transactional_db, process_signal_handlers):
    """A node host on the paper BINANCE-SPOT listing, not started; stopped afterwards (idempotent)."""
    InstrumentFactory(venue=VenueFactory(code="BINANCE-SPOT", config={"replay": REPLAY}), instrument_key=KEY)
    host = TradingNodeHost(plan=node_plan(), trader_id="TESTNODE-SIG", journal=JournalWriter(), heartbeat_secs=0,
                           log_level="ERROR", md_interval_secs=0.05, mark_interval_secs=0.05)
    yield host
    host.stop(timeout=20)


def test_node_host_start_and_stop_leave_the_process_signal_handlers_unchanged(process_signal_handlers, host):
    # Arrange
    before = _handlers()
    fd_before = _wakeup_fd()

    # Act
    host.start(timeout=30)
    after_start, fd_after_start = _handlers(), _wakeup_fd()
    stopped_clean = host.stop(timeout=20)
    after_stop, fd_after_stop = _handlers(), _wakeup_fd()

    # Assert: the very same handler objects throughout, and no wake-up fd taken.
    assert before == process_signal_handlers
    assert host.is_ready() is False and stopped_clean
    for sig in SIGNALS:
        assert after_start[sig] is before[sig], (sig.name, "after start", after_start[sig])
        assert after_stop[sig] is before[sig], (sig.name, "after stop", after_stop[sig])
    assert fd_after_start == fd_before == fd_after_stop


def test_node_host_started_off_the_main_thread_becomes_ready(host):
    # Arrange: the embedded default starts its node on a thread (start_trading_node_in_background), where
    # installing a signal handler raises ValueError.
    outcome: dict[str, object] = {}

    def start() -> None:
        try:
            outcome["ready"] = host.start(timeout=30).is_ready()
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
            outcome["error"] = exc
        finally:
            connections.close_all()

    # Act
    thread = threading.Thread(target=start, name="test-node-start")
    thread.start()
    thread.join(60)

    # Assert
    assert not thread.is_alive(), "host.start did not return within 60 s"
    assert outcome == {"ready": True}, outcome
