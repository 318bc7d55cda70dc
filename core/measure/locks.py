"""One process-wide lock per device, so two browser sessions never time the same device at once."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _lock_for(device: str) -> threading.Lock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(device, threading.Lock())


@contextmanager
def device_lock(device: str, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold ``device`` for one measurement; ``on_wait`` is told when another holder blocks us."""
    lock = _lock_for(str(device))
    if not lock.acquire(blocking=False):
        if on_wait is not None:
            on_wait(f"waiting for {device}: another session is timing it")
        lock.acquire()
    try:
        yield
    finally:
        lock.release()
