"""When copies of records kept in memory (clients, signing keys) must be read again.

At once when the store says its records changed (the TinyDB files: a stat), else at most a second
later (PostgreSQL, shared by other nodes): a client deletion, a secret rotation or a key rotation
takes effect within one second on every worker and every node.
"""

from __future__ import annotations

from tickets.core import clock
from tickets.core.ports import RecordStore

MAX_AGE = 1.0  # seconds a copy may be used when the store cannot say whether it changed


class Freshness:
    """Tells a cache of one record store when to throw its copies away."""

    def __init__(self, records: RecordStore, max_age: float = MAX_AGE):
        self.records = records
        self.max_age = max_age
        self._version = object()  # matches nothing: the first question says "stale"
        self._checked = float("-inf")

    def stale(self) -> bool:
        """Whether copies taken before now may be out of date; answering yes starts a new period."""
        version = self.records.version()
        now = clock.monotonic()
        if version is None:
            stale = now - self._checked >= self.max_age
        else:
            stale = version != self._version
        if stale:
            self._version, self._checked = version, now
        return stale

    def expire(self) -> None:
        """Our own write changed the records: the next question says "stale"."""
        self._version, self._checked = object(), float("-inf")
