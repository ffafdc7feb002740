"""Two gunicorn instances (2 workers each, own data folders) on one PostgreSQL database behave as one service."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import jwt
import pytest
import requests

from .conftest import bearer, create_ticket, exchange, fetch_token, race_exchanges

pytestmark = pytest.mark.system

ISSUER = "https://tickets.example.test/security"  # one issuer for the whole cluster, as behind a load balancer
ROUNDS = 20
RACERS = 30


@pytest.fixture
def cluster(gunicorn, database_url):
    """A factory: two instances on the same fresh database, started at the same time; returns (A, B)."""

    def start(**env):
        settings = {"TICKETS_DATABASE_URL": database_url, "TICKETS_ISSUER": ISSUER, **env}
        servers = [gunicorn(workers=2, started=False, **settings) for _ in range(2)]
        with ThreadPoolExecutor(2) as pool:  # both nodes migrate and make the first key at once
            list(pool.map(lambda server: server.start(), servers))
        assert servers[0].port != servers[1].port and servers[0].data_dir != servers[1].data_dir
        return servers

    return start


def verify_with_jwks(server, token: str) -> dict:
    """Verify a token with PyJWT against `server`'s published JWKS, as a resource server would."""
    keys = jwt.PyJWKClient(f"{server.url}/security/.well-known/jwks.json", cache_keys=False)
    return jwt.decode(
        token, keys.get_signing_key_from_jwt(token).key, algorithms=["RS256"], issuer=ISSUER,
        options={"require": ["iss", "sub", "iat", "exp", "jti"]},
    )


def jwks(server) -> list:
    response = requests.get(f"{server.url}/security/.well-known/jwks.json", timeout=30)
    assert response.status_code == 200
    return sorted(response.json()["keys"], key=lambda key: key["kid"])


def test_two_nodes_share_clients_tickets_and_keys(cluster):
    """A CLI client works on both; a ticket made on A is exchanged on B; tokens of either node work on the other."""
    a, b = cluster(TICKETS_EXCHANGE_FAILURES_PER_MINUTE=0)
    assert jwks(a) == jwks(b)
    assert len(jwks(a)) == 1, "two nodes starting at once made two signing keys"

    credentials = a.cli("clients", "create", "--name", "cluster", "--org", "org-cluster")
    token_a = fetch_token(a.url, credentials)
    token_b = fetch_token(b.url, credentials)
    listed = b.cli("clients", "list")
    assert [client["client_id"] for client in listed] == [credentials["client_id"]]

    ticket = create_ticket(a.url, token_a, "MULTI_USE_TICKET", {"customer_id": "c-9", "conference_id": "conf"})
    seen_on_b = requests.get(f"{b.url}/security/ticket/{ticket['id']}", headers=bearer(token_a), timeout=30)
    assert seen_on_b.status_code == 200, seen_on_b.text
    assert seen_on_b.json() == ticket
    assert verify_with_jwks(b, token_a)["client_id"] == credentials["client_id"]
    assert verify_with_jwks(a, token_b)["client_id"] == credentials["client_id"]

    exchanged = exchange(b.url, ticket["id"])
    assert exchanged.status_code == 200, exchanged.text
    ticket_token = exchanged.json()["access_token"]
    claims = verify_with_jwks(a, ticket_token)
    assert (claims["ticket"], claims["sub"], claims["properties"]["conference_id"]) == (ticket["id"], "c-9", "conf")
    for server in (a, b):
        own = requests.get(f"{server.url}/security/ticket/{ticket['id']}", headers=bearer(ticket_token), timeout=30)
        assert own.status_code == 200, (server.url, own.text)
        assert own.json()["useCount"] == 1
    other = create_ticket(b.url, token_b)
    foreign = requests.get(f"{a.url}/security/ticket/{other['id']}", headers=bearer(ticket_token), timeout=30)
    assert foreign.status_code == 404

    b.cli("clients", "delete", credentials["client_id"])
    # Each node keeps the clients it found for up to a second (README: the bound): then its tokens are 401.
    deadline = time.monotonic() + 1.5
    for server in (a, b):
        while True:
            gone = requests.get(f"{server.url}/security/ticket/{ticket['id']}", headers=bearer(token_a), timeout=30)
            if gone.status_code != 200 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert gone.status_code == 401, (server.url, gone.status_code)


def test_single_use_ticket_has_one_winner_across_nodes(cluster):
    """20 rounds: 30 simultaneous exchanges of one single-use ticket, half on A and half on B, give exactly one 200."""
    a, b = cluster(TICKETS_EXCHANGE_FAILURES_PER_MINUTE=0)
    credentials = a.cli("clients", "create", "--name", "race", "--org", "org-race")
    tokens = {a.url: fetch_token(a.url, credentials), b.url: fetch_token(b.url, credentials)}

    for round_number in range(ROUNDS):
        maker = (a, b)[round_number % 2]
        ticket = create_ticket(maker.url, tokens[maker.url], "SINGLE_USE_TICKET", {"round": round_number})
        race_exchanges([a.url, b.url], ticket["id"], RACERS, round_number)
        for server in (a, b):
            gone = requests.get(f"{server.url}/security/ticket/{ticket['id']}", headers=bearer(tokens[server.url]),
                                timeout=30)
            assert gone.status_code == 404, f"round {round_number}: {gone.status_code} {gone.text}"


def test_exchange_throttle_counts_across_nodes(cluster):
    """Limit 4 on both: 2 failures on A and 2 on B (each still a 400) make the next exchange on either a 429."""
    a, b = cluster(TICKETS_EXCHANGE_FAILURES_PER_MINUTE=4)
    credentials = a.cli("clients", "create", "--name", "throttle", "--org", "org-throttle")
    valid = create_ticket(a.url, fetch_token(a.url, credentials))

    for attempt, server in enumerate((a, b, a, b)):  # no session: a new connection, so any worker may answer
        refused = exchange(server.url, f"QWERTYZ{'ABCD'[attempt]}")
        assert refused.status_code == 400, f"failure {attempt + 1} on {server.url}: {refused.text}"
        assert refused.json() == {"error": "invalid_grant", "error_description": "NOT_FOUND"}

    for server in (a, b, a, b):
        throttled = exchange(server.url, valid["id"])
        assert throttled.status_code == 429, f"{server.url}: {throttled.status_code} {throttled.text}"
        retry_after = throttled.headers.get("Retry-After", "")
        assert retry_after.isdigit() and 1 <= int(retry_after) <= 60, retry_after


def test_a_token_revoked_on_one_node_is_refused_by_the_other_at_once(cluster):
    """RFC 7009 revocation is shared through the database: B refuses what A revoked, with no delay."""
    a, b = cluster(TICKETS_EXCHANGE_FAILURES_PER_MINUTE=0)
    credentials = a.cli("clients", "create", "--name", "revoker", "--org", "org-revoke")
    token = fetch_token(a.url, credentials)
    ticket = create_ticket(a.url, token, "SINGLE_USE_TICKET")
    ticket_token = requests.post(
        f"{b.url}/security/oauth/token", data={"grant_type": "ticket", "ticket": ticket["id"]}, timeout=30
    ).json()["access_token"]
    revoked = requests.post(
        f"{a.url}/security/oauth/revoke", data={"token": ticket_token},
        auth=(credentials["client_id"], credentials["client_secret"]), timeout=30,
    )
    assert (revoked.status_code, revoked.content) == (200, b"")
    introspected = requests.post(
        f"{b.url}/security/oauth/introspect", data={"token": ticket_token}, headers=bearer(token), timeout=30
    )
    assert introspected.json() == {"active": False}
