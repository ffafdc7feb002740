"""The PostgreSQL store's plain records (OAuth clients, signing keys, webhook endpoints), the throttle and
revoked tokens: small tables every node shares, beside the tickets (tickets/storage/postgres.py)."""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable
from contextlib import contextmanager

from tickets.storage.postgres import PgStore, dump_record


class PgRecordRepository:
    """Plain records (OAuth clients, signing keys) keyed by id in one table."""

    def __init__(self, store: PgStore, table: str):
        assert table in ("oauth_clients", "signing_keys", "webhook_endpoints")
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

    def version(self) -> None:
        """Unknown without a round trip: copies kept in memory refresh every second (see RecordStore.version)."""
        return None

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
        """One statement: count this failure and forget every expired one (amortized, a row or two each)."""
        with self.store.connection() as conn:
            conn.execute(
                "WITH expired AS (DELETE FROM exchange_failures WHERE at <= %s) "
                "INSERT INTO exchange_failures (address, at) VALUES (%s, %s)",
                (since, address, now),
            )


class PgRevocationStore:
    """Revoked tokens, shared by every node."""

    def __init__(self, store: PgStore):
        self.store = store

    def revoke(self, jti: str, expires_at: float) -> None:
        """One statement: remember this one and forget those that have expired (amortized, a row or two each)."""
        with self.store.connection() as conn:
            conn.execute(
                "WITH expired AS (DELETE FROM revoked_tokens WHERE expires_at < extract(epoch FROM now())) "
                "INSERT INTO revoked_tokens (jti, expires_at) VALUES (%s, %s) ON CONFLICT (jti) DO NOTHING",
                (jti, expires_at),
            )

    def is_revoked(self, jti: str) -> bool:
        with self.store.connection() as conn:
            return conn.execute("SELECT 1 FROM revoked_tokens WHERE jti = %s", (jti,)).fetchone() is not None
