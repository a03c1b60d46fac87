"""Background read-ahead: same items in order, errors reach the consumer, early stop ends the thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from nucvn.data.readahead import read_ahead


def _slow(n: int, fail_at: int | None = None) -> Iterator[int]:
    for i in range(n):
        if i == fail_at:
            raise OSError(f"broken at {i}")
        time.sleep(0.001)
        yield i


def test_same_items_in_order() -> None:
    assert list(read_ahead(_slow(50), 3)) == list(range(50))


def test_reader_error_is_raised_in_consumer_after_earlier_items() -> None:
    got = []
    with pytest.raises(OSError, match="broken at 7"):
        for i in read_ahead(_slow(20, fail_at=7), 2):
            got.append(i)  # noqa: PERF402 - a loop keeps the items that came before the error
    assert got == list(range(7))


def test_early_stop_ends_the_reader_thread() -> None:
    before = threading.active_count()
    it = read_ahead(_slow(10_000), 2)
    assert next(it) == 0
    it.close()
    assert threading.active_count() == before
