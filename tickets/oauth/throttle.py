"""Throttling of failed ticket exchanges per client address, shared by every worker process."""

from __future__ import annotations

import ipaddress
import math

from tickets.core.ports import ThrottleStore

WINDOW = 60  # seconds
IPV6_PREFIX = 64  # one host owns a whole /64: counting its addresses apart would give it 2**64 budgets


def peer_address(address: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """A peer's address as the host it stands for (an IPv4-mapped IPv6 address is its IPv4 address); None
    if it is no IP address."""
    try:
        parsed = ipaddress.ip_address(address or "")
    except ValueError:
        return None
    return (parsed.version == 6 and parsed.ipv4_mapped) or parsed


def throttle_key(address: str | None) -> str:
    """What failures are counted under: an IPv4-mapped IPv6 address as its IPv4 address, an IPv6 address
    by its /64 prefix, anything else as it is."""
    parsed = peer_address(address)
    if parsed is None:
        return address or "unknown"
    if parsed.version == 6:
        return str(ipaddress.IPv6Network((parsed, IPV6_PREFIX), strict=False))
    return str(parsed)


class ExchangeThrottle:
    """Once an address has `limit` failures in the last minute, its exchanges wait."""

    def __init__(self, store: ThrottleStore, limit: int):
        self.store = store
        self.limit = limit

    def retry_after(self, address: str, now: float) -> int | None:
        """Seconds to wait (1-60) if `address` is throttled now, else None."""
        if self.limit <= 0:
            return None
        recent = self.store.recent(throttle_key(address), now - WINDOW)
        if len(recent) < self.limit:
            return None
        # The wait ends when enough failures have left the window to go under the limit.
        oldest_that_counts = sorted(recent)[-self.limit]
        return min(WINDOW, max(1, math.ceil(oldest_that_counts + WINDOW - now)))

    def record_failure(self, address: str, now: float) -> None:
        self.store.record(throttle_key(address), now, now - WINDOW)
