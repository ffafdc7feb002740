"""Webhook endpoints, registered with the CLI: where to send which events, and the secrets that sign them."""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from tickets.core import clock
from tickets.core.domain import EventType
from tickets.core.ports import RecordStore, Targets
from tickets.core.rules import ORGANIZATION_ID_RULE, is_organization_id
from tickets.oauth.freshness import Freshness

SECRET_PREFIX = "whsec_"


class EndpointNotFound(LookupError):
    """No webhook endpoint with this id."""


def new_secret() -> str:
    """whsec_ + base64 of 32 random bytes, as Standard Webhooks libraries read it."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


@dataclass(frozen=True)
class Endpoint:
    """One receiver: its URL, the organization it hears of (None: every one), the event types (None: all)."""

    id: str
    url: str
    organization_id: str | None
    events: tuple[str, ...] | None
    secrets: tuple[dict, ...]  # {"secret": "whsec_...", "until": None for the current one, else when it retires}
    disabled: dict | None

    @classmethod
    def of(cls, endpoint_id: str, record: dict) -> Endpoint:
        events = record.get("events")
        return cls(endpoint_id, record["url"], record.get("organizationId"), tuple(events) if events else None,
                   tuple(record["secrets"]), record.get("disabled"))

    def wants(self, organization_id: str, event_type: str) -> bool:
        return (
            self.disabled is None
            and (self.organization_id is None or self.organization_id == organization_id)
            and (self.events is None or event_type in self.events)
        )

    def signing_secrets(self, now: float) -> list[str]:
        """The current secret, and an old one still within its overlap: receivers verify with either."""
        return [entry["secret"] for entry in self.secrets if entry["until"] is None or entry["until"] > now]

    def public(self) -> dict:
        return {"id": self.id, "url": self.url, "organizationId": self.organization_id,
                "events": list(self.events) if self.events else None, "disabled": self.disabled}


class WebhookRegistry:
    """Endpoints in a record store, kept in memory while the records stay the same (the EventFilter of the
    ticket service: no endpoint, no event stored)."""

    def __init__(self, records: RecordStore, overlap: int):
        self.records = records
        self.overlap = overlap  # seconds an old secret keeps signing after rotate-secret
        self._freshness = Freshness(records)
        self._endpoints: dict[str, Endpoint] = {}

    def endpoints(self) -> dict[str, Endpoint]:
        if self._freshness.stale():
            self._endpoints = {endpoint_id: Endpoint.of(endpoint_id, record)
                               for endpoint_id, record in self.records.all().items()}
        return self._endpoints

    def wants(self, organization_id: str, event_type: EventType) -> bool:
        return any(endpoint.wants(organization_id, event_type) for endpoint in self.endpoints().values())

    def targets(self, organization_id: str, event_type: EventType) -> list[str]:
        """The endpoints an event of this organization and type is owed to."""
        return self.targets_among(self.endpoints())(organization_id, event_type)

    @staticmethod
    def targets_among(endpoints: dict[str, Endpoint]) -> Targets:
        """targets() on endpoints the caller read once: the outbox asks once per event it plans, and each look
        at the records is a stat of webhooks.json (a clock read on PostgreSQL)."""
        chosen = tuple(endpoints.values())
        return lambda organization_id, event_type: [
            endpoint.id for endpoint in chosen if endpoint.wants(organization_id, event_type)
        ]

    def get(self, endpoint_id: str) -> Endpoint:
        record = self.records.get(endpoint_id)
        if record is None:
            raise EndpointNotFound(endpoint_id)
        return Endpoint.of(endpoint_id, record)

    def add(self, url: str, organization_id: str | None, events: list[str] | None) -> dict:
        """Register an endpoint; returns it with its secret, shown only now (and at rotate-secret)."""
        check_url(url)
        if organization_id is not None and not is_organization_id(organization_id):
            raise ValueError(f"--org must be {ORGANIZATION_ID_RULE}")
        if events is not None and not events:  # an empty --events "$UNSET" must not quietly mean all of them
            raise ValueError("--events names no event type; leave it out to receive all of them")
        unknown = sorted(set(events or ()) - {event_type.value for event_type in EventType})
        if unknown:
            raise ValueError(f"unknown event types {unknown}; known: {', '.join(t.value for t in EventType)}")
        endpoint_id, secret = f"ep_{secrets.token_hex(8)}", new_secret()
        wanted = sorted(set(events)) if events is not None else None
        record = {"url": url, "organizationId": organization_id, "events": wanted,
                  "secrets": [{"secret": secret, "until": None}], "createdAt": clock.timestamp(), "disabled": None}
        self.records.put(endpoint_id, record)
        self._freshness.expire()
        return {**Endpoint.of(endpoint_id, record).public(), "secret": secret}

    def rotate_secret(self, endpoint_id: str) -> dict:
        """A new secret; the old one keeps signing (beside it) for the overlap, then retires."""
        with self.records.locked():
            record = self.records.get(endpoint_id)
            if record is None:
                raise EndpointNotFound(endpoint_id)
            now, secret = clock.timestamp(), new_secret()
            kept = [{**entry, "until": entry["until"] or now + self.overlap} for entry in record["secrets"]
                    if entry["until"] is None or entry["until"] > now]
            record["secrets"] = [{"secret": secret, "until": None}, *kept]
            self.records.put(endpoint_id, record)
        self._freshness.expire()
        return {**Endpoint.of(endpoint_id, record).public(), "secret": secret}

    def delete(self, endpoint_id: str) -> None:
        deleted = self.records.delete(endpoint_id)
        self._freshness.expire()
        if not deleted:
            raise EndpointNotFound(endpoint_id)

    def disable(self, endpoint_id: str, reason: str) -> None:
        """The receiver said 410 Gone: stop sending to it (its record stays, for `webhooks list`)."""
        with self.records.locked():
            record = self.records.get(endpoint_id)
            if record is not None and record.get("disabled") is None:
                record["disabled"] = {"at": clock.timestamp(), "reason": reason}
                self.records.put(endpoint_id, record)
        self._freshness.expire()


def check_url(url: str) -> None:
    """An http or https URL with a host; else ValueError."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"--url must be an http or https URL with a host (got {url!r})")
