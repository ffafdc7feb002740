"""The PostgreSQL store, for several app nodes on one database: the same interfaces as the TinyDB store."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from contextlib import contextmanager
from datetime import datetime
from importlib import resources

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from tickets.core.domain import Ticket, TicketEvent, TicketNotFound
from tickets.core.ports import (
    Announcement,
    CorruptStore,
    Decision,
    StorageError,
    TicketIdTaken,
    TicketPage,
    TicketQuery,
)
from tickets.storage.codec import check_record, event_to_record, record_to_ticket, ticket_to_record

MIGRATION_LOCK = 0x7469636B  # advisory lock key: one node at a time applies migrations
POOL_SIZE = 4
CONNECT_TIMEOUT = 3  # seconds: well under gunicorn's 30 s worker timeout, so an outage is a quick 503


class PgStore:
    """A connection pool to one database, with migrations applied."""

    def __init__(self, url: str, pool_size: int = POOL_SIZE):
        self.url = url
        try:  # one direct attempt first: a refused or misspelt URL fails now, not after the pool's retries
            psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT).close()
        except psycopg.Error as error:
            raise StorageError(f"cannot connect to the database: {error}") from error
        self.pool = ConnectionPool(
            url, min_size=1, max_size=pool_size, open=False, timeout=CONNECT_TIMEOUT,
            kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT},
        )
        try:
            self.pool.open(wait=True, timeout=CONNECT_TIMEOUT * 2)
        except PoolTimeout as error:
            raise StorageError(f"cannot connect to the database: {error}") from error

    @contextmanager
    def connection(self):
        """A pooled connection; waiting more than a few seconds for one (an outage) is a StorageError, so 503."""
        try:
            with self.pool.connection() as conn:
                yield conn
        except (psycopg.OperationalError, PoolTimeout) as error:
            raise StorageError(f"the database is unavailable: {error}") from error

    @contextmanager
    def transaction(self):
        with self.connection() as conn, conn.transaction():
            yield conn

    def check(self) -> None:
        with self.connection() as conn:
            conn.execute("SELECT 1")

    def migrate(self) -> list[int]:
        """Apply the migrations not applied yet, safely when several nodes start at once."""
        applied = []
        with self.connection() as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
            try:
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations "
                    "(version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
                )
                done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
                for version, sql in _migrations():
                    if version not in done:
                        with conn.transaction():
                            conn.execute(sql)
                            conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
                        applied.append(version)
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
        return applied

    def close(self) -> None:
        self.pool.close()


def _migrations() -> list[tuple[int, str]]:
    folder = resources.files("tickets.storage") / "migrations"
    scripts = [entry for entry in folder.iterdir() if entry.name.endswith(".sql")]
    return sorted((int(entry.name.split("_")[0]), entry.read_text()) for entry in scripts)


def dump_record(record: dict) -> str:
    """A record as compact JSON text, as the tables keep it."""
    return json.dumps(record, separators=(",", ":"), allow_nan=False)


class PgTicketRepository:
    """Tickets in table `tickets`: the record as JSON text, beside the columns that lists filter and order on.

    A change is optimistic: read the row, decide, then write it only if the record is still the one
    read (compare and set, one statement); if another writer got there first, read again. Two round
    trips, no transaction held open while Python decides.
    """

    def __init__(self, store: PgStore):
        self.store = store

    def get(self, ticket_id: str) -> Ticket:
        with self.store.connection() as conn:
            row = conn.execute("SELECT record FROM tickets WHERE id = %s", (ticket_id,)).fetchone()
        if row is None:
            raise TicketNotFound(ticket_id)
        return _ticket(ticket_id, row[0])

    def add(self, ticket: Ticket, events: Sequence[TicketEvent] = ()) -> None:
        with self.store.transaction() if events else self.store.connection() as conn:
            inserted = conn.execute(
                f"INSERT INTO tickets (id, record, {COLUMNS}) VALUES (%s, %s, {PLACEHOLDERS}) "
                "ON CONFLICT (id) DO NOTHING",
                (ticket.id, dump_record(ticket_to_record(ticket)), *columns(ticket)),
            ).rowcount
            if inserted:
                _insert_events(conn, events)
        if not inserted:
            raise TicketIdTaken(ticket.id)

    def change(self, ticket_id: str, decide: Decision, announce: Announcement | None = None) -> Ticket | None:
        """Read, decide, then write only if nobody changed the row meanwhile (else decide again); the events
        of the change go in the same transaction."""
        with self.store.connection() as conn:
            while True:
                row = conn.execute("SELECT record FROM tickets WHERE id = %s", (ticket_id,)).fetchone()
                if row is None:
                    raise TicketNotFound(ticket_id)
                current = _ticket(ticket_id, row[0])
                updated = decide(current)
                if updated is current:
                    return updated
                events = announce(current, updated) if announce else ()
                with conn.transaction() if events else contextlib.nullcontext():
                    if _write(conn, ticket_id, row[0], updated):
                        _insert_events(conn, events)
                        return updated

    def publish(self, events: Sequence[TicketEvent]) -> None:
        if events:
            with self.store.transaction() as conn:
                _insert_events(conn, events)

    def all(self) -> list[Ticket]:
        with self.store.connection() as conn:
            rows = conn.execute("SELECT id, record FROM tickets").fetchall()
        return [_ticket(ticket_id, record) for ticket_id, record in rows]

    def list(self, query: TicketQuery) -> TicketPage:
        """One page and the count, in one round trip; the index (organization_id, created_at, id) serves both."""
        (page_sql, page_parameters), (count_sql, count_parameters) = list_statements(query)
        with self.store.connection() as conn, conn.pipeline():
            page = conn.execute(page_sql, page_parameters)
            total = conn.execute(count_sql, count_parameters)
            rows, (count,) = page.fetchall(), total.fetchone()
        return TicketPage([_ticket(ticket_id, record) for ticket_id, record in rows], count)

    def remove_expired(self, expired_before: datetime, consumed_before: datetime) -> int:
        with self.store.connection() as conn:
            return conn.execute(
                "DELETE FROM tickets WHERE expires_at <= %s OR consumed_at <= %s", (expired_before, consumed_before)
            ).rowcount

    def count(self) -> int:
        with self.store.connection() as conn:
            return conn.execute("SELECT count(*) FROM tickets").fetchone()[0]


def _write(conn, ticket_id: str, read: str, updated: Ticket | None) -> bool:
    """UPDATE or DELETE the row only if it still holds the record `read` (compare and set)."""
    if updated is None:
        return bool(conn.execute("DELETE FROM tickets WHERE id = %s AND record = %s", (ticket_id, read)).rowcount)
    return bool(conn.execute(
        f"UPDATE tickets SET record = %s, ({COLUMNS}) = ({PLACEHOLDERS}) WHERE id = %s AND record = %s",
        (dump_record(ticket_to_record(updated)), *columns(updated), ticket_id, read),
    ).rowcount)


def _insert_events(conn, events: Sequence[TicketEvent]) -> None:
    for event in events:
        conn.execute(
            "INSERT INTO webhook_events (id, record, happened_at) VALUES (%s, %s, %s)",
            (event.id, dump_record(event_to_record(event)), event.at),
        )


def _ticket(ticket_id: str, text: str) -> Ticket:
    """The ticket of a row; a record the service cannot read is corruption (503 naming it), never a 500."""
    try:
        record = json.loads(text)
        check_record(record)
    except ValueError as error:
        problem = f"table tickets: ticket {ticket_id} is not a record the service can read ({error})"
        raise CorruptStore(problem) from None
    return record_to_ticket(ticket_id, record)


COLUMNS = "expires_at, consumed_at, organization_id, ticket_type, created_at, disabled, revoked"
PLACEHOLDERS = ", ".join(["%s"] * 7)
# The status of SPEC section 3, as Ticket.status computes it.
STATUS = (
    "CASE WHEN revoked THEN 'revoked' WHEN disabled THEN 'disabled' "
    "WHEN expires_at <= %s THEN 'expired' ELSE 'active' END"
)


def columns(ticket: Ticket) -> tuple:
    """The values of COLUMNS for a ticket."""
    return (
        ticket.expires_at, ticket.consumed_at, ticket.organization_id, ticket.type.value, ticket.created_at,
        ticket.disabled is not None, ticket.revoked is not None,
    )


def list_statements(query: TicketQuery) -> tuple[tuple[str, tuple], tuple[str, tuple]]:
    """The SQL of a list and its parameters: (the page, the count)."""
    where, parameters = _list_filter(query)
    return (
        (f"SELECT id, record FROM tickets WHERE {where} ORDER BY created_at, id LIMIT %s OFFSET %s",
         (*parameters, query.limit, query.offset)),
        (f"SELECT count(*) FROM tickets WHERE {where}", parameters),
    )


def _list_filter(query: TicketQuery) -> tuple[str, tuple]:
    """The WHERE clause of a list and its parameters: visible tickets, then the query's filters."""
    clauses, parameters = ["consumed_at IS NULL", "expires_at > %s"], [query.visible_after]
    if query.organization_id is not None:
        clauses.append("organization_id = %s")
        parameters.append(query.organization_id)
    if query.ticket_type is not None:
        clauses.append("ticket_type = %s")
        parameters.append(query.ticket_type)
    if query.status is not None:
        clauses.append(f"{STATUS} = %s")
        parameters += [query.now, query.status.value]
    return " AND ".join(clauses), tuple(parameters)
