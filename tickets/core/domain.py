"""Tickets as data: types, statuses, refusals, the domain's errors and the durations that shape windows."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

DEFAULT_DURATION = 30  # minutes of a scheduled ticket's appointment, when properties give none
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?([Zz]|[+-]\d{2}:\d{2})$")
# Defaults of the Policy durations (seconds); the settings take theirs from here.
DEFAULT_TICKET_TTL = 14_400
DEFAULT_EARLY_JOIN = 1_800
DEFAULT_SCHEDULE_GRACE = 3_600
DEFAULT_RETENTION = 604_800


class TicketType(StrEnum):
    """The documented ticket types."""

    APPOINTMENTS_SCHEDULE_TICKET = "APPOINTMENTS_SCHEDULE_TICKET"
    GENESYS_MULTI_USE_TICKET = "GENESYS_MULTI_USE_TICKET"
    GENESYS_SCHEDULE_TICKET = "GENESYS_SCHEDULE_TICKET"
    GENESYS_SINGLE_USE_TICKET = "GENESYS_SINGLE_USE_TICKET"
    MULTI_USE_TICKET = "MULTI_USE_TICKET"
    SCHEDULE_TICKET = "SCHEDULE_TICKET"
    SINGLE_USE_APPOINTMENTS_SCHEDULE_TICKET = "SINGLE_USE_APPOINTMENTS_SCHEDULE_TICKET"
    SINGLE_USE_SCHEDULE_TICKET = "SINGLE_USE_SCHEDULE_TICKET"
    SINGLE_USE_TICKET = "SINGLE_USE_TICKET"

    @property
    def single_use(self) -> bool:
        return self.name.startswith(("SINGLE_USE", "GENESYS_SINGLE_USE"))

    @property
    def scheduled(self) -> bool:
        return "SCHEDULE" in self.name


class TicketStatus(StrEnum):
    """What the list endpoint filters on."""

    ACTIVE = "active"
    DISABLED = "disabled"
    REVOKED = "revoked"
    EXPIRED = "expired"


class Refusal(StrEnum):
    """Why a ticket cannot be exchanged; the values are the wire's error_description."""

    NOT_FOUND = "NOT_FOUND"
    DISABLED = "DISABLED"
    REVOKED = "REVOKED"
    EXPIRED = "EXPIRED"
    NOT_YET_VALID = "NOT_YET_VALID"


class TicketError(Exception):
    """Base of the domain's refusals."""


class TicketNotFound(TicketError):
    """No such ticket for this caller (also: another organization's, or past retention)."""


class VersionConflict(TicketError):
    """The caller's If-Match names a version that is no longer current."""


class TicketRevoked(TicketError):
    """A revoked ticket cannot be changed any more."""


class WrongTicketType(TicketError):
    """The operation needs another kind of ticket (the calendar event needs a scheduled one)."""


class ForeignOrganization(TicketError):
    """The caller named an organization it does not belong to."""


class InvalidTicket(TicketError):
    """Field errors, shaped like marshmallow's: {field: [messages]} or nested dicts."""

    def __init__(self, errors: dict):
        super().__init__(errors)
        self.errors = errors


class ExchangeRefused(TicketError):
    """The ticket cannot be exchanged for a token now."""

    def __init__(self, reason: Refusal, ticket: Ticket | None = None):
        super().__init__(reason.value)
        self.reason = reason
        self.ticket = ticket  # unknown for NOT_FOUND
        self.ticket_type = ticket.type if ticket else None


class EventType(StrEnum):
    """What back-office software may be told of (SPEC section 10)."""

    CREATED = "ticket.created"
    UPDATED = "ticket.updated"
    DISABLED = "ticket.disabled"
    ENABLED = "ticket.enabled"
    REVOKED = "ticket.revoked"
    DELETED = "ticket.deleted"
    EXCHANGED = "ticket.exchanged"
    EXCHANGE_REFUSED = "ticket.exchange_refused"


@dataclass(frozen=True)
class Policy:
    """The durations that shape validity windows, in seconds."""

    ticket_ttl: int = DEFAULT_TICKET_TTL
    early_join: int = DEFAULT_EARLY_JOIN
    schedule_grace: int = DEFAULT_SCHEDULE_GRACE
    retention: int = DEFAULT_RETENTION


@dataclass(frozen=True)
class Ticket:
    """One ticket as stored; times are aware UTC datetimes."""

    id: str
    type: TicketType
    organization_id: str
    user_id: str
    properties: dict
    created_at: datetime
    expires_at: datetime
    not_before: datetime | None = None
    ttl: int | None = None
    disabled: datetime | None = None
    revoked: datetime | None = None
    version: int = 0
    use_count: int = 0
    last_used_at: datetime | None = None
    # A used-up single-use ticket is deleted for every reader at once, but its record is
    # kept until the token it yielded expires, so introspection can tell "used" from "deleted".
    consumed_at: datetime | None = None
    # When it was last disabled: tokens issued before stay void even after it is enabled again.
    last_disabled: datetime | None = None

    def replace(self, **changes) -> Ticket:
        return dataclasses.replace(self, **changes)

    def expired(self, now: datetime) -> bool:
        return now >= self.expires_at

    def gone(self, now: datetime, retention: int) -> bool:
        """Used up (single use) or past retention: invisible to every reader, and due for removal."""
        return self.consumed_at is not None or now >= self.expires_at + timedelta(seconds=retention)

    def status(self, now: datetime) -> TicketStatus:
        if self.revoked:
            return TicketStatus.REVOKED
        if self.disabled:
            return TicketStatus.DISABLED
        if self.expired(now):
            return TicketStatus.EXPIRED
        return TicketStatus.ACTIVE

    def refusal(self, now: datetime) -> Refusal | None:
        """Why this ticket cannot be exchanged at `now`, or None if it can."""
        if self.revoked:
            return Refusal.REVOKED
        if self.disabled:
            return Refusal.DISABLED
        if self.expired(now):
            return Refusal.EXPIRED
        if self.not_before and now < self.not_before:
            return Refusal.NOT_YET_VALID
        return None

    @property
    def scheduled_start(self) -> datetime | None:
        raw = self.properties.get("scheduled_date")
        return parse_rfc3339(raw) if isinstance(raw, str) else None

    @property
    def duration_minutes(self) -> int:
        return self.properties.get("duration", DEFAULT_DURATION)


def parse_rfc3339(value: str) -> datetime | None:
    """An aware datetime for an RFC 3339 date-time with offset, else None."""
    if not isinstance(value, str) or not RFC3339.match(value):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return parsed


def format_time(value: datetime | None) -> str | None:
    """RFC 3339 in UTC with a Z, to the millisecond (written out by hand: twice as fast as isoformat, and every
    ticket in every answer and webhook message has three or four of these)."""
    if value is None:
        return None
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" % (  # noqa: UP031  (an f-string with widths takes twice as long)
        value.year, value.month, value.day, value.hour, value.minute, value.second, value.microsecond // 1000)


@dataclass(frozen=True)
class TicketEvent:
    """Something that happened to a ticket, kept in the same change as the ticket's own (for webhooks):
    the ticket as it was then (before a deletion), and why an exchange was refused."""

    id: str
    type: EventType
    at: datetime
    ticket: Ticket
    reason: str | None = None


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
