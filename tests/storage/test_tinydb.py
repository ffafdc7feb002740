"""The TinyDB store: the append-only log with group commit, folding, recovery, corrupt files, modes."""

from __future__ import annotations

import errno
import json
import multiprocessing
import os
import stat
import struct
import threading
import time
import tracemalloc
import zlib
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from tinydb import TinyDB

from tests.conftest import bearer, exchange, fetch_token, make_client
from tickets.core.domain import EventType, Ticket, TicketEvent, TicketNotFound, TicketType
from tickets.core.ports import Outcome
from tickets.storage import CorruptStore, StorageError, TicketIdTaken, open_storage, snapshot
from tickets.storage import index as index_module
from tickets.storage import tickets as store_module
from tickets.storage.codec import record_to_ticket
from tickets.storage.files import AtomicJSONStorage
from tickets.storage.framing import frame
from tickets.storage.tickets import LogTicketStore

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def ticket(ticket_id="ABCDEFGHJ", **fields) -> Ticket:
    """A plain multi-use ticket."""
    values = dict(
        id=ticket_id, type=TicketType.MULTI_USE_TICKET, organization_id="org", user_id="u",
        properties={"k": [1, {"n": "v"}]}, created_at=NOW, expires_at=NOW + timedelta(hours=4),
    )
    return Ticket(**{**values, **fields})


def ids(count: int) -> list[str]:
    """`count` distinct valid ticket ids."""
    alphabet = "ABCDEFGHJK"
    return ["X" + "".join(alphabet[int(digit)] for digit in f"{number:08d}") for number in range(count)]


@pytest.fixture
def folder(tmp_path):
    return str(tmp_path / "data")


@pytest.fixture
def repo(folder):
    """The ticket store of a fresh folder."""
    return open_storage(folder).tickets


def logs(folder) -> list[str]:
    return sorted(name for name in os.listdir(folder) if name.endswith(".log"))


def folder_bytes(folder) -> dict:
    """Every data file of the folder (not the locks or the shared sync words), by name, with its content."""
    return {
        name: open(os.path.join(folder, name), "rb").read()
        for name in sorted(os.listdir(folder))
        if not name.endswith((".lock", ".sync"))
    }


# --- the store's contract, on the log ----------------------------------------------------------------------------


def test_round_trip_keeps_every_field(repo):
    """What goes in comes out equal, properties included."""
    original = ticket(disabled=NOW, version=3, use_count=2, last_used_at=NOW, ttl=600, not_before=NOW)
    repo.add(original)
    assert repo.get("ABCDEFGHJ") == original


def test_add_refuses_a_taken_id(repo):
    repo.add(ticket())
    with pytest.raises(TicketIdTaken):
        repo.add(ticket())


def test_each_change_is_one_record_and_no_change_writes_nothing(repo, folder):
    """change() appends one record for a new ticket or a deletion, and nothing for the same object."""
    repo.add(ticket())
    size = lambda: sum(os.path.getsize(os.path.join(folder, name)) for name in logs(folder))  # noqa: E731
    before = size()
    repo.change("ABCDEFGHJ", lambda t: t.replace(version=t.version + 1))
    grown = size()
    assert grown > before and repo.get("ABCDEFGHJ").version == 1
    repo.change("ABCDEFGHJ", lambda t: t)
    assert size() == grown
    repo.change("ABCDEFGHJ", lambda t: None)
    with pytest.raises(TicketNotFound):
        repo.get("ABCDEFGHJ")


def test_callers_cannot_alter_the_store(repo):
    """Mutating a returned ticket's properties does not change what is stored."""
    repo.add(ticket())
    repo.get("ABCDEFGHJ").properties["k"].append("junk")
    assert repo.get("ABCDEFGHJ").properties == {"k": [1, {"n": "v"}]}


