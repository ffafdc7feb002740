"""The TinyDB store (the default): the only module that touches tinydb or the data files.

Every file is replaced whole (temp file, fsync, rename, fsync of the folder), so a reader
never sees a torn file and needs no lock; every read-modify-write holds an inter-process
file lock, because gunicorn runs several worker processes on the same files.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Iterable
from datetime import datetime

from filelock import FileLock
from tinydb import TinyDB
from tinydb.storages import Storage
from tinydb.table import Document, Table

from tickets.domain import Ticket, TicketNotFound
from tickets.storage.common import (
    CorruptStore,
    StorageError,
    TicketIdTaken,
    parse_time,
    record_to_ticket,
    ticket_to_record,
)

log = logging.getLogger(__name__)
FILE_MODE = 0o600
DIR_MODE = 0o700
MIN_COMPACTION = 1000  # journal entries; or half the number of tickets, if more


def prepare_data_dir(path: str) -> None:
    """Create the data folder (mode 0700) or tighten an existing one."""
    try:
        os.makedirs(path, mode=DIR_MODE, exist_ok=True)
        if os.stat(path).st_mode & 0o777 != DIR_MODE:
            os.chmod(path, DIR_MODE)
    except OSError as error:
        raise StorageError(f"cannot use {path} as the data folder: {error.strerror}") from error


def write_file_atomically(path: str, payload: bytes, durable: bool = True) -> int:
    """Replace `path` with `payload` all at once; returns an open fd of the new file."""
    folder = os.path.dirname(path) or "."
    fd, temp_path = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        view = memoryview(payload)
        while view:
            view = view[os.write(fd, view) :]
        if durable:
            os.fsync(fd)
        os.replace(temp_path, path)
    except BaseException:
        os.close(fd)
        _unlink_quietly(temp_path)
        raise
    if durable:
        _fsync_folder(folder)
    return fd


def _fsync_folder(folder: str) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


class AtomicJSONStorage(Storage):
    """TinyDB storage that re-parses the file only when it was replaced, and writes atomically.

    The service never changes a file in place, so "unchanged" is exact: the path still names
    the inode this worker holds open (an open inode cannot be freed and reused), with the size
    and mtime it had (an edit in place by someone else is noticed too).
    """

    def __init__(self, path: str, durable: bool = True):
        self.path = path
        self.durable = durable
        self._data = None
        self._fd = None
        self._stamp = None

    def read(self):
        try:
            current = os.stat(self.path)
        except FileNotFoundError:
            self._forget()
            return None
        except OSError as error:
            raise StorageError(f"cannot read {self.path}: {error.strerror}") from error
        if self._fd is not None and _same_file(self._stamp, current):
            return self._data
        return self._load()

    def write(self, data) -> None:
        try:
            payload = json.dumps(data, separators=(",", ":"), allow_nan=False).encode()
            fd = write_file_atomically(self.path, payload, self.durable)
        except (OSError, ValueError) as error:
            self._forget()  # TinyDB already changed the cached dict in place
            reason = getattr(error, "strerror", None) or str(error)
            raise StorageError(f"cannot write {self.path}: {reason}") from error
        self._remember(data, fd)

    def close(self) -> None:
        self._forget()

    def _load(self):
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError as error:
            raise StorageError(f"cannot read {self.path}: {error.strerror}") from error
        try:
            with os.fdopen(os.dup(fd), "rb") as handle:
                data = json.loads(handle.read())
        except (OSError, ValueError, RecursionError) as error:
            os.close(fd)
            raise CorruptStore(f"{self.path} is not a valid data file ({error}); it was left untouched") from error
        problem = _shape_problem(data)
        if problem:
            os.close(fd)
            raise CorruptStore(f"{self.path} is not a valid data file ({problem}); it was left untouched")
        self._remember(data, fd)
        return data

    def _remember(self, data, fd: int) -> None:
        self._forget()
        self._data, self._fd, self._stamp = data, fd, os.fstat(fd)

    def _forget(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
        self._data, self._fd, self._stamp = None, None, None


def _same_file(held: os.stat_result, current: os.stat_result) -> bool:
    """Same inode (held open, so never reused) and not edited in place by someone else."""
    def identity(info):
        return info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns

    return identity(held) == identity(current)


def _shape_problem(data) -> str | None:
    """What makes `data` not a TinyDB document tree, if anything."""
    if not isinstance(data, dict):
        return "the top level is not an object of tables"
    for name, table in data.items():
        if not isinstance(table, dict) or not all(isinstance(doc, dict) for doc in table.values()):
            return f"table {name!r} is not an object of documents"
    return None


class StrIdTable(Table):
    """Documents keyed by our own string ids (ticket ids, client ids, key ids)."""

    document_id_class = str


class StrIdTinyDB(TinyDB):
    """TinyDB whose tables use string ids."""

    table_class = StrIdTable


class JsonStore:
    """One TinyDB file with its lock: the building block of the repositories below."""

    def __init__(self, path: str, durable: bool = True):
        self.path = path
        self.lock = FileLock(path + ".lock", mode=FILE_MODE)
        self.db = StrIdTinyDB(path, storage=AtomicJSONStorage, durable=durable)

    def table(self, name: str) -> Table:
        return self.db.table(name, cache_size=0)

    def check(self) -> None:
        """Read the file now: raises CorruptStore or StorageError if it is unusable."""
        self.db.storage.read()

    def ensure_exists(self) -> None:
        """Create an empty file if there is none, never touching one that exists."""
        with self.lock:
            if self.db.storage.read() is None:
                self.db.storage.write({})


class TicketRepository:
    """Tickets as a TinyDB snapshot (`tickets.json`) plus a journal of small files, one per write.

    Rewriting the whole snapshot on every write would cost time in proportion to the number
    of tickets. Instead each write is one small file beside it (`tickets.<seq>.journal`), created
    the same atomic way (temp file, fsync, rename, fsync of the folder) under a sequence number;
    readers apply the entries they have not seen yet. Once the journal is long enough, compared
    with the snapshot, it is folded into a new snapshot (written atomically) and its entries are
    removed. The file lock orders processes; a mutex orders threads (gthread workers) within one.
    """

    def __init__(self, store: JsonStore):
        self.store = store
        # Entries sit beside the snapshot (tickets.000000000042.journal): the data folder holds only files.
        self.folder = os.path.dirname(store.path) or "."
        self.entry_prefix = os.path.splitext(os.path.basename(store.path))[0] + "."
        self._snapshot = None  # the parsed snapshot object our records started from
        self._records: dict[str, dict] = {}
        self._seq = 0  # last journal entry applied
        self._mutex = threading.RLock()

    def get(self, ticket_id: str) -> Ticket:
        with self._mutex:
            record = self._current().get(ticket_id)
        if record is None:
            raise TicketNotFound(ticket_id)
        return record_to_ticket(ticket_id, record)

    def add(self, ticket: Ticket) -> None:
        with self.store.lock, self._mutex:
            if ticket.id in self._current():
                raise TicketIdTaken(ticket.id)
            self._commit({ticket.id: ticket_to_record(ticket)})

    def change(self, ticket_id: str, decide: Callable[[Ticket], Ticket | None]) -> Ticket | None:
        """Apply `decide` to the current ticket under the lock: it returns the ticket to
        store (the same object for no change) or None to delete it; it may raise to refuse."""
        with self.store.lock, self._mutex:
            current = self.get(ticket_id)
            updated = decide(current)
            if updated is None:
                self._commit({ticket_id: None})
            elif updated is not current:
                self._commit({ticket_id: ticket_to_record(updated)})
            return updated

    def all(self) -> list[Ticket]:
        with self._mutex:
            return [record_to_ticket(ticket_id, record) for ticket_id, record in self._current().items()]

    def remove_expired(self, expired_before: datetime, consumed_before: datetime) -> int:
        """Delete tickets that expired at or before `expired_before` and used-up ones consumed at
        or before `consumed_before`; returns how many."""
        with self.store.lock, self._mutex:
            ids = [
                ticket_id for ticket_id, record in self._current().items()
                if parse_time(record["expiresAt"]) <= expired_before
                or (record.get("consumedAt") and parse_time(record["consumedAt"]) <= consumed_before)
            ]
            if ids:
                self._commit(dict.fromkeys(ids))
            return len(ids)

    def count(self) -> int:
        with self._mutex:
            return len(self._current())

    def prepare(self) -> None:
        """At start-up: leave everything in the snapshot file, if the journal holds anything."""
        with self.store.lock, self._mutex:
            self._current()
            if self._journal_length() or self._entry_files():
                self.compact()

    def compact(self) -> None:
        """Fold the journal into a new snapshot and remove the folded entries."""
        with self.store.lock, self._mutex:
            self._current()
            self.store.db.storage.write({"tickets": dict(self._records), "_meta": {"journal": {"seq": self._seq}}})
            self._snapshot = self.store.db.storage.read()
            self._remove_folded_entries()

    def _current(self) -> dict[str, dict]:
        """Our records brought up to date: a new snapshot if one was written, then new entries."""
        while True:
            snapshot = self.store.db.storage.read()
            if snapshot is not self._snapshot or snapshot is None:
                self._records = dict((snapshot or {}).get("tickets", {}))
                self._seq = _folded_seq(snapshot)
                self._snapshot = snapshot
            while self._apply_entry(self._seq + 1):
                self._seq += 1
            # A missing next entry means we are current, unless a compaction removed it meanwhile.
            if self.store.db.storage.read() is self._snapshot:
                return self._records

    def _entry_path(self, seq: int) -> str:
        return os.path.join(self.folder, f"{self.entry_prefix}{seq:012d}.journal")

    def _entry_files(self) -> dict[str, int]:
        """Journal entry file names in the folder, with their sequence numbers."""
        found = {}
        for name in os.listdir(self.folder):
            middle = name.removeprefix(self.entry_prefix).removesuffix(".journal")
            if name.startswith(self.entry_prefix) and name.endswith(".journal") and middle.isdigit():
                found[name] = int(middle)
        return found

    def _apply_entry(self, seq: int) -> bool:
        path = self._entry_path(seq)
        try:
            with open(path, "rb") as handle:
                raw = handle.read()
        except FileNotFoundError:
            return False
        except OSError as error:
            raise StorageError(f"cannot read {path}: {error.strerror}") from error
        try:
            changes = json.loads(raw)["changes"]
            self._apply(changes)
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise CorruptStore(f"{path} is not a valid journal entry ({error}); it was left untouched") from error
        return True

    def _apply(self, changes: dict) -> None:
        for ticket_id, record in changes.items():
            if record is None:
                self._records.pop(ticket_id, None)
            else:
                self._records[ticket_id] = record

    def _commit(self, changes: dict) -> None:
        """Write one journal entry (caller holds the lock and is current), then apply it."""
        seq = self._seq + 1
        try:
            payload = json.dumps({"changes": changes}, separators=(",", ":"), allow_nan=False).encode()
            os.close(write_file_atomically(self._entry_path(seq), payload))
        except (OSError, ValueError) as error:
            reason = getattr(error, "strerror", None) or str(error)
            raise StorageError(f"cannot write {self._entry_path(seq)}: {reason}") from error
        self._apply(changes)
        self._seq = seq
        if self._journal_length() >= max(MIN_COMPACTION, len(self._records) // 2):
            try:
                self.compact()
            except StorageError as error:  # the entry is durable; folding it waits for the next write
                log.warning("journal compaction failed, will retry: %s", error)

    def _journal_length(self) -> int:
        return self._seq - _folded_seq(self._snapshot)

    def _remove_folded_entries(self) -> None:
        """Entries up to the snapshot's sequence, and temp files of writers that died (we hold the lock)."""
        for name, seq in self._entry_files().items():
            if seq <= self._seq:
                _unlink_quietly(os.path.join(self.folder, name))
        for name in os.listdir(self.folder):
            if name.startswith("." + self.entry_prefix) and name.endswith(".tmp"):
                _unlink_quietly(os.path.join(self.folder, name))


