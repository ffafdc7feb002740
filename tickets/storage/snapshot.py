"""`tickets.json`: every ticket as of the start of one log generation, in a file TinyDB itself opens.

One ticket per line, so a worker loads it record by record (never the whole tree at once), and the
fold writes it from the records' bytes without encoding them again:

    {"<FORMAT_KEY>":{"version":2},"_meta":{"log":{"generation":7},"revoked":{...},"webhooks":{...}},"tickets":{
    "K7QW4MZP2":{"type":"MULTI_USE_TICKET",...},
    ...
    },"_outbox":{
    "msg_...":{"event":{...},"deliveries":{...}},
    ...
    }}

The format key is a table whose one entry is not a document: TinyDB opens the file all the same,
but an older version of the service refuses it with a message that names the key (saying what to
run), and touches nothing.
"""

from __future__ import annotations

import itertools
import json
import os
import re
from collections.abc import Iterable, Iterator

from tickets.core.ports import CorruptStore, StorageError
from tickets.storage.files import compact_json, write_file_atomically

FORMAT = 2
FORMAT_KEY = "_format (written by ticket service 2 or later; older versions cannot read this folder)"
HEADER_LIMIT = 64 * 1024
TICKET_LINE = re.compile(rb'^"([A-Z0-9]{1,64})":(\{.*\}),?$')


OUTBOX_LINE = b'},"_outbox":{'
OUTBOX_ROW = re.compile(rb'^"(msg_[0-9a-f]{32})":(\{.*\}),?$')


class Snapshot:
    """What a snapshot file holds: the log generation it runs up to, each ticket's record bytes, the revoked
    tokens (jti: when they expire), the webhooks' last outcomes and their outbox (event id: row)."""

    def __init__(self, generation: int, records: Iterable[tuple[str, bytes]], meta: dict, outbox: dict):
        self.generation = generation
        self.records = records
        self.revoked = meta.get("revoked", {})
        self.webhooks = meta.get("webhooks", {})
        self.outbox = outbox


def header(generation: int, revoked: dict[str, float], webhooks: dict) -> bytes:
    meta = {"log": {"generation": generation}, "revoked": revoked, "webhooks": webhooks}
    return json.dumps({FORMAT_KEY: {"version": FORMAT}, "_meta": meta}, separators=(",", ":")).encode()[:-1] + (
        b',"tickets":{\n'
    )


def write_snapshot(
    path: str,
    generation: int,
    records: dict[str, bytes],
    revoked: dict[str, float] | None = None,
    webhooks: dict | None = None,
    outbox: dict | None = None,
    before_rename=None,
) -> None:
    """Replace the snapshot atomically (temp file, fsync, rename, fsync of the folder); `before_rename(fd)`
    is called with the complete new file just before it takes the name."""
    pieces = _pieces(header(generation, revoked or {}, webhooks or {}), records, outbox or {})
    try:
        os.close(write_file_atomically(path, pieces, before_rename=before_rename))
    except OSError as error:
        raise StorageError(f"cannot write {path}: {error.strerror}") from error


def _pieces(head: bytes, records: dict[str, bytes], outbox: dict) -> Iterator[bytes]:
    yield head
    yield from _joined(b'"%s":%s' % (ticket_id.encode(), raw) for ticket_id, raw in records.items())
    yield (b"\n" if records else b"") + OUTBOX_LINE + b"\n"
    yield from _joined(b'"%s":%s' % (key.encode(), compact_json(row)) for key, row in outbox.items())
    yield (b"\n" if outbox else b"") + b"}}\n"


def _joined(lines: Iterator[bytes], every: int = 2048) -> Iterator[bytes]:
    """b",\n".join(lines), a slice of lines at a time: joined whole, the snapshot of 54,000 tickets (21 MB) was
    held three times over (its lines, their join, the file's bytes), and a fold raised the worker's peak memory
    from 117 to 158 MB."""
    separator = b""
    while batch := list(itertools.islice(lines, every)):
        yield separator + b",\n".join(batch)
        separator = b",\n"


