"""The one source of time: every module reads the clock here, so a test moves one clock."""

import time
from datetime import UTC, datetime


def utcnow() -> datetime:
    """Now, as an aware UTC datetime."""
    return datetime.now(UTC)


def timestamp() -> float:
    """Now as Unix seconds (JWT times), from the same clock as utcnow()."""
    return utcnow().timestamp()


def monotonic() -> float:
    """Seconds from an arbitrary start, for intervals only: never goes back."""
    return time.monotonic()
