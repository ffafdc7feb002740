"""tickets/config.py: TICKETS_* settings parsed and checked once, and start-up refusing values it cannot run with."""

from __future__ import annotations

import pytest

from app import create_app
from tickets.config import ConfigError, load_settings


def test_ticket_ttl_setting_is_bounded(tmp_path):
    """TICKETS_TICKET_TTL=0 would make every ticket expired at birth: refused at start."""
    with pytest.raises(ConfigError, match="TICKETS_TICKET_TTL"):
        create_app({"TICKETS_DATA_DIR": str(tmp_path), "TICKETS_TICKET_TTL": 0})


def test_database_url_must_be_postgresql(tmp_path):
    """TICKETS_DATABASE_URL other than postgresql:// is refused at start, not ignored."""
    with pytest.raises(ConfigError, match="postgresql://"):
        create_app({"TICKETS_DATA_DIR": str(tmp_path), "TICKETS_DATABASE_URL": "mysql://x/y"})


@pytest.mark.parametrize("ttl, accepted", [("59", False), ("60", True), ("2592000", True), ("2592001", False)])
def test_ticket_ttl_bounds_are_those_of_a_create_body(ttl, accepted):
    """TICKETS_TICKET_TTL takes 60 to 2,592,000 seconds, like a create body's ttl; the message names the variable."""
    if accepted:
        assert load_settings(environ={"TICKETS_TICKET_TTL": ttl})["TICKETS_TICKET_TTL"] == int(ttl)
    else:
        with pytest.raises(ConfigError, match="TICKETS_TICKET_TTL"):
            load_settings(environ={"TICKETS_TICKET_TTL": ttl})


def test_defaults_without_environment():
    """With nothing set, every setting has the default the README lists."""
    settings = load_settings(environ={})
    assert settings["TICKETS_DATA_DIR"] == "./data"
    assert settings["TICKETS_ISSUER"] == "http://localhost:8080/security"
    assert settings["TICKETS_TICKET_TTL"] == 14_400
    assert settings["TICKETS_TOKEN_TTL"] == 3_600
    assert settings["TICKETS_TICKET_TOKEN_TTL"] == 14_400
    assert settings["TICKETS_EARLY_JOIN"] == 1_800
    assert settings["TICKETS_SCHEDULE_GRACE"] == 3_600
    assert settings["TICKETS_RETENTION"] == 604_800
    assert settings["TICKETS_EXCHANGE_FAILURES_PER_MINUTE"] == 10
    assert settings["TICKETS_JWT_ALG"] == "RS256"
    assert settings["TICKETS_TRUSTED_HOSTS"] == ["localhost", "127.0.0.1"]


def test_issuer_default_follows_port():
    """Without TICKETS_ISSUER the issuer is http://localhost:<PORT>/security."""
    assert load_settings(environ={"PORT": "9090"})["TICKETS_ISSUER"] == "http://localhost:9090/security"


def test_trusted_hosts_is_a_parsed_list():
    """A comma-separated TICKETS_TRUSTED_HOSTS becomes a list (Flask's own TRUSTED_HOSTS would take the string)."""
    settings = load_settings(environ={"TICKETS_TRUSTED_HOSTS": " a.example, b.example ,,"})
    assert settings["TICKETS_TRUSTED_HOSTS"] == ["a.example", "b.example"]
    with pytest.raises(ConfigError, match="TICKETS_TRUSTED_HOSTS"):
        load_settings(environ={"TICKETS_TRUSTED_HOSTS": " , "})


def test_overrides_win_over_the_environment():
    """The app factory's overrides beat the environment, and are parsed the same way when they are strings."""
    settings = load_settings({"TICKETS_RETENTION": "100"}, environ={"TICKETS_RETENTION": "200"})
    assert settings["TICKETS_RETENTION"] == 100


@pytest.mark.parametrize(
    "name, raw",
    [
        ("TICKETS_RETENTION", "-1"),
        ("TICKETS_TOKEN_TTL", "an hour"),
        ("TICKETS_PURGE_INTERVAL", "1.5"),
        ("TICKETS_JWT_ALG", "HS256"),
        ("TICKETS_DATABASE_URL", "sqlite:///x.db"),
    ],
)
def test_unusable_values_are_refused_naming_the_variable(name, raw):
    """A negative or unparsable number, an unknown algorithm or a foreign database URL stops start-up."""
    with pytest.raises(ConfigError, match=name):
        load_settings(environ={name: raw})


def test_the_calendar_organizer_defaults_to_no_reply_at_the_issuers_host():
    assert load_settings({}, {"TICKETS_ISSUER": "https://tickets.bank.example/security"})[
        "TICKETS_CALENDAR_ORGANIZER"
    ] == "mailto:no-reply@tickets.bank.example"
    assert load_settings({"TICKETS_CALENDAR_ORGANIZER": "mailto:desk@bank.example"}, {})[
        "TICKETS_CALENDAR_ORGANIZER"
    ] == "mailto:desk@bank.example"
    with pytest.raises(ConfigError, match="TICKETS_CALENDAR_ORGANIZER"):
        load_settings({"TICKETS_CALENDAR_ORGANIZER": "not an address"}, {})
