"""The PostgreSQL store, for several app nodes on one database: the same interfaces as the TinyDB store."""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from datetime import datetime
from importlib import resources

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from tickets.core.domain import Ticket, TicketNotFound
from tickets.core.ports import StorageError, TicketIdTaken
from tickets.storage.codec import record_to_ticket, ticket_to_record

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
    """Tickets in table `tickets`; each change is one transaction holding the row lock."""

    def __init__(self, store: PgStore):
        self.store = store

    def get(self, ticket_id: str) -> Ticket:
        with self.store.connection() as conn:
            row = conn.execute("SELECT record FROM tickets WHERE id = %s", (ticket_id,)).fetchone()
        if row is None:
            raise TicketNotFound(ticket_id)
        return record_to_ticket(ticket_id, json.loads(row[0]))

    def add(self, ticket: Ticket) -> None:
        with self.store.connection() as conn:
            inserted = conn.execute(
                "INSERT INTO tickets (id, record, expires_at, consumed_at) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (id) DO NOTHING",
                (ticket.id, dump_record(ticket_to_record(ticket)), ticket.expires_at, ticket.consumed_at),
            ).rowcount
        if not inserted:
            raise TicketIdTaken(ticket.id)

    def change(self, ticket_id: str, decide: Callable[[Ticket], Ticket | None]) -> Ticket | None:
        """SELECT ... FOR UPDATE, decide, then UPDATE or DELETE, in one transaction: no read-then-write race."""
        with self.store.transaction() as conn:
            row = conn.execute("SELECT record FROM tickets WHERE id = %s FOR UPDATE", (ticket_id,)).fetchone()
            if row is None:
                raise TicketNotFound(ticket_id)
            current = record_to_ticket(ticket_id, json.loads(row[0]))
            updated = decide(current)
            if updated is None:
                conn.execute("DELETE FROM tickets WHERE id = %s", (ticket_id,))
            elif updated is not current:
                conn.execute(
                    "UPDATE tickets SET record = %s, expires_at = %s, consumed_at = %s WHERE id = %s",
                    (dump_record(ticket_to_record(updated)), updated.expires_at, updated.consumed_at, ticket_id),
                )
            return updated

    def all(self) -> list[Ticket]:
        with self.store.connection() as conn:
            rows = conn.execute("SELECT id, record FROM tickets").fetchall()
        return [record_to_ticket(ticket_id, json.loads(record)) for ticket_id, record in rows]

    def remove_expired(self, expired_before: datetime, consumed_before: datetime) -> int:
        with self.store.connection() as conn:
            return conn.execute(
                "DELETE FROM tickets WHERE expires_at <= %s OR consumed_at <= %s", (expired_before, consumed_before)
            ).rowcount

    def count(self) -> int:
        with self.store.connection() as conn:
            return conn.execute("SELECT count(*) FROM tickets").fetchone()[0]


class PgRecordRepository:
    """Plain records (OAuth clients, signing keys) keyed by id in one table."""

    def __init__(self, store: PgStore, table: str):
        assert table in ("oauth_clients", "signing_keys")
        self.store = store
        self.table = table
        self.lock_key = zlib.crc32(table.encode())

    def get(self, record_id: str) -> dict | None:
        with self.store.connection() as conn:
            row = conn.execute(f"SELECT record FROM {self.table} WHERE id = %s", (record_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, record_id: str, record: dict) -> None:
        with self.store.connection() as conn:
            conn.execute(
                f"INSERT INTO {self.table} (id, record) VALUES (%s, %s) "
                "ON CONFLICT (id) DO UPDATE SET record = EXCLUDED.record",
                (record_id, dump_record(record)),
            )

    def delete(self, record_id: str) -> bool:
        with self.store.connection() as conn:
            return bool(conn.execute(f"DELETE FROM {self.table} WHERE id = %s", (record_id,)).rowcount)

    def all(self) -> dict[str, dict]:
        with self.store.connection() as conn:
            rows = conn.execute(f"SELECT id, record FROM {self.table}").fetchall()
        return {record_id: json.loads(record) for record_id, record in rows}

    def remove_many(self, record_ids: Iterable[str]) -> None:
        with self.store.connection() as conn:
            conn.execute(f"DELETE FROM {self.table} WHERE id = ANY(%s)", (list(record_ids),))

    @contextmanager
    def locked(self):
        """A session advisory lock: excludes every other writer of this table, on every node."""
        with self.store.connection() as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (self.lock_key,))
            try:
                yield
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (self.lock_key,))


class PgThrottleStore:
    """Failed exchanges per address, shared by every node."""

    def __init__(self, store: PgStore):
        self.store = store

    def recent(self, address: str, since: float) -> list[float]:
        with self.store.connection() as conn:
            rows = conn.execute(
                "SELECT at FROM exchange_failures WHERE address = %s AND at > %s", (address, since)
            ).fetchall()
        return [row[0] for row in rows]

    def record(self, address: str, now: float, since: float) -> None:
        with self.store.transaction() as conn:
            conn.execute("DELETE FROM exchange_failures WHERE at <= %s", (since,))
            conn.execute("INSERT INTO exchange_failures (address, at) VALUES (%s, %s)", (address, now))