def _replace_with(record: dict) -> Callable[[dict], None]:
    def transform(document: dict) -> None:
        document.clear()
        document.update(record)

    return transform


def _folded_seq(snapshot) -> int:
    """The last journal entry a snapshot already contains."""
    if not isinstance(snapshot, dict):
        return 0
    return snapshot.get("_meta", {}).get("journal", {}).get("seq", 0)


class TinyRecordRepository:
    """Plain records (OAuth clients, signing keys) keyed by id, in a TinyDB table."""

    def __init__(self, store: JsonStore, table: str):
        self.store = store
        self.table = store.table(table)

    def get(self, record_id: str) -> dict | None:
        record = self.table.get(doc_id=record_id)
        return None if record is None else dict(record)

    def put(self, record_id: str, record: dict) -> None:
        """Insert or replace whole (TinyDB's upsert would merge into the old fields)."""
        with self.store.lock:
            if self.table.contains(doc_id=record_id):
                self.table.update(_replace_with(record), doc_ids=[record_id])
            else:
                self.table.insert(Document(record, doc_id=record_id))

    def delete(self, record_id: str) -> bool:
        with self.store.lock:
            if not self.table.contains(doc_id=record_id):
                return False
            self.table.remove(doc_ids=[record_id])
            return True

    def all(self) -> dict[str, dict]:
        """Every record by id; the dict is the cached one, so callers must not change it."""
        return self.table._read_table()

    def locked(self):
        """A context manager that excludes every other writer of these records, in any process."""
        return self.store.lock

    def remove_many(self, record_ids: Iterable[str]) -> None:
        with self.store.lock:
            present = [record_id for record_id in record_ids if self.table.contains(doc_id=record_id)]
            if present:
                self.table.remove(doc_ids=present)


