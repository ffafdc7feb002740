"""Storage faults through the API: a failed write is a 503 with JSON, loses nothing, and reads go on."""

from __future__ import annotations

import errno
import os
import subprocess

import pytest

from app import create_app
from tickets.storage import StorageError


def fail_with(code: int):
    """An os.fsync (or os.fdatasync) stand-in that fails like a full or broken disk."""

    def failing(fd):
        raise OSError(code, os.strerror(code))

    return failing


def break_syncs(monkeypatch, code: int) -> None:
    """Every sync of a file fails from now on (until monkeypatch.undo)."""
    monkeypatch.setattr(os, "fsync", fail_with(code))
    monkeypatch.setattr(os, "fdatasync", fail_with(code))


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EIO])
def test_failed_write_is_503_and_reads_continue(test_client, auth, create_ticket, data_dir, monkeypatch, code):
    """Disk full or I/O error: 503 JSON, the old file intact, reads and later writes fine."""
    kept = create_ticket(properties={"n": 1})
    before = (data_dir / "tickets.json").read_bytes()
    break_syncs(monkeypatch, code)

    response = test_client.post("/security/ticket", json={"type": "MULTI_USE_TICKET", "properties": {}}, headers=auth)
    assert response.status_code == 503
    assert response.json["code"] == 503 and response.json["message"]
    response = test_client.put(f"/security/ticket/{kept['id']}", json={"properties": {"n": 2}}, headers=auth)
    assert response.status_code == 503

    assert (data_dir / "tickets.json").read_bytes() == before
    assert test_client.get(f"/security/ticket/{kept['id']}", headers=auth).json["properties"] == {"n": 1}
    assert test_client.get("/security/health").status_code == 200

    monkeypatch.undo()
    assert (
        test_client.put(f"/security/ticket/{kept['id']}", json={"properties": {"n": 3}}, headers=auth).status_code
        == 200
    )
    listed = test_client.get("/security/ticket", headers=auth).json
    assert [ticket["id"] for ticket in listed] == [kept["id"]]


def test_failed_exchange_write_is_503_and_ticket_stays_usable(test_client, create_ticket, monkeypatch):
    """A single-use exchange whose write fails gives no token and does not consume the ticket."""
    ticket = create_ticket("SINGLE_USE_TICKET")
    break_syncs(monkeypatch, errno.EIO)
    response = test_client.post("/security/oauth/token", data={"grant_type": "ticket", "ticket": ticket["id"]})
    assert response.status_code == 503 and "access_token" not in response.json
    monkeypatch.undo()
    response = test_client.post("/security/oauth/token", data={"grant_type": "ticket", "ticket": ticket["id"]})
    assert response.status_code == 200


def test_unreadable_file_reports_unhealthy(test_client, data_dir, caplog):
    """A data file replaced by garbage while running: health says only "unavailable" (SPEC section 11); which
    file and why goes to the log; the file is kept."""
    path = data_dir / "tickets.json"
    path.write_bytes(b"\x00garbage")
    with caplog.at_level("ERROR"):
        response = test_client.get("/security/health")
    assert (response.status_code, response.json) == (503, {"status": "unavailable"})
    assert "tickets.json" in caplog.text and str(data_dir) not in response.get_data(as_text=True)
    assert path.read_bytes() == b"\x00garbage"


def test_start_refuses_a_data_dir_that_is_a_file(tmp_path):
    """A data folder path that is a file stops start-up with an error naming it."""
    target = tmp_path / "not-a-dir"
    target.write_text("x")
    with pytest.raises(StorageError, match="not-a-dir"):
        create_app({"TICKETS_DATA_DIR": str(target)})
    assert target.read_text() == "x"


@pytest.fixture
def read_only_copy(tmp_path, app, data_dir):
    """The app's data folder, bind-mounted read-only (needs root and mount; skipped elsewhere)."""
    mount_point = tmp_path / "ro"
    mount_point.mkdir(mode=0o700)
    commands = [
        ["mount", "--bind", str(data_dir), str(mount_point)],
        ["mount", "-o", "remount,ro,bind", str(mount_point)],
    ]
    for command in commands:
        if subprocess.run(command, capture_output=True).returncode != 0:
            subprocess.run(["umount", str(mount_point)], capture_output=True)
            pytest.skip("cannot make a read-only mount here")
    yield mount_point
    subprocess.run(["umount", str(mount_point)], check=True)


def test_read_only_data_folder_refuses_to_start(read_only_copy):
    """A data folder that cannot be written stops start-up with a message naming it; no file changes."""
    before = {path.name: path.read_bytes() for path in read_only_copy.iterdir()}
    with pytest.raises(StorageError, match=str(read_only_copy)):
        create_app({"TICKETS_DATA_DIR": str(read_only_copy)})
    assert {path.name: path.read_bytes() for path in read_only_copy.iterdir()} == before


@pytest.fixture
def other_user():
    """A uid that is not ours (tests run as root in CI; elsewhere chown is not allowed)."""
    if os.geteuid() != 0:
        pytest.skip("changing a file's owner needs root")
    return 65534  # nobody


@pytest.mark.parametrize("name", [None, "clients.json", "tickets.json", "keys.json"])
def test_a_folder_or_file_of_another_user_stops_start_up(tmp_path, make_app, other_user, name):
    """Someone else's data folder, or a file in it, could be swapped under the service: refused, naming it."""
    folder = tmp_path / "data"
    make_app(folder)
    target = folder if name is None else folder / name
    os.chown(target, other_user, -1)
    before = {path.name: path.read_bytes() for path in folder.iterdir()}
    with pytest.raises(StorageError, match=f"{target}.*another user"):
        create_app({"TICKETS_DATA_DIR": str(folder)})
    assert {path.name: path.read_bytes() for path in folder.iterdir()} == before


def test_a_temporary_file_that_vanishes_while_the_folder_is_checked_is_no_error(tmp_path, make_app, monkeypatch):
    """Workers and the deliverer start together: one's temporary file may be renamed while another checks."""
    folder = tmp_path / "data"
    make_app(folder)
    listdir = os.listdir
    monkeypatch.setattr(os, "listdir", lambda path: [*listdir(path), ".clients.json.gone.tmp"])
    create_app({"TICKETS_DATA_DIR": str(folder)})


def test_loose_modes_are_tightened_and_a_symlink_is_refused(tmp_path, make_app):
    """Files readable or writable by others become 0600, the folder 0700; a symlink in the folder is refused."""
    folder = tmp_path / "data"
    make_app(folder)
    os.chmod(folder, 0o777)
    os.chmod(folder / "clients.json", 0o666)
    create_app({"TICKETS_DATA_DIR": str(folder)})
    assert (os.stat(folder).st_mode & 0o777, os.stat(folder / "clients.json").st_mode & 0o777) == (0o700, 0o600)
    (folder / "keys.json").rename(folder / "elsewhere")
    os.symlink(folder / "elsewhere", folder / "keys.json")
    with pytest.raises(StorageError, match="keys.json is not a regular file"):
        create_app({"TICKETS_DATA_DIR": str(folder)})
