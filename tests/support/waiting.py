"""Poll until something is true: the one wait loop the tests share."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(condition: Callable[[], T], timeout: float = 20, what: str = "condition", *,
               interval: float = 0.1, fail: bool = True) -> T:
    """Call ``condition`` every ``interval`` s until it returns something truthy, and return that.

    After ``timeout`` s it raises AssertionError naming ``what``; with ``fail=False`` it returns
    the last value instead, for a caller whose own assert says more about what went wrong.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() >= deadline:
            break
        time.sleep(interval)
    if not value and fail:
        raise AssertionError(f"timed out after {timeout} s waiting for {what}")
    return value
