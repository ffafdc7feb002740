"""One contract, every backend: the TinyDB files, PostgreSQL and the tests' in-memory store behave alike behind
the Protocols of tickets/core/ports.py."""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from tests.conftest import protocol_mismatches
from tests.memory_store import MemoryTicketStore
from tickets.core.domain import Ticket, TicketNotFound, TicketStatus, TicketType
from tickets.core.ports import Outbox, RecordStore, RevocationStore, ThrottleStore, TicketQuery, TicketStore
from tickets.storage import Storage, TicketIdTaken, open_storage

NOW = datetime(2030, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)
JOIN_TIMEOUT = 60  # seconds: a thread still running after this means a hang, reported as a failure


def make_ticket(ticket_id: str = "ABCDEFGHJ", **fields) -> Ticket:
    """A plain multi-use ticket, with `fields` overriding."""
    values = dict(
        id=ticket_id, type=TicketType.MULTI_USE_TICKET, organization_id="org-a", user_id="user-1",
        properties={"k": [1, {"n": "v"}]}, created_at=NOW, expires_at=NOW + timedelta(hours=4),
    )
    return Ticket(**{**values, **fields})


class Same:
    """Equal only to the very same object: a footprint of the in-memory store tells a rewrite from no write."""

    def __init__(self, value):
        self.value = value

    def __eq__(self, other):
        return isinstance(other, Same) and other.value is self.value

    def __repr__(self):
        return f"Same({self.value!r})"


class Backend:
    """One backend's data (a folder, a database, or a dict): opens Storage objects on it, each like another app node."""

    def __init__(self, kind: str, location):
        self.kind = kind
        self.location = location  # a folder, a database URL, or the MemoryTicketStore holding the tickets
        self.opened = []

    def open(self):
        """A new Storage on the same data, closed at teardown."""
        if self.kind == "memory":
            storage = Storage(
                tickets=self.location.sibling(), clients=None, keys=None, throttle=None, revoked=None,
                webhooks=None, outbox=None,
                check=lambda: None, close=lambda: None,
            )
        elif self.kind == "postgres":
            storage = open_storage("", self.location)
        else:
            storage = open_storage(self.location)
        self.opened.append(storage)
        return storage

    def footprint(self):
        """What a write would change: the files with their contents, each ticket row's version (xmin), or each
        stored object itself."""
        if self.kind == "memory":
            return {ticket_id: Same(ticket) for ticket_id, ticket in self.location.tickets.items()}
        if self.kind == "postgres":
            with psycopg.connect(self.location) as conn:
                return conn.execute("SELECT id, xmin::text, ctid::text FROM tickets ORDER BY id").fetchall()
        files = {}
        for name in sorted(os.listdir(self.location)):
            if not name.endswith(".lock"):
                with open(os.path.join(self.location, name), "rb") as handle:
                    files[name] = handle.read()
        return files

    def close(self) -> None:
        for storage in reversed(self.opened):
            storage.close()


@pytest.fixture(params=["tinydb", "postgres", "memory"])
def backend(request, tmp_path):
    """The backend under test; PostgreSQL asks for its fresh database only when it is the one under test.

    The in-memory store (tests/memory_store.py) is a TicketStore only, so it skips the tests marked full_storage.
    """
    if request.param == "memory":
        if request.node.get_closest_marker("full_storage"):
            pytest.skip("the in-memory store is a TicketStore only: no client, key or throttle records")
        location = MemoryTicketStore()
    elif request.param == "postgres":
        location = request.getfixturevalue("database_url")
    else:
        location = str(tmp_path / "data")
    backend = Backend(request.param, location)
    yield backend
    backend.close()


@pytest.fixture
def storage(backend):
    """The store under test, opened and checked."""
    return backend.open()


@pytest.fixture
def other_node(backend, storage):
    """A second Storage on the same data: another app node (or worker process)."""
    return backend.open()


def run_threads(targets) -> None:
    """Start every callable in a thread, wait (bounded), and re-raise the first error of any of them."""
    errors = []

    def guard(target):
        try:
            target()
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=guard, args=(target,), daemon=True) for target in targets]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + JOIN_TIMEOUT
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    assert not any(thread.is_alive() for thread in threads), "threads still running: a hang (lock never released?)"
    if errors:
        raise errors[0]


