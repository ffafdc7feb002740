"""A TicketStore in a dict, for unit tests of the service: the Protocol's semantics without files or SQL.

It behaves as tickets/storage's stores do: unknown ids raise TicketNotFound, a taken id TicketIdTaken, callers
get copies (changing one alters nothing stored), and change() runs `decide` under a lock, storing only what it
returns (nothing for the very object it was given, a deletion for None, nothing at all if it raises).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Sequence
from datetime import datetime

from tickets.core.domain import Ticket, TicketEvent, TicketNotFound
from tickets.core.ports import TicketIdTaken, TicketPage, TicketQuery


class MemoryTicketStore:
    """Tickets by id in a dict shared by every view opened on it with sibling(), as worker processes share a file."""

    def __init__(self, tickets: dict[str, Ticket] | None = None, lock: threading.Lock | None = None, events=None):
        self.tickets = {} if tickets is None else tickets  # id -> the stored object, never handed out
        self.lock = lock or threading.Lock()
        self.events: list[TicketEvent] = [] if events is None else events  # stored with their changes

    def sibling(self) -> MemoryTicketStore:
        """Another store on the same tickets and lock: a second worker, or another node."""
        return MemoryTicketStore(self.tickets, self.lock, self.events)

    def get(self, ticket_id: str) -> Ticket:
        with self.lock:
            stored = self.tickets.get(ticket_id)
            if stored is None:
                raise TicketNotFound(ticket_id)
            return copy.deepcopy(stored)

    def add(self, ticket: Ticket, events: Sequence[TicketEvent] = ()) -> None:
        with self.lock:
            if ticket.id in self.tickets:
                raise TicketIdTaken(ticket.id)
            self.tickets[ticket.id] = copy.deepcopy(ticket)
            self.events.extend(events)

    def change(self, ticket_id: str, decide: Callable[[Ticket], Ticket | None], announce=None) -> Ticket | None:
        with self.lock:
            stored = self.tickets.get(ticket_id)
            if stored is None:
                raise TicketNotFound(ticket_id)
            current = copy.deepcopy(stored)
            updated = decide(current)
            if updated is None:
                del self.tickets[ticket_id]
            elif updated is not current:
                self.tickets[ticket_id] = copy.deepcopy(updated)
            if updated is not current and announce is not None:
                self.events.extend(announce(current, updated))
            return updated

    def publish(self, events: Sequence[TicketEvent]) -> None:
        with self.lock:
            self.events.extend(events)

    def all(self) -> list[Ticket]:
        with self.lock:
            return [copy.deepcopy(ticket) for ticket in self.tickets.values()]

    def list(self, query: TicketQuery) -> TicketPage:
        with self.lock:
            matching = sorted(
                (ticket for ticket in self.tickets.values() if _matches(ticket, query)),
                key=lambda ticket: (ticket.created_at, ticket.id),
            )
            page = matching[query.offset : query.offset + query.limit]
            return TicketPage([copy.deepcopy(ticket) for ticket in page], len(matching))

    def remove_expired(self, expired_before: datetime, consumed_before: datetime) -> int:
        with self.lock:
            gone = [
                ticket_id
                for ticket_id, ticket in self.tickets.items()
                if ticket.expires_at <= expired_before
                or (ticket.consumed_at is not None and ticket.consumed_at <= consumed_before)
            ]
            for ticket_id in gone:
                del self.tickets[ticket_id]
            return len(gone)

    def count(self) -> int:
        with self.lock:
            return len(self.tickets)


def _matches(ticket: Ticket, query: TicketQuery) -> bool:
    """What TicketStore.list selects: visible (not used up, not past retention), then the filters."""
    return (
        ticket.consumed_at is None
        and ticket.expires_at > query.visible_after
        and (query.organization_id is None or ticket.organization_id == query.organization_id)
        and (query.ticket_type is None or ticket.type == query.ticket_type)
        and (query.status is None or ticket.status(query.now) == query.status)
    )
