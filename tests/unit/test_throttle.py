"""The throttle's keys (SPEC section 5): addresses are normalized before failures are counted."""

from __future__ import annotations

import pytest

from tickets.oauth.throttle import ExchangeThrottle, throttle_key


@pytest.mark.parametrize(
    "address, key",
    [
        ("192.0.2.7", "192.0.2.7"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("::ffff:c000:207", "192.0.2.7"),
        ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("2001:DB8:1:2::FFFF", "2001:db8:1:2::/64"),
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
        ("::1", "::/64"),
        ("not an address", "not an address"),
        (None, "unknown"),
    ],
)
def test_addresses_are_counted_by_what_one_host_owns(address, key):
    assert throttle_key(address) == key


class Counts:
    """A ThrottleStore in a dict."""

    def __init__(self):
        self.times: dict[str, list[float]] = {}

    def recent(self, address, since):
        return [t for t in self.times.get(address, []) if t > since]

    def record(self, address, now, since):
        self.times.setdefault(address, []).append(now)


def test_one_ipv6_host_walking_its_64_shares_one_budget():
    """Failures from many addresses of one /64, and from an IPv4 address in both spellings, add up."""
    throttle = ExchangeThrottle(Counts(), limit=3)
    for host in range(3):
        throttle.record_failure(f"2001:db8:0:7::{host + 1:x}", 100.0)
    assert throttle.retry_after("2001:db8:0:7:ffff::1", 101.0) == 59
    assert throttle.retry_after("2001:db8:0:8::1", 101.0) is None
    throttle.record_failure("::ffff:198.51.100.9", 100.0)
    throttle.record_failure("198.51.100.9", 100.0)
    throttle.record_failure("::ffff:198.51.100.9", 100.0)
    assert throttle.retry_after("198.51.100.9", 101.0) == 59
