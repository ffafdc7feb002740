"""An append-only log with group commit, shared by every worker process of one data folder.

Files (for the stem `tickets`):
- `tickets.<generation>.log`: records appended one after another. Each record is framed by its
  length and a CRC-32 of its bytes, so a record cut short by a crash is told from corruption.
- `tickets.json.lock`: flock(2) held while appending (the same file the previous format locked).
- `tickets.sync`: a few shared words (mmap): how far the log is appended and how far it is durable,
  and a flock held by whoever runs fdatasync.

A writer appends under the lock, releases it, then waits until its record is durable: if a sync that
started after its append has finished meanwhile, it is done; otherwise it runs one fdatasync that
covers every record appended so far, its own and those of writers who queued behind it (group
commit). Readers apply records only up to the durable position, so nothing they answer can be lost
by a crash. A position is one integer, `generation << 40 | offset`, so positions compare as numbers.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator

from tickets.core.ports import CorruptStore, StorageError
from tickets.storage.files import FILE_MODE, fsync_folder, json_object, unlink_quietly
from tickets.storage.framing import FILE_MAGIC, frame, position, split, unframe, whole_record_after
from tickets.storage.locks import FileLock
from tickets.storage.sync_state import SyncState

PEEK = 0.0005  # seconds between looks at the durable position while others may sync


class Log:
    """The generations of one log in a folder. Appends need `lock`; reads need nothing."""

    def __init__(self, folder: str, stem: str):
        self.folder = folder
        self.stem = stem
        self.lock = FileLock(os.path.join(folder, f"{stem}.json.lock"))
        self._sync_lock = FileLock(os.path.join(folder, f"{stem}.sync"))
        self.state = SyncState(os.path.join(folder, f"{stem}.sync"))
        self._files: dict[int, int] = {}  # generation -> open descriptor
        self._paths: dict[int, str] = {}
        self._pattern = re.compile(rf"^{re.escape(stem)}\.(\d+)\.log$")

    def path(self, generation: int) -> str:
        path = self._paths.get(generation)
        if path is None:  # kept: every record read names its file, should it prove corrupt
            path = self._paths[generation] = os.path.join(self.folder, f"{self.stem}.{generation:08d}.log")
        return path

    def generations(self) -> list[int]:
        """The generations present in the folder, oldest first."""
        found = (self._pattern.match(name) for name in os.listdir(self.folder))
        return sorted(int(match.group(1)) for match in found if match)

    def create(self, generation: int) -> int:
        """A new, empty generation, durable with its folder entry; returns its start position. An empty
        one left by an earlier attempt is taken as it is."""
        path = self.path(generation)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, FILE_MODE)
        except OSError as error:
            raise StorageError(f"cannot create {path}: {error.strerror}") from error
        try:
            if os.fstat(fd).st_size == 0:
                os.write(fd, FILE_MAGIC)
            elif os.pread(fd, len(FILE_MAGIC) + 1, 0) != FILE_MAGIC:
                raise CorruptStore(f"{path} is in the way of a new log generation; it was left untouched")
            os.fsync(fd)
            fsync_folder(self.folder)
        except OSError as error:
            os.close(fd)
            raise StorageError(f"cannot create {path}: {error.strerror}") from error
        except CorruptStore:
            os.close(fd)
            raise
        made_before = self._files.get(generation)  # by this process (a fold makes it before taking the lock)
        if made_before is not None:
            os.close(made_before)
        self._files[generation] = fd
        return position(generation, len(FILE_MAGIC))

    def is_empty(self, generation: int) -> bool:
        """Whether a generation holds no record at all."""
        return os.path.getsize(self.path(generation)) <= len(FILE_MAGIC)

    def read_from(self, generation: int, offset: int) -> bytes:
        """The bytes of a generation from `offset` to its current end (nothing read when there are none)."""
        fd = self._descriptor(generation)
        chunks = []
        while (size := os.fstat(fd).st_size) > offset:
            chunk = os.pread(fd, size - offset, offset)
            if not chunk:
                break
            chunks.append(chunk)
            offset += len(chunk)
        return b"".join(chunks)

    def records(self, start: int, stop: int | None = None) -> Iterator[tuple[int, dict]]:
        """(position after it, record) of each whole record from `start`, up to `stop` if given (the
        durable position, for readers), else to the end. A seal moves on to the next generation: the
        position after it is that generation's start. Ends quietly before a record not yet whole."""
        generation, offset = split(start)
        while stop is None or position(generation, offset) < stop:
            parsed, _ = unframe(self.read_from(generation, offset), 0)
            next_generation = None
            for end, payload in parsed:
                record = json_object(payload, f"{self.path(generation)}: a record")
                next_generation = record.get("seal")
                if next_generation:
                    at = position(next_generation, len(FILE_MAGIC))
                else:
                    at = position(generation, offset + end)
                if stop is not None and at > stop:
                    return
                yield at, record
            if next_generation is None:
                return
            self.forget(generation)
            generation, offset = next_generation, len(FILE_MAGIC)

    def append(self, payload: bytes, at: int) -> int:
        """Append one record after position `at` (the caller holds the lock and has read up to the end)."""
        generation, offset = split(at)
        data = frame(payload)
        fd = self._descriptor(generation)
        try:
            written = os.write(fd, data)
        except OSError as error:
            self._cut(generation, offset)
            raise StorageError(f"cannot write {self.path(generation)}: {error.strerror}") from error
        if written != len(data):
            self._cut(generation, offset)
            raise StorageError(f"cannot write {self.path(generation)}: short write")
        end = position(generation, offset + len(data))
        self.state.appended = end
        self.state.count_append()
        return end

    def await_durable(self, at: int, epoch: int, patience: float = 0.0) -> None:
        """Return once every record up to `at` is on disk, syncing (for everyone queued) if need be.

        A failed sync takes back every record that was not durable yet, ours and those queued behind
        it (their writers get the same StorageError); `epoch` tells whether that happened meanwhile.
        """
        if self.state.epoch != epoch:
            raise StorageError("a write failed and was taken back before it was on disk")
        if self.state.durable >= at and self.state.rollback_due is None:
            return
        if patience and self._synced_by_others(at, epoch, patience):
            return
        with self._sync_lock:
            failed = self._sync(at, epoch)
        if failed is not None:
            self.roll_back()
            raise StorageError(failed)

    def _synced_by_others(self, at: int, epoch: int, patience: float) -> bool:
        """Wait up to `patience` seconds for another writer's sync to cover `at` (see LogTicketStore)."""
        deadline = time.monotonic() + patience
        while time.monotonic() < deadline:
            if self.state.epoch != epoch or self.state.rollback_due is not None:
                return False  # the usual path says what happened
            if self.state.durable >= at:
                return True
            time.sleep(PEEK)
        return False

    def _sync(self, at: int, epoch: int) -> str | None:
        """Under the sync lock: make `at` durable; the reason if that failed."""
        if self.state.epoch != epoch or self.state.rollback_due is not None:
            return "a write failed and was taken back before it was on disk"
        if self.state.durable >= at:
            return None  # a sync that started after our append covered it
        target = max(self.state.appended, at)
        generation, _ = split(target)
        try:
            os.fdatasync(self._descriptor(generation))
        except OSError as error:
            self.state.fail_sync()
            return f"cannot sync {self.path(generation)}: {error.strerror}"
        self.state.durable = max(self.state.durable, target)
        self.state.count_sync()
        return None

    def roll_back(self) -> None:
        """Cut the log back to its durable position after a failed sync (write lock, then sync lock)."""
        with self.lock, self._sync_lock:
            at = self.state.rollback_due
            if at is None:
                return  # another writer did it
            generation, offset = split(at)
            try:
                os.ftruncate(self._descriptor(generation), offset)
            except OSError as error:  # stays due: every write fails until a cut succeeds
                raise StorageError(f"cannot cut {self.path(generation)} back: {error.strerror}") from error
            self.state.rolled_back(at)

    def raise_durable(self, at: int) -> None:
        """Record that everything up to `at` is durable (after a sync of our own, e.g. a rotation)."""
        with self._sync_lock:
            self.state.durable = max(self.state.durable, at)
            self.state.appended = max(self.state.appended, at)

    def cut_torn_tail(self, generation: int, offset: int) -> bool:
        """Drop an incomplete last record after `offset` (a crash mid-append, never acknowledged).

        The caller holds the lock. If a whole record follows the bad bytes, it is corruption, not a
        torn tail: CorruptStore, and nothing is changed. Returns whether anything was cut.
        """
        data = self.read_from(generation, offset)
        _, stop = unframe(data, 0)
        if stop == len(data):
            return False
        if whole_record_after(data, stop):
            raise CorruptStore(
                f"{self.path(generation)} has a damaged record at byte {offset + stop} followed by good ones; "
                "it was left untouched"
            )
        self._cut(generation, offset + stop)
        return True

    def sync_everything(self, generation: int) -> None:
        """fdatasync a generation now (start-up, rotation)."""
        os.fdatasync(self._descriptor(generation))

    def remove(self, generation: int) -> None:
        """Close and delete a generation that a fold has made useless."""
        path = self.path(generation)
        self.forget(generation)
        unlink_quietly(path)

    def forget(self, generation: int) -> None:
        """Close our descriptor of a generation (it was folded into the snapshot)."""
        self._paths.pop(generation, None)
        fd = self._files.pop(generation, None)
        if fd is not None:
            os.close(fd)

    def close(self) -> None:
        for generation in list(self._files):
            self.forget(generation)

    def _cut(self, generation: int, offset: int) -> None:
        try:
            os.ftruncate(self._descriptor(generation), offset)
        except OSError:
            pass  # the bad bytes stay past every published position, and the next writer cuts them

    def _descriptor(self, generation: int) -> int:
        fd = self._files.get(generation)
        if fd is None:
            path = self.path(generation)
            try:
                fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CLOEXEC)
            except FileNotFoundError:
                raise MissingGeneration(path) from None
            except OSError as error:
                raise StorageError(f"cannot open {path}: {error.strerror}") from error
            if os.pread(fd, len(FILE_MAGIC), 0) != FILE_MAGIC:
                os.close(fd)
                raise CorruptStore(f"{path} is not a log of this service; it was left untouched")
            self._files[generation] = fd
        return fd


class MissingGeneration(StorageError):
    """A log generation was folded into the snapshot and removed: read the snapshot again."""
