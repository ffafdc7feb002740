"""The stores behind the service: TinyDB files by default, PostgreSQL with TICKETS_DATABASE_URL.

This package is the only code that touches tinydb, psycopg or the data files. Each backend
satisfies the Protocols of tickets.core.ports, and does its own start-up steps here.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from tickets.core.ports import CorruptStore, RecordStore, StorageError, ThrottleStore, TicketIdTaken, TicketStore

__all__ = ["CorruptStore", "Storage", "StorageError", "TicketIdTaken", "open_storage"]


@dataclass
class Storage:
    """The four stores of one backend, and how to check that it answers."""

    tickets: TicketStore
    clients: RecordStore
    keys: RecordStore
    throttle: ThrottleStore
    check: Callable[[], None]
    close: Callable[[], None]


def open_storage(data_dir: str, database_url: str = "") -> Storage:
    """PostgreSQL if a database URL is given, else the TinyDB files in `data_dir`; checked and ready."""
    if database_url:
        return _open_postgres(database_url)
    return _open_tinydb(data_dir)


def _open_tinydb(data_dir: str) -> Storage:
    from tickets.storage.files import JsonStore, check_writable, prepare_data_dir, unlink_quietly
    from tickets.storage.journal import TicketRepository
    from tickets.storage.records import TinyRecordRepository
    from tickets.storage.throttle import TinyThrottleStore

    prepare_data_dir(data_dir)
    check_writable(data_dir)
    stores = {name: JsonStore(os.path.join(data_dir, f"{name}.json")) for name in ("tickets", "clients", "keys")}
    # Throttle counters are disposable (never fsynced): a torn file is dropped, not refused.
    stores["throttle"] = JsonStore(os.path.join(data_dir, "throttle.json"), durable=False)
    try:
        stores["throttle"].check()
    except CorruptStore:
        unlink_quietly(stores["throttle"].path)
    for store in stores.values():
        store.check()
        store.ensure_exists()
    tickets = TicketRepository(stores["tickets"])
    tickets.prepare()

    def check() -> None:
        for store in stores.values():
            store.check()

    return Storage(
        tickets=tickets,
        clients=TinyRecordRepository(stores["clients"], "clients"),
        keys=TinyRecordRepository(stores["keys"], "keys"),
        throttle=TinyThrottleStore(stores["throttle"]),
        check=check,
        close=lambda: None,
    )


def _open_postgres(database_url: str) -> Storage:
    from tickets.storage.postgres import PgRecordRepository, PgStore, PgThrottleStore, PgTicketRepository

    store = PgStore(database_url)
    store.migrate()
    return Storage(
        tickets=PgTicketRepository(store),
        clients=PgRecordRepository(store, "oauth_clients"),
        keys=PgRecordRepository(store, "signing_keys"),
        throttle=PgThrottleStore(store),
        check=store.check,
        close=store.close,
    )
