"""Standard Webhooks messages: the JSON body of an event, and (from signing.py) its headers signed with
HMAC-SHA-256."""

from __future__ import annotations

import json

from schemas.ticket import ticket_view
from tickets.core.domain import TicketEvent, format_time
from tickets.webhooks.signing import headers, signature

__all__ = ["body", "encode", "format_time", "headers", "signature"]


def body(event: TicketEvent) -> bytes:
    """{"type", "timestamp", "data": {"ticket": <as GET returns it, then>, "reason"?}}: the same on every retry."""
    data = {"ticket": ticket_view(event.ticket, event.at)}
    if event.reason is not None:
        data["reason"] = event.reason
    return encode({"type": event.type.value, "timestamp": format_time(event.at), "data": data})


def encode(message: dict) -> bytes:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()
