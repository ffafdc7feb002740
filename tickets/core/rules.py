"""The rules that need no storage, no Flask and no clock but the one given: ids, properties, windows."""

from __future__ import annotations

import math
import re
import secrets
import uuid
from datetime import UTC, datetime, timedelta

from tickets.core.domain import DEFAULT_DURATION, Policy, TicketType, parse_rfc3339

# No 0/O and no 1/I/L: ids are read aloud and typed from printed invites.
ID_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
DEFAULT_ID_LENGTH = 9
MIN_ID_LENGTH, MAX_ID_LENGTH = 6, 64
MIN_TTL, MAX_TTL = 60, 2_592_000
MIN_DURATION, MAX_DURATION = 1, 1440
MAX_PROPERTIES_DEPTH = 32
MIN_SCHEDULE_YEAR, MAX_SCHEDULE_YEAR = 1970, 9000  # far from datetime's limits, whatever the windows add
# A ticket's token travels as "Authorization: Bearer <token>", and gunicorn refuses a header line
# longer than this (its limit_request_field_size): properties that would make it longer are refused.
MAX_AUTHORIZATION_LINE = 8190
AUTHORIZATION_PREFIX = len("Authorization: Bearer ")
# Organization ids: letters, digits, '-', '_', '.' (UUIDs fit); never empty, so never a system client by accident.
ORGANIZATION_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
ORGANIZATION_ID_RULE = "1 to 64 characters of letters, digits, '-', '_' and '.'"


def is_organization_id(value) -> bool:
    return isinstance(value, str) and ORGANIZATION_ID.fullmatch(value) is not None


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
