"""Ticket ids never reach a log line (SPEC section 11): masked by what they look like."""

from __future__ import annotations

import logging

import pytest

from tickets.core.rules import new_ticket_id
from tickets.http.logmask import MaskingFormatter, mask_ids


@pytest.mark.parametrize(
    "line, masked",
    [
        ("GET /security/ticket/K7QW4MZP2/event", "GET /security/ticket/K7***/event"),
        ("GET /security/ticket/k7qw4mzp2 HTTP/1.1", "GET /security/ticket/k7***"),
        ("GET /t/K7QW4MZP2", "GET /t/K7***"),
        ("POST /security/oauth/token?grant_type=ticket&ticket=K7QW4MZP2", "ticket=K7***"),
        ("Invalid HTTP request line: 'GARBLED K7QW4MZP2 x'", "'GARBLED K7*** x'"),
        ("ticket K7QW4MZP2ABCDEFGHJKMNPQRSTUVWXYZ23456789 done", "ticket K7*** done"),
        ("/security/ticket/%2FK7QW4MZP2", "/security/ticket/%2F***"),
    ],
)
def test_ids_are_masked_wherever_they_look_like_ids(line, masked):
    assert masked in mask_ids(line)
    assert "QW4MZP2" not in mask_ids(line)


@pytest.mark.parametrize(
    "line",
    [
        "GET /security/swagger-ui-assets/swagger-ui-bundle.js",
        "GET /security/.well-known/jwks.json",
        "POST /security/oauth/introspect",
        "GET /security/ticket/<ticketId>/event",
        "[INFO] Booting worker with pid: 4711",
        '{"path": "/security/ticket", "status": 200, "client_id": "4f0c9a8b7e6d5c4b3a291807f6e5d4c3"}',
        "Worker exiting (pid: 12)",
    ],
)
def test_other_text_is_left_alone(line):
    assert mask_ids(line) == line


def test_no_generated_id_survives():
    """10,000 fresh ids, in capitals and lower case, in a path and in a query: none is left."""
    for _ in range(10_000):
        ticket_id = new_ticket_id(None)
        text = mask_ids(f"GET /t/{ticket_id.lower()}?ticket={ticket_id} {ticket_id}")
        assert ticket_id not in text and ticket_id.lower() not in text


def test_tracebacks_are_masked_too():
    formatter = MaskingFormatter(logging.Formatter("%(message)s"))
    try:
        raise ValueError("bad ticket K7QW4MZP2")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed on /t/%s", ("K7QW4MZP2",), None)
        import sys

        record.exc_info = sys.exc_info()
    text = formatter.format(record)
    assert "K7QW4MZP2" not in text and "ValueError" in text
