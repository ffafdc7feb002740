"""Tickets as JSON records, the same in both stores."""

from __future__ import annotations

import re
from datetime import datetime

from tickets.core.domain import EventType, Ticket, TicketEvent, TicketType, format_time


def ticket_to_record(ticket: Ticket) -> dict:
    """A JSON-ready dict of a ticket; times as ISO strings."""
    return {
        "type": ticket.type.value,
        "organizationId": ticket.organization_id,
        "userId": ticket.user_id,
        "properties": ticket.properties,
        "createdAt": format_iso(ticket.created_at),
        "expiresAt": format_iso(ticket.expires_at),
        "notBefore": format_iso(ticket.not_before),
        "ttl": ticket.ttl,
        "disabled": format_iso(ticket.disabled),
        "revoked": format_iso(ticket.revoked),
        "version": ticket.version,
        "useCount": ticket.use_count,
        "lastUsedAt": format_iso(ticket.last_used_at),
        "consumedAt": format_iso(ticket.consumed_at),
        "lastDisabled": format_iso(ticket.last_disabled),
    }


def record_to_ticket(ticket_id: str, record: dict) -> Ticket:
    """The domain object of a record freshly decoded from JSON (it keeps the record's properties object)."""
    return Ticket(
        id=ticket_id,
        type=TicketType(record["type"]),
        organization_id=record["organizationId"],
        user_id=record["userId"],
        properties=record["properties"],
        created_at=parse_time(record["createdAt"]),
        expires_at=parse_time(record["expiresAt"]),
        not_before=parse_time(record.get("notBefore")),
        ttl=record.get("ttl"),
        disabled=parse_time(record.get("disabled")),
        revoked=parse_time(record.get("revoked")),
        version=record.get("version", 0),
        use_count=record.get("useCount", 0),
        last_used_at=parse_time(record.get("lastUsedAt")),
        consumed_at=parse_time(record.get("consumedAt")),
        last_disabled=parse_time(record.get("lastDisabled")),
    )


TIME_FIELDS = ("createdAt", "expiresAt", "notBefore", "disabled", "revoked", "lastUsedAt", "consumedAt", "lastDisabled")
REQUIRED_TIMES = ("createdAt", "expiresAt")


def check_record(record: dict) -> None:
    """Raise ValueError (saying which field) unless `record` is a ticket this service could have written."""
    if not isinstance(record, dict):
        raise ValueError("not an object")
    if record.get("type") not in TicketType.__members__:
        raise ValueError(f"unknown type {record.get('type')!r}")
    for field in ("organizationId", "userId"):
        if not isinstance(record.get(field), str) or not record[field]:
            raise ValueError(f"{field} is not a non-empty string")
    if not isinstance(record.get("properties"), dict):
        raise ValueError("properties is not an object")
    for field in ("version", "useCount"):
        if type(record.get(field, 0)) is not int:
            raise ValueError(f"{field} is not a whole number")
    if record.get("ttl") is not None and type(record["ttl"]) is not int:
        raise ValueError("ttl is not a whole number")
    for field in TIME_FIELDS:
        value = record.get(field)
        if value is None and field not in REQUIRED_TIMES:
            continue
        try:
            parsed = datetime.fromisoformat(value)
        except (TypeError, ValueError):
            raise ValueError(f"{field} is not a time: {value!r}") from None
        if parsed.tzinfo is None:
            raise ValueError(f"{field} has no offset: {value!r}")


def format_iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def event_to_record(event: TicketEvent, with_ticket: bool = True) -> dict:
    """A JSON-ready dict of an event, the ticket as it was then included (unless the record the event is
    stored with holds that very ticket: see tickets.storage.outbox)."""
    record = {"id": event.id, "type": event.type.value, "at": format_iso(event.at), "ticketId": event.ticket.id}
    if with_ticket:
        record["ticket"] = ticket_to_record(event.ticket)
    if event.reason is not None:
        record["reason"] = event.reason
    return record


EVENT_TYPES = frozenset(event_type.value for event_type in EventType)


def check_event(record: dict) -> None:
    """Refuse an event record this service could not have written (the whole event is read when sent)."""
    if not (isinstance(record["id"], str) and isinstance(record["at"], str)
            and isinstance(record["ticket"]["organizationId"], str)):
        raise ValueError("an event without its id, time or organization")
    if record["type"] not in EVENT_TYPES:
        raise ValueError(f"an event of no type this service knows: {record['type']!r}")


def record_view(ticket_id: str, record: dict, now: str) -> dict:
    """schemas.ticket.ticket_view of a stored record, `expired` as of `now` (a time as records hold them), made
    without building the Ticket: each webhook message has one, and building it took as long as the rest of the
    message (tests/storage/test_codec.py holds the two to the same answers)."""
    return {
        "createdAt": api_time(record["createdAt"]),
        "disabled": api_time(record.get("disabled")),
        "expired": parse_time(now) >= parse_time(record["expiresAt"]),
        "expiresAt": api_time(record["expiresAt"]),
        "id": ticket_id,
        "organizationId": record["organizationId"],
        "properties": record["properties"],
        "revoked": api_time(record.get("revoked")),
        "type": record["type"],
        "userId": record["userId"],
        "version": record.get("version", 0),
        "notBefore": api_time(record.get("notBefore")),
        "useCount": record.get("useCount", 0),
        "lastUsedAt": api_time(record.get("lastUsedAt")),
    }


# What isoformat() writes for a UTC time with microseconds, the form every time the service stores has: its first 23
# characters are format_time's but for the Z. (fromisoformat also reads other layouts: a space, a week date.)
STORED_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00")


def api_time(value: str | None) -> str | None:
    """A stored time as the API writes it (domain.format_time)."""
    if value is None:
        return None
    if STORED_UTC.fullmatch(value):
        return value[:23] + "Z"
    return format_time(parse_time(value))
