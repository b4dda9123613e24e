"""The one wait of the test suite: poll with a deadline, never spin."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], what: str, timeout: float = 90, poll: float = 0.5) -> T:
    """Poll `predicate` until it returns something true and return that; AssertionError naming
    `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"not seen within {timeout} s: {what}")
