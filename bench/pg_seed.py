"""Seed the PostgreSQL store in-process, through the app's own code, when the API would be too slow.

Tickets are made by the service's own `TicketService.issue_ticket` (validation, validity window,
organization, user id, fresh ids and their retry on collision), with a repository that only
collects them; they are then written with the store's own serialization (`ticket_to_record`, the
PostgreSQL store's `dump_record`, and its `COLUMNS`/`columns` that lists and purges read) by COPY, in
batches, on a connection of the store's own pool (`open_storage("", url)`, which also applies the
migrations). A sample is read back through `storage.tickets.get` and must equal what was made.

Used by bench/pg.py for the PostgreSQL rows (100,000 tickets through the API would take minutes).
"""

from __future__ import annotations

import random
import time

BATCH = 10_000


class Collector:
    """The repository `TicketService.issue_ticket` writes to: keeps the tickets, refuses taken ids."""

    def __init__(self, taken: set[str]):
        self.taken = taken
        self.made: list = []

    def add(self, ticket, events=()) -> None:
        """Keep `ticket`, or raise TicketIdTaken so that the service draws another id (no webhook endpoint
        is registered while seeding, so `events` is always empty)."""
        from tickets.storage import TicketIdTaken

        if ticket.id in self.taken:
            raise TicketIdTaken(ticket.id)
        self.taken.add(ticket.id)
        self.made.append(ticket)

    def remove_expired(self, expired_before, consumed_before) -> int:
        """The service's periodic purge (issue_ticket's purge_if_due): nothing here is ever expired."""
        return 0


class NoTokens:
    """The service's token issuer: seeding never exchanges a ticket, so it is never asked for a token."""

    def ticket_token(self, ticket) -> dict:
        """Refuses: a seeding run that asks for a token is a bug."""
        raise RuntimeError("bench/pg_seed.py issues tickets only; it makes no tokens")

    def ticket_token_length(self, ticket) -> int:
        """The service's size check on the would-be token: the bench's few small properties always fit."""
        return 0


def seed(url: str, client_id: str, organization_id: str, count: int, start: int, taken: set[str]) -> dict:
    """`count` new multi-use tickets, shaped like bench/api.py's API ones; returns ids and timings."""
    from tickets.core.domain import Policy
    from tickets.core.service import Caller, TicketService
    from tickets.storage import open_storage
    from tickets.storage.codec import ticket_to_record
    from tickets.storage.postgres import COLUMNS, columns, dump_record

    started = time.monotonic()
    collector = Collector(set(taken))
    # The service's defaults (the bench sets no TICKETS_TICKET_TTL & co.). When its purge comes due,
    # it asks the collector, which answers 0: the tickets are all fresh.
    service = TicketService(collector, Policy(), NoTokens(), consumed_ttl=14_400)
    caller = Caller(client_id=client_id, organization_id=organization_id)
    for number in range(start, start + count):
        command = {
            "type": "MULTI_USE_TICKET",
            "properties": {"customer_id": f"bench-{number}", "conference_id": f"conf-{number}", "title": "Bench"},
        }
        service.issue_ticket(caller, command)
    made = collector.made
    built = time.monotonic()

    storage = open_storage("", url)
    try:
        with storage.tickets.store.connection() as conn:
            for first in range(0, len(made), BATCH):
                with conn.transaction(), conn.cursor() as cursor:
                    with cursor.copy(f"COPY tickets (id, record, {COLUMNS}) FROM STDIN") as copy:
                        for ticket in made[first : first + BATCH]:
                            record = dump_record(ticket_to_record(ticket))
                            copy.write_row((ticket.id, record, *columns(ticket)))
            conn.execute("ANALYZE tickets")  # what autovacuum would do soon after a bulk load
        written = time.monotonic()
        for ticket in random.Random(count).sample(made, min(50, len(made))):
            stored = storage.tickets.get(ticket.id)
            if stored != ticket:
                raise RuntimeError(f"seeded ticket {ticket.id} reads back different: {stored!r} != {ticket!r}")
        total = storage.tickets.count()
    finally:
        storage.close()
    elapsed = time.monotonic() - started
    return {
        "ids": [ticket.id for ticket in made],
        "per_s": len(made) / elapsed if elapsed else 0.0,
        "build_s": built - started,
        "copy_s": written - built,
        "store_count": total,
    }
