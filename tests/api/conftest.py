"""The order API tests share the order fixtures (tests/orders/conftest.py)."""

from tests.orders.conftest import *  # noqa: F401,F403
# A star import leaves out names starting with "_": the per-test isolation of cache and market data
# (autouse) is imported by name, or these tests would see books and heartbeats earlier tests left.
from tests.orders.conftest import _isolated_cache_and_market_data  # noqa: F401
