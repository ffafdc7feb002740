"""The key ring's copy of the keys: a retired key leaves the JWKS once no token it signed can be alive."""

from __future__ import annotations

from contextlib import contextmanager

from tickets.core import clock as service_clock
from tickets.oauth.keys import LEEWAY, REBUILD_EVERY, KeyRing

TOKEN_TTL = 300


class UnversionedRecords:
    """A record store that cannot tell whether it changed (as on PostgreSQL): copies are re-read each second."""

    def __init__(self):
        self.rows: dict[str, dict] = {}

    def get(self, record_id):
        return self.rows.get(record_id)

    def put(self, record_id, record):
        self.rows[record_id] = record

    def delete(self, record_id):
        return self.rows.pop(record_id, None) is not None

    def all(self):
        return dict(self.rows)

    def remove_many(self, record_ids):
        for record_id in record_ids:
            self.rows.pop(record_id, None)

    def version(self):
        return None

    @contextmanager
    def locked(self):
        yield


def test_a_retired_key_leaves_the_jwks_under_steady_traffic(clock, monkeypatch):
    """Requests every half second keep finding the copy 'stale' (a second old); that must not keep putting
    off the rebuild that drops a key whose tokens have all expired."""
    seconds = [0.0]
    monkeypatch.setattr(service_clock, "monotonic", lambda: seconds[0])
    ring = KeyRing(UnversionedRecords(), "https://issuer.test", "RS256", TOKEN_TTL)
    ring.ensure_key()
    old = ring.header()["kid"]
    ring.rotate()
    assert old in {key["kid"] for key in ring.jwks()["keys"]}
    steps = int((TOKEN_TTL + LEEWAY + REBUILD_EVERY + 2) / 0.5)
    for _ in range(steps):
        seconds[0] += 0.5
        clock.advance(seconds=0.5)
        published = {key["kid"] for key in ring.jwks()["keys"]}
    assert old not in published and ring.header()["kid"] in published
