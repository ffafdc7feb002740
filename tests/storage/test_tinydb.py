"""The TinyDB repository: atomic durable writes, cached reads, inter-process locking, corrupt files."""

from __future__ import annotations

import errno
import json
import multiprocessing
import os
import stat
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import exchange
from tickets.core.domain import Ticket, TicketNotFound, TicketType
from tickets.storage import CorruptStore, StorageError, TicketIdTaken, open_storage
from tickets.storage import journal as repository
from tickets.storage.files import AtomicJSONStorage, JsonStore
from tickets.storage.journal import TicketRepository

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def ticket(ticket_id="ABCDEFGHJ", **fields) -> Ticket:
    """A plain multi-use ticket."""
    values = dict(
        id=ticket_id, type=TicketType.MULTI_USE_TICKET, organization_id="org", user_id="u",
        properties={"k": [1, {"n": "v"}]}, created_at=NOW, expires_at=NOW + timedelta(hours=4),
    )
    return Ticket(**{**values, **fields})


@pytest.fixture
def repo(tmp_path):
    """A ticket repository on a fresh folder."""
    return open_storage(str(tmp_path / "data")).tickets


def test_round_trip_keeps_every_field(repo):
    """What goes in comes out equal, properties included."""
    original = ticket(disabled=NOW, version=3, use_count=2, last_used_at=NOW, ttl=600, not_before=NOW)
    repo.add(original)
    assert repo.get("ABCDEFGHJ") == original


def test_add_refuses_a_taken_id(repo):
    """Ids are unique."""
    repo.add(ticket())
    with pytest.raises(TicketIdTaken):
        repo.add(ticket())


def test_change_stores_deletes_or_leaves_alone(repo):
    """change() stores a new ticket, deletes on None, and does not write for the same object."""
    repo.add(ticket())
    repo.change("ABCDEFGHJ", lambda t: t.replace(version=t.version + 1))
    assert repo.get("ABCDEFGHJ").version == 1
    before = sorted(os.listdir(repo.folder))
    repo.change("ABCDEFGHJ", lambda t: t)
    assert sorted(os.listdir(repo.folder)) == before
    repo.change("ABCDEFGHJ", lambda t: None)
    with pytest.raises(TicketNotFound):
        repo.get("ABCDEFGHJ")


def test_callers_cannot_alter_the_cache(repo):
    """Mutating a returned ticket's properties does not change what is stored."""
    repo.add(ticket())
    repo.get("ABCDEFGHJ").properties["k"].append("junk")
    assert repo.get("ABCDEFGHJ").properties == {"k": [1, {"n": "v"}]}


def test_reads_do_not_reparse_an_unchanged_file(repo, monkeypatch):
    """A second read of an unchanged file parses nothing."""
    repo.add(ticket())
    repo.get("ABCDEFGHJ")
    parses = []
    real_loads = json.loads
    monkeypatch.setattr(repository.json, "loads", lambda raw: parses.append(1) or real_loads(raw))
    for _ in range(5):
        repo.get("ABCDEFGHJ")
    assert parses == []


def test_a_second_process_view_sees_every_replacement(tmp_path):
    """Two independent stores on one file (as two workers) always read the latest write."""
    path = str(tmp_path / "t.json")
    first, second = TicketRepository(JsonStore(path)), TicketRepository(JsonStore(path))
    first.add(ticket())
    for version in range(1, 30):
        writer = first if version % 2 else second
        writer.change("ABCDEFGHJ", lambda t: t.replace(version=t.version + 1))
        assert first.get("ABCDEFGHJ").version == version
        assert second.get("ABCDEFGHJ").version == version


def folder_bytes(repo) -> dict:
    """Every file of the data folder, by name, with its content."""
    return {name: open(os.path.join(repo.folder, name), "rb").read() for name in sorted(os.listdir(repo.folder))}


