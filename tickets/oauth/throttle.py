"""Throttling of failed ticket exchanges per client address, shared by every worker process."""

from __future__ import annotations

import math

from tickets.core.ports import ThrottleStore

WINDOW = 60  # seconds


class ExchangeThrottle:
    """Once an address has `limit` failures in the last minute, its exchanges wait."""

    def __init__(self, store: ThrottleStore, limit: int):
        self.store = store
        self.limit = limit

    def retry_after(self, address: str, now: float) -> int | None:
        """Seconds to wait (1-60) if `address` is throttled now, else None."""
        if self.limit <= 0:
            return None
        recent = self.store.recent(address, now - WINDOW)
        if len(recent) < self.limit:
            return None
        # The wait ends when enough failures have left the window to go under the limit.
        oldest_that_counts = sorted(recent)[-self.limit]
        return min(WINDOW, max(1, math.ceil(oldest_that_counts + WINDOW - now)))

    def record_failure(self, address: str, now: float) -> None:
        self.store.record(address, now, now - WINDOW)
