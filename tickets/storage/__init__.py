"""The stores behind the service: TinyDB files by default, PostgreSQL with TICKETS_DATABASE_URL.

This package is the only code that touches tinydb, psycopg or the data files.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tickets.storage.common import CorruptStore, StorageError, TicketIdTaken

__all__ = ["CorruptStore", "Storage", "StorageError", "TicketIdTaken", "open_storage"]


@dataclass
class Storage:
    """The four repositories of one backend, and how to check that it answers."""

    tickets: object
    clients: object
    keys: object
    throttle: object
    check: Callable[[], None]
    close: Callable[[], None]


def open_storage(data_dir: str, database_url: str = "") -> Storage:
    """PostgreSQL if a database URL is given, else the TinyDB files in `data_dir`; checked and ready."""
    if database_url:
        return _open_postgres(database_url)
    return _open_tinydb(data_dir)


def _open_tinydb(data_dir: str) -> Storage:
    from tickets.storage import tinydb_store as tiny

    stores = tiny.open_stores(data_dir)

    def check() -> None:
        for store in stores.values():
            store.check()

    return Storage(
        tickets=tiny.TicketRepository(stores["tickets"]),
        clients=tiny.TinyRecordRepository(stores["clients"], "clients"),
        keys=tiny.TinyRecordRepository(stores["keys"], "keys"),
        throttle=tiny.TinyThrottleStore(stores["throttle"]),
        check=check,
        close=lambda: None,
    )


def _open_postgres(database_url: str) -> Storage:
    from tickets.storage import postgres_store as pg

    store = pg.PgStore(database_url)
    store.migrate()
    return Storage(
        tickets=pg.PgTicketRepository(store),
        clients=pg.PgRecordRepository(store, "oauth_clients"),
        keys=pg.PgRecordRepository(store, "signing_keys"),
        throttle=pg.PgThrottleStore(store),
        check=store.check,
        close=store.close,
    )