def within(seconds: float, action):
    """The result of `action()`, failing (not hanging) if it takes longer than `seconds`."""
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("value", action()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still blocked after {seconds} s"
    assert "value" in result, "the action raised (see the thread's traceback above)"
    return result["value"]


# --- the Protocols ---------------------------------------------------------------------------------------------


STORES = {
    "tickets": TicketStore, "clients": RecordStore, "keys": RecordStore, "throttle": ThrottleStore,
    "revoked": RevocationStore, "webhooks": RecordStore, "outbox": Outbox,
}


def test_every_store_satisfies_its_protocol(backend, storage):
    """Each store of the backend has every method of its Protocol, with the Protocol's parameters."""
    stores = {"tickets": TicketStore} if backend.kind == "memory" else STORES
    for attribute, protocol in stores.items():
        assert protocol_mismatches(getattr(storage, attribute), protocol) == [], attribute


# --- tickets ---------------------------------------------------------------------------------------------------


def test_round_trip_keeps_every_field(storage):
    """Every field of a ticket, each set to a non-default value, comes back equal, properties included."""
    original = make_ticket(
        "ZXCVBNMQW",
        type=TicketType.SINGLE_USE_APPOINTMENTS_SCHEDULE_TICKET,
        organization_id="org-ü",
        user_id="customer-42",
        properties={
            "scheduled_date": "2030-01-01T14:00:00+02:00", "duration": 45, "title": "Ünïcødé ✓ 😀",
            "nested": {"list": [1, 2.5, True, None, "x", {"deep": [[]]}], "empty": {}},
            "big": 2**63 + 7, "negative": -17, "float": 0.1, "quote": 'a"b\\c',
        },
        created_at=NOW,
        expires_at=NOW + timedelta(hours=2, microseconds=7),
        not_before=NOW - timedelta(minutes=30),
        ttl=7200,
        disabled=NOW + timedelta(seconds=1),
        revoked=NOW + timedelta(seconds=2),
        version=5,
        use_count=3,
        last_used_at=NOW + timedelta(seconds=3, microseconds=1),
        consumed_at=NOW + timedelta(seconds=4),
    )
    storage.tickets.add(original)
    stored = storage.tickets.get("ZXCVBNMQW")
    assert stored == original
    assert list(stored.properties) == list(original.properties)  # "stored and returned as given", order too
    assert stored.created_at.utcoffset() == timedelta(0)
    assert [t for t in storage.tickets.all() if t.id == "ZXCVBNMQW"] == [original]


def test_properties_with_a_nul_character_round_trip(storage):
    """A JSON string may hold U+0000; the store keeps it like any other character (the API passes it through)."""
    original = make_ticket(properties={"note": "before\u0000after"})
    storage.tickets.add(original)
    assert storage.tickets.get("ABCDEFGHJ") == original


def test_callers_cannot_alter_the_stored_ticket(storage):
    """Mutating a returned ticket's properties does not change what is stored."""
    storage.tickets.add(make_ticket())
    storage.tickets.get("ABCDEFGHJ").properties["k"].append("junk")
    assert storage.tickets.get("ABCDEFGHJ").properties == {"k": [1, {"n": "v"}]}


def test_add_refuses_a_taken_id(storage):
    """A second add of the same id raises TicketIdTaken and leaves the first ticket as it was."""
    first = make_ticket(user_id="first")
    storage.tickets.add(first)
    with pytest.raises(TicketIdTaken):
        storage.tickets.add(make_ticket(user_id="second"))
    assert storage.tickets.get("ABCDEFGHJ") == first
    assert storage.tickets.count() == 1


def test_get_of_an_unknown_id_raises_not_found(storage):
    """An id never stored, or deleted, is TicketNotFound; change() of it does not call decide."""
    with pytest.raises(TicketNotFound):
        storage.tickets.get("NOSUCHONE")
    calls = []
    with pytest.raises(TicketNotFound):
        storage.tickets.change("NOSUCHONE", lambda t: calls.append(t) or t)
    assert calls == []


def test_change_stores_the_decided_ticket(storage):
    """change() stores what decide returns, returns it, and the next read sees it."""
    storage.tickets.add(make_ticket())
    result = storage.tickets.change("ABCDEFGHJ", lambda t: t.replace(version=t.version + 1, properties={"p": 2}))
    assert result.version == 1
    assert storage.tickets.get("ABCDEFGHJ") == make_ticket(version=1, properties={"p": 2})


def test_change_deletes_on_none(storage):
    """decide returning None deletes the ticket."""
    storage.tickets.add(make_ticket())
    storage.tickets.add(make_ticket("BBBBBBBBB"))
    assert storage.tickets.change("ABCDEFGHJ", lambda t: None) is None
    with pytest.raises(TicketNotFound):
        storage.tickets.get("ABCDEFGHJ")
    assert [t.id for t in storage.tickets.all()] == ["BBBBBBBBB"]


def test_change_writes_nothing_when_decide_returns_the_same_object(backend, storage):
    """Returning the very ticket it was given means no change: nothing is written."""
    storage.tickets.add(make_ticket())
    storage.tickets.add(make_ticket("BBBBBBBBB"))
    before = backend.footprint()
    result = storage.tickets.change("ABCDEFGHJ", lambda t: t)
    assert result == make_ticket()
    assert backend.footprint() == before


def test_change_propagates_an_error_of_decide_and_writes_nothing(backend, storage, other_node):
    """An exception from decide reaches the caller, nothing is written, and no lock is left behind."""
    storage.tickets.add(make_ticket())
    before = backend.footprint()

    class Refused(Exception):
        pass

    def refuse(ticket):
        ticket.properties["k"] = "changed in place"
        raise Refused("no")

    with pytest.raises(Refused):
        storage.tickets.change("ABCDEFGHJ", refuse)
    assert backend.footprint() == before
    assert storage.tickets.get("ABCDEFGHJ") == make_ticket()
    # The row (or file) lock is released: another node, and this one, can change it at once.
    within(10, lambda: other_node.tickets.change("ABCDEFGHJ", lambda t: t.replace(version=7)))
    within(10, lambda: storage.tickets.change("ABCDEFGHJ", lambda t: t.replace(version=8)))
    assert storage.tickets.get("ABCDEFGHJ").version == 8


def test_all_and_count(storage):
    """all() returns every stored ticket equal to what was stored; count() their number."""
    assert storage.tickets.all() == []
    assert storage.tickets.count() == 0
    tickets = {f"AAAAAAA{c}{d}": make_ticket(f"AAAAAAA{c}{d}", use_count=i) for i, (c, d) in
               enumerate(zip("BCDEFGH", "JKMNPQR", strict=True))}
    for ticket in tickets.values():
        storage.tickets.add(ticket)
    assert storage.tickets.count() == 7
    assert {t.id: t for t in storage.tickets.all()} == tickets
    storage.tickets.change("AAAAAAABJ", lambda t: None)
    assert storage.tickets.count() == 6
    assert len(storage.tickets.all()) == 6


def test_remove_expired_boundaries_are_inclusive(storage):
    """Expired at or before `expired_before`, or consumed at or before `consumed_before`, goes; later stays."""
    cut = NOW + timedelta(days=10)
    used_cut = NOW + timedelta(days=1)
    tick = timedelta(microseconds=1)
    cases = {
        "EXPBEFORE": (cut - timedelta(days=1), None, True),
        "EXPATCUTT": (cut, None, True),
        "EXPAFTERR": (cut + tick, None, False),
        "USEDBEFOR": (cut + timedelta(days=5), used_cut - tick, True),
        "USEDATCUT": (cut + timedelta(days=5), used_cut, True),
        "USEDAFTER": (cut + timedelta(days=5), used_cut + tick, False),
        "NEVERUSED": (cut + timedelta(days=5), None, False),
    }
    for ticket_id, (expires_at, consumed_at, _) in cases.items():
        storage.tickets.add(make_ticket(ticket_id, expires_at=expires_at, consumed_at=consumed_at))
    removed = storage.tickets.remove_expired(expired_before=cut, consumed_before=used_cut)
    gone = {ticket_id for ticket_id, (_, _, goes) in cases.items() if goes}
    assert removed == len(gone)
    assert {t.id for t in storage.tickets.all()} == set(cases) - gone
    assert storage.tickets.remove_expired(expired_before=cut, consumed_before=used_cut) == 0


def test_remove_expired_compares_instants_not_wall_clock_text(storage):
    """A bound given in another time zone means the same instant."""
    storage.tickets.add(make_ticket(expires_at=NOW))
    storage.tickets.add(make_ticket("BBBBBBBBB", expires_at=NOW + timedelta(minutes=1)))
    plus_two = NOW.astimezone(datetime.fromisoformat("2030-01-01T00:00:00+02:00").tzinfo)
    assert storage.tickets.remove_expired(expired_before=plus_two, consumed_before=NOW - timedelta(days=1)) == 1
    assert [t.id for t in storage.tickets.all()] == ["BBBBBBBBB"]


# --- lists ------------------------------------------------------------------------------------------------------


def query(organization_id="org-a", ticket_type=None, status=None, offset=0, limit=20, now=NOW) -> TicketQuery:
    """A list query at `now`, with the default retention of seven days."""
    return TicketQuery(organization_id, ticket_type, status, now, now - timedelta(days=7), offset, limit)


def listed(storage, **filters) -> tuple[list[str], int]:
    page = storage.tickets.list(query(**filters))
    return [ticket.id for ticket in page.tickets], page.total


def test_list_orders_by_creation_then_id_and_pages(storage):
    """Oldest first, ties broken by id; a page is limit tickets from offset; total counts every match."""
    made = [("BBBBBBBBB", 2), ("AAAAAAAAA", 2), ("CCCCCCCCC", 1), ("DDDDDDDDD", 3), ("EEEEEEEEE", 4)]
    for ticket_id, second in made:
        storage.tickets.add(make_ticket(ticket_id, created_at=NOW + timedelta(seconds=second)))
    order = ["CCCCCCCCC", "AAAAAAAAA", "BBBBBBBBB", "DDDDDDDDD", "EEEEEEEEE"]
    assert listed(storage) == (order, 5)
    assert listed(storage, offset=1, limit=2) == (order[1:3], 5)
    assert listed(storage, offset=4, limit=2) == (order[4:], 5)
    assert listed(storage, offset=5, limit=2) == ([], 5)


def test_list_keeps_to_the_organization_unless_it_is_none(storage):
    storage.tickets.add(make_ticket("AAAAAAAAA"))
    storage.tickets.add(make_ticket("BBBBBBBBB", organization_id="org-b", created_at=NOW + timedelta(seconds=1)))
    assert listed(storage) == (["AAAAAAAAA"], 1)
    assert listed(storage, organization_id="org-b") == (["BBBBBBBBB"], 1)
    assert listed(storage, organization_id=None) == (["AAAAAAAAA", "BBBBBBBBB"], 2)
    assert listed(storage, organization_id="org-c") == ([], 0)


def test_list_filters_by_type_and_by_status_as_the_domain_computes_it(storage):
    """Status: revoked, else disabled, else expired (at now), else active; the same as Ticket.status."""
    later = lambda n: NOW + timedelta(seconds=n)  # noqa: E731
    tickets = {
        "AAAAAAAAA": make_ticket("AAAAAAAAA", created_at=later(1)),
        "BBBBBBBBB": make_ticket("BBBBBBBBB", created_at=later(2), type=TicketType.SINGLE_USE_TICKET),
        "CCCCCCCCC": make_ticket("CCCCCCCCC", created_at=later(3), disabled=NOW),
        "DDDDDDDDD": make_ticket("DDDDDDDDD", created_at=later(4), disabled=NOW, revoked=NOW),
        "EEEEEEEEE": make_ticket("EEEEEEEEE", created_at=later(5), expires_at=later(60)),
    }
    for ticket in tickets.values():
        storage.tickets.add(ticket)
    at = later(60)
    for status in TicketStatus:
        expected = [tid for tid, ticket in tickets.items() if ticket.status(at) == status]
        assert listed(storage, status=status, now=at) == (expected, len(expected)), status
    assert listed(storage, ticket_type="SINGLE_USE_TICKET") == (["BBBBBBBBB"], 1)
    assert listed(storage, ticket_type="SINGLE_USE_TICKET", status=TicketStatus.DISABLED) == ([], 0)


def test_list_leaves_out_used_up_and_retention_ended_tickets(storage):
    """A used single-use ticket, and one whose retention ended, are gone for lists too."""
    storage.tickets.add(make_ticket("AAAAAAAAA", consumed_at=NOW))
    storage.tickets.add(make_ticket("BBBBBBBBB", expires_at=NOW - timedelta(days=7)))
    storage.tickets.add(make_ticket("CCCCCCCCC", expires_at=NOW - timedelta(days=7) + timedelta(seconds=1)))
    assert listed(storage) == (["CCCCCCCCC"], 1)
    assert listed(storage, status=TicketStatus.EXPIRED) == (["CCCCCCCCC"], 1)


def test_list_sees_changes_and_deletions_at_once(storage, other_node):
    storage.tickets.add(make_ticket("AAAAAAAAA"))
    storage.tickets.add(make_ticket("BBBBBBBBB", created_at=NOW + timedelta(seconds=1)))
    other_node.tickets.change("AAAAAAAAA", lambda t: t.replace(organization_id="org-b"))
    other_node.tickets.change("BBBBBBBBB", lambda t: t.replace(disabled=NOW))
    assert listed(storage) == (["BBBBBBBBB"], 1)
    assert listed(storage, status=TicketStatus.DISABLED) == (["BBBBBBBBB"], 1)
    other_node.tickets.change("BBBBBBBBB", lambda t: None)
    assert listed(storage) == ([], 0)
    assert listed(storage, organization_id="org-b") == (["AAAAAAAAA"], 1)


# --- records (clients, keys) -----------------------------------------------------------------------------------


@pytest.mark.full_storage
@pytest.mark.parametrize("kind", ["clients", "keys"])
def test_records_put_get_delete_all_remove_many(storage, kind):
    """put (insert or replace), get (None if unknown), delete (True once), all, remove_many (unknown ids ignored)."""
    records = getattr(storage, kind)
    assert records.get("nobody") is None
    assert dict(records.all()) == {}
    records.put("a", {"name": "A", "n": 1, "nested": {"list": [1, None]}})
    records.put("b", {"name": "B", "retired": None})
    records.put("c", {"name": "C"})
    records.put("a", {"name": "A2"})
    assert records.get("a") == {"name": "A2"}
    assert records.get("b") == {"name": "B", "retired": None}
    assert {key: dict(value) for key, value in records.all().items()} == {
        "a": {"name": "A2"}, "b": {"name": "B", "retired": None}, "c": {"name": "C"},
    }
    assert records.delete("c") is True
    assert records.delete("c") is False
    assert records.get("c") is None
    records.remove_many(["a", "never-there"])
    records.remove_many([])
    assert list(records.all()) == ["b"]


@pytest.mark.full_storage
def test_clients_and_keys_are_separate(storage):
    """The same id in clients and keys names two different records."""
    storage.clients.put("same", {"what": "client"})
    storage.keys.put("same", {"what": "key"})
    storage.keys.delete("same")
    assert storage.clients.get("same") == {"what": "client"}
    assert storage.keys.get("same") is None


@pytest.mark.full_storage
@pytest.mark.parametrize("kind", ["clients", "keys"])
def test_locked_excludes_another_node(storage, other_node, kind):
    """locked() on two nodes at once: the holders' intervals never overlap, and each writes inside it."""
    held = []
    start = threading.Barrier(2)

    def hold(node, name):
        records = getattr(node, kind)
        start.wait(timeout=10)
        for round_ in range(3):
            with records.locked():
                entered = time.monotonic()
                records.put(f"{name}-{round_}", {"by": name})
                time.sleep(0.15)
                left = time.monotonic()
            held.append((entered, left, name))
            time.sleep(0.01)

    run_threads([lambda: hold(storage, "first"), lambda: hold(other_node, "second")])
    held.sort()
    assert len(held) == 6
    for (_, left, name), (entered, _, next_name) in zip(held, held[1:], strict=False):
        assert entered >= left, f"{name} and {next_name} held the lock at the same time"
    assert len(getattr(storage, kind).all()) == 6


# --- throttle --------------------------------------------------------------------------------------------------


@pytest.mark.full_storage
def test_throttle_recent_and_record(storage):
    """recent() returns this address's failures after `since` (exclusive), none of another address."""
    base = 1_900_000_000.123456
    throttle = storage.throttle
    assert throttle.recent("10.0.0.1", base - 60) == []
    for offset in (0.0, 10.0, 20.0):
        throttle.record("10.0.0.1", base + offset, base + offset - 60)
    throttle.record("10.0.0.2", base + 21, base + 21 - 60)
    assert sorted(throttle.recent("10.0.0.1", base - 60)) == [base, base + 10, base + 20]
    assert sorted(throttle.recent("10.0.0.1", base)) == [base + 10, base + 20]
    assert sorted(throttle.recent("10.0.0.1", base + 15)) == [base + 20]
    assert throttle.recent("10.0.0.1", base + 20) == []
    assert throttle.recent("10.0.0.2", base - 60) == [base + 21]
    assert throttle.recent("10.0.0.3", 0) == []


@pytest.mark.full_storage
def test_throttle_forgets_entries_older_than_the_window(storage):
    """A record whose `since` is past older entries drops them: even recent(since=0) does not return them."""
    base = 1_900_000_000.0
    storage.throttle.record("10.0.0.1", base, base - 60)
    storage.throttle.record("10.0.0.1", base + 30, base - 30)
    storage.throttle.record("10.0.0.1", base + 100, base + 40)
    assert sorted(storage.throttle.recent("10.0.0.1", 0)) == [base + 100]


# --- revoked tokens ---------------------------------------------------------------------------------------------


@pytest.mark.full_storage
def test_a_revoked_token_is_revoked_for_every_node_and_survives_reopening(backend, storage, other_node):
    """revoke() is seen at once by another node, stays after a restart (and a fold), and repeats are harmless."""
    far = 4_000_000_000.0
    assert not other_node.revoked.is_revoked("jti-1")
    storage.revoked.revoke("jti-1", far)
    storage.revoked.revoke("jti-1", far)
    assert other_node.revoked.is_revoked("jti-1") and storage.revoked.is_revoked("jti-1")
    assert not other_node.revoked.is_revoked("jti-2")
    if backend.kind == "tinydb":
        storage.tickets.fold()
    assert backend.open().revoked.is_revoked("jti-1")


@pytest.mark.full_storage
def test_expired_revocations_are_forgotten(backend, storage):
    """A revoked token past its expiry needs no remembering: it is dropped (at a fold, or at the next revoke)."""
    storage.revoked.revoke("old", 1_000_000_000.0)
    if backend.kind == "tinydb":
        storage.tickets.fold()
    else:
        storage.revoked.revoke("new", 4_000_000_000.0)
    assert not backend.open().revoked.is_revoked("old")


# --- several nodes ---------------------------------------------------------------------------------------------


@pytest.mark.full_storage
def test_two_nodes_see_each_others_writes_at_once(storage, other_node):
    """Every write on one node is visible on the other at the next read."""
    storage.tickets.add(make_ticket())
    assert other_node.tickets.get("ABCDEFGHJ") == make_ticket()
    other_node.tickets.change("ABCDEFGHJ", lambda t: t.replace(version=1))
    assert storage.tickets.get("ABCDEFGHJ").version == 1
    other_node.tickets.add(make_ticket("BBBBBBBBB"))
    assert storage.tickets.count() == 2
    storage.tickets.change("ABCDEFGHJ", lambda t: None)
    with pytest.raises(TicketNotFound):
        other_node.tickets.get("ABCDEFGHJ")
    assert storage.tickets.remove_expired(NOW + timedelta(days=1), NOW) == 1
    assert other_node.tickets.count() == 0
    storage.clients.put("c1", {"name": "one"})
    assert other_node.clients.get("c1") == {"name": "one"}
    other_node.clients.put("c1", {"name": "two"})
    assert storage.clients.get("c1") == {"name": "two"}
    other_node.keys.put("k1", {"alg": "RS256"})
    assert list(storage.keys.all()) == ["k1"]
    storage.keys.delete("k1")
    assert other_node.keys.get("k1") is None
    storage.throttle.record("10.9.9.9", 1_900_000_000.0, 1_899_999_940.0)
    assert other_node.throttle.recent("10.9.9.9", 1_899_999_940.0) == [1_900_000_000.0]


def test_concurrent_changes_on_two_nodes_lose_no_update(storage, other_node):
    """8 threads (half on each node) x 25 read-modify-write increments: the counter ends at 200."""
    storage.tickets.add(make_ticket())

    def increment(node):
        for _ in range(25):
            node.tickets.change("ABCDEFGHJ", lambda t: t.replace(use_count=t.use_count + 1))

    run_threads([lambda node=(storage, other_node)[i % 2]: increment(node) for i in range(8)])
    assert storage.tickets.get("ABCDEFGHJ").use_count == 200
    assert other_node.tickets.get("ABCDEFGHJ").use_count == 200


def test_single_use_is_consumed_exactly_once(storage, other_node):
    """30 threads on two nodes consume one single-use ticket at once: exactly one succeeds."""
    storage.tickets.add(make_ticket(type=TicketType.SINGLE_USE_TICKET))
    start = threading.Barrier(30)
    outcomes = []

    class AlreadyUsed(Exception):
        pass

    def consume(ticket):
        if ticket.consumed_at is not None:
            raise AlreadyUsed
        return ticket.replace(consumed_at=NOW, use_count=ticket.use_count + 1)

    def race(node):
        start.wait(timeout=20)
        try:
            node.tickets.change("ABCDEFGHJ", consume)
            outcomes.append("won")
        except AlreadyUsed:
            outcomes.append("lost")

    run_threads([lambda node=(storage, other_node)[i % 2]: race(node) for i in range(30)])
    assert sorted(outcomes) == ["lost"] * 29 + ["won"]
    stored = other_node.tickets.get("ABCDEFGHJ")
    assert stored.use_count == 1
    assert stored.consumed_at == NOW
