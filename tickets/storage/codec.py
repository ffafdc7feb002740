"""Tickets as JSON records, the same in both stores."""

from __future__ import annotations

import copy
from datetime import datetime

from tickets.core.domain import Ticket, TicketType


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
    """The domain object of a stored record; properties are copied so callers cannot alter the cache."""
    return Ticket(
        id=ticket_id,
        type=TicketType(record["type"]),
        organization_id=record["organizationId"],
        user_id=record["userId"],
        properties=copy.deepcopy(record["properties"]),
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


def format_iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