def test_reads_of_a_quiet_store_parse_nothing(repo, monkeypatch):
    """With no new record, a read parses no file: the log position is one shared word."""
    repo.add(ticket())
    repo.get("ABCDEFGHJ")
    parses = []
    real_loads = json.loads
    monkeypatch.setattr(json, "loads", lambda raw, **kw: parses.append(1) or real_loads(raw, **kw))
    monkeypatch.setattr(store_module.opening, "json_object", lambda *a: parses.append(1))
    for _ in range(5):
        repo.count()
    assert parses == []


def test_a_second_worker_sees_every_write_at_once(folder):
    """Two stores on one folder (as two workers) always read the other's latest write."""
    first, second = LogTicketStore(_ready(folder)), LogTicketStore(folder)
    first.add(ticket())
    for version in range(1, 30):
        writer = first if version % 2 else second
        writer.change("ABCDEFGHJ", lambda t: t.replace(version=t.version + 1))
        assert first.get("ABCDEFGHJ").version == version
        assert second.get("ABCDEFGHJ").version == version


def _ready(folder) -> str:
    os.makedirs(folder, mode=0o700, exist_ok=True)
    return folder


def _increment_many(folder: str, count: int) -> None:
    store = LogTicketStore(folder)
    for _ in range(count):
        store.change("ABCDEFGHJ", lambda t: t.replace(use_count=t.use_count + 1))


def test_no_update_is_lost_across_processes(folder):
    """Four processes incrementing one counter under the lock lose nothing."""
    LogTicketStore(_ready(folder)).add(ticket())
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_increment_many, args=(folder, 25)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    assert LogTicketStore(folder).get("ABCDEFGHJ").use_count == 100


