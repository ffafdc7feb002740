"""The previous TinyDB layout (format 1), read once to convert a data folder in place.

Format 1 kept the tickets in `tickets.json` (`{"tickets": {...}, "_meta": {"journal": {"seq": N}}}`)
plus one file per later write, `tickets.<seq>.journal` (`{"changes": {id: record or null}}`);
entries up to N were already folded into the snapshot (a crash could leave them behind).
"""

from __future__ import annotations

import json
import os
import re

from tickets.core.ports import CorruptStore, StorageError
from tickets.storage.snapshot import data_file_object

ENTRY = re.compile(r"^tickets\.(\d{12})\.journal$")


def journal_entries(folder: str) -> dict[int, str]:
    """The format-1 journal entry files of a folder, by sequence number."""
    found = (ENTRY.match(name) for name in os.listdir(folder))
    return {int(match.group(1)): os.path.join(folder, match.group(0)) for match in found if match}


def read_tickets(snapshot_path: str, data: bytes) -> dict[str, dict]:
    """Every ticket record of a format-1 folder: the snapshot, then the journal entries it has not folded."""
    snapshot = data_file_object(snapshot_path, data)
    tickets = snapshot.get("tickets", {})
    if not isinstance(tickets, dict) or not all(isinstance(record, dict) for record in tickets.values()):
        raise CorruptStore(f"{snapshot_path} is not a valid data file (table 'tickets'); it was left untouched")
    records = dict(tickets)
    seq = _folded_seq(snapshot)
    entries = journal_entries(os.path.dirname(snapshot_path) or ".")
    while seq + 1 in entries:
        seq += 1
        _apply(records, entries[seq])
    return records


def _folded_seq(snapshot: dict) -> int:
    seq = snapshot.get("_meta", {}).get("journal", {}).get("seq", 0)
    return seq if type(seq) is int else 0


def _apply(records: dict, path: str) -> None:
    try:
        with open(path, "rb") as handle:
            changes = json.loads(handle.read())["changes"]
        for ticket_id, record in changes.items():
            if record is None:
                records.pop(ticket_id, None)
            elif isinstance(record, dict):
                records[ticket_id] = record
            else:
                raise TypeError(f"record {ticket_id} is not an object")
    except OSError as error:
        raise StorageError(f"cannot read {path}: {error.strerror}") from error
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise CorruptStore(f"{path} is not a valid journal entry ({error}); it was left untouched") from error
