"""Settings: TICKETS_* from the environment (or the app factory's overrides), parsed and checked once.

Durations are whole seconds; lists are comma-separated.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from tickets.core import domain
from tickets.core.rules import MAX_TTL, MIN_TTL

# name: (default, parser). Every name here is listed in the README.
SETTINGS = {
    "DATA_DIR": ("./data", str),
    "ISSUER": (None, str),
    "TICKET_TTL": (domain.DEFAULT_TICKET_TTL, int),
    "TOKEN_TTL": (3_600, int),
    "TICKET_TOKEN_TTL": (14_400, int),
    "EARLY_JOIN": (domain.DEFAULT_EARLY_JOIN, int),
    "SCHEDULE_GRACE": (domain.DEFAULT_SCHEDULE_GRACE, int),
    "RETENTION": (domain.DEFAULT_RETENTION, int),
    "EXCHANGE_FAILURES_PER_MINUTE": (10, int),
    "JWT_ALG": ("RS256", str),
    "TRUSTED_HOSTS": ("localhost,127.0.0.1", "list"),
    "PROXY_FIX": (0, int),
    "DATABASE_URL": ("", str),
    "PURGE_INTERVAL": (60, int),
    "FOLD_BYTES": (4 * 1024 * 1024, int),
    "REQUEST_LOG": ("json", str),
    "ALLOW_HTTP": (0, int),
    "SWAGGER_PERSIST_AUTH": (0, int),
    "CALENDAR_ORGANIZER": (None, str),
    "WEBHOOK_TIMEOUT": (5, int),
    "WEBHOOK_SECRET_OVERLAP": (86_400, int),
    "JOIN_PAGE": (1, int),
    "JOIN_URL": ("", str),
}
REQUEST_LOGS = ("json", "access", "off")
JWT_ALGORITHMS = ("RS256", "ES256")


class ConfigError(ValueError):
    """A setting has a value the service cannot run with."""


def parse_list(raw: str) -> list[str]:
    """Comma-separated, blanks dropped: 'a.example, b.example' -> ['a.example', 'b.example']."""
    return [item.strip() for item in raw.split(",") if item.strip()]


def load_settings(overrides: Mapping | None = None, environ: Mapping[str, str] | None = None) -> dict:
    """Every TICKETS_* setting from `overrides`, else the environment, else its default; parsed and checked.

    Strings are parsed the same way wherever they come from; overrides may also give parsed values.
    """
    environ = os.environ if environ is None else environ
    overrides = overrides or {}
    config = {}
    for name, (default, kind) in SETTINGS.items():
        key = f"TICKETS_{name}"
        raw = overrides.get(key, environ.get(key))
        config[key] = default if raw is None else _parse(key, raw, kind)
    if config["TICKETS_ISSUER"] is None:
        config["TICKETS_ISSUER"] = f"http://localhost:{environ.get('PORT', '8080')}/security"
    if config["TICKETS_CALENDAR_ORGANIZER"] is None:
        config["TICKETS_CALENDAR_ORGANIZER"] = f"mailto:no-reply@{urlsplit(config['TICKETS_ISSUER']).hostname}"
    if isinstance(config["TICKETS_TRUSTED_HOSTS"], str):
        config["TICKETS_TRUSTED_HOSTS"] = parse_list(config["TICKETS_TRUSTED_HOSTS"])
    _check(config)
    return config


def _parse(key: str, raw, kind):
    if not isinstance(raw, str):
        return list(raw) if kind == "list" else raw
    if kind == "list":
        return parse_list(raw)
    try:
        return kind(raw.strip())
    except ValueError:
        raise ConfigError(f"{key}={raw!r} is not a valid {kind.__name__}") from None


def _check(config: Mapping) -> None:
    """Refuse settings that would make the service silently wrong."""
    for name, (_, kind) in SETTINGS.items():
        key = f"TICKETS_{name}"
        if kind is int and config[key] < 0:
            raise ConfigError(f"{key} must not be negative")
    if not MIN_TTL <= config["TICKETS_TICKET_TTL"] <= MAX_TTL:
        raise ConfigError(f"TICKETS_TICKET_TTL must be between {MIN_TTL} and {MAX_TTL} seconds, like a ticket's ttl")
    if not 1 <= config["TICKETS_WEBHOOK_TIMEOUT"] <= 60:
        raise ConfigError("TICKETS_WEBHOOK_TIMEOUT must be between 1 and 60 seconds")
    if config["TICKETS_REQUEST_LOG"] not in REQUEST_LOGS:
        raise ConfigError(f"TICKETS_REQUEST_LOG must be one of {', '.join(REQUEST_LOGS)}")
    if config["TICKETS_JWT_ALG"] not in JWT_ALGORITHMS:
        raise ConfigError(f"TICKETS_JWT_ALG must be one of {', '.join(JWT_ALGORITHMS)}")
    join_url = urlsplit(config["TICKETS_JOIN_URL"])
    if config["TICKETS_JOIN_URL"] and (join_url.scheme not in ("http", "https") or not join_url.netloc
                                       or join_url.fragment or "#" in config["TICKETS_JOIN_URL"]):
        raise ConfigError("TICKETS_JOIN_URL must be an http(s) URL without a fragment (the token goes there)")
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*:\S+", config["TICKETS_CALENDAR_ORGANIZER"]):
        raise ConfigError("TICKETS_CALENDAR_ORGANIZER must be a calendar address such as mailto:someone@example.com")
    url = config["TICKETS_DATABASE_URL"]
    if url and not url.startswith(("postgresql://", "postgres://")):
        raise ConfigError("TICKETS_DATABASE_URL must be a postgresql:// URL (or empty for the TinyDB files)")
    if not config["TICKETS_TRUSTED_HOSTS"]:
        raise ConfigError("TICKETS_TRUSTED_HOSTS must name at least one host")
