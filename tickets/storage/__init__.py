"""The stores behind the service: TinyDB files by default, PostgreSQL with TICKETS_DATABASE_URL.

This package is the only code that touches tinydb, psycopg or the data files. Each backend
satisfies the Protocols of tickets.core.ports, and does its own start-up steps here.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from tickets.core.ports import (
    CorruptStore,
    Outbox,
    RecordStore,
    RevocationStore,
    StorageError,
    ThrottleStore,
    TicketIdTaken,
    TicketStore,
)

__all__ = ["CorruptStore", "Storage", "StorageError", "TicketIdTaken", "open_storage"]


@dataclass
class Storage:
    """The stores of one backend, and how to check that it answers."""

    tickets: TicketStore
    clients: RecordStore
    keys: RecordStore
    throttle: ThrottleStore
    revoked: RevocationStore
    webhooks: RecordStore  # the webhook endpoints
    outbox: Outbox
    check: Callable[[], None]
    close: Callable[[], None]


def open_storage(
    data_dir: str, database_url: str = "", throttle_limit: int = 10, fold_bytes: int = 4 * 1024 * 1024,
    keep_tickets: bool = True,
) -> Storage:
    """PostgreSQL if a database URL is given, else the TinyDB files in `data_dir`; checked and ready.

    TinyDB only: `throttle_limit` is the failures per minute the throttle counts up to (the file keeps
    that many per address); the ticket log is folded into the snapshot from `fold_bytes` on; without
    `keep_tickets` (the webhook deliverer) only the outbox is read from it.
    """
    if database_url:
        return _open_postgres(database_url)
    return _open_tinydb(data_dir, throttle_limit, fold_bytes, keep_tickets)


def _open_tinydb(data_dir: str, throttle_limit: int, fold_bytes: int, keep_tickets: bool) -> Storage:
    from tickets.storage.counters import MappedThrottleStore
    from tickets.storage.files import check_writable, prepare_data_dir, unlink_quietly
    from tickets.storage.outbox import LogOutbox
    from tickets.storage.records import JsonStore, TinyRecordRepository
    from tickets.storage.snapshot import read_header
    from tickets.storage.tickets import LogTicketStore

    prepare_data_dir(data_dir)
    check_writable(data_dir)
    read_header(os.path.join(data_dir, "tickets.json"))  # a newer format is refused before anything is made
    records = {name: JsonStore(os.path.join(data_dir, f"{name}.json")) for name in ("clients", "keys", "webhooks")}
    for store in records.values():
        store.check()
    # Opening converts an older folder, which has no webhooks.json yet.
    tickets = LogTicketStore(data_dir, fold_bytes, keep_tickets)
    for store in records.values():
        store.ensure_exists()
    unlink_quietly(os.path.join(data_dir, "throttle.json"))  # the previous format's counters: they may reset

    def check() -> None:
        for store in records.values():
            store.check()
        tickets.check()

    return Storage(
        tickets=tickets,
        clients=TinyRecordRepository(records["clients"], "clients"),
        keys=TinyRecordRepository(records["keys"], "keys"),
        throttle=MappedThrottleStore(os.path.join(data_dir, "throttle.bin"), throttle_limit),
        revoked=tickets,  # revocations are records of the same log
        webhooks=TinyRecordRepository(records["webhooks"], "endpoints"),
        outbox=LogOutbox(tickets),  # so are the webhooks' events, with the changes they report
        check=check,
        close=tickets.close,
    )


def _open_postgres(database_url: str) -> Storage:
    from tickets.storage.pg_outbox import PgOutbox
    from tickets.storage.pg_records import PgRecordRepository, PgRevocationStore, PgThrottleStore
    from tickets.storage.postgres import PgStore, PgTicketRepository

    store = PgStore(database_url)
    store.migrate()
    return Storage(
        tickets=PgTicketRepository(store),
        clients=PgRecordRepository(store, "oauth_clients"),
        keys=PgRecordRepository(store, "signing_keys"),
        throttle=PgThrottleStore(store),
        revoked=PgRevocationStore(store),
        webhooks=PgRecordRepository(store, "webhook_endpoints"),
        outbox=PgOutbox(store),
        check=store.check,
        close=store.close,
    )
