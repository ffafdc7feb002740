"""The tickets of the TinyDB store: a snapshot (`tickets.json`) plus a journal of small files."""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from datetime import datetime

from tickets.core.domain import Ticket, TicketNotFound
from tickets.core.ports import CorruptStore, StorageError, TicketIdTaken
from tickets.storage.codec import parse_time, record_to_ticket, ticket_to_record
from tickets.storage.files import JsonStore, unlink_quietly, write_file_atomically

log = logging.getLogger(__name__)
MIN_COMPACTION = 1000  # journal entries; or half the number of tickets, if more


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
            if self._journal_length() or self.entry_files():
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

    @property
    def applied(self) -> int:
        """The sequence number of the last journal entry this view has applied."""
        return self._seq

    def entry_path(self, seq: int) -> str:
        return os.path.join(self.folder, f"{self.entry_prefix}{seq:012d}.journal")

    def entry_files(self) -> dict[str, int]:
        """Journal entry file names in the folder, with their sequence numbers."""
        found = {}
        for name in os.listdir(self.folder):
            middle = name.removeprefix(self.entry_prefix).removesuffix(".journal")
            if name.startswith(self.entry_prefix) and name.endswith(".journal") and middle.isdigit():
                found[name] = int(middle)
        return found

    def _apply_entry(self, seq: int) -> bool:
        path = self.entry_path(seq)
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
            os.close(write_file_atomically(self.entry_path(seq), payload))
        except (OSError, ValueError) as error:
            reason = getattr(error, "strerror", None) or str(error)
            raise StorageError(f"cannot write {self.entry_path(seq)}: {reason}") from error
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
        for name, seq in self.entry_files().items():
            if seq <= self._seq:
                unlink_quietly(os.path.join(self.folder, name))
        for name in os.listdir(self.folder):
            if name.startswith("." + self.entry_prefix) and name.endswith(".tmp"):
                unlink_quietly(os.path.join(self.folder, name))


def _folded_seq(snapshot) -> int:
    """The last journal entry a snapshot already contains."""
    if not isinstance(snapshot, dict):
        return 0
    return snapshot.get("_meta", {}).get("journal", {}).get("seq", 0)