class TinyThrottleStore:
    """Failed exchanges per address, shared by all worker processes through one small file.

    Not fsynced: after a crash, forgetting the last minute of failures is harmless.
    """

    def __init__(self, store: JsonStore):
        self.store = store
        self.table = store.table("failures")

    def recent(self, address: str, since: float) -> list[float]:
        record = self.table.get(doc_id=address)
        return [stamp for stamp in record["times"] if stamp > since] if record else []

    def record(self, address: str, now: float, since: float) -> None:
        with self.store.lock:
            times = self.recent(address, since) + [now]
            everyone = self.table._read_table()
            stale = [key for key, value in everyone.items() if key != address and max(value["times"]) <= since]
            if stale:
                self.table.remove(doc_ids=stale)
            self.table.upsert(Document({"times": times}, doc_id=address))


def check_writable(folder: str) -> None:
    """Refuse to start on a folder where no write could succeed (read-only mount, wrong owner)."""
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".write-probe.")
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        raise StorageError(f"the data folder {folder} is not writable: {error.strerror}") from error


def open_stores(data_dir: str) -> dict[str, JsonStore]:
    """The service's files, checked: a corrupt one, or a folder that cannot be written, stops start-up."""
    prepare_data_dir(data_dir)
    check_writable(data_dir)
    stores = {
        "tickets": JsonStore(os.path.join(data_dir, "tickets.json")),
        "clients": JsonStore(os.path.join(data_dir, "clients.json")),
        "keys": JsonStore(os.path.join(data_dir, "keys.json")),
        "throttle": JsonStore(os.path.join(data_dir, "throttle.json"), durable=False),
    }
    _reset_if_corrupt(stores["throttle"])
    for store in stores.values():
        store.check()
        store.ensure_exists()
    return stores


def _reset_if_corrupt(store: JsonStore) -> None:
    """Throttle counters are disposable (never fsynced): a torn file is dropped, not refused."""
    try:
        store.check()
    except CorruptStore:
        _unlink_quietly(store.path)