def test_threads_of_one_worker_share_syncs(folder, monkeypatch):
    """Eight threads writing at once: every write lands, with fewer syncs than writes (group commit)."""
    store = LogTicketStore(_ready(folder))
    real = os.fdatasync
    syncs = []

    def slow_sync(fd):  # a slow disk, so that writers queue behind a sync in progress
        syncs.append(fd)
        threading.Event().wait(0.01)
        real(fd)

    monkeypatch.setattr(os, "fdatasync", slow_sync)
    names = ids(80)
    threads = [threading.Thread(target=lambda part: [store.add(ticket(n)) for n in part], args=(names[i::8],))
               for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert store.count() == 80 and LogTicketStore(folder).count() == 80
    assert len(syncs) < 80


def _add_on_a_slow_disk(folder: str, names: list[str], start) -> None:
    """A worker process whose every sync takes 5 ms, so that other workers' appends queue behind it; all
    begin writing together (`start`, a barrier), whenever each finished starting up."""
    real = os.fdatasync

    def slow(fd):
        threading.Event().wait(0.005)
        real(fd)

    os.fdatasync = slow
    store = LogTicketStore(folder)
    start.wait(60)
    for name in names:
        store.add(ticket(name))


def test_worker_processes_share_syncs(folder):
    """Four processes writing at once: every write lands, and one sync covers several of them."""
    LogTicketStore(_ready(folder))
    names = ids(160)
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(4)
    workers = [context.Process(target=_add_on_a_slow_disk, args=(folder, names[i::4], start)) for i in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    store = LogTicketStore(folder)
    appended, syncs = store.log.state.counts
    assert store.count() == 160 and appended == 160
    assert syncs < appended * 0.75, (appended, syncs)


def test_a_settle_that_finds_the_log_folded_under_it_keeps_its_outcome(folder, monkeypatch):
    """The deliverer applies a settle before taking the lock; if a worker folds three times meanwhile (the
    generation it was reading is removed), it rebuilds its state from the files: the outcome must hold there."""
    deliverer, worker = LogTicketStore(_ready(folder)), LogTicketStore(folder)
    joined = ticket()
    worker.add(joined, [TicketEvent("msg_1", EventType.CREATED, NOW, joined)])
    targets = lambda organization_id, event_type: ["ep_a"]  # noqa: E731
    assert len(deliverer.outbox_due(time.time(), targets, limit=10)) == 1  # on its way
    real_writing = deliverer._writing

    @contextmanager
    def after_three_folds(**options):
        for name in ids(3):
            worker.add(ticket(name))
            assert worker.fold()
        with real_writing(**options):
            yield

    monkeypatch.setattr(deliverer, "_writing", after_three_folds)
    retry_at = time.time() + 600
    deliverer.outbox_settle([Outcome("msg_1", "ep_a", 1, "failed", 500, time.time(), retry_at)])
    assert deliverer.outbox_due(time.time(), targets, limit=10) == []  # not sent again before its retry
    for store in (deliverer, LogTicketStore(folder)):
        (again,) = store.outbox_due(retry_at, targets, limit=10)
        assert (again.event_id, again.attempts) == ("msg_1", 1)


def test_the_deliverer_reads_the_outbox_only(folder):
    """The deliverer's store passes over the log's ticket records (it keeps none, and refuses to answer about
    tickets rather than answer wrongly), yet sees every event, across a fold; what it settles reaches a worker."""
    worker = LogTicketStore(_ready(folder))
    first, second, third = ticket(), ticket(ids(2)[0]), ticket(ids(2)[1])
    worker.add(first, [TicketEvent("msg_1", EventType.CREATED, NOW, first)])
    deliverer = LogTicketStore(folder, keep_tickets=False)
    worker.add(second, [TicketEvent("msg_2", EventType.CREATED, NOW, second)])
    assert worker.fold()
    worker.add(third)
    worker.publish([TicketEvent("msg_3", EventType.DISABLED, NOW, third)])
    targets = lambda organization_id, event_type: ["ep_a"]  # noqa: E731
    due = deliverer.outbox_due(time.time(), targets, limit=10)
    assert [(delivery.event_id, record_to_ticket(delivery.event["ticketId"], delivery.event["ticket"]))
            for delivery in due] == [
        ("msg_1", first), ("msg_2", second), ("msg_3", third)]
    assert deliverer._index.records == {} and LogTicketStore(folder, keep_tickets=False)._index.records == {}
    for refused in (lambda: deliverer.get(first.id), lambda: deliverer.add(ticket(ids(3)[2])), deliverer.count,
                    deliverer.all, deliverer.fold):
        with pytest.raises(StorageError, match="outbox only"):
            refused()
    deliverer.outbox_settle([Outcome(f"msg_{n}", "ep_a", 1, "delivered", 200, time.time(), None) for n in (1, 2, 3)])
    assert worker.outbox_backlog(targets)["ep_a"]["pending"] == 0 and worker._index.outbox.events == {}
    assert [worker.get(one.id) for one in (first, second, third)] == [first, second, third] and worker.count() == 3


@pytest.mark.parametrize("field, value", [("createdAt", "yesterday"), ("type", "NO_SUCH_TYPE"), ("properties", [])])
def test_an_event_whose_ticket_the_service_cannot_read_is_refused_by_name(folder, field, value):
    """The snapshot's events are checked as its tickets are: an event whose ticket was edited out of shape stops
    start-up, naming file and event, rather than hold up its endpoint's messages at every round."""
    worker = LogTicketStore(_ready(folder))
    first = ticket()
    worker.add(first, [TicketEvent("msg_" + "1" * 32, EventType.CREATED, NOW, first)])
    assert worker.fold()
    key = b'"msg_' + b"1" * 32 + b'":'
    edited = edit_snapshot_line(folder, key, lambda row: row["event"]["ticket"].update({field: value}))
    with pytest.raises(CorruptStore, match=r"tickets\.json.*msg_1{32}"):
        LogTicketStore(folder, keep_tickets=False)
    assert open(os.path.join(folder, "tickets.json"), "rb").read() == edited


def test_the_deliverer_lets_a_worker_sync_its_records(folder):
    """At the lowest priority the deliverer must not hold the sync lock the workers queue on: its settle waits
    for a worker's group commit to cover it. With no worker writing, it syncs itself after SYNC_PATIENCE."""
    worker = LogTicketStore(_ready(folder))
    first = ticket()
    worker.add(first, [TicketEvent("msg_1", EventType.CREATED, NOW, first)])
    deliverer = LogTicketStore(folder, keep_tickets=False)
    targets = lambda organization_id, event_type: ["ep_a"]  # noqa: E731
    deliverer.outbox_due(time.time(), targets, limit=10)
    _, syncs = worker.log.state.counts
    settled = threading.Thread(target=deliverer.outbox_settle,
                               args=([Outcome("msg_1", "ep_a", 1, "delivered", 200, time.time(), None)],))
    started = time.monotonic()
    settled.start()
    time.sleep(store_module.SYNC_PATIENCE / 5)
    worker.add(ticket(ids(1)[0]))  # its sync covers the deliverer's record, appended before it
    settled.join(5)
    assert worker.log.state.counts[1] == syncs + 1 and time.monotonic() - started < store_module.SYNC_PATIENCE
    assert worker.outbox_backlog(targets)["ep_a"]["pending"] == 0  # durable, so the worker has read it

    _, syncs = worker.log.state.counts
    started = time.monotonic()
    deliverer.publish([TicketEvent("msg_2", EventType.DISABLED, NOW, first)])
    assert time.monotonic() - started >= store_module.SYNC_PATIENCE * 0.9
    assert worker.log.state.counts[1] == syncs + 1 and worker.log.state.durable >= deliverer._position


# --- failures ------------------------------------------------------------------------------------------------------


def test_failed_write_leaves_every_file_as_it_was(repo, folder, monkeypatch):
    """A write that fails halfway (disk full) is cut off again: every file as before, reads unchanged."""
    repo.add(ticket())
    old_files = folder_bytes(folder)
    real_write = os.write

    def half_then_full(fd, data):
        real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", half_then_full)
    with pytest.raises(StorageError, match="No space left"):
        repo.change("ABCDEFGHJ", lambda t: t.replace(version=9))
    monkeypatch.undo()
    assert folder_bytes(folder) == old_files
    assert repo.get("ABCDEFGHJ").version == 0


def test_failed_sync_takes_the_write_back_everywhere(repo, folder, monkeypatch):
    """A sync that fails answers an error, cuts the record off the log, and no worker keeps it."""
    repo.add(ticket())
    other = LogTicketStore(folder)
    old_files = folder_bytes(folder)
    monkeypatch.setattr(os, "fdatasync", lambda fd: (_ for _ in ()).throw(OSError(errno.EIO, "Input/output error")))
    with pytest.raises(StorageError, match="Input/output error"):
        repo.add(ticket("BBBBBBBBB"))
    monkeypatch.undo()
    assert folder_bytes(folder) == old_files
    for view in (repo, other, LogTicketStore(folder)):
        with pytest.raises(TicketNotFound):
            view.get("BBBBBBBBB")
        assert view.get("ABCDEFGHJ").id == "ABCDEFGHJ"
    repo.add(ticket("CCCCCCCCC"))
    assert other.get("CCCCCCCCC").id == "CCCCCCCCC"


@pytest.mark.parametrize("content", [b"{not json", b"", b"[1, 2]", b'{"tickets": [1]}', b'{"tickets": {"A": 5}}'])
def test_corrupt_snapshot_is_refused_and_untouched(tmp_path, content):
    """Opening a corrupt or foreign snapshot raises CorruptStore naming it, and changes no byte."""
    folder = tmp_path / "data"
    folder.mkdir()
    path = folder / "tickets.json"
    path.write_bytes(content)
    with pytest.raises(CorruptStore, match="tickets.json"):
        open_storage(str(folder))
    assert path.read_bytes() == content


@pytest.mark.parametrize(
    "field, value",
    [("type", "NO_SUCH_TYPE"), ("createdAt", "yesterday"), ("expiresAt", 7), ("organizationId", None)],
)
def test_a_record_the_service_cannot_understand_is_refused_by_name(repo, folder, field, value):
    """A snapshot holding a record of an unknown type or an unreadable time stops start-up, naming file and record."""
    repo.add(ticket())
    repo.fold()
    edited = edit_snapshot_line(folder, b'"ABCDEFGHJ":', lambda record: record.update({field: value}))
    with pytest.raises(CorruptStore, match=r"tickets\.json.*ABCDEFGHJ"):
        LogTicketStore(folder)
    assert open(os.path.join(folder, "tickets.json"), "rb").read() == edited


def edit_snapshot_line(folder, key: bytes, change) -> bytes:
    """Rewrite the snapshot line of `key` (a ticket's or an event's), its JSON value passed through `change`, as a
    hand edit would; the snapshot's bytes after it."""
    path = os.path.join(folder, "tickets.json")
    text = open(path, "rb").read()
    line = next(line for line in text.split(b"\n") if line.startswith(key))
    value = json.loads(line[len(key):].rstrip(b","))
    change(value)
    edited = text.replace(line, key + json.dumps(value).encode() + (b"," if line.endswith(b",") else b""))
    open(path, "wb").write(edited)
    return edited


def test_a_snapshot_edited_while_running_is_read_again(repo, folder):
    """Garbage written over the snapshot under a running worker is noticed at its next read: CorruptStore."""
    repo.add(ticket())
    path = os.path.join(folder, "tickets.json")
    open(path, "wb").write(b"\x00garbage")
    with pytest.raises(CorruptStore, match="tickets.json"):
        repo.get("ABCDEFGHJ")
    assert open(path, "rb").read() == b"\x00garbage"


def test_modes_are_private(tmp_path):
    """The data folder is 0700 and every file in it 0600."""
    folder = tmp_path / "data"
    folder.mkdir(mode=0o755)
    storage = open_storage(str(folder))
    storage.tickets.add(ticket())
    storage.throttle.record("10.0.0.1", 1.0, 0.0)
    storage.tickets.fold()
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    for name in os.listdir(folder):
        assert stat.S_IMODE(os.stat(folder / name).st_mode) == 0o600, name


def test_records_storage_forgets_cache_when_file_disappears(tmp_path):
    """A deleted clients/keys file reads as empty, not as the stale cache."""
    path = str(tmp_path / "x.json")
    storage = AtomicJSONStorage(path)
    storage.write({"t": {"a": {"v": 1}}})
    assert storage.read() == {"t": {"a": {"v": 1}}}
    os.unlink(path)
    assert storage.read() is None


# --- crashes: torn records ---------------------------------------------------------------------------------------


def append_raw(folder, data: bytes) -> str:
    """Append bytes to the newest log generation, as a writer killed mid-append would leave them."""
    path = os.path.join(folder, logs(folder)[-1])
    with open(path, "ab") as handle:
        handle.write(data)
    return path


def test_a_record_cut_short_by_a_crash_is_dropped_at_start(repo, folder):
    """A torn final record (never acknowledged) is dropped; everything before it is kept."""
    repo.add(ticket())
    path = append_raw(folder, frame(b'{"t":{"BBBBBBBBB":null}}')[:-5])
    size = os.path.getsize(path)
    reopened = LogTicketStore(folder)
    assert reopened.get("ABCDEFGHJ").id == "ABCDEFGHJ"
    assert os.path.getsize(path) < size
    reopened.add(ticket("CCCCCCCCC"))
    assert LogTicketStore(folder).count() == 2


def test_a_torn_record_is_cut_by_the_next_writer_while_others_run(repo, folder):
    """A worker killed mid-append leaves half a record; the next writer, holding the lock, cuts it and goes on."""
    repo.add(ticket())
    append_raw(folder, frame(b'{"t":{}}')[:6])
    repo.add(ticket("CCCCCCCCC"))
    assert LogTicketStore(folder).count() == 2


def test_a_damaged_record_followed_by_good_ones_is_corruption(repo, folder):
    """A bad record with whole records after it is not a torn tail: refused, and no byte changes."""
    repo.add(ticket())
    path = append_raw(folder, struct.pack("<II", 20, 12345) + b"x" * 20 + frame(b'{"t":{}}'))
    content = open(path, "rb").read()
    with pytest.raises(CorruptStore, match="damaged record"):
        LogTicketStore(folder)
    assert open(path, "rb").read() == content


def test_a_whole_record_that_is_not_json_is_corruption(repo, folder):
    repo.add(ticket())
    payload = b"not json at all"
    append_raw(folder, struct.pack("<II", len(payload), zlib.crc32(payload)) + payload)
    with pytest.raises(CorruptStore, match="not JSON"):
        LogTicketStore(folder)


# --- folding -------------------------------------------------------------------------------------------------------


def test_fold_writes_a_snapshot_that_tinydb_opens(repo, folder):
    """After a fold tickets.json holds every ticket, and TinyDB itself reads it."""
    for name in ids(3):
        repo.add(ticket(name))
    repo.change(ids(3)[0], lambda t: None)
    assert repo.fold()
    db = TinyDB(os.path.join(folder, "tickets.json"), access_mode="r")
    assert sorted(db.storage.read()["tickets"]) == ids(3)[1:]
    assert {"_meta", "tickets"} <= db.tables() and repr(db)
    db.close()
    assert sorted(t.id for t in LogTicketStore(folder).all()) == ids(3)[1:]


def test_folded_generations_are_removed_one_fold_later(repo, folder):
    """Each fold starts a new log generation; the one before the last is removed (a lagging reader may be in it)."""
    repo.add(ticket())
    assert len(logs(folder)) == 1
    repo.fold()
    assert len(logs(folder)) == 2
    repo.fold()
    repo.fold()
    assert len(logs(folder)) == 2
    assert LogTicketStore(folder).get("ABCDEFGHJ").id == "ABCDEFGHJ"


def test_the_log_folds_by_itself_off_the_request_path(folder):
    """Past the threshold a background thread folds; the writes never wait for it."""
    store = LogTicketStore(_ready(folder), fold_bytes=2000)
    for name in ids(40):
        store.add(ticket(name))
    deadline = threading.Event()
    for _ in range(100):
        if len(logs(folder)) > 1:
            break
        deadline.wait(0.05)
    assert len(logs(folder)) > 1
    assert LogTicketStore(folder).count() == 40


def test_a_fold_makes_the_next_generation_before_it_takes_the_write_lock(repo, folder, monkeypatch):
    """Writers wait for the seal only, not for the new file's and the folder's syncs; and a fold leaves no
    descriptor open behind it."""
    repo.add(ticket())
    seen_at_lock = []
    real_acquire = repo.log.lock.acquire
    monkeypatch.setattr(repo.log.lock, "acquire", lambda: seen_at_lock.append(logs(folder)) or real_acquire())
    assert repo.fold()
    assert seen_at_lock[0] == ["tickets.00000001.log", "tickets.00000002.log"]
    open_files = len(os.listdir("/proc/self/fd"))  # the two generations kept, the fold lock
    for _ in range(4):
        assert repo.fold()
    assert len(os.listdir("/proc/self/fd")) == open_files
    assert LogTicketStore(folder).get("ABCDEFGHJ").id == "ABCDEFGHJ"


def test_a_fold_whose_new_generation_a_starting_worker_removed_makes_it_again(repo, folder, monkeypatch):
    """A worker starting up removes an empty generation that no seal points at (a failed fold's leftover): the
    fold made it before taking the lock, so it makes it again under the lock."""
    repo.add(ticket())
    real_acquire = repo.log.lock.acquire

    def a_worker_starts_first():
        monkeypatch.setattr(repo.log.lock, "acquire", real_acquire)
        LogTicketStore(folder)  # its start-up, under the lock, finds the new generation unsealed and empty
        assert logs(folder) == ["tickets.00000001.log"]
        real_acquire()

    monkeypatch.setattr(repo.log.lock, "acquire", a_worker_starts_first)
    assert repo.fold()
    repo.change("ABCDEFGHJ", lambda t: t.replace(version=t.version + 1))
    assert logs(folder) == ["tickets.00000001.log", "tickets.00000002.log"]
    assert LogTicketStore(folder).get("ABCDEFGHJ").version == 1


def test_a_reader_behind_a_fold_catches_up(folder):
    """A second worker stays exact while the first writes and folds, even when it falls two folds behind."""
    writer, reader = LogTicketStore(_ready(folder)), LogTicketStore(folder)
    writer.add(ticket())
    assert reader.get("ABCDEFGHJ").version == 0
    for version in range(1, 8):
        writer.change("ABCDEFGHJ", lambda t: t.replace(version=t.version + 1))
        if version in (3, 4, 5):
            writer.fold()
        if version != 4:
            assert reader.get("ABCDEFGHJ").version == version


def test_a_failed_fold_changes_nothing_and_loses_nothing(repo, folder, monkeypatch):
    """A snapshot write that fails leaves the old snapshot; every record stays in the log."""
    for name in ids(5):
        repo.add(ticket(name))
    snapshot_before = open(os.path.join(folder, "tickets.json"), "rb").read()
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left")))
    with pytest.raises(StorageError):
        repo.fold()
    monkeypatch.undo()
    assert open(os.path.join(folder, "tickets.json"), "rb").read() == snapshot_before
    assert LogTicketStore(folder).count() == 5


def test_a_failed_fold_does_not_fail_a_write_that_is_on_disk(tmp_path, make_app, monkeypatch):
    """The log record is durable before any fold; a fold that fails is retried later, not a 503."""
    test_client = make_app(tmp_path / "data", TICKETS_FOLD_BYTES=1).test_client()
    auth = bearer(fetch_token(test_client, make_client(test_client.application)))
    real_fsync = os.fsync

    def fsync_failing_for_snapshots(fd):
        if os.readlink(f"/proc/self/fd/{fd}").split("/")[-1].startswith(".tickets.json."):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync_failing_for_snapshots)
    created = test_client.post("/security/ticket", json={"type": "SINGLE_USE_TICKET", "properties": {}}, headers=auth)
    assert created.status_code == 200
    assert exchange(test_client, created.json["id"]).status_code == 200
    monkeypatch.undo()
    assert exchange(test_client, created.json["id"]).json["error_description"] == "NOT_FOUND"


# --- lists ---------------------------------------------------------------------------------------------------------


def test_a_list_reads_only_the_callers_organization(repo, monkeypatch):
    """Listing one organization decodes only its page: another organization's tickets are never touched."""
    from tickets.core.ports import TicketQuery

    for name in ids(200):
        repo.add(ticket(name, organization_id="big"))
    mine = ids(203)[200:]
    for name in mine:
        repo.add(ticket(name, organization_id="small"))
    decoded = []
    real_parse = index_module.parse_json
    monkeypatch.setattr(index_module, "parse_json", lambda raw: decoded.append(raw) or real_parse(raw))
    page = repo.list(TicketQuery("small", None, None, NOW, NOW - timedelta(days=7), 0, 20))
    assert [t.id for t in page.tickets] == mine and page.total == 3
    assert len(decoded) == 3


def test_a_snapshot_is_written_a_slice_at_a_time(tmp_path):
    """The fold writes the snapshot's lines a slice at a time: joined whole, a 54,000-ticket snapshot was held
    three times over and a fold raised the worker's peak memory from 117 to 158 MB. The bytes are the same as
    one join's."""
    records = {f"T{number:08d}": b'{"type":"MULTI_USE_TICKET","title":"%s"}' % (b"x" * 400) for number in range(20000)}
    outbox = {f"msg_{number:032x}": {"event": {"id": number}, "deliveries": {}} for number in range(3)}
    path = tmp_path / "tickets.json"
    tracemalloc.start()
    try:
        snapshot.write_snapshot(str(path), 7, records, {}, {}, outbox)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    written = path.read_bytes()
    lines = b",\n".join(b'"%s":%s' % (ticket_id.encode(), raw) for ticket_id, raw in records.items())
    rows = b",\n".join(b'"%s":%s' % (key.encode(), json.dumps(row, separators=(",", ":")).encode())
                       for key, row in outbox.items())
    assert written == snapshot.header(7, {}, {}) + lines + b"\n" + snapshot.OUTBOX_LINE + b"\n" + rows + b"\n}}\n"
    assert peak < len(written) / 2, (peak, len(written))  # a single join: three times the file
