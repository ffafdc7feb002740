"""Regression tests for defects found in review: each failed before its fix."""

from __future__ import annotations

import errno
import logging
import os

import pytest

from app import create_app
from tests.conftest import bearer, exchange, fetch_token
from tickets.config import ConfigError
from tickets.context import current_services
from tickets.core.domain import parse_rfc3339
from tickets.storage import StorageError, journal


def test_lone_surrogates_are_refused(test_client, auth):
    """A lone surrogate (JSON can carry one as an escape) is a 422, never a stored ticket whose token cannot be made."""
    for body in (
        '{"type": "SINGLE_USE_TICKET", "properties": {"x": "\\ud800"}}',
        '{"type": "SINGLE_USE_TICKET", "properties": {"\\udfff": 1}}',
        '{"type": "SCHEDULE_TICKET", "properties": {"scheduled_date": "2030-01-01T10:00:00Z", "title": "\\ud83d"}}',
        '{"type": "SINGLE_USE_TICKET", "properties": {}, "organizationId": "org-a\\ud800"}',
    ):
        response = test_client.post(
            "/security/ticket", data=body, headers={**auth, "Content-Type": "application/json"}
        )
        assert response.status_code == 422, body


def test_exchange_whose_token_fails_leaves_the_ticket_unused(test_client, create_ticket, services, monkeypatch):
    """If the token cannot be signed, the single-use ticket is not consumed."""
    ticket = create_ticket("SINGLE_USE_TICKET")

    def broken_sign(claims):
        raise StorageError("keys.json unreadable")

    monkeypatch.setattr(services.keys, "sign", broken_sign)
    assert exchange(test_client, ticket["id"]).status_code == 503
    monkeypatch.undo()
    assert exchange(test_client, ticket["id"]).status_code == 200


def test_failed_compaction_does_not_fail_a_write_that_is_on_disk(test_client, auth, create_ticket, monkeypatch):
    """The journal entry is durable before compaction; a compaction that fails is retried later, not a 503."""
    monkeypatch.setattr(journal, "MIN_COMPACTION", 1)
    real_fsync = os.fsync
    writes = {"n": 0}

    def fsync_failing_for_snapshots(fd):
        if os.readlink(f"/proc/self/fd/{fd}").split("/")[-1].startswith(".tickets.json."):
            raise OSError(errno.ENOSPC, "No space left on device")
        writes["n"] += 1
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync_failing_for_snapshots)
    created = test_client.post("/security/ticket", json={"type": "SINGLE_USE_TICKET", "properties": {}}, headers=auth)
    assert created.status_code == 200
    assert exchange(test_client, created.json["id"]).status_code == 200
    monkeypatch.undo()
    assert exchange(test_client, created.json["id"]).json["error_description"] == "NOT_FOUND"


def test_unauthenticated_requests_are_401_before_validation(test_client):
    """No token: 401 even when the body or query would not validate."""
    assert test_client.put("/security/ticket/ABCDEFGHJ", json={"bogus": 1}).status_code == 401
    assert test_client.get("/security/ticket/ABCDEFGHJ/event?calendar=nope").status_code == 401
    assert test_client.post("/security/ticket", json={"bogus": 1}).status_code == 401


def test_enabling_again_does_not_revive_old_ticket_tokens(test_client, auth, create_ticket, services, clock):
    """A token from before a disable stays void after enable; a new exchange works."""
    ticket = create_ticket("MULTI_USE_TICKET")
    old = exchange(test_client, ticket["id"]).json["access_token"]
    test_client.post(f"/security/ticket/{ticket['id']}/disable", headers=auth)
    test_client.post(f"/security/ticket/{ticket['id']}/enable", headers=auth)
    introspected = test_client.post("/security/oauth/introspect", data={"token": old}, headers=auth).json
    assert introspected == {"active": False}
    assert test_client.get(f"/security/ticket/{ticket['id']}", headers=bearer(old)).status_code == 401
    # A token made a little later than the disable (iat has whole seconds) stands.
    clock.advance(seconds=2)
    fresh = exchange(test_client, ticket["id"]).json["access_token"]
    assert test_client.post("/security/oauth/introspect", data={"token": fresh}, headers=auth).json["active"] is True


def test_unexpected_errors_log_masked_paths(data_dir, monkeypatch, caplog):
    """A 500's log line names the path with the ticket id masked (the app not in testing mode)."""
    app = create_app({"TICKETS_DATA_DIR": str(data_dir)})
    test_client = app.test_client()
    with app.app_context():
        services = current_services()
        credentials = services.clients.create("x", "org-a", "global")
    auth = bearer(fetch_token(test_client, credentials))
    ticket = test_client.post("/security/ticket", json={"type": "MULTI_USE_TICKET", "properties": {}}, headers=auth)

    def explode(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(services.tickets, "get_ticket", explode)
    ticket_id = ticket.json["id"]
    with caplog.at_level(logging.ERROR):
        response = test_client.get(f"/security/ticket/{ticket_id}", headers=auth)
    assert response.status_code == 500 and response.json["code"] == 500
    assert ticket_id not in caplog.text
    assert f"/security/ticket/{ticket_id[:2]}***" in caplog.text


@pytest.mark.parametrize("value", ["2030-01-01T10:00:00+02:00:30", "2030-01-01T10:00:00.1234567Z", "2030-01-01T10:00Z"])
def test_rfc3339_is_strict(value):
    """Offsets with seconds, 7-digit fractions and missing seconds are not RFC 3339."""
    assert parse_rfc3339(value) is None


def test_ticket_ttl_setting_is_bounded(tmp_path):
    """TICKETS_TICKET_TTL=0 would make every ticket expired at birth: refused at start."""
    with pytest.raises(ConfigError, match="TICKETS_TICKET_TTL"):
        create_app({"TICKETS_DATA_DIR": str(tmp_path), "TICKETS_TICKET_TTL": 0})
