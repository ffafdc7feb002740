"""What a TinyDB worker keeps in memory: each ticket's record bytes, and an index per organization.

Records stay as their compact JSON bytes (a fraction of the memory of parsed dicts) and are decoded
when read. The index holds what a list filters and orders on, so a list costs the caller's own
tickets and the page, never the whole store.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from datetime import datetime

from sortedcontainers import SortedList

from tickets.core.domain import Ticket, TicketStatus
from tickets.core.ports import StorageError, TicketPage, TicketQuery
from tickets.storage.codec import parse_time, record_to_ticket
from tickets.storage.files import parse_json
from tickets.storage.outbox import OutboxState


@dataclass(frozen=True, slots=True)
class Entry:
    """A ticket's fields that lists and purges look at."""

    organization_id: str
    created: float
    ticket_type: str
    disabled: bool
    revoked: bool
    expires: float
    consumed: float | None

    @classmethod
    def of(cls, record: dict) -> Entry:
        consumed = parse_time(record.get("consumedAt"))
        return cls(
            organization_id=record["organizationId"],
            created=parse_time(record["createdAt"]).timestamp(),
            ticket_type=record["type"],
            disabled=bool(record.get("disabled")),
            revoked=bool(record.get("revoked")),
            expires=parse_time(record["expiresAt"]).timestamp(),
            consumed=consumed.timestamp() if consumed else None,
        )

    def status(self, now: float) -> TicketStatus:
        """As Ticket.status: revoked, else disabled, else expired, else active."""
        if self.revoked:
            return TicketStatus.REVOKED
        if self.disabled:
            return TicketStatus.DISABLED
        if now >= self.expires:
            return TicketStatus.EXPIRED
        return TicketStatus.ACTIVE

    def matches(self, query: TicketQuery, now: float, visible_after: float) -> bool:
        return (
            self.consumed is None
            and self.expires > visible_after
            and (query.ticket_type is None or self.ticket_type == query.ticket_type)
            and (query.status is None or self.status(now) == query.status)
        )


class TicketIndex:
    """Records by id, entries by id, and (created, id) in order per organization; and what else lives in
    the same log: the revoked tokens (jti: when the token expires) and the webhooks' outbox."""

    def __init__(self, keep_tickets: bool = True):
        # False in the webhook deliverer, which reads the log only for its outbox: tickets.storage.opening
        # passes ticket records over, and asking it for one is an error rather than an empty answer.
        self.keeps_tickets = keep_tickets
        self.records: dict[str, bytes] = {}
        self.entries: dict[str, Entry] = {}
        self.by_organization: dict[str, SortedList] = {}
        self.revoked: dict[str, float] = {}
        self.outbox = OutboxState()

    def put(self, ticket_id: str, raw: bytes, record: dict) -> None:
        """Insert or replace one ticket (`record` is `raw` parsed)."""
        self.remove(ticket_id)
        entry = Entry.of(record)
        self.records[ticket_id] = raw
        self.entries[ticket_id] = entry
        self.by_organization.setdefault(entry.organization_id, SortedList()).add((entry.created, ticket_id))

    def remove(self, ticket_id: str) -> None:
        entry = self.entries.pop(ticket_id, None)
        if entry is None:
            return
        del self.records[ticket_id]
        ordered = self.by_organization[entry.organization_id]
        ordered.remove((entry.created, ticket_id))
        if not ordered:
            del self.by_organization[entry.organization_id]

    def has(self, ticket_id: str) -> bool:
        return ticket_id in self._kept()

    def ids(self) -> list[str]:
        return list(self._kept())

    def count(self) -> int:
        return len(self._kept())

    def ticket(self, ticket_id: str) -> Ticket | None:
        raw = self._kept().get(ticket_id)
        return None if raw is None else record_to_ticket(ticket_id, parse_json(raw))

    def page(self, query: TicketQuery) -> TicketPage:
        """One page of the matching tickets, oldest first, and how many match in all."""
        self._kept()
        now, visible_after = query.now.timestamp(), query.visible_after.timestamp()
        if query.organization_id is None:
            ordered = heapq.merge(*self.by_organization.values())
        else:
            ordered = self.by_organization.get(query.organization_id, ())
        total, chosen = 0, []
        for _, ticket_id in ordered:
            if self.entries[ticket_id].matches(query, now, visible_after):
                if query.offset <= total < query.offset + query.limit:
                    chosen.append(ticket_id)
                total += 1
        return TicketPage([self.ticket(ticket_id) for ticket_id in chosen], total)

    def expired(self, expired_before: datetime, consumed_before: datetime) -> list[str]:
        """Ids of tickets expired at or before `expired_before`, or used up at or before `consumed_before`."""
        self._kept()
        expired, consumed = expired_before.timestamp(), consumed_before.timestamp()
        return [
            ticket_id
            for ticket_id, entry in self.entries.items()
            if entry.expires <= expired or (entry.consumed is not None and entry.consumed <= consumed)
        ]

    def _kept(self) -> dict[str, bytes]:
        if not self.keeps_tickets:
            raise StorageError("this process reads the log for the webhooks' outbox only; it keeps no tickets")
        return self.records
