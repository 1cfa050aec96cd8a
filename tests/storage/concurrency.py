"""Run the same function from many threads at once, for race tests."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


def race(fn: Callable[[int], T], workers: int = 8) -> list[T | BaseException]:
    """Call ``fn(i)`` on ``workers`` threads released together; results or raised errors."""
    barrier = threading.Barrier(workers, timeout=30)

    def run(i: int) -> T | BaseException:
        barrier.wait()
        try:
            return fn(i)
        except BaseException as exc:
            return exc

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(run, range(workers), timeout=120))
