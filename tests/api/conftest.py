"""The order API tests share the order fixtures (tests/orders/conftest.py)."""

from tests.orders.conftest import *  # noqa: F401,F403