def test_failed_write_leaves_the_old_file_intact(repo, monkeypatch):
    """A write that fails halfway (disk full) leaves every file as it was, and no temp file."""
    repo.add(ticket())
    old_files = folder_bytes(repo)
    calls = {"n": 0}
    real_write = os.write

    def failing_write(fd, data):
        calls["n"] += 1
        if calls["n"] == 1:
            return real_write(fd, bytes(data[: len(data) // 2]))  # half the bytes land
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(repository.os, "write", failing_write)
    with pytest.raises(StorageError, match="No space left"):
        repo.change("ABCDEFGHJ", lambda t: t.replace(version=9))
    monkeypatch.undo()
    assert folder_bytes(repo) == old_files
    assert repo.get("ABCDEFGHJ").version == 0


def test_failed_fsync_keeps_serving_reads(repo, monkeypatch):
    """An I/O error on fsync refuses the write; reads still answer the old state."""
    repo.add(ticket())
    monkeypatch.setattr(repository.os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(5, "Input/output error")))
    with pytest.raises(StorageError):
        repo.add(ticket("BBBBBBBBB"))
    monkeypatch.undo()
    assert repo.get("ABCDEFGHJ").id == "ABCDEFGHJ"
    with pytest.raises(TicketNotFound):
        repo.get("BBBBBBBBB")


@pytest.mark.parametrize("content", [b"{not json", b"", b"[1, 2]", b'{"tickets": [1]}', b'{"tickets": {"A": 5}}'])
def test_corrupt_file_is_refused_and_untouched(tmp_path, content):
    """Opening a corrupt or foreign file raises CorruptStore naming it, and changes no byte."""
    folder = tmp_path / "data"
    folder.mkdir()
    path = folder / "tickets.json"
    path.write_bytes(content)
    with pytest.raises(CorruptStore, match="tickets.json"):
        open_storage(str(folder))
    assert path.read_bytes() == content


def test_modes_are_private(tmp_path):
    """The data folder is 0700 and every file in it 0600."""
    folder = tmp_path / "data"
    folder.mkdir(mode=0o755)
    open_storage(str(folder)).tickets.add(ticket())
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    for name in os.listdir(folder):
        assert stat.S_IMODE(os.stat(folder / name).st_mode) == 0o600, name


def test_storage_forgets_cache_when_file_disappears(tmp_path):
    """A deleted file reads as empty, not as the stale cache."""
    path = str(tmp_path / "x.json")
    storage = AtomicJSONStorage(path)
    storage.write({"t": {"a": {"v": 1}}})
    assert storage.read() == {"t": {"a": {"v": 1}}}
    os.unlink(path)
    assert storage.read() is None


def _increment_many(path: str, count: int) -> None:
    repo = TicketRepository(JsonStore(path))
    for _ in range(count):
        repo.change("ABCDEFGHJ", lambda t: t.replace(use_count=t.use_count + 1))


def test_no_update_is_lost_across_processes(tmp_path):
    """Four processes incrementing one counter under the lock lose nothing."""
    path = str(tmp_path / "t.json")
    TicketRepository(JsonStore(path)).add(ticket())
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_increment_many, args=(path, 25)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    assert TicketRepository(JsonStore(path)).get("ABCDEFGHJ").use_count == 100


def test_failed_compaction_leaves_snapshot_and_journal_intact(repo, monkeypatch):
    """A snapshot write that fails leaves the old snapshot and every journal entry; nothing is lost."""
    for index in range(5):
        repo.add(ticket(f"AAAAAAAA{index + 2}"))
    old_files = folder_bytes(repo)
    monkeypatch.setattr(repository.os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(28, "No space left")))
    with pytest.raises(StorageError):
        repo.compact()
    monkeypatch.undo()
    assert folder_bytes(repo) == old_files
    assert repo.count() == 5


def test_writes_go_to_the_journal_and_compaction_folds_them(repo):
    """Each write adds one entry file; compaction moves everything into tickets.json and removes them."""
    snapshot_before = open(repo.store.path, "rb").read()
    for index in range(3):
        repo.add(ticket(f"AAAAAAAA{index + 2}"))
    repo.change("AAAAAAAA2", lambda t: None)
    assert len(repo.entry_files()) == 4
    assert open(repo.store.path, "rb").read() == snapshot_before
    repo.compact()
    assert repo.entry_files() == {}
    on_disk = json.loads(open(repo.store.path, "rb").read())
    assert sorted(on_disk["tickets"]) == ["AAAAAAAA3", "AAAAAAAA4"]
    repo.add(ticket("AAAAAAAA5"))
    assert sorted(t.id for t in repo.all()) == ["AAAAAAAA3", "AAAAAAAA4", "AAAAAAAA5"]


def test_journal_compacts_by_itself(tmp_path, monkeypatch):
    """Past the threshold the journal is folded without anyone asking, so it stays bounded."""
    monkeypatch.setattr(repository, "MIN_COMPACTION", 10)
    repo = TicketRepository(JsonStore(str(tmp_path / "t.json")))
    for index in range(25):
        repo.add(ticket(f"AAAAAA{index:03d}".replace("0", "A").replace("1", "B")))
    assert len(repo.entry_files()) < 10
    assert repo.count() == 25


def test_reader_sees_writes_across_compaction(tmp_path):
    """A second view (another worker) stays exact while the first writes and compacts."""
    path = str(tmp_path / "t.json")
    writer, reader = TicketRepository(JsonStore(path)), TicketRepository(JsonStore(path))
    writer.add(ticket())
    assert reader.get("ABCDEFGHJ").version == 0
    for version in range(1, 6):
        writer.change("ABCDEFGHJ", lambda t: t.replace(version=t.version + 1))
        if version == 3:
            writer.compact()
        assert reader.get("ABCDEFGHJ").version == version


def test_leftover_entries_of_an_interrupted_compaction_are_ignored(tmp_path):
    """Entries already folded into the snapshot (a crash before their removal) are not applied twice."""
    path = str(tmp_path / "t.json")
    repo = TicketRepository(JsonStore(path))
    repo.add(ticket())
    repo.change("ABCDEFGHJ", lambda t: None)
    entries = folder_bytes(repo)
    repo.compact()
    for name, content in entries.items():  # put the folded entries back, as if the crash came first
        if name.endswith(".journal"):
            open(os.path.join(repo.folder, name), "wb").write(content)
    fresh = TicketRepository(JsonStore(path))
    assert fresh.count() == 0
    fresh.add(ticket("BBBBBBBBB"))
    assert [t.id for t in TicketRepository(JsonStore(path)).all()] == ["BBBBBBBBB"]


def test_corrupt_journal_entry_is_refused_and_untouched(repo):
    """A journal entry that does not parse is reported by name and left as it is."""
    repo.add(ticket())
    path = repo.entry_path(repo.applied + 1)
    open(path, "wb").write(b"{torn")
    with pytest.raises(CorruptStore, match=os.path.basename(path)):
        TicketRepository(JsonStore(repo.store.path)).get("ABCDEFGHJ")
    assert open(path, "rb").read() == b"{torn"


def test_failed_compaction_does_not_fail_a_write_that_is_on_disk(test_client, auth, monkeypatch):
    """The journal entry is durable before compaction; a compaction that fails is retried later, not a 503."""
    monkeypatch.setattr(repository, "MIN_COMPACTION", 1)
    real_fsync = os.fsync
    writes = {"n": 0}

    def fsync_failing_for_snapshots(fd):
        if os.readlink(f"/proc/self/fd/{fd}").split("/")[-1].startswith(".tickets.json."):
            raise OSError(errno.ENOSPC, "No space left on device")
        writes["n"] += 1
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync_failing_for_snapshots)
    created = test_client.post("/security/ticket", json={"type": "SINGLE_USE_TICKET", "properties": {}}, headers=auth)
    assert created.status_code == 200
    assert exchange(test_client, created.json["id"]).status_code == 200
    monkeypatch.undo()
    assert exchange(test_client, created.json["id"]).json["error_description"] == "NOT_FOUND"
