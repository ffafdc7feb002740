"""Ticket operations: what each caller may do, and the state transitions, on top of a repository."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from datetime import datetime, timedelta

from tickets.core import clock
from tickets.core.commands import check_command_properties, check_token_fits, organization_for_create, window
from tickets.core.domain import (
    Caller,
    EventType,
    Exchange,
    ForeignOrganization,
    InvalidTicket,
    Policy,
    Ticket,
    TicketEvent,
    TicketNotFound,
    TicketRevoked,
    TicketStatus,
    TicketType,
    VersionConflict,
)
from tickets.core.exchange import Exchanger, Preview
from tickets.core.ports import (
    EventFilter,
    StorageError,
    TicketIdTaken,
    TicketPage,
    TicketQuery,
    TicketStore,
    TokenIssuer,
)
from tickets.core.rules import DEFAULT_ID_LENGTH, check_length, new_ticket_id, new_user_id, normalize_ticket_id

VersionCheck = Callable[[int], bool]
log = logging.getLogger(__name__)
__all__ = ["Caller", "Exchange", "TicketService"]


class NoWebhooks:
    """The EventFilter of an install with no webhook endpoint: no event is ever stored."""

    def wants(self, organization_id: str, event_type: EventType) -> bool:
        return False


class TicketService:
    """The management API and the exchange, as plain methods."""

    def __init__(
        self,
        repository: TicketStore,
        policy: Policy,
        tokens: TokenIssuer,
        consumed_ttl: int,
        purge_interval: int = 60,
        events: EventFilter | None = None,
    ):
        self.repository = repository
        self.policy = policy
        self.tokens = tokens
        self.consumed_ttl = consumed_ttl  # how long a used single-use ticket's token lives
        self.purge_interval = purge_interval
        self.events = events or NoWebhooks()
        self.exchanger = Exchanger(repository, policy, tokens, self.announce)
        self._last_purge = float("-inf")

    def announce(self, event_type: EventType, ticket: Ticket, reason: str | None = None) -> list[TicketEvent]:
        """The event to store with a change, if any webhook endpoint wants it."""
        if not self.events.wants(ticket.organization_id, event_type):
            return []
        return [TicketEvent(f"msg_{os.urandom(16).hex()}", event_type, clock.utcnow(), ticket, reason)]

    def issue_ticket(self, caller: Caller, command: dict) -> Ticket:
        """Create a ticket from a validated create command."""
        ticket_type = TicketType(command["type"])
        properties = command["properties"]
        organization_id = organization_for_create(caller.organization_id, command.get("organizationId"))
        check_command_properties(properties, ticket_type, check_length(command.get("length")))
        now = clock.utcnow()
        ttl = command.get("ttl")
        not_before, expires_at = window(self.policy, ticket_type, properties, now, ttl)
        ticket = Ticket(
            id="",
            type=ticket_type,
            organization_id=organization_id,
            user_id=new_user_id(properties),
            properties=properties,
            created_at=now,
            expires_at=expires_at,
            not_before=not_before,
            ttl=ttl,
            disabled=now if command.get("disabled") else None,
        )
        check_token_fits(self.tokens, ticket.replace(id="X" * (command.get("length") or DEFAULT_ID_LENGTH)))
        self.purge_if_due()
        return self._insert_with_fresh_id(ticket, command.get("length"))

    def _insert_with_fresh_id(self, ticket: Ticket, length: int | None) -> Ticket:
        for _ in range(8):
            candidate = ticket.replace(id=new_ticket_id(length))
            try:
                self.repository.add(candidate, self.announce(EventType.CREATED, candidate))
                return candidate
            except TicketIdTaken:
                continue
        raise InvalidTicket({"length": ["Too short: no free id of this length could be found; use a longer one."]})

    def get_ticket(self, caller: Caller, ticket_id: str) -> Ticket:
        """One ticket the caller may see."""
        canonical = normalize_ticket_id(ticket_id)
        if canonical is None or (caller.ticket_id and caller.ticket_id != canonical):
            raise TicketNotFound(ticket_id)
        ticket = self.repository.get(canonical)
        self._check_visible(caller, ticket, clock.utcnow())
        return ticket

    def list_tickets(
        self,
        caller: Caller,
        ticket_type: str | None = None,
        status: str | None = None,
        organization_id: str | None = None,
        offset: int = 0,
        limit: int = 10,
    ) -> TicketPage:
        """One page of the caller's visible tickets, filtered, oldest first, and how many match in all."""
        now = clock.utcnow()
        if caller.ticket_id is not None:  # a customer's token: its own ticket at most
            return self._own_ticket_page(caller, ticket_type, status, now, offset, limit)
        return self.repository.list(
            TicketQuery(
                organization_id=caller.organization_id or organization_id,
                ticket_type=ticket_type,
                status=TicketStatus(status) if status else None,
                now=now,
                visible_after=now - timedelta(seconds=self.policy.retention),
                offset=offset,
                limit=limit,
            )
        )

    def _own_ticket_page(self, caller, ticket_type, status, now, offset, limit) -> TicketPage:
        try:
            found = [self.get_ticket(caller, caller.ticket_id)]
        except TicketNotFound:
            found = []
        found = [
            ticket for ticket in found
            if (ticket_type is None or ticket.type == ticket_type) and (status is None or ticket.status(now) == status)
        ]
        return TicketPage(found[offset : offset + limit], len(found))

    def update_ticket(
        self, caller: Caller, ticket_id: str, command: dict, version_check: VersionCheck | None = None
    ) -> Ticket:
        """Replace properties (and, for a system client, the organization); recompute the window."""
        properties = command["properties"]
        new_org = command.get("organizationId")
        if new_org is not None and caller.organization_id is not None and new_org != caller.organization_id:
            raise ForeignOrganization(new_org)

        def apply(ticket: Ticket) -> Ticket:
            if ticket.revoked:
                raise TicketRevoked(ticket.id)
            check_command_properties(properties, ticket.type)
            not_before, expires_at = window(self.policy, ticket.type, properties, ticket.created_at, ticket.ttl)
            updated = ticket.replace(
                properties=properties,
                organization_id=new_org or ticket.organization_id,
                not_before=not_before,
                expires_at=expires_at,
                version=ticket.version + 1,
            )
            check_token_fits(self.tokens, updated)
            return updated

        return self._change_visible(caller, ticket_id, apply, EventType.UPDATED, version_check)

    def disable_ticket(self, caller: Caller, ticket_id: str) -> Ticket:
        """Disable; a repeat (or a revoked ticket, already unusable) changes nothing."""

        def apply(ticket: Ticket) -> Ticket:
            if ticket.disabled or ticket.revoked:
                return ticket
            now = clock.utcnow()
            return ticket.replace(disabled=now, last_disabled=now, version=ticket.version + 1)

        return self._change_visible(caller, ticket_id, apply, EventType.DISABLED)

    def enable_ticket(self, caller: Caller, ticket_id: str) -> Ticket:
        """Enable a disabled ticket; a revoked one stays revoked (TicketRevoked)."""

        def apply(ticket: Ticket) -> Ticket:
            if ticket.revoked:
                raise TicketRevoked(ticket.id)
            if not ticket.disabled:
                return ticket
            return ticket.replace(disabled=None, version=ticket.version + 1)

        return self._change_visible(caller, ticket_id, apply, EventType.ENABLED)

    def revoke_ticket(self, caller: Caller, ticket_id: str) -> Ticket:
        """Revoke for good; a repeat changes nothing."""

        def apply(ticket: Ticket) -> Ticket:
            if ticket.revoked:
                return ticket
            return ticket.replace(revoked=clock.utcnow(), version=ticket.version + 1)

        return self._change_visible(caller, ticket_id, apply, EventType.REVOKED)

    def delete_ticket(self, caller: Caller, ticket_id: str, version_check: VersionCheck | None = None) -> None:
        """Delete a ticket the caller may see."""
        self._change_visible(caller, ticket_id, lambda ticket: None, EventType.DELETED, version_check)

    def exchange_ticket(self, ticket_id: str) -> Exchange:
        """Use a ticket once and return it with its token; raises ExchangeRefused (see core.exchange)."""
        exchange = self.exchanger.exchange(ticket_id)
        self.purge_if_due()
        return exchange

    def preview_ticket(self, ticket_id: str) -> Preview:
        """What the join page may show of a ticket, to anyone holding its id; changes nothing."""
        return self.exchanger.preview(ticket_id)

    def ticket_token_active(self, ticket_id: str, issued_at: float) -> bool:
        """Whether a token issued from this ticket at `issued_at` (epoch seconds) still stands:
        the ticket is not revoked, disabled or deleted, and was not disabled since the token was made."""
        try:
            ticket = self.repository.get(ticket_id)
        except TicketNotFound:
            return False
        if ticket.revoked or ticket.disabled:
            return False
        return ticket.last_disabled is None or issued_at > ticket.last_disabled.timestamp()

    def purge(self, now: datetime | None = None) -> int:
        """Remove tickets past retention and used-up single-use records; returns how many."""
        now = now or clock.utcnow()
        self._last_purge = clock.monotonic()
        return self.repository.remove_expired(
            expired_before=now - timedelta(seconds=self.policy.retention),
            consumed_before=now - timedelta(seconds=self.consumed_ttl),
        )

    def purge_if_due(self) -> None:
        """Purge at most once per interval per process, piggybacking on writes, so the store stays bounded.

        A purge that fails is only logged: the write it follows has succeeded, and the next one retries.
        """
        if clock.monotonic() - self._last_purge >= self.purge_interval:
            try:
                self.purge()
            except StorageError as error:
                log.warning("purge failed, will retry: %s", error)

    def _change_visible(
        self,
        caller: Caller,
        ticket_id: str,
        apply: Callable[[Ticket], Ticket | None],
        event_type: EventType,
        version_check: VersionCheck | None = None,
    ) -> Ticket | None:
        canonical = normalize_ticket_id(ticket_id)
        if canonical is None:
            raise TicketNotFound(ticket_id)
        now = clock.utcnow()

        def guarded(ticket: Ticket) -> Ticket | None:
            self._check_visible(caller, ticket, now)
            if version_check is not None and not version_check(ticket.version):
                raise VersionConflict(ticket.id)
            return apply(ticket)

        def told(before: Ticket, after: Ticket | None) -> list[TicketEvent]:
            return self.announce(event_type, after or before)

        return self.repository.change(canonical, guarded, told)

    def _check_visible(self, caller: Caller, ticket: Ticket, now: datetime) -> None:
        if not self._visible(caller, ticket, now):
            raise TicketNotFound(ticket.id)

    def _visible(self, caller: Caller, ticket: Ticket, now: datetime) -> bool:
        if ticket.gone(now, self.policy.retention):
            return False
        if caller.ticket_id is not None and caller.ticket_id != ticket.id:
            return False
        return caller.organization_id is None or caller.organization_id == ticket.organization_id
