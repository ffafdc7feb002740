"""The tickets of the TinyDB store: the snapshot `tickets.json` plus the append-only log (tickets.storage.log).

Every change is one log record, appended under the inter-process lock and answered once it is
durable (group commit). Each worker keeps the tickets in memory (tickets.storage.index) and catches
up by reading the log's tail. When the log has grown as large as the snapshot, a background thread
folds it into a new snapshot: no request waits for that. Opening the folder (converting an older
one, recovering after a crash) is tickets.storage.opening.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Sequence
from contextlib import contextmanager
from datetime import datetime

from tickets.core import clock
from tickets.core.domain import Ticket, TicketEvent, TicketNotFound
from tickets.core.ports import (
    Announcement,
    Decision,
    Delivery,
    Outcome,
    StorageError,
    Targets,
    TicketIdTaken,
    TicketPage,
    TicketQuery,
)
from tickets.storage import opening, snapshot
from tickets.storage.codec import event_to_record, parse_time, ticket_to_record
from tickets.storage.files import identity
from tickets.storage.framing import split
from tickets.storage.index import TicketIndex
from tickets.storage.locks import FileLock
from tickets.storage.log import Log, MissingGeneration

log = logging.getLogger(__name__)
MIN_FOLD_BYTES = 4 * 1024 * 1024  # the default of TICKETS_FOLD_BYTES
SYNC_PATIENCE = 0.05  # seconds the deliverer waits for a worker's sync to cover its record


class LogTicketStore:
    """The TicketStore of the TinyDB backend (see tickets.core.ports)."""

    def __init__(self, folder: str, fold_bytes: int = MIN_FOLD_BYTES, keep_tickets: bool = True):
        self.folder = folder
        self.fold_bytes = fold_bytes  # a log shorter than this is never folded, however small the snapshot
        self.snapshot_path = os.path.join(folder, "tickets.json")
        self.log = Log(folder, "tickets")
        self._fold_lock = FileLock(os.path.join(folder, "tickets.fold.lock"))
        self._mutex = threading.RLock()  # orders the threads of one worker around the in-memory state
        self.keep_tickets = keep_tickets  # False: the outbox only (the deliverer; see TicketIndex)
        # The deliverer runs at the lowest priority: rather than hold the sync lock the workers queue on (and
        # be preempted holding it), it lets their next group commit cover its records, syncing itself only
        # when none comes within SYNC_PATIENCE.
        self._patience = 0.0 if keep_tickets else SYNC_PATIENCE
        self._index = TicketIndex(keep_tickets)
        self._position = 0
        self._epoch = -1
        self._snapshot_seen = None  # identity of the snapshot file our state was built from
        self._fold_at = fold_bytes
        self._folder_thread: threading.Thread | None = None
        self._fold_wanted = threading.Event()
        with self.log.lock:
            opening.prepare(self.log, self.snapshot_path)
        self._load()

    # --- the TicketStore protocol ------------------------------------------------------------------

    def get(self, ticket_id: str) -> Ticket:
        with self._reading():
            ticket = self._index.ticket(ticket_id)
        if ticket is None:
            raise TicketNotFound(ticket_id)
        return ticket

    def add(self, ticket: Ticket, events: Sequence[TicketEvent] = ()) -> None:
        with self._writing():
            if self._index.has(ticket.id):
                raise TicketIdTaken(ticket.id)
            self._commit({ticket.id: ticket}, events)

    def change(self, ticket_id: str, decide: Decision, announce: Announcement | None = None) -> Ticket | None:
        """Apply `decide` to the current ticket under the lock (see TicketStore.change)."""
        with self._writing():
            current = self._index.ticket(ticket_id)
            if current is None:
                raise TicketNotFound(ticket_id)
            updated = decide(current)
            if updated is not current:
                events = announce(current, updated) if announce else ()
                self._commit({ticket_id: updated}, events)
            return updated

    def publish(self, events: Sequence[TicketEvent]) -> None:
        if events:
            with self._writing():
                self._commit({}, events)

    def all(self) -> list[Ticket]:
        with self._reading():
            return [self._index.ticket(ticket_id) for ticket_id in self._index.ids()]

    def list(self, query: TicketQuery) -> TicketPage:
        with self._reading():
            return self._index.page(query)

    def remove_expired(self, expired_before: datetime, consumed_before: datetime) -> int:
        with self._writing():
            doomed = self._index.expired(expired_before, consumed_before)
            if doomed:
                self._commit(dict.fromkeys(doomed))
            return len(doomed)

    def count(self) -> int:
        with self._reading():
            return self._index.count()

    # --- the RevocationStore protocol, in the same log -----------------------------------------------

    def revoke(self, jti: str, expires_at: float) -> None:
        with self._writing():
            if jti not in self._index.revoked:
                self._position = self.log.append(json.dumps({"r": {jti: expires_at}}).encode(), self._position)
                self._index.revoked[jti] = expires_at

    def is_revoked(self, jti: str) -> bool:
        with self._reading():
            return jti in self._index.revoked

    # --- the webhooks' outbox, in the same log (tickets.storage.outbox) --------------------------------

    def outbox_due(self, now: float, targets: Targets, limit: int, skip=frozenset()) -> list[Delivery]:
        with self._reading():
            return self._index.outbox.due(now, targets, limit, skip)

    def outbox_settle(self, outcomes: Sequence[Outcome]) -> None:
        states, latest = {}, {}
        for outcome in outcomes:
            state = {"n": outcome.attempts, "status": outcome.status, "at": outcome.at}
            state.update({"next": outcome.next_at} if outcome.next_at else {"done": outcome.result})
            states.setdefault(outcome.event_id, {})[outcome.endpoint_id] = state
            if outcome.result != "deferred":
                latest[outcome.endpoint_id] = outcome
        last = {endpoint: {"result": outcome.result, "status": outcome.status, "at": outcome.at}
                for endpoint, outcome in latest.items()}
        # Everything but the append before taking the file lock: the deliverer runs at the lowest priority,
        # and a worker waiting for the lock should not wait for it to be scheduled.
        with self._reading():
            seen = self._index
            seen.outbox.apply({"w": states}, "")  # first: what it finishes is dropped by this same record
            finished = seen.outbox.take_finished()
        if not (states or finished):
            return
        done = set(finished)  # dropped by this record: what became of them need not be written
        record = {"w": {event: state for event, state in states.items() if event not in done}, "c": finished, "l": last}
        payload = json.dumps(record, separators=(",", ":")).encode()
        with self._writing(may_fold=False):  # folding is left to the workers
            self._position = self.log.append(payload, self._position)
            if self._index is seen:
                seen.outbox.apply({"c": finished, "l": last}, "")
            else:  # rebuilt from the files while we waited for the lock: it has seen none of this record
                self._index.outbox.apply(record, "")

    def outbox_forget_plan(self) -> None:
        with self._writing():
            self._index.outbox.forget_plan()

    def outbox_backlog(self, targets: Targets) -> dict[str, dict]:
        with self._reading():
            return self._index.outbox.backlog(targets)

    def outbox_oldest(self) -> float | None:
        with self._reading():
            events = self._index.outbox.events
            first = next(iter(events.values()), None)
            return parse_time(first["at"]).timestamp() if first else None

    def check(self) -> None:
        """Raise StorageError unless the snapshot and the log can be read as the service wrote them."""
        with self._reading():
            pass

    def close(self) -> None:
        """Give back the open files (the store is not used after)."""
        self.log.close()

    # --- folding -----------------------------------------------------------------------------------

    def fold(self) -> bool:
        """Write every ticket into a new snapshot and start a new log generation; False if another
        process is folding now. Old generations are removed one fold later, for readers still in them."""
        if not self.keep_tickets:
            raise StorageError("this process reads the log for the outbox only: its snapshot would lose every ticket")
        if not self._fold_lock.try_acquire():
            return False
        try:
            with self._mutex:
                self._catch_up(to_end=False)
                generation, _ = split(self._position)
            # Made (and synced, with its folder entry) before the lock, so that writers wait for the seal's sync
            # only: that took a fold's hold of the lock from about 40 ms to a few. A worker starting meanwhile may
            # remove it as a fold's leftover, so it is made again under the lock (cheap when it is there).
            self.log.create(generation + 1)
            with self._mutex, self.log.lock:
                self._catch_up(to_end=True)
                generation, _ = split(self._position)
                start = self.log.create(generation + 1)  # a seal must never point at nothing
                sealed = self.log.append(json.dumps({"seal": generation + 1}).encode(), self._position)
                self.log.await_durable(sealed, self._epoch)
                self._position = start
                self.log.raise_durable(start)
                records = dict(self._index.records)
                now = clock.timestamp()  # a revoked token that has expired needs no remembering
                self._index.revoked = {jti: at for jti, at in self._index.revoked.items() if at > now}
                revoked = dict(self._index.revoked)
                webhooks, outbox = dict(self._index.outbox.last), self._index.outbox.snapshot_rows()
            snapshot.write_snapshot(
                self.snapshot_path, generation + 1, records, revoked, webhooks, outbox, before_rename=self._announce
            )
            self._snapshot_seen = identity(os.stat(self.snapshot_path))
            self.log.state.install_snapshot(self._snapshot_seen)
            self._fold_at = max(self.fold_bytes, self._snapshot_seen[1])
            for old in self.log.generations():
                if old < generation:
                    self.log.remove(old)
            return True
        finally:
            self._fold_lock.release()

    def _announce(self, fd: int) -> None:
        """Tell every worker the new snapshot is ours; refuse to replace one that someone else changed."""
        self._check_snapshot()
        self.log.state.expect_snapshot(identity(os.fstat(fd)))

    def _want_fold(self) -> None:
        """Ask this worker's folder thread to fold soon (started on first need: workers are forked)."""
        self._fold_wanted.set()
        if self._folder_thread is None or not self._folder_thread.is_alive():
            self._folder_thread = threading.Thread(target=self._fold_when_wanted, name="tickets-fold", daemon=True)
            self._folder_thread.start()

    def _fold_when_wanted(self) -> None:
        while True:
            self._fold_wanted.wait()
            self._fold_wanted.clear()
            try:
                self.fold()
            except StorageError as error:  # every record is durable in the log; the next fold retries
                log.warning("folding the log into the snapshot failed, will retry: %s", error)

    # --- reading and writing -----------------------------------------------------------------------

    @contextmanager
    def _reading(self):
        """Catch up with what other workers made durable; answer only from durable state."""
        with self._mutex:
            self._catch_up(to_end=False)
            yield
            seen, epoch = self._position, self._epoch
        self.log.await_durable(seen, epoch, self._patience)  # this process's other threads' writes

    @contextmanager
    def _writing(self, may_fold: bool = True):
        """Hold the lock, read every record appended so far, and answer once all of it is durable:
        a refusal too, for it was decided on that state."""
        refused = None
        with self._mutex:
            try:
                with self.log.lock:
                    self._catch_up(to_end=True)
                    yield
            except Exception as error:  # noqa: BLE001  (re-raised below, once the state it saw is durable)
                refused = error
            seen, epoch = self._position, self._epoch
        self.log.await_durable(seen, epoch, self._patience)
        if refused is not None:
            raise refused
        if may_fold and self.keep_tickets and split(seen)[1] > self._fold_at:
            self._want_fold()

    def _commit(self, changes: dict[str, Ticket | None], events: Sequence[TicketEvent] = ()) -> None:
        """Append one record of changes and the events they come with (the caller holds the lock and is
        current), then apply it. An event about a ticket this record stores leaves the ticket out."""
        records = {ticket_id: ticket and ticket_to_record(ticket) for ticket_id, ticket in changes.items()}
        raws = {ticket_id: None if record is None else opening.encode(record) for ticket_id, record in records.items()}
        body = b",".join(b'"%s":%s' % (ticket_id.encode(), raw or b"null") for ticket_id, raw in raws.items())
        told = [event_to_record(event, changes.get(event.ticket.id) is not event.ticket) for event in events]
        tail = b',"e":%s' % opening.encode(told) if told else b""
        self._position = self.log.append(b'{"t":{%s}%s}' % (body, tail), self._position)
        for ticket_id, raw in raws.items():
            if raw is None:
                self._index.remove(ticket_id)
            else:
                self._index.put(ticket_id, raw, records[ticket_id])
        if told:
            self._index.outbox.apply({"t": records, "e": told}, self.log.path(split(self._position)[0]))

    def _catch_up(self, to_end: bool) -> None:
        """Apply the records after our position: the durable ones, or (holding the lock) all of them.
        Our state is rebuilt first if writes were taken back or the snapshot changed under us."""
        if self._epoch != self.log.state.epoch:
            self._load()
        self._check_snapshot()
        while True:
            stop = None if to_end else self.log.state.durable
            if stop is not None and stop <= self._position:
                return
            try:
                for at, record in self.log.records(self._position, stop):
                    opening.apply(self._index, record, self.log.path(split(self._position)[0]))
                    self._position = at
            except MissingGeneration:  # folded and removed while we were behind: start from the snapshot
                self._load()
                continue
            break
        generation, offset = split(self._position)
        if to_end and self.log.cut_torn_tail(generation, offset):
            log.warning("dropped a record cut short by a crash at the end of %s", self.log.path(generation))

    def _check_snapshot(self) -> None:
        """A snapshot file the service did not write (edited by hand, say) is read again and checked now."""
        try:
            current = identity(os.stat(self.snapshot_path))
        except OSError as error:
            raise StorageError(f"cannot read {self.snapshot_path}: {error.strerror}") from error
        if current != self._snapshot_seen and not self.log.state.snapshot_known(current):
            log.warning("%s was changed by something other than the service: reading it again", self.snapshot_path)
            self._load()

    def _load(self) -> None:
        """Build the in-memory state from the snapshot, then the durable log after it."""
        self._epoch = self.log.state.epoch
        self._index, self._position, self._snapshot_seen = opening.load(
            self.log, self.snapshot_path, self.keep_tickets
        )
