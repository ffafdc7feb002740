"""The words every process of one data folder shares through the mapped file `tickets.sync`."""

from __future__ import annotations

import ctypes
import mmap
import os

from tickets.storage.files import FILE_MODE

SYNC_MAGIC = 0x544B5453594E4331  # "TKTSYNC1": the sync file's layout version


class SyncState:
    """Words shared by every process through a mapped file, each an aligned 64-bit integer read and
    written whole: the magic, how far the log is appended and how far durable, an epoch that grows
    whenever records that were never durable are taken back, the position to take back to (plus one;
    0 while none is due), and the identities (inode, size, mtime) of the snapshot files the service
    wrote, so a file changed by anything else is noticed; and, for operators, how many records were
    appended and how many syncs made them durable. Never fsynced: start-up sets it again.
    """

    WORDS = 13

    def __init__(self, path: str):
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
        try:
            if os.fstat(fd).st_size < mmap.PAGESIZE:
                os.ftruncate(fd, mmap.PAGESIZE)
            self._map = mmap.mmap(fd, mmap.PAGESIZE)
        finally:
            os.close(fd)
        self._words = (ctypes.c_uint64 * self.WORDS).from_buffer(self._map)

    @property
    def appended(self) -> int:
        return self._words[1]

    @appended.setter
    def appended(self, at: int) -> None:
        self._words[1] = at

    @property
    def durable(self) -> int:
        return self._words[2] if self._words[0] == SYNC_MAGIC else 0

    @durable.setter
    def durable(self, at: int) -> None:
        self._words[2] = at

    @property
    def epoch(self) -> int:
        return self._words[3]

    @property
    def rollback_due(self) -> int | None:
        """The position to cut the log back to, if a sync failed and the cut is still to be made."""
        return self._words[4] - 1 if self._words[4] else None

    def fail_sync(self) -> None:
        """A sync failed: what follows the durable position can never be trusted (say, fsyncgate)."""
        if not self._words[4]:
            self._words[4] = self._words[2] + 1

    def rolled_back(self, at: int) -> None:
        self._words[1] = at
        self._words[2] = min(self._words[2], at)
        self._words[3] += 1
        self._words[4] = 0

    def reset(self, at: int) -> None:
        """Everything up to `at` is appended and durable (start-up, under the write lock, with nothing
        taken back: workers already running keep their state)."""
        if self._words[0] != SYNC_MAGIC:
            self._words[3 : self.WORDS] = (0,) * (self.WORDS - 3)
        self._words[1] = at
        self._words[2] = at
        self._words[0] = SYNC_MAGIC

    @property
    def counts(self) -> tuple[int, int]:
        """(records appended, syncs run) since the shared words were made: their ratio is the grouping."""
        return self._words[11], self._words[12]

    def count_append(self) -> None:
        self._words[11] += 1  # under the write lock

    def count_sync(self) -> None:
        self._words[12] += 1  # under the sync lock

    def snapshot_known(self, identity: tuple[int, int, int]) -> bool:
        """Whether the service wrote the snapshot file with this identity (the current or the next one)."""
        return identity in (tuple(self._words[5:8]), tuple(self._words[8:11]))

    def expect_snapshot(self, identity: tuple[int, int, int]) -> None:
        """A fold is about to install this snapshot file."""
        self._words[8:11] = identity

    def install_snapshot(self, identity: tuple[int, int, int]) -> None:
        self._words[5:8] = identity
        self._words[8:11] = (0, 0, 0)
