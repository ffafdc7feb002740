"""Standard Webhooks messages: the JSON body of an event, and its headers signed with HMAC-SHA-256.

webhook-signature is `v1,` + base64 of HMAC-SHA-256 over `<webhook-id>.<webhook-timestamp>.<body>`, keyed
with the secret's bytes (after `whsec_`); several signatures are space-separated (a rotation's overlap).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

from schemas.ticket import ticket_view
from tickets.core.domain import TicketEvent, format_time

__all__ = ["body", "encode", "format_time", "headers", "signature"]


def body(event: TicketEvent) -> bytes:
    """{"type", "timestamp", "data": {"ticket": <as GET returns it, then>, "reason"?}}: the same on every retry."""
    data = {"ticket": ticket_view(event.ticket, event.at)}
    if event.reason is not None:
        data["reason"] = event.reason
    return encode({"type": event.type.value, "timestamp": format_time(event.at), "data": data})


def encode(message: dict) -> bytes:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()


def signature(secrets: list[str], message_id: str, timestamp: int, payload: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + payload
    return " ".join(
        "v1," + base64.b64encode(hmac.new(_key(secret), signed, hashlib.sha256).digest()).decode()
        for secret in secrets
    )


def headers(message_id: str, payload: bytes, secrets: list[str], now: float) -> dict[str, str]:
    timestamp = int(now)
    return {
        "Content-Type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secrets, message_id, timestamp, payload),
    }


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix("whsec_"))
