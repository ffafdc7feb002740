"""Ticket operations: what each caller may do, and the state transitions, on top of a repository."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from tickets.core import clock
from tickets.core.domain import (
    ExchangeRefused,
    ForeignOrganization,
    InvalidTicket,
    Policy,
    Refusal,
    Ticket,
    TicketNotFound,
    TicketRevoked,
    TicketStatus,
    TicketType,
    VersionConflict,
)
from tickets.core.ports import StorageError, TicketIdTaken, TicketPage, TicketQuery, TicketStore, TokenIssuer
from tickets.core.rules import (
    AUTHORIZATION_PREFIX,
    DEFAULT_ID_LENGTH,
    MAX_AUTHORIZATION_LINE,
    check_json_value,
    check_length,
    check_properties,
    new_ticket_id,
    new_user_id,
    normalize_ticket_id,
    validity_window,
)

VersionCheck = Callable[[int], bool]
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Caller:
    """Who is asking: an organization's client, a system client (organization None), or a ticket's own token."""

    client_id: str | None
    organization_id: str | None
    ticket_id: str | None = None


@dataclass(frozen=True)
class Exchange:
    """A successful exchange: the ticket as used, and the token it yielded."""

    ticket: Ticket
    token: dict


class _ChangedMeanwhile(Exception):
    """The ticket changed between signing its token and using it: sign again."""


class TicketService:
    """The management API and the exchange, as plain methods."""

    def __init__(
        self, repository: TicketStore, policy: Policy, tokens: TokenIssuer, consumed_ttl: int, purge_interval: int = 60
    ):
        self.repository = repository
        self.policy = policy
        self.tokens = tokens
        self.consumed_ttl = consumed_ttl  # how long a used single-use ticket's token lives
        self.purge_interval = purge_interval
        self._last_purge = float("-inf")

    def issue_ticket(self, caller: Caller, command: dict) -> Ticket:
        """Create a ticket from a validated create command."""
        ticket_type = TicketType(command["type"])
        properties = command["properties"]
        organization_id = self._organization_for_create(caller, command.get("organizationId"))
        self._check_properties(properties, ticket_type, check_length(command.get("length")))
        now = clock.utcnow()
        ttl = command.get("ttl")
        not_before, expires_at = self._window(ticket_type, properties, now, ttl)
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
        self._check_token_fits(ticket.replace(id="X" * (command.get("length") or DEFAULT_ID_LENGTH)))
        self.purge_if_due()
        return self._insert_with_fresh_id(ticket, command.get("length"))

    def _insert_with_fresh_id(self, ticket: Ticket, length: int | None) -> Ticket:
        for _ in range(8):
            candidate = ticket.replace(id=new_ticket_id(length))
            try:
                self.repository.add(candidate)
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
            self._check_properties(properties, ticket.type)
            not_before, expires_at = self._window(ticket.type, properties, ticket.created_at, ticket.ttl)
            updated = ticket.replace(
                properties=properties,
                organization_id=new_org or ticket.organization_id,
                not_before=not_before,
                expires_at=expires_at,
                version=ticket.version + 1,
            )
            self._check_token_fits(updated)
            return updated

        return self._change_visible(caller, ticket_id, apply, version_check)

    def disable_ticket(self, caller: Caller, ticket_id: str) -> Ticket:
        """Disable; a repeat (or a revoked ticket, already unusable) changes nothing."""

        def apply(ticket: Ticket) -> Ticket:
            if ticket.disabled or ticket.revoked:
                return ticket
            now = clock.utcnow()
            return ticket.replace(disabled=now, last_disabled=now, version=ticket.version + 1)

        return self._change_visible(caller, ticket_id, apply)

    def enable_ticket(self, caller: Caller, ticket_id: str) -> Ticket:
        """Enable a disabled ticket; a revoked one stays revoked (TicketRevoked)."""

        def apply(ticket: Ticket) -> Ticket:
            if ticket.revoked:
                raise TicketRevoked(ticket.id)
            if not ticket.disabled:
                return ticket
            return ticket.replace(disabled=None, version=ticket.version + 1)

        return self._change_visible(caller, ticket_id, apply)

    def revoke_ticket(self, caller: Caller, ticket_id: str) -> Ticket:
        """Revoke for good; a repeat changes nothing."""

        def apply(ticket: Ticket) -> Ticket:
            if ticket.revoked:
                return ticket
            return ticket.replace(revoked=clock.utcnow(), version=ticket.version + 1)

        return self._change_visible(caller, ticket_id, apply)

    def delete_ticket(self, caller: Caller, ticket_id: str, version_check: VersionCheck | None = None) -> None:
        """Delete a ticket the caller may see."""
        self._change_visible(caller, ticket_id, lambda ticket: None, version_check)

    def exchange_ticket(self, ticket_id: str) -> Exchange:
        """Use a ticket once and return it with its token; raises ExchangeRefused.

        The token is signed first, outside the store's lock, then the use is one locked change that
        checks the ticket is still the one signed for (same version, still usable): of concurrent
        exchanges of a single-use ticket exactly one succeeds, whichever worker serves it, and a
        token that cannot be made leaves the ticket unused.
        """
        canonical = normalize_ticket_id(ticket_id or "")
        if canonical is None:
            raise ExchangeRefused(Refusal.NOT_FOUND)
        while True:
            try:
                return self._try_exchange(canonical)
            except _ChangedMeanwhile:
                continue

    def _try_exchange(self, ticket_id: str) -> Exchange:
        now = clock.utcnow()
        try:
            read = self._exchangeable(self.repository.get(ticket_id), now)
        except TicketNotFound:
            raise ExchangeRefused(Refusal.NOT_FOUND) from None
        token = self.tokens.ticket_token(read)

        def use(ticket: Ticket) -> Ticket:
            self._exchangeable(ticket, now)
            if ticket.version != read.version:  # properties or organization changed: the claims would be stale
                raise _ChangedMeanwhile(ticket_id)
            used = ticket.replace(use_count=ticket.use_count + 1, last_used_at=now)
            return used.replace(consumed_at=now) if ticket.type.single_use else used

        try:
            used = self.repository.change(ticket_id, use)
        except TicketNotFound:
            raise ExchangeRefused(Refusal.NOT_FOUND) from None
        self.purge_if_due()
        return Exchange(used, token)

    def _exchangeable(self, ticket: Ticket, now: datetime) -> Ticket:
        """The ticket, if it can be exchanged at `now`; else ExchangeRefused with the reason."""
        if ticket.gone(now, self.policy.retention):
            raise ExchangeRefused(Refusal.NOT_FOUND)
        refusal = ticket.refusal(now)
        if refusal:
            raise ExchangeRefused(refusal, ticket.type)
        return ticket

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

        return self.repository.change(canonical, guarded)

    def _check_visible(self, caller: Caller, ticket: Ticket, now: datetime) -> None:
        if not self._visible(caller, ticket, now):
            raise TicketNotFound(ticket.id)

    def _visible(self, caller: Caller, ticket: Ticket, now: datetime) -> bool:
        if ticket.gone(now, self.policy.retention):
            return False
        if caller.ticket_id is not None and caller.ticket_id != ticket.id:
            return False
        return caller.organization_id is None or caller.organization_id == ticket.organization_id

    def _organization_for_create(self, caller: Caller, requested: str | None) -> str:
        if caller.organization_id is None:
            if not requested:
                raise InvalidTicket({"organizationId": ["Required for a system client (one without an organization)."]})
            return requested
        if requested and requested != caller.organization_id:
            raise ForeignOrganization(requested)
        return caller.organization_id

    def _window(self, ticket_type: TicketType, properties: dict, created_at: datetime, ttl: int | None):
        try:
            return validity_window(ticket_type, properties, created_at, ttl, self.policy)
        except OverflowError:  # only with absurd settings: the dates themselves are bounded
            raise InvalidTicket({"properties": {"scheduled_date": ["Too far in the future."]}}) from None

    def _check_token_fits(self, ticket: Ticket) -> None:
        """Properties that would make the ticket's token too long for an Authorization header are a 422."""
        length = AUTHORIZATION_PREFIX + self.tokens.ticket_token_length(ticket)
        if length > MAX_AUTHORIZATION_LINE:
            raise InvalidTicket({"properties": {"_schema": [
                f"Too large: the ticket's token would make an Authorization header of {length} bytes, over the "
                f"{MAX_AUTHORIZATION_LINE} a server accepts; make the properties smaller."
            ]}})

    @staticmethod
    def _check_properties(properties: dict, ticket_type: TicketType, errors: dict | None = None) -> None:
        errors = dict(errors or {})
        problem = check_json_value(properties)
        field_errors = {"_schema": [problem]} if problem else check_properties(properties, ticket_type)
        if field_errors:
            errors["properties"] = field_errors
        if errors:
            raise InvalidTicket(errors)
