"""One measurement at a time per machine, across sessions and processes: a CPU point in one
session slows the launches of a GPU point in another, and a CLI run competes with the app.
A thread lock orders this process's sessions; a file lock in the user's data folder orders
processes, and a note beside it says who holds it and since when."""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from filelock import FileLock, Timeout

_LOG = logging.getLogger(__name__)
_THREAD_LOCK = threading.Lock()
_file_lock: FileLock | None = None


def lock_folder() -> Path:
    import platformdirs  # only needed for the default location

    return Path(platformdirs.user_data_dir("speedup-explorer", appauthor=False))


def _program() -> str:
    name = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    if "streamlit" in name or any("streamlit" in arg for arg in sys.argv[:2]):
        return "the app"
    if name == "__main__.py" or name.startswith("core"):
        return "python -m core " + " ".join(sys.argv[1:2])
    return name


def holder(folder: Path | None = None) -> str:
    """Who holds the machine, in words, as its holder wrote it; "" when unknown."""
    try:
        note = json.loads(((folder or lock_folder()) / "measuring.holder").read_text())
        since = datetime.fromtimestamp(float(note["since"])).strftime("%H:%M:%S")
        return f"{note['program']} (pid {int(note['pid'])}) has been measuring since {since}"
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def _lock(folder: Path) -> FileLock:
    global _file_lock
    if _file_lock is None or Path(_file_lock.lock_file).parent != folder:
        folder.mkdir(parents=True, exist_ok=True)
        _file_lock = FileLock(str(folder / "measuring.lock"))
    return _file_lock


@contextmanager
def machine_lock(
    on_wait: Callable[[str], None] | None = None, folder: Path | None = None
) -> Iterator[None]:
    """Hold the machine for one measurement; ``on_wait`` hears once who blocks us."""
    folder = folder or lock_folder()
    if not _THREAD_LOCK.acquire(blocking=False):
        if on_wait is not None:
            on_wait("waiting for the machine: another session of this server is measuring")
        _THREAD_LOCK.acquire()
    try:
        lock = _acquired(folder, on_wait)
        try:
            yield
        finally:
            if lock is not None:
                lock.release()
    finally:
        _THREAD_LOCK.release()


def _acquired(folder: Path, on_wait: Callable[[str], None] | None) -> FileLock | None:
    """The machine's file lock, held, with a note of who holds it; None where the folder
    cannot be written (a read-only home): then only this process's sessions are ordered,
    which is better than not measuring at all."""
    try:
        lock = _lock(folder)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            if on_wait is not None:
                who = holder(folder) or "another program is measuring"
                on_wait(f"waiting for the machine: {who}")
            lock.acquire()
    except OSError as error:
        _LOG.warning("measuring without the machine lock in %s: %s", folder, error)
        return None
    try:
        note = {"pid": os.getpid(), "program": _program(), "since": time.time()}
        (folder / "measuring.holder").write_text(json.dumps(note))
    except OSError:  # the note is a courtesy to whoever waits
        pass
    return lock
