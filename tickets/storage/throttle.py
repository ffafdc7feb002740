"""The TinyDB store's throttle counters: failed exchanges per address, in one small file."""

from __future__ import annotations

from tinydb.table import Document

from tickets.storage.files import JsonStore


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
            stale = [
                document.doc_id for document in self.table.all()
                if document.doc_id != address and max(document["times"]) <= since
            ]
            if stale:
                self.table.remove(doc_ids=stale)
            self.table.upsert(Document({"times": times}, doc_id=address))
