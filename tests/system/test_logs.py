"""The logs never show a ticket id or a token: the JSON request log, or gunicorn's access log with masked paths."""

from __future__ import annotations

import json

import pytest
import requests

from .conftest import bearer, create_ticket, exchange, fetch_token
from .reporting import record

pytestmark = pytest.mark.system

ORG = "org-logs"
SCHEDULED = {"scheduled_date": "2030-06-01T09:00:00+02:00", "title": "Call"}


def secret_traffic(base_url: str, credentials: dict) -> tuple[set, set]:
    """Requests that carry ticket ids and tokens in every place they travel; returns (ticket ids, secrets)."""
    session = requests.Session()
    token = fetch_token(base_url, credentials, session)
    auth = bearer(token)
    tickets = {
        "multi": create_ticket(base_url, token, "MULTI_USE_TICKET", {"customer_id": "c1"}, session),
        "single_form": create_ticket(base_url, token, "SINGLE_USE_TICKET", {}, session),
        "single_query": create_ticket(base_url, token, "SINGLE_USE_TICKET", {}, session),
        "scheduled": create_ticket(base_url, token, "SCHEDULE_TICKET", SCHEDULED, session),
        "deleted": create_ticket(base_url, token, "MULTI_USE_TICKET", {}, session),
    }
    ids = {ticket["id"] for ticket in tickets.values()}
    secrets = {token, credentials["client_secret"]}
    statuses = []

    def call(method, path, **kwargs):
        response = session.request(method, f"{base_url}/security{path}", timeout=30, **kwargs)
        statuses.append((method, path, response.status_code))
        return response

    for ticket_id in ids:
        call("GET", f"/ticket/{ticket_id}", headers=auth)
        call("GET", f"/ticket/{ticket_id.lower()}", headers=auth)  # ids are looked up case-insensitively
    call("PUT", f"/ticket/{tickets['multi']['id']}", json={"properties": {"n": 1}}, headers=auth)
    call("POST", f"/ticket/{tickets['multi']['id']}/disable", headers=auth)
    call("POST", f"/ticket/{tickets['multi']['id']}/enable", headers=auth)
    call("DELETE", f"/ticket/{tickets['deleted']['id']}", headers=auth)
    call("GET", f"/ticket/{tickets['deleted']['id']}", headers=auth)  # 404 now
    call("GET", "/ticket", params={"organizationId": ORG, "type": "MULTI_USE_TICKET"}, headers=auth)
    for calendar in ("ics", "google", "outlook"):
        call(
            "GET",
            f"/ticket/{tickets['scheduled']['id']}/event",
            params={"calendar": calendar},
            headers=auth,
            allow_redirects=False,
        )

    # Exchanges: form body, query string (as existing clients send it), and a refused one of each.
    by_form = exchange(base_url, tickets["single_form"]["id"], session)
    by_query = call("POST", f"/oauth/token?grant_type=ticket&ticket={tickets['single_query']['id']}")
    multi = call("POST", f"/oauth/token?grant_type=ticket&ticket={tickets['multi']['id']}")
    scheduled = exchange(base_url, tickets["scheduled"]["id"], session)  # NOT_YET_VALID
    used_up = call("POST", f"/oauth/token?grant_type=ticket&ticket={tickets['single_query']['id']}")
    assert (by_form.status_code, by_query.status_code, multi.status_code) == (200, 200, 200), by_query.text
    assert (scheduled.status_code, used_up.status_code) == (400, 400)
    ticket_tokens = {response.json()["access_token"] for response in (by_form, by_query, multi)}
    secrets |= ticket_tokens

    # A ticket's own token reads its ticket and event, and is introspected by the client.
    own = bearer(multi.json()["access_token"])
    call("GET", f"/ticket/{tickets['multi']['id']}", headers=own)
    call("GET", f"/ticket/{tickets['multi']['id']}/event", headers=own)
    for secret in ticket_tokens | {token}:
        call("POST", "/oauth/introspect", data={"token": secret}, headers=auth)
    call("POST", f"/oauth/introspect?token={token}", headers=auth)
    # client_secret_post and a forged bearer token.
    call("POST", "/oauth/token", data={"grant_type": "client_credentials", **credentials})
    call("GET", "/ticket", headers=bearer(token[:-4] + "AAAA"))
    assert not [s for s in statuses if s[2] >= 500], statuses
    return ids, secrets


