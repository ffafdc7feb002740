"""Tickets as data, and the rules that need no storage, no Flask and no clock but the one given."""

from __future__ import annotations

import dataclasses
import math
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

# No 0/O and no 1/I/L: ids are read aloud and typed from printed invites.
ID_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
DEFAULT_ID_LENGTH = 9
MIN_ID_LENGTH, MAX_ID_LENGTH = 6, 64
MIN_TTL, MAX_TTL = 60, 2_592_000
MIN_DURATION, MAX_DURATION = 1, 1440
DEFAULT_DURATION = 30
MAX_PROPERTIES_DEPTH = 32
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?([Zz]|[+-]\d{2}:\d{2})$")
MIN_SCHEDULE_YEAR, MAX_SCHEDULE_YEAR = 1970, 9000  # far from datetime's limits, whatever the windows add


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

    def __init__(self, reason: Refusal, ticket_type: TicketType | None = None):
        super().__init__(reason.value)
        self.reason = reason
        self.ticket_type = ticket_type  # unknown for NOT_FOUND


@dataclass(frozen=True)
class Policy:
    """The durations that shape validity windows, in seconds."""

    ticket_ttl: int = 14_400
    early_join: int = 1_800
    schedule_grace: int = 3_600
    retention: int = 604_800


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


def new_ticket_id(length: int | None) -> str:
    """A fresh random id from the unambiguous alphabet."""
    size = length or DEFAULT_ID_LENGTH
    return "".join(secrets.choice(ID_ALPHABET) for _ in range(size))


def normalize_ticket_id(raw: str) -> str | None:
    """The canonical (upper-case) id, or None if `raw` cannot be any ticket's id."""
    candidate = raw.upper()
    if not MIN_ID_LENGTH <= len(candidate) <= MAX_ID_LENGTH:
        return None
    if any(char not in ID_ALPHABET for char in candidate):
        return None
    return candidate


def check_length(length: int | None) -> dict:
    if length in (None, 0) or MIN_ID_LENGTH <= length <= MAX_ID_LENGTH:
        return {}
    return {"length": [f"Must be 0 (default {DEFAULT_ID_LENGTH}) or between {MIN_ID_LENGTH} and {MAX_ID_LENGTH}."]}


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


def check_properties(properties: dict, ticket_type: TicketType) -> dict:
    """Field errors of the meaningful keys, as {key: [message]}; empty if all is well."""
    errors = {}
    if "customer_id" in properties:
        value = properties["customer_id"]
        if not isinstance(value, str) or not value.strip() or len(value) > 256:
            errors["customer_id"] = ["Must be a non-empty string of at most 256 characters."]
    if "scheduled_date" in properties:
        start = parse_rfc3339(properties["scheduled_date"])
        if start is None:
            errors["scheduled_date"] = ["Must be an RFC 3339 date-time with an offset, e.g. 2030-01-31T09:30:00+02:00."]
        elif not MIN_SCHEDULE_YEAR <= start.year <= MAX_SCHEDULE_YEAR:
            errors["scheduled_date"] = [f"Must be in the years {MIN_SCHEDULE_YEAR} to {MAX_SCHEDULE_YEAR}."]
    elif ticket_type.scheduled:
        errors["scheduled_date"] = [f"Required for {ticket_type.value}."]
    if "duration" in properties:
        value = properties["duration"]
        if type(value) is not int or not MIN_DURATION <= value <= MAX_DURATION:
            errors["duration"] = [f"Must be a whole number of minutes from {MIN_DURATION} to {MAX_DURATION}."]
    for key in ("title", "description"):
        if key in properties and not isinstance(properties[key], str):
            errors[key] = ["Must be a string."]
    return errors


def check_json_value(value, depth: int = 0) -> str | None:
    """Why `value` cannot be stored and echoed as JSON (too deep, not finite, not UTF-8), else None."""
    if depth > MAX_PROPERTIES_DEPTH:
        return f"Nested deeper than {MAX_PROPERTIES_DEPTH} levels."
    if isinstance(value, float) and not math.isfinite(value):
        return "Numbers must be finite."
    if isinstance(value, str) and not is_unicode(value):
        return "Strings must be valid Unicode (no lone surrogates)."
    if isinstance(value, dict) and not all(is_unicode(key) for key in value):
        return "Keys must be valid Unicode (no lone surrogates)."
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    for child in children:
        problem = check_json_value(child, depth + 1)
        if problem:
            return problem
    return None


def is_unicode(text: str) -> bool:
    """False for strings UTF-8 cannot carry (lone surrogates, which JSON escapes can smuggle in)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def validity_window(
    ticket_type: TicketType, properties: dict, created_at: datetime, ttl: int | None, policy: Policy
) -> tuple[datetime | None, datetime]:
    """(not_before, expires_at) of a ticket, per SPEC section 4."""
    if not ticket_type.scheduled:
        return None, created_at + timedelta(seconds=ttl or policy.ticket_ttl)
    start = parse_rfc3339(properties["scheduled_date"]).astimezone(UTC)
    not_before = start - timedelta(seconds=policy.early_join)
    if ttl:
        return not_before, start + timedelta(seconds=ttl)
    duration = properties.get("duration", DEFAULT_DURATION)
    return not_before, start + timedelta(minutes=duration, seconds=policy.schedule_grace)


def new_user_id(properties: dict) -> str:
    return properties.get("customer_id") or str(uuid.uuid4())


def format_time(value: datetime | None) -> str | None:
    """RFC 3339 in UTC with a Z, to the millisecond."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
