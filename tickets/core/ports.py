"""The seams below the domain: what a store must do, and what it may raise; and who makes tokens.

Both backends (tickets.storage: TinyDB files and PostgreSQL) satisfy these Protocols, and one
contract test suite (tests/storage/test_contract.py) runs against each.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from collections.abc import Set as AbstractSet
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple, Protocol

from tickets.core.domain import EventType, Ticket, TicketEvent, TicketStatus

Decision = Callable[[Ticket], "Ticket | None"]
# What a change tells the webhooks: (the ticket before, the ticket after or None when deleted) -> events.
Announcement = Callable[[Ticket, "Ticket | None"], Sequence[TicketEvent]]
# Which webhook endpoints want an event: (organization id, event type) -> endpoint ids.
Targets = Callable[[str, EventType], list[str]]


class StorageError(Exception):
    """The store cannot be read or written; the message names the file (or the database)."""


class CorruptStore(StorageError):
    """A data file exists but is not what this service wrote; it is left untouched."""


class TicketIdTaken(Exception):
    """An id collision on insert: the caller draws a new id."""


@dataclass(frozen=True)
class TicketQuery:
    """One page of a list: the filters, the time that decides status and visibility, and the page."""

    organization_id: str | None  # None: every organization (a system client)
    ticket_type: str | None
    status: TicketStatus | None
    now: datetime
    visible_after: datetime  # tickets whose expiresAt is at or before this are past retention: gone
    offset: int
    limit: int


@dataclass(frozen=True)
class TicketPage:
    """The page's tickets, oldest first (createdAt, then id), and how many match in all."""

    tickets: list[Ticket]
    total: int


class TicketStore(Protocol):
    """Tickets by id. Raises TicketNotFound for an unknown id and StorageError when it cannot answer."""

    def get(self, ticket_id: str) -> Ticket:
        """The stored ticket (used-up single-use records included: the service decides who sees them)."""

    def add(self, ticket: Ticket, events: Sequence[TicketEvent] = ()) -> None:
        """Insert a new ticket, and `events` in the same atomic change; TicketIdTaken if the id exists."""

    def change(self, ticket_id: str, decide: Decision, announce: Announcement | None = None) -> Ticket | None:
        """Apply `decide` to the current ticket, excluding every other change of it on every worker and node:
        it returns the ticket to store (the same object for no change) or None to delete it, or raises to refuse.
        When something changed, `announce(before, after)` gives the events stored in the same atomic change.
        Returns what `decide` returned, once it is durable."""

    def publish(self, events: Sequence[TicketEvent]) -> None:
        """Store events that come with no change of a ticket (a refused exchange), durably."""

    def all(self) -> list[Ticket]:
        """Every stored ticket."""

    def list(self, query: TicketQuery) -> TicketPage:
        """The visible tickets matching `query` (used-up ones never match), at the cost of the
        organization's own tickets and the page, however many others the store holds."""

    def remove_expired(self, expired_before: datetime, consumed_before: datetime) -> int:
        """Delete tickets expired at or before `expired_before`, and used-up ones consumed at or before
        `consumed_before`; returns how many."""

    def count(self) -> int:
        """How many tickets are stored."""


class RecordStore(Protocol):
    """Small JSON records by id (OAuth clients, signing keys)."""

    def get(self, record_id: str) -> dict | None:
        """A copy of the record, or None."""

    def put(self, record_id: str, record: dict) -> None:
        """Insert, or replace whole."""

    def delete(self, record_id: str) -> bool:
        """Remove; False if there was none."""

    def all(self) -> dict[str, dict]:
        """Every record by id; callers must not change what they get."""

    def remove_many(self, record_ids: Iterable[str]) -> None:
        """Remove these ids, where present."""

    def locked(self) -> AbstractContextManager:
        """Excludes every other writer of these records, in any process and on any node."""

    def version(self) -> object | None:
        """A value that changes whenever any record changes, cheap to ask (no round trip); None if the
        store cannot tell that cheaply, and then copies kept in memory are refreshed every second."""


class ThrottleStore(Protocol):
    """Failed exchanges per client address, shared by every worker and node."""

    def recent(self, address: str, since: float) -> list[float]:
        """The times (Unix seconds) of this address's failures after `since`."""

    def record(self, address: str, now: float, since: float) -> None:
        """Count a failure at `now`; failures at or before `since` may be forgotten."""


class RevocationStore(Protocol):
    """Tokens revoked before their time (RFC 7009), by jti, remembered until they would have expired."""

    def revoke(self, jti: str, expires_at: float) -> None:
        """Remember that the token `jti` (expiring at `expires_at`, Unix seconds) is revoked, durably."""

    def is_revoked(self, jti: str) -> bool:
        """Whether the token `jti` was revoked (by any worker, on any node)."""


class EventFilter(Protocol):
    """Which events anyone has asked to be told of (the webhooks' endpoints): no one, no event stored."""

    def wants(self, organization_id: str, event_type: EventType) -> bool:
        """Whether an endpoint receives events of this type for this organization."""


class TokenIssuer(Protocol):
    """Makes the access token a successful exchange hands out (the OAuth layer implements it)."""

    def ticket_token(self, ticket: Ticket) -> dict:
        """The RFC 6749 token response for a customer holding `ticket`."""

    def ticket_token_length(self, ticket: Ticket) -> int:
        """How many characters the access token of `ticket` would have (without signing one)."""


class Delivery(NamedTuple):
    """One event owed to one webhook endpoint, and how many attempts were made so far. The event is as the store
    keeps it (tickets.storage.codec.event_to_record, the ticket included): its message is made from that. (A
    NamedTuple, as Outcome: one of each is made per message, at a third of a frozen dataclass's cost.)"""

    event: dict
    endpoint_id: str
    attempts: int

    @property
    def event_id(self) -> str:
        return self.event["id"]

    @property
    def event_type(self) -> str:
        return self.event["type"]


class Outcome(NamedTuple):
    """What an attempt came to. `next_at` (Unix seconds) is when to try again; None: no more tries."""

    event_id: str
    endpoint_id: str
    attempts: int
    # delivered, failed (to be retried), gave_up, gone (410: the endpoint is disabled), dropped (the endpoint
    # is gone or disabled), deferred (not tried: an earlier message to the endpoint failed; due with its retry)
    result: str
    status: int | None
    at: float
    next_at: float | None = None


class Outbox(Protocol):
    """Events kept for the webhooks until every endpoint that wants them has them (or gave up)."""

    def lead(self) -> bool:
        """Whether this process may deliver now: one deliverer per event, across workers and nodes."""

    def due(self, now: float, targets: Targets, limit: int, skip: AbstractSet[str] = frozenset()) -> list[Delivery]:
        """Deliveries whose time has come (at most `limit`), the endpoints of each event chosen by `targets`
        once, none for the endpoints in `skip` (busy with earlier ones); they are this deliverer's until
        settled (or, on PostgreSQL, for a lease of a minute)."""

    def settle(self, outcomes: Sequence[Outcome]) -> None:
        """Record what attempts came to, durably; an event owed to no one any more is dropped."""

    def forget_plan(self) -> None:
        """Deliveries handed out but never settled (a round that failed) are due again."""

    def backlog(self, targets: Targets) -> dict[str, dict]:
        """Per endpoint id: {"pending": deliveries owed, "last": the last outcome or None}."""

    def oldest(self) -> float | None:
        """When the oldest event still owed to someone happened (Unix seconds), or None."""
