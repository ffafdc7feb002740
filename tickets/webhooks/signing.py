"""Standard Webhooks signatures: webhook-signature is `v1,` + base64 of HMAC-SHA-256 over
`<webhook-id>.<webhook-timestamp>.<body>`, keyed with the secret's bytes (after `whsec_`); several signatures
are space-separated (a rotation's overlap). Apart from the bodies (messages.py): the sending process needs only
this.
"""

from __future__ import annotations

import base64
import hashlib
import hmac


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
