"""An inter-process lock that waits in the kernel: a blocking flock(2), so a waiter wakes the moment it is free.

(filelock polls: a writer that found the lock busy slept 50 ms before trying again.) flock locks
belong to an open file description, so each lock keeps its own descriptor, and a mutex orders the
threads of one process, which would otherwise share it.
"""

from __future__ import annotations

import fcntl
import os
import threading

from tickets.core.ports import StorageError
from tickets.storage.files import FILE_MODE


class FileLock:
    """Exclusive across processes (flock) and across threads (a mutex); re-entrant within a thread."""

    def __init__(self, path: str):
        self.path = path
        self._fd: int | None = None
        self._mutex = threading.RLock()
        self._depth = 0
        self._pid = None

    def acquire(self) -> None:
        self._mutex.acquire()
        if self._depth == 0:
            try:
                fcntl.flock(self._descriptor(), fcntl.LOCK_EX)
            except OSError as error:
                self._mutex.release()
                raise StorageError(f"cannot lock {self.path}: {error.strerror}") from error
        self._depth += 1

    def try_acquire(self) -> bool:
        """Take the lock only if no one holds it; never waits."""
        if not self._mutex.acquire(blocking=False):
            return False
        if self._depth == 0:
            try:
                fcntl.flock(self._descriptor(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self._mutex.release()
                return False
        self._depth += 1
        return True

    def release(self) -> None:
        self._depth -= 1
        if self._depth == 0:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._mutex.release()

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def _descriptor(self) -> int:
        # A forked child must not share its parent's open file description (and so its lock).
        if self._fd is None or self._pid != os.getpid():
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
            self._pid = os.getpid()
        return self._fd
