"""Opening the TinyDB ticket store: convert an older folder once, recover after a crash, load the state."""

from __future__ import annotations

import logging
import os

from tickets.core.ports import CorruptStore, StorageError
from tickets.storage import legacy, snapshot
from tickets.storage.codec import check_record
from tickets.storage.files import compact_json, identity, json_object, unlink_quietly
from tickets.storage.framing import FILE_MAGIC, position, split
from tickets.storage.index import TicketIndex
from tickets.storage.log import Log, MissingGeneration

log = logging.getLogger(__name__)


def prepare(tickets_log: Log, snapshot_path: str) -> None:
    """Under the write lock: convert an older folder, make sure a log generation follows the snapshot,
    drop a record cut short by a crash, and tell every worker how far the log is durable."""
    header = snapshot.read_header(snapshot_path)
    if header is None and tickets_log.generations():
        raise CorruptStore(f"{snapshot_path} is missing but its log is there; nothing was changed")
    if header is None or header[0] == 1:
        convert(tickets_log, snapshot_path)
        header = snapshot.read_header(snapshot_path)
    due = tickets_log.state.rollback_due
    if due is not None:  # a worker died between a failed sync and cutting the log back: finish its work
        tickets_log.roll_back()
    end = _log_end(tickets_log, header[1])
    last = split(end)[0]
    for leftover in tickets_log.generations():
        if leftover > last:  # made by a fold that failed before its seal: nothing points at it
            if not tickets_log.is_empty(leftover):
                raise CorruptStore(f"{tickets_log.path(leftover)} follows no seal yet holds records; nothing changed")
            tickets_log.remove(leftover)
    tickets_log.cut_torn_tail(*split(end))
    tickets_log.sync_everything(last)
    tickets_log.state.reset(end)
    tickets_log.state.install_snapshot(identity(os.stat(snapshot_path)))
    for path in legacy.journal_entries(os.path.dirname(snapshot_path) or ".").values():
        unlink_quietly(path)  # format-1 entries a conversion folded, then crashed before removing


def _log_end(tickets_log: Log, generation: int) -> int:
    """The position after the last whole record, following seals from the snapshot's generation."""
    if generation not in tickets_log.generations():
        return tickets_log.create(generation)
    end = position(generation, len(FILE_MAGIC))
    try:
        for at, _ in tickets_log.records(end):
            end = at
    except MissingGeneration as missing:  # a seal points at nothing: not a crash this service can leave
        raise CorruptStore(f"the log is sealed towards {missing}, which is missing; nothing was changed") from None
    return end


def convert(tickets_log: Log, snapshot_path: str) -> None:
    """Turn a format-1 folder (or a new one) into format 2, once: the new snapshot replaces the old one
    atomically, and only then are the old journal entries removed. A crash before the rename leaves the
    old format whole (converted again at the next start); after it, the new one."""
    data = _read(snapshot_path)
    records = {} if data is None else legacy.read_tickets(snapshot_path, data)
    raws = {ticket_id: encode(record) for ticket_id, record in records.items()}
    for ticket_id, record in records.items():
        checked(snapshot_path, ticket_id, record)
    generation = max(tickets_log.generations(), default=0) + 1
    snapshot.write_snapshot(snapshot_path, generation, raws)
    folder = os.path.dirname(snapshot_path) or "."
    for path in legacy.journal_entries(folder).values():
        unlink_quietly(path)
    if records:
        log.info("converted %s (%d tickets) to the log format", snapshot_path, len(records))


def load(
    tickets_log: Log, snapshot_path: str, keep_tickets: bool = True
) -> tuple[TicketIndex, int, tuple[int, int, int]]:
    """The state of the snapshot plus the durable log after it: (index, position, snapshot identity)."""
    while True:
        try:
            with open(snapshot_path, "rb") as handle:
                seen = identity(os.fstat(handle.fileno()))
                data = handle.read()
        except OSError as error:
            raise StorageError(f"cannot read {snapshot_path}: {error.strerror}") from error
        loaded = snapshot.read_snapshot(snapshot_path, data)
        index = TicketIndex(keep_tickets)
        index.revoked.update(loaded.revoked)
        index.outbox.last.update(loaded.webhooks)
        index.outbox.load_rows(loaded.outbox, snapshot_path)
        for ticket_id, raw in loaded.records if keep_tickets else ():
            put(index, snapshot_path, ticket_id, raw, json_object(raw, f"{snapshot_path}: ticket {ticket_id}"))
        at = position(loaded.generation, len(FILE_MAGIC))
        try:
            for at_next, record in tickets_log.records(at, tickets_log.state.durable):
                apply(index, record, tickets_log.path(split(at)[0]))
                at = at_next
        except MissingGeneration:  # a fold replaced the snapshot meanwhile: read the new one
            continue
        return index, at, seen


def apply(index: TicketIndex, record: dict, path: str) -> None:
    """Apply one log record: ticket changes ("t": {id: record or null}), revoked tokens ("r": {jti: expiry})."""
    changes, revoked = record.get("t", {}), record.get("r", {})
    if not isinstance(changes, dict) or not isinstance(revoked, dict):
        raise CorruptStore(f"{path} holds a record whose changes are not objects; it was left untouched")
    for jti, expires in revoked.items():
        if type(expires) not in (int, float):
            raise CorruptStore(f"{path} holds a revoked token without an expiry; it was left untouched")
        index.revoked[jti] = expires
    index.outbox.apply(record, path)
    if not index.keeps_tickets:
        return
    for ticket_id, fields in changes.items():
        if fields is None:
            index.remove(ticket_id)
        elif isinstance(fields, dict):
            put(index, path, ticket_id, encode(fields), fields)
        else:
            raise CorruptStore(f"{path}: ticket {ticket_id} is not an object; it was left untouched")


def put(index: TicketIndex, path: str, ticket_id: str, raw: bytes, record: dict) -> None:
    """Index one record read from a file (see checked)."""
    checked(path, ticket_id, record)
    index.put(ticket_id, raw, record)


def checked(path: str, ticket_id: str, record: dict) -> None:
    """A record the service cannot understand makes the file that holds it corrupt."""
    try:
        check_record(record)
    except ValueError as error:
        raise CorruptStore(f"{path}: ticket {ticket_id} is not a record this service can read ({error})") from error


def encode(record: dict) -> bytes:
    try:
        return compact_json(record)
    except ValueError as error:
        raise StorageError(f"cannot store a record: {error}") from error


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise StorageError(f"cannot read {path}: {error.strerror}") from error
