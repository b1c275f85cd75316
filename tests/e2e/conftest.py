"""Fixtures of the browser tests (tests/e2e/)."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from tests.e2e.test_trader_flow import _chromium_or_skip, daphne_serving


@pytest.fixture
def asgi_server(tmp_path) -> Iterator[SimpleNamespace]:
    """daphne (HTTP and /ws/live/) on this run's database and transports, no TradingNode; ``.url``."""
    _chromium_or_skip()
    with daphne_serving(tmp_path / "daphne.log", TRADING_NODE="off") as url:
        yield SimpleNamespace(url=url)
