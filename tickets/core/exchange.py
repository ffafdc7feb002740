"""The exchange of a ticket for a token: the product's hot path, and the one change a customer makes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from tickets.core import clock
from tickets.core.domain import (
    EventType,
    Exchange,
    ExchangeRefused,
    Policy,
    Refusal,
    Ticket,
    TicketEvent,
    TicketNotFound,
)
from tickets.core.ports import TicketStore, TokenIssuer
from tickets.core.rules import normalize_ticket_id

Announce = Callable[[EventType, Ticket, str | None], Sequence[TicketEvent]]


@dataclass(frozen=True)
class Preview:
    """What a customer may be told of a ticket before exchanging it (the join page): it changes nothing."""

    ticket: Ticket | None  # None: no such ticket (unknown, used up, or past retention)
    refusal: Refusal | None  # why it cannot be exchanged now; None: it can


class _ChangedMeanwhile(Exception):
    """The ticket changed between signing its token and using it: sign again."""


class Exchanger:
    """Uses a ticket once and hands out its token; refusals (but NOT_FOUND) are told to the webhooks."""

    def __init__(self, repository: TicketStore, policy: Policy, tokens: TokenIssuer, announce: Announce):
        self.repository = repository
        self.policy = policy
        self.tokens = tokens
        self.announce = announce

    def exchange(self, ticket_id: str) -> Exchange:
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
                return self._try(canonical)
            except _ChangedMeanwhile:
                continue
            except ExchangeRefused as refused:
                if refused.ticket is not None:  # NOT_FOUND belongs to no organization: nothing to tell
                    event = self.announce(EventType.EXCHANGE_REFUSED, refused.ticket, refused.reason.value)
                    if event:
                        self.repository.publish(event)
                raise

    def _try(self, ticket_id: str) -> Exchange:
        now = clock.utcnow()
        try:
            read = self.usable(self.repository.get(ticket_id), now)
        except TicketNotFound:
            raise ExchangeRefused(Refusal.NOT_FOUND) from None
        token = self.tokens.ticket_token(read)

        def use(ticket: Ticket) -> Ticket:
            self.usable(ticket, now)
            if ticket.version != read.version:  # properties or organization changed: the claims would be stale
                raise _ChangedMeanwhile(ticket_id)
            used = ticket.replace(use_count=ticket.use_count + 1, last_used_at=now)
            return used.replace(consumed_at=now) if ticket.type.single_use else used

        def told(before: Ticket, after: Ticket | None) -> Sequence[TicketEvent]:
            return self.announce(EventType.EXCHANGED, after, None)

        try:
            used = self.repository.change(ticket_id, use, told)
        except TicketNotFound:
            raise ExchangeRefused(Refusal.NOT_FOUND) from None
        return Exchange(used, token)

    def preview(self, ticket_id: str) -> Preview:
        """Whether the ticket could be exchanged now, and if not why, reading only (no use, no event)."""
        now = clock.utcnow()
        canonical = normalize_ticket_id(ticket_id or "")
        try:
            ticket = self.repository.get(canonical) if canonical else None
        except TicketNotFound:
            ticket = None
        if ticket is None or ticket.gone(now, self.policy.retention):
            return Preview(None, Refusal.NOT_FOUND)
        return Preview(ticket, ticket.refusal(now))

    def usable(self, ticket: Ticket, now: datetime) -> Ticket:
        """The ticket, if it can be exchanged at `now`; else ExchangeRefused with the reason."""
        if ticket.gone(now, self.policy.retention):
            raise ExchangeRefused(Refusal.NOT_FOUND)
        refusal = ticket.refusal(now)
        if refusal:
            raise ExchangeRefused(refusal, ticket)
        return ticket