@pytest.mark.parametrize("mode", ["json", "access"])
def test_logs_show_no_ticket_id_or_token(gunicorn, request, mode):
    """After traffic carrying ticket ids and tokens in paths, query strings, bodies and headers, the logs hold none;
    one line per request: the app's JSON line (the default) or gunicorn's access line with masked paths."""
    server = gunicorn(workers=2, TICKETS_REQUEST_LOG=mode)
    credentials = server.cli("clients", "create", "--name", "logs", "--org", ORG)
    ids, secrets = secret_traffic(server.url, credentials)
    server.stop()  # flush and close the log files

    logs = {path.name: path.read_text(errors="replace") for path in sorted(server.log_dir.glob("gunicorn-*"))}
    text = "\n".join(logs.values())
    json_lines = [json.loads(line) for line in text.splitlines() if line.startswith('{"time"')]
    access_lines = [line for line in text.splitlines() if '"' in line and "/security/" in line and line[0] != "{"]
    if mode == "json":
        assert len(json_lines) >= 40 and access_lines == [], f"one JSON line per request, no access log:\n{text}"
        assert {"/security/ticket/<ticketId>", "/security/oauth/token"} <= {line["path"] for line in json_lines}
    else:
        assert len(access_lines) >= 40 and json_lines == [], f"one access line per request, no JSON log:\n{text}"
        masked = {f"/security/ticket/{ticket_id[:2]}***" for ticket_id in ids}
        missing = sorted(path for path in masked if path not in text)
        assert missing == [], f"masked paths absent from the access log: {missing}"
        assert '"POST /security/oauth/token" 200' in text, "the token endpoint's access lines are missing"

    leaked_ids = sorted(ticket_id for ticket_id in ids if ticket_id.lower() in text.lower())
    assert leaked_ids == [], f"ticket ids in the logs: {leaked_ids}"
    # A JWT's signature is unique to it; a client secret is one string. Any of them, whole or as the
    # signature part alone, must not appear.
    pieces = set(secrets) | {secret.rsplit(".", 1)[-1] for secret in secrets if "." in secret}
    leaked = sorted(piece[:12] + "..." for piece in pieces if piece in text)
    assert leaked == [], f"tokens or secrets in the logs: {leaked}"
    assert "ticket=" not in text, "a query string reached the logs"
    lines = len(json_lines) + len(access_lines)
    record(
        request.config,
        f"logs-{mode}",
        f"{lines} request log lines ({mode}); {len(ids)} ticket ids and {len(pieces)} token pieces absent",
        {"lines": lines, "ticket_ids": len(ids), "secret_pieces": len(pieces), "files": list(logs)},
    )


def raw_request(port: int, data: bytes) -> bytes:
    """Send bytes as they are (a malformed request line, a made-up method) and read what comes back."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(data)
        chunks = []
        try:
            while chunk := connection.recv(65536):
                chunks.append(chunk)
        except (TimeoutError, ConnectionResetError):
            pass
    return b"".join(chunks)


@pytest.mark.parametrize("mode", ["json", "access"])
def test_malformed_and_mistyped_requests_leave_no_id_in_any_log(gunicorn, request, mode):
    """Ids in malformed request lines, mistyped paths, the join link, odd methods and lower case: every line the
    service and gunicorn write is searched for every id; and made-up methods do not grow /metrics."""
    server = gunicorn(workers=2, TICKETS_REQUEST_LOG=mode, TICKETS_EXCHANGE_FAILURES_PER_MINUTE=0)
    credentials = server.cli("clients", "create", "--name", "logs", "--org", ORG)
    token = fetch_token(server.url, credentials)
    ids = [create_ticket(server.url, token)["id"] for _ in range(4)]
    first, second, third, fourth = ids
    before = requests.get(f"{server.url}/metrics", timeout=30).text
    for index, ticket_id in enumerate(ids):
        lines = [
            f"GET /security/ticket/{ticket_id} HTTP/1.1 EXTRA\r\n\r\n",
            f"GET /t/{ticket_id}?ticket={ticket_id}\r\n\r\n",
            f"G\x01T /security/ticket/{ticket_id} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
            f"GET /security/ticket/{ticket_id.lower()} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n",
            f"GET /security/tiket/{ticket_id}/event HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n",
            f"GET /security/ticket/{ticket_id}%ZZ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n",
            f"BREW{index} /security/ticket/{ticket_id} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n",
            f"GET /security/ticket/{ticket_id} HTTP/1.0\r\nHost: {ticket_id}.example\r\n\r\n",
        ]
        for line in lines:
            raw_request(server.port, line.encode("latin-1"))
    for number in range(100):
        made_up = f"M{number:03d}X /security/ticket/{first} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n"
        raw_request(server.port, made_up.encode())
    requests.post(f"{server.url}/security/oauth/token", data={"grant_type": "ticket", "ticket": second}, timeout=30)
    requests.get(f"{server.url}/security/ticket/{third}/nope", headers=bearer(token), timeout=30)
    requests.get(f"{server.url}/security/ticket", params={"type": fourth}, headers=bearer(token), timeout=30)
    after = requests.get(f"{server.url}/metrics", timeout=30).text
    server.stop()

    text = "\n".join(path.read_text(errors="replace") for path in sorted(server.log_dir.glob("gunicorn-*")))
    leaked = sorted(ticket_id for ticket_id in ids if ticket_id.lower() in text.lower())
    assert leaked == [], f"ticket ids in the logs:\n{text[-3000:]}"
    methods = {line.split('method="')[1].split('"')[0] for line in after.splitlines() if 'method="' in line}
    assert methods <= {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "other"}, methods
    assert len(after) < len(before) + 20_000, (len(before), len(after))
    record(request.config, f"logs-malformed-{mode}", f"{len(ids)} ids through 36 malformed or mistyped requests "
           f"and 100 made-up methods: no id in {len(text.splitlines())} log lines; /metrics "
           f"{len(before)} -> {len(after)} bytes", {"lines": len(text.splitlines())})
