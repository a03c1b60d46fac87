"""Iterate in a background thread, a bounded number of items ahead of the consumer.

Used to read event chunks while the consumer works on the previous one: h5py releases the GIL
while it decompresses, so the read and the consumer's numpy work overlap on two cores.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

__all__ = ["read_ahead"]

T = TypeVar("T")

_DONE = object()


def read_ahead(items: Iterator[T], depth: int) -> Iterator[T]:
    """Run ``items`` in a background thread, at most ``depth`` items ahead of the consumer.

    An exception in the reader is raised in the consumer; a consumer that stops early stops the
    reader too (it never blocks for more than a moment on a full queue).
    """
    q: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(item: object) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not offer(item):
                    return
            offer(_DONE)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, who raises it
            offer(exc)

    thread = threading.Thread(target=produce, name="h5io-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        thread.join()
