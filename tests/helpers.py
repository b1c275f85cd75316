"""Test helpers shared by every test module."""

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(predicate: Callable[[], T], *, timeout: float = 10.0, interval: float = 0.02, message: str = "") -> T:
    """Poll ``predicate`` until it returns a truthy value; return that value.

    Raises
    ------
    AssertionError
        When ``timeout`` seconds pass first (the message says what was awaited).
    """
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s: {message or predicate!r} (last={last!r})")
