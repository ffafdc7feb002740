"""The TinyDB store's throttle counters: failed exchanges per address, in a fixed-size table shared by mmap.

`throttle.bin` holds SLOTS slots; an address hashes to one and probes a few neighbours. A slot holds
the address's digest and the times of its last `depth` failures (a ring). Recording a failure
touches a handful of slots whatever the number of addresses counted; when every probed slot is
live, the one whose last failure is oldest gives way. Never fsynced: after a crash, forgetting the
last minute of failures is harmless. A file of another layout (another depth) is started afresh.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import struct

from tickets.storage.files import FILE_MODE
from tickets.storage.locks import FileLock

SLOTS = 16_384
PROBES = 8
MAGIC = b"TKTTHR1\0"
LAYOUT = struct.Struct("<8sII")  # magic, slots, depth


class MappedThrottleStore:
    """The ThrottleStore of the TinyDB backend (see tickets.core.ports)."""

    def __init__(self, path: str, depth: int):
        self.path = path
        self.depth = max(1, depth)
        self._slot = struct.Struct(f"<16s{self.depth}d")
        self._lock = FileLock(path + ".lock")
        size = LAYOUT.size + SLOTS * self._slot.size
        with self._lock:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
            try:
                fresh = os.pread(fd, LAYOUT.size, 0) != LAYOUT.pack(MAGIC, SLOTS, self.depth)
                if fresh:
                    os.ftruncate(fd, 0)
                    os.ftruncate(fd, size)
                    os.pwrite(fd, LAYOUT.pack(MAGIC, SLOTS, self.depth), 0)
                self._map = mmap.mmap(fd, size)
            finally:
                os.close(fd)

    def recent(self, address: str, since: float) -> list[float]:
        digest = _digest(address)
        with self._lock:
            for slot in self._probe(digest):
                key, *times = self._read(slot)
                if key == digest:
                    return sorted(stamp for stamp in times if stamp > since)
        return []

    def record(self, address: str, now: float, since: float) -> None:
        digest = _digest(address)
        with self._lock:
            slot = self._find_or_claim(digest)
            key, *times = self._read(slot)
            times = [stamp if key == digest and stamp > since else 0.0 for stamp in times]
            oldest = min(range(self.depth), key=times.__getitem__)
            times[oldest] = now
            self._map[self._offset(slot) : self._offset(slot) + self._slot.size] = self._slot.pack(digest, *times)

    def _find_or_claim(self, digest: bytes) -> int:
        """The address's slot; else the probed slot whose last failure is oldest (free ones are 0.0)."""
        candidates = []
        for slot in self._probe(digest):
            key, *times = self._read(slot)
            if key == digest:
                return slot
            candidates.append((max(times), slot))
        return min(candidates)[1]

    def _probe(self, digest: bytes):
        start = int.from_bytes(digest[:8], "little") % SLOTS
        return [(start + step) % SLOTS for step in range(PROBES)]

    def _offset(self, slot: int) -> int:
        return LAYOUT.size + slot * self._slot.size

    def _read(self, slot: int) -> tuple:
        return self._slot.unpack_from(self._map, self._offset(slot))


def _digest(address: str) -> bytes:
    return hashlib.blake2b(address.encode(), digest_size=16).digest()
