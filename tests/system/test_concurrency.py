"""Several gunicorn workers on one data folder: no lost writes, one winner per single-use ticket, one throttle."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from .conftest import bearer, create_ticket, exchange, fetch_token, race_exchanges

pytestmark = pytest.mark.system

TICKETS = 300
WRITERS = 8
ROUNDS = 20
RACERS = 30


def _properties(n: int) -> dict:
    return {"customer_id": f"customer-{n}", "n": n, "conference_id": f"conf-{n}", "nested": {"list": [n, str(n)]}}


def _read_all(base_url: str, token: str, created: dict) -> None:
    """GET every ticket from WRITERS threads; each must be 200 with the properties it was created with."""
    local = threading.local()

    def read(ticket_id):
        if not hasattr(local, "session"):
            local.session = requests.Session()
        response = local.session.get(f"{base_url}/security/ticket/{ticket_id}", headers=bearer(token), timeout=30)
        return ticket_id, response.status_code, response.json()

    with ThreadPoolExecutor(WRITERS) as pool:
        results = list(pool.map(read, created))
    failures = [(ticket_id, status) for ticket_id, status, _ in results if status != 200]
    assert failures == []
    for ticket_id, _, body in results:
        sent = created[ticket_id]
        assert body["id"] == ticket_id
        assert body["properties"] == sent
        assert body["userId"] == sent["customer_id"]
        assert body["type"] == "MULTI_USE_TICKET"


def test_parallel_creates_across_workers_are_all_kept_and_survive_restart(gunicorn):
    """300 tickets created from 8 threads on 3 workers are all readable, listed, and still there after a restart."""
    server = gunicorn(workers=3)
    credentials = server.cli("clients", "create", "--name", "load", "--org", "org-load")  # service already running
    token = fetch_token(server.url, credentials)

    local = threading.local()

    def create(n):
        if not hasattr(local, "session"):
            local.session = requests.Session()
        ticket = create_ticket(server.url, token, properties=_properties(n), session=local.session)
        return ticket["id"], n

    with ThreadPoolExecutor(WRITERS) as pool:
        made = list(pool.map(create, range(TICKETS)))
    created = {ticket_id: _properties(n) for ticket_id, n in made}
    assert len(created) == TICKETS, "duplicate ticket ids were handed out"

    _read_all(server.url, token, created)
    listing = requests.get(
        f"{server.url}/security/ticket", params={"page_size": 100}, headers=bearer(token), timeout=30
    )
    assert listing.status_code == 200, listing.text
    assert json.loads(listing.headers["X-Pagination"])["total"] == TICKETS

    server.restart()
    _read_all(server.url, token, created)


def test_single_use_ticket_has_exactly_one_winner_across_workers(gunicorn):
    """30 simultaneous exchanges of one single-use ticket on 4 workers: one 200, 29 NOT_FOUND, 20 rounds."""
    server = gunicorn(workers=4, TICKETS_EXCHANGE_FAILURES_PER_MINUTE=0)
    credentials = server.cli("clients", "create", "--name", "race", "--org", "org-race")
    token = fetch_token(server.url, credentials)

    for round_number in range(ROUNDS):
        ticket = create_ticket(server.url, token, "SINGLE_USE_TICKET", {"round": round_number})
        race_exchanges([server.url], ticket["id"], RACERS, round_number)
        gone = requests.get(f"{server.url}/security/ticket/{ticket['id']}", headers=bearer(token), timeout=30)
        assert gone.status_code == 404, f"round {round_number}: {gone.status_code} {gone.text}"


def test_exchange_throttle_is_shared_by_all_workers(gunicorn):
    """5 failed exchanges spread over 3 workers throttle the address everywhere: 429 with Retry-After 1-60."""
    server = gunicorn(workers=3, TICKETS_EXCHANGE_FAILURES_PER_MINUTE=5)
    credentials = server.cli("clients", "create", "--name", "throttle", "--org", "org-throttle")
    token = fetch_token(server.url, credentials)
    valid = create_ticket(server.url, token, "MULTI_USE_TICKET", {})

    for attempt in range(5):  # requests.post without a session: a new connection each time
        refused = exchange(server.url, f"BGSXYZW{'ABCDE'[attempt]}")
        assert refused.status_code == 400, refused.text
        assert refused.json() == {"error": "invalid_grant", "error_description": "NOT_FOUND"}

    for attempt in range(9):
        throttled = exchange(server.url, valid["id"] if attempt % 3 == 0 else f"QTHRXYZW{'ABCDEFGHJ'[attempt]}")
        assert throttled.status_code == 429, f"try {attempt}: {throttled.status_code} {throttled.text}"
        retry_after = throttled.headers.get("Retry-After", "")
        assert retry_after.isdigit() and 1 <= int(retry_after) <= 60, retry_after
