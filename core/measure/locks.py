"""One process-wide lock per device, so two browser sessions never time the same device at once."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


@contextmanager
def device_lock(device: str, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold ``device`` for one measurement; ``on_wait`` is told when another holder blocks us."""
    with _LOCKS_GUARD:
        lock = _LOCKS.setdefault(str(device), threading.Lock())
    if not lock.acquire(blocking=False):
        if on_wait is not None:
            on_wait(f"waiting for {device}: another session is timing it")
        lock.acquire()
    try:
        yield
    finally:
        lock.release()
