"""Copies of clients and keys kept in memory: thrown away at once when the store says so, else after a second;
and a retired key leaves the JWKS once no token it signed can be alive."""

from __future__ import annotations

import pytest

from tickets.core import clock as service_clock
from tickets.oauth.clients import ClientRegistry
from tickets.oauth.freshness import MAX_AGE, Freshness
from tickets.oauth.keys import LEEWAY, REBUILD_EVERY, KeyRing


class Records:
    """A RecordStore in a dict whose version() is settable (None: it cannot tell)."""

    def __init__(self, versioned: bool):
        self.data: dict[str, dict] = {}
        self.versioned = versioned
        self.changes = 0
        self.reads = 0

    def get(self, record_id):
        self.reads += 1
        record = self.data.get(record_id)
        return dict(record) if record else None

    def put(self, record_id, record):
        self.data[record_id] = dict(record)
        self.changes += 1

    def delete(self, record_id):
        self.changes += 1
        return self.data.pop(record_id, None) is not None

    def all(self):
        return dict(self.data)

    def remove_many(self, record_ids):
        for record_id in record_ids:
            self.data.pop(record_id, None)

    def locked(self):
        import contextlib

        return contextlib.nullcontext()

    def version(self):
        return self.changes if self.versioned else None


@pytest.fixture
def monotonic(monkeypatch):
    """A settable stand-in for clock.monotonic."""
    now = [1000.0]
    monkeypatch.setattr(service_clock, "monotonic", lambda: now[0])
    return now


def test_a_versioned_store_is_stale_exactly_when_it_changed(monotonic):
    records = Records(versioned=True)
    freshness = Freshness(records)
    assert freshness.stale()
    assert not freshness.stale()
    monotonic[0] += 3600
    assert not freshness.stale()
    records.put("a", {})
    assert freshness.stale() and not freshness.stale()


def test_a_store_that_cannot_tell_is_stale_every_second(monotonic):
    freshness = Freshness(Records(versioned=False))
    assert freshness.stale()
    monotonic[0] += MAX_AGE - 0.01
    assert not freshness.stale()
    monotonic[0] += 0.02
    assert freshness.stale()


@pytest.mark.parametrize("versioned", [True, False])
def test_another_workers_deletion_and_rotation_take_effect_within_a_second(monotonic, versioned):
    """Two registries on one store (two workers or nodes): the second sees the first's changes, at once or
    within MAX_AGE, and until then reads the store at most once a second, not on every request."""
    records = Records(versioned)
    mine, theirs = ClientRegistry(records), ClientRegistry(records)
    created = theirs.create("c", "org-a", "global")
    client_id = created["client_id"]
    assert mine.find(client_id).check_client_secret(created["client_secret"])
    reads = records.reads
    for _ in range(50):
        assert mine.find(client_id) is not None
    assert records.reads == reads  # kept in memory
    rotated = theirs.rotate_secret(client_id)
    if not versioned:
        monotonic[0] += MAX_AGE
    assert not mine.find(client_id).check_client_secret(created["client_secret"])
    assert mine.find(client_id).check_client_secret(rotated["client_secret"])
    theirs.delete(client_id)
    if not versioned:
        monotonic[0] += MAX_AGE
    assert mine.find(client_id) is None


TOKEN_TTL = 300


def test_a_retired_key_leaves_the_jwks_under_steady_traffic(clock, monkeypatch):
    """Requests every half second keep finding the copy 'stale' (a second old); that must not keep putting
    off the rebuild that drops a key whose tokens have all expired."""
    seconds = [0.0]
    monkeypatch.setattr(service_clock, "monotonic", lambda: seconds[0])
    ring = KeyRing(Records(versioned=False), "https://issuer.test", "RS256", TOKEN_TTL)
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
