"""Plain records (OAuth clients, signing keys) keyed by id, each kind in a TinyDB file of its own."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

from tinydb.table import Document, Table

from tickets.storage.files import AtomicJSONStorage, StrIdTinyDB, identity
from tickets.storage.locks import FileLock


class JsonStore:
    """One TinyDB file with its lock: the building block of the repositories below."""

    def __init__(self, path: str):
        self.path = path
        self.lock = FileLock(path + ".lock")
        self.db = StrIdTinyDB(path, storage=AtomicJSONStorage)

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


def _replace_with(record: dict) -> Callable[[dict], None]:
    def transform(document: dict) -> None:
        document.clear()
        document.update(record)

    return transform


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
        """Every record by id."""
        return {document.doc_id: dict(document) for document in self.table.all()}

    def locked(self):
        """A context manager that excludes every other writer of these records, in any process."""
        return self.store.lock

    def version(self) -> tuple[int, int, int] | None:
        """The file's identity: every write replaces it, so any change shows here (None while it is missing)."""
        try:
            return identity(os.stat(self.store.path))
        except FileNotFoundError:
            return None

    def remove_many(self, record_ids: Iterable[str]) -> None:
        with self.store.lock:
            present = [record_id for record_id in record_ids if self.table.contains(doc_id=record_id)]
            if present:
                self.table.remove(doc_ids=present)
