"""Upgrades keep everything (SPEC section 7): a data folder written by the previous version opens, converted once.

tests/storage/format1/data was made by the previous release (commit 21c9071, format 1: a TinyDB snapshot
plus one journal file per write since it) with tests/storage/format1/make.py; manifest.json says what it
holds, with the clients' secrets and two tokens that release signed.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from app import create_app
from tests.conftest import bearer, exchange
from tickets.storage import StorageError, open_storage
from tickets.storage.snapshot import FORMAT_KEY

FIXTURE = Path(__file__).parent / "format1"
MANIFEST = json.loads((FIXTURE / "manifest.json").read_text())


def previous_version_refuses(data: dict) -> str | None:
    """What the previous release's start-up check (tickets/storage/tinydb_store.py: _shape_problem, commit
    21c9071) says of a parsed tickets.json: None if it would open it, else its reason."""
    if not isinstance(data, dict):
        return "the top level is not an object of tables"
    for name, table in data.items():
        if not isinstance(table, dict) or not all(isinstance(doc, dict) for doc in table.values()):
            return f"table {name!r} is not an object of documents"
    return None


@pytest.fixture
def old_folder(tmp_path, clock):
    """A copy of the previous version's data folder (modes as it wrote them), the clock just after it was made."""
    folder = tmp_path / "data"
    shutil.copytree(FIXTURE / "data", folder)
    os.chmod(folder, 0o700)
    for path in folder.iterdir():
        os.chmod(path, 0o600)
    made = max(datetime.fromisoformat(t["createdAt"].replace("Z", "+00:00")) for t in MANIFEST["tickets"].values())
    clock.now = made + timedelta(minutes=10)
    return folder


def files(folder) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir()) if not path.name.endswith(".lock")}


def token_of(test_client, credentials: dict) -> str:
    response = test_client.post(
        "/security/oauth/token", data={"grant_type": "client_credentials"},
        auth=(credentials["client_id"], credentials["client_secret"]),
    )
    assert response.status_code == 200, response.json
    return response.json["access_token"]


def test_the_previous_format_opens_with_everything_in_it(old_folder):
    """Tickets (as the old version answered them), clients with their secrets, keys and their tokens all stay."""
    test_client = create_app({"TESTING": True, "TICKETS_DATA_DIR": str(old_folder)}).test_client()
    headers = bearer(token_of(test_client, MANIFEST["clients"]["org"]))
    for name, expected in MANIFEST["tickets"].items():
        response = test_client.get(f"/security/ticket/{expected['id']}", headers=headers)
        assert response.status_code == 200, name
        assert {key: response.json[key] for key in expected if key != "expired"} == {
            key: value for key, value in expected.items() if key != "expired"
        }, name
    assert test_client.get(f"/security/ticket/{MANIFEST['deleted']}", headers=headers).status_code == 404
    assert exchange(test_client, MANIFEST["used_single_use"]).json["error_description"] == "NOT_FOUND"
    listed = test_client.get("/security/ticket", headers=headers, query_string={"page_size": 100})
    assert sorted(t["id"] for t in listed.json) == sorted(t["id"] for t in MANIFEST["tickets"].values())
    # Tokens the old version signed still verify: the signing keys came along.
    assert test_client.get("/security/ticket", headers=bearer(MANIFEST["client_token"])).status_code == 200
    own = MANIFEST["tickets"]["multi"]["id"]
    assert test_client.get(f"/security/ticket/{own}", headers=bearer(MANIFEST["ticket_token"])).status_code == 200
    token_of(test_client, MANIFEST["clients"]["system"])


def test_the_folder_is_converted_in_place_once(old_folder):
    """After the first start: a format-2 snapshot, a log, no journal entries, no old counters; a second
    start converts nothing; the previous version refuses the new format by name and would change nothing."""
    open_storage(str(old_folder)).close()
    names = sorted(path.name for path in old_folder.iterdir())
    assert not [name for name in names if name.endswith(".journal")]
    assert "throttle.json" not in names and "tickets.00000001.log" in names
    snapshot = json.loads((old_folder / "tickets.json").read_bytes())
    assert snapshot[FORMAT_KEY] == {"version": 2}
    assert FORMAT_KEY in previous_version_refuses(snapshot)
    converted = files(old_folder)
    open_storage(str(old_folder)).close()
    assert files(old_folder)["tickets.json"] == converted["tickets.json"]


def test_a_crash_before_the_new_snapshot_is_in_place_leaves_the_old_format(old_folder, monkeypatch):
    """If the converted snapshot cannot be put in place, the folder is the previous version's, byte for byte."""
    before = files(old_folder)
    real_replace = os.replace

    def crash_on_snapshot(source, target):
        if str(target).endswith("tickets.json"):
            raise OSError(28, "No space left on device")
        return real_replace(source, target)

    monkeypatch.setattr(os, "replace", crash_on_snapshot)
    with pytest.raises(StorageError):
        open_storage(str(old_folder))
    monkeypatch.undo()
    after = {name: content for name, content in files(old_folder).items() if not name.endswith((".log", ".sync"))}
    assert after == before
    assert previous_version_refuses(json.loads(after["tickets.json"])) is None
    assert open_storage(str(old_folder)).tickets.count() == len(MANIFEST["tickets"]) + 1


def test_journal_entries_left_by_a_crash_after_the_conversion_are_not_applied_again(old_folder):
    """Entries already folded into the new snapshot (a crash before their removal) change nothing."""
    journals = {name: content for name, content in files(old_folder).items() if name.endswith(".journal")}
    first = open_storage(str(old_folder))
    count = first.tickets.count()
    first.close()
    for name, content in journals.items():
        (old_folder / name).write_bytes(content)
    again = open_storage(str(old_folder))
    assert again.tickets.count() == count
    assert not [path for path in old_folder.iterdir() if path.name.endswith(".journal")]


def test_a_newer_format_is_refused_untouched(old_folder):
    """A folder in a format this version does not know stops start-up with a message, and nothing changes."""
    open_storage(str(old_folder)).close()
    path = old_folder / "tickets.json"
    newer = path.read_bytes().replace(b'{"version":2}', b'{"version":3}', 1)
    path.write_bytes(newer)
    before = files(old_folder)
    with pytest.raises(StorageError, match="newer version"):
        open_storage(str(old_folder))
    assert files(old_folder) == before