def read_header(path: str) -> tuple[int, int | None] | None:
    """(format, log generation) of the snapshot file, reading only its first line when it can;
    None if there is no file. Format 1 (the previous layout) has no generation."""
    try:
        with open(path, "rb") as handle:
            first = handle.readline(HEADER_LIMIT)
            if first.endswith(b'"tickets":{\n') and FORMAT_KEY.encode() in first:
                meta = data_file_object(path, first[: -len(b',"tickets":{\n')] + b"}")
            else:
                meta = data_file_object(path, first + handle.read())
    except FileNotFoundError:
        return None
    except OSError as error:
        raise StorageError(f"cannot read {path}: {error.strerror}") from error
    if FORMAT_KEY not in meta:
        return 1, None
    found = meta[FORMAT_KEY].get("version") if isinstance(meta[FORMAT_KEY], dict) else meta[FORMAT_KEY]
    if found != FORMAT:
        raise CorruptStore(
            f"{path} is in format {found!r}, written by a newer version of the ticket service; "
            f"this version reads formats 1 and {FORMAT}. Nothing was changed: run the newer version."
        )
    return FORMAT, _generation(path, meta)


def data_file_object(path: str, data: bytes) -> dict:
    """`data` (of the file at `path`, this format or the previous one) parsed; CorruptStore naming the file
    if it is not JSON or not an object."""
    try:
        found = json.loads(data)
    except (ValueError, RecursionError) as error:
        raise CorruptStore(f"{path} is not a valid data file ({error}); it was left untouched") from error
    if not isinstance(found, dict):
        raise CorruptStore(f"{path} is not a valid data file (the top level is not an object); it was left untouched")
    return found


def read_snapshot(path: str, data: bytes) -> Snapshot:
    """Parse a format-2 snapshot; a file edited by hand (say with TinyDB) is parsed whole instead."""
    lines = data.split(b"\n")
    if lines[0].startswith(b"{") and lines[0].endswith(b'"tickets":{') and lines[-2:] == [b"}}", b""]:
        body = lines[1:-2]
        split_at = body.index(OUTBOX_LINE) if OUTBOX_LINE in body else len(body)
        matches = [TICKET_LINE.match(line) for line in body[:split_at]]
        rows = [OUTBOX_ROW.match(line) for line in body[split_at + 1 :]]
        if all(matches) and all(rows):
            meta = json.loads(lines[0][: -len(b',"tickets":{')] + b"}")
            records = ((m.group(1).decode(), m.group(2)) for m in matches)
            outbox = {m.group(1).decode(): json.loads(m.group(2)) for m in rows}
            return Snapshot(_generation(path, meta), records, _meta(path, meta), outbox)
    whole = data_file_object(path, data)
    tickets = whole.get("tickets")
    if not isinstance(tickets, dict):
        raise CorruptStore(f"{path} is not a valid data file (no table of tickets); it was left untouched")
    outbox = whole.get("_outbox", {})
    if not isinstance(outbox, dict):
        raise CorruptStore(f"{path} is not a valid data file (table '_outbox'); it was left untouched")
    return Snapshot(_generation(path, whole), _encoded(tickets.items()), _meta(path, whole), outbox)


def _encoded(items) -> Iterator[tuple[str, bytes]]:
    for ticket_id, record in items:
        yield ticket_id, compact_json(record)


def _meta(path: str, meta) -> dict:
    """The revoked tokens and the webhooks' last outcomes the snapshot lists (none in an older snapshot)."""
    found = meta.get("_meta", {})
    revoked, webhooks = found.get("revoked", {}), found.get("webhooks", {})
    if not isinstance(revoked, dict) or not all(
        isinstance(jti, str) and type(expires) in (int, float) for jti, expires in revoked.items()
    ):
        raise CorruptStore(f"{path} lists revoked tokens it cannot read; it was left untouched")
    if not isinstance(webhooks, dict):
        raise CorruptStore(f"{path} lists webhook outcomes it cannot read; it was left untouched")
    return {"revoked": dict(revoked), "webhooks": dict(webhooks)}


def _generation(path: str, meta) -> int:
    try:
        generation = meta["_meta"]["log"]["generation"]
    except (KeyError, TypeError):
        generation = None
    if type(generation) is not int or generation < 1:
        raise CorruptStore(f"{path} does not say which log generation follows it; it was left untouched")
    return generation
