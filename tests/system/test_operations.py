"""What operators rely on, on real gunicorn: metrics summed over workers, request logs and ids, proxies, SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.system.conftest import bearer, create_ticket, exchange, fetch_token

pytestmark = pytest.mark.system


def samples(base_url: str) -> dict:
    """Every sample of /metrics as {(name, frozenset(labels)): value}."""
    text = requests.get(f"{base_url}/metrics", timeout=10).text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(found: dict, name: str, **labels) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def test_metrics_add_up_across_workers(gunicorn):
    """After traffic on fresh connections over 3 workers, one scrape shows the exact totals."""
    server = gunicorn(workers=3, TICKETS_EXCHANGE_FAILURES_PER_MINUTE=100)
    token = fetch_token(server.url, server.cli("clients", "create", "--name", "m", "--org", "o"))
    multi = [create_ticket(server.url, token, "MULTI_USE_TICKET") for _ in range(7)]
    single = [create_ticket(server.url, token, "SINGLE_USE_TICKET") for _ in range(4)]
    for ticket in multi + single:
        assert exchange(server.url, ticket["id"]).status_code == 200
    for ticket in single:
        assert exchange(server.url, ticket["id"]).json()["error_description"] == "NOT_FOUND"
    requests.post(f"{server.url}/security/ticket/{multi[0]['id']}/revoke", headers=bearer(token), timeout=10)
    assert exchange(server.url, multi[0]["id"]).json()["error_description"] == "REVOKED"
    for ticket in multi[1:4]:
        response = requests.get(f"{server.url}/security/ticket/{ticket['id']}", headers=bearer(token), timeout=10)
        assert response.status_code == 200, response.text

    found = samples(server.url)
    assert value(found, "tickets_created_total", type="MULTI_USE_TICKET") == 7
    assert value(found, "tickets_created_total", type="SINGLE_USE_TICKET") == 4
    assert value(found, "tickets_exchanges_total", type="MULTI_USE_TICKET", outcome="success") == 7
    assert value(found, "tickets_exchanges_total", type="SINGLE_USE_TICKET", outcome="success") == 4
    assert value(found, "tickets_exchanges_total", type="unknown", outcome="NOT_FOUND") == 4
    assert value(found, "tickets_exchanges_total", type="MULTI_USE_TICKET", outcome="REVOKED") == 1
    assert value(found, "tickets_tokens_issued_total", grant="client_credentials") == 1
    assert value(found, "tickets_tokens_issued_total", grant="ticket") == 11
    get_one = dict(endpoint="/security/ticket/<ticketId>", method="GET", status="200")
    assert value(found, "tickets_http_requests_total", **get_one) == 3
    posts = dict(endpoint="/security/oauth/token", method="POST")
    assert value(found, "tickets_http_request_duration_seconds_count", **posts) == 1 + 11 + 4 + 1
    pids = {int(line.split()[0]) for line in os.popen(f"pgrep -g {server.process.pid}").read().split() if line}
    assert len(pids) >= 4  # master and 3 workers: the totals above came from several processes


def test_throttled_exchanges_are_counted(gunicorn):
    """429s show in tickets_throttled_total."""
    server = gunicorn(workers=2, TICKETS_EXCHANGE_FAILURES_PER_MINUTE=2)
    for _ in range(2):
        assert exchange(server.url, "ZZZZZZZZZ").status_code == 400
    for _ in range(3):
        assert exchange(server.url, "ZZZZZZZZZ").status_code == 429
    assert value(samples(server.url), "tickets_throttled_total") == 3


def test_request_ids_and_json_request_logs(gunicorn):
    """X-Request-ID is echoed or generated; one JSON line per request names template, status and client."""
    server = gunicorn(workers=2)
    credentials = server.cli("clients", "create", "--name", "l", "--org", "acme")
    token = fetch_token(server.url, credentials)
    ticket = create_ticket(server.url, token)
    traced_headers = {**bearer(token), "X-Request-ID": "trace-42"}
    echoed = requests.get(f"{server.url}/security/ticket/{ticket['id']}", headers=traced_headers, timeout=10)
    assert echoed.headers["X-Request-ID"] == "trace-42"
    generated = requests.get(f"{server.url}/security/health", headers={"X-Request-ID": "bad id; x"}, timeout=10)
    made = generated.headers["X-Request-ID"]  # random hex: it may spell "bad" by chance (1 run in about 150 did)
    assert len(made) == 32 and set(made) <= set("0123456789abcdef")
    time.sleep(0.5)
    lines = [json.loads(line) for line in server.output().splitlines() if line.startswith("{")]
    traced = [line for line in lines if line["request_id"] == "trace-42"]
    assert len(traced) == 1
    assert traced[0] | {"time": None, "duration_ms": None} == {
        "time": None, "duration_ms": None, "request_id": "trace-42", "method": "GET",
        "path": "/security/ticket/<ticketId>", "status": 200,
        "client_id": credentials["client_id"], "organization": "acme",
    }
    token_lines = [line for line in lines if line["path"] == "/security/oauth/token"]
    assert token_lines and token_lines[0]["client_id"] == credentials["client_id"]
    assert ticket["id"] not in server.output()


def test_forwarded_for_counts_only_behind_a_configured_proxy(gunicorn):
    """Without TICKETS_PROXY_FIX, X-Forwarded-For cannot dodge the throttle; with it, each client counts alone."""
    direct = gunicorn(workers=2, TICKETS_EXCHANGE_FAILURES_PER_MINUTE=2)
    for index in range(3):
        spoofed = {"X-Forwarded-For": f"10.0.0.{index}"}
        response = requests.post(
            f"{direct.url}/security/oauth/token", data={"grant_type": "ticket", "ticket": "ZZZZZZZZZ"},
            headers=spoofed, timeout=10,
        )
    assert response.status_code == 429

    proxied = gunicorn(workers=2, TICKETS_EXCHANGE_FAILURES_PER_MINUTE=2, TICKETS_PROXY_FIX=1)
    statuses = []
    for index in range(3):
        response = requests.post(
            f"{proxied.url}/security/oauth/token", data={"grant_type": "ticket", "ticket": "ZZZZZZZZZ"},
            headers={"X-Forwarded-For": f"10.0.0.{index}"}, timeout=10,
        )
        statuses.append(response.status_code)
    assert statuses == [400, 400, 400]


def test_sigterm_finishes_in_flight_requests_and_loses_no_write(gunicorn):
    """SIGTERM during a stream of writes: every request gets its answer, and every 2xx is there after restart."""
    server = gunicorn(workers=2)
    token = fetch_token(server.url, server.cli("clients", "create", "--name", "g", "--org", "o"))
    acknowledged, failures, started = [], [], threading.Event()

    def write(thread: int) -> None:
        session = requests.Session()
        for index in range(200):
            try:
                response = session.post(
                    f"{server.url}/security/ticket", headers=bearer(token), timeout=10,
                    json={"type": "MULTI_USE_TICKET", "properties": {"n": index, "thread": thread}},
                )
            except requests.ConnectionError:
                return  # refused after the listener closed: never accepted, so nothing to lose
            except requests.RequestException as error:
                failures.append(repr(error))
                return
            if response.status_code != 200:
                failures.append(response.status_code)
                return
            acknowledged.append(response.json()["id"])
            started.set()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    assert started.wait(10)
    time.sleep(0.3)
    os.killpg(server.process.pid, signal.SIGTERM)
    assert server.wait_exit(30) == 0
    for thread in threads:
        thread.join(30)
    assert failures == []
    assert acknowledged
    server.start()
    for ticket_id in acknowledged:
        response = requests.get(f"{server.url}/security/ticket/{ticket_id}", headers=bearer(token), timeout=10)
        assert response.status_code == 200, ticket_id
