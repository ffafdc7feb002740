"""Webhooks on real gunicorn: delivered by the service itself, once per event across workers (and nodes), after
SIGKILL too, and a slow receiver slows nothing else. Messages are verified with the standardwebhooks package."""

from __future__ import annotations

import json
import os
import signal
import statistics
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.webhook_receiver import Receiver

from .conftest import bearer, create_ticket, exchange, fetch_token
from .reporting import record

pytestmark = pytest.mark.system
ORG = "org-hooks"


@pytest.fixture
def receiver():
    """Kept alive, as most receivers are: messages after the first of a round go pipelined."""
    started = Receiver(keep_alive=True).start()
    yield started
    started.stop()


def changes(url: str, token: str, count: int) -> set[str]:
    """`count` tickets made, each updated, exchanged and disabled (4 events each), from 4 threads at once."""
    def one(_):
        with requests.Session() as session:
            ticket = create_ticket(url, token, session=session)
            path = f"{url}/security/ticket/{ticket['id']}"
            assert session.put(path, json={"properties": {"n": 1}}, headers=bearer(token), timeout=30).ok
            assert exchange(url, ticket["id"], session=session).status_code == 200
            assert session.post(f"{path}/disable", headers=bearer(token), timeout=30).status_code == 204
            return ticket["id"]

    with ThreadPoolExecutor(4) as pool:
        return set(pool.map(one, range(count)))


def by_id(messages, secret: str) -> dict[str, dict]:
    """Every message verified, by webhook-id (retries of one event share it)."""
    return {message.headers["webhook-id"]: message.verified(secret) for message in messages}


def test_each_event_arrives_once_with_several_workers(gunicorn, receiver, request):
    """Three workers, a prompt receiver: 4 events per ticket, each delivered exactly once, soon."""
    server = gunicorn(workers=3)
    endpoint = server.cli("webhooks", "add", "--url", receiver.url(), "--org", ORG)
    token = fetch_token(server.url, server.cli("clients", "create", "--name", "hooks", "--org", ORG))
    started = time.monotonic()
    made = changes(server.url, token, 30)
    messages = receiver.wait_for(120)
    ids = Counter(message.headers["webhook-id"] for message in messages)
    assert len(ids) == 120 and max(ids.values()) == 1, ids.most_common(3)
    events = by_id(messages, endpoint["secret"])
    assert {body["data"]["ticket"]["id"] for body in events.values()} == made
    assert Counter(body["type"] for body in events.values()) == Counter(
        {"ticket.created": 30, "ticket.updated": 30, "ticket.exchanged": 30, "ticket.disabled": 30}
    )
    latency = sorted(message.at - started for message in messages)
    (listed,) = server.cli("webhooks", "list")
    assert listed["pending"] == 0 and listed["last"]["result"] == "delivered"
    record(request.config, "webhooks-once", f"120 events from 3 workers: each delivered once; last arrived "
           f"{latency[-1]:.2f} s after the first change", {"events": 120})


def test_events_survive_sigkill_of_the_whole_process_group(gunicorn, receiver, request):
    """Changes answered 2xx while the receiver fails, then SIGKILL, then a restart: every event arrives."""
    server = gunicorn(workers=2)
    endpoint = server.cli("webhooks", "add", "--url", receiver.url("/fail/1000000"))
    token = fetch_token(server.url, server.cli("clients", "create", "--name", "hooks", "--org", ORG))
    made = changes(server.url, token, 10)
    receiver.wait_for(1, "/fail/1000000")
    os.killpg(server.process.pid, signal.SIGKILL)
    server.process.wait(timeout=10)
    server.stop()
    receiver.failures["/fail/1000000"] = 10**9  # from now on the receiver answers 200
    server.start()
    delivered = {}
    deadline = time.monotonic() + 30  # the first retry comes about 5 s after the first attempt
    while time.monotonic() < deadline and len(delivered) < 40:
        ok = [m for m in receiver.received("/fail/1000000") if receiver.failures["/fail/1000000"] > 10**9]
        delivered = by_id(ok or receiver.received("/fail/1000000"), endpoint["secret"])
        time.sleep(0.2)
    assert {body["data"]["ticket"]["id"] for body in delivered.values()} == made
    assert len(delivered) == 40
    record(request.config, "webhooks-sigkill", "40 events pending at SIGKILL of the process group: all arrived "
           "after the restart", {"events": 40})


def test_a_slow_receiver_slows_neither_the_api_nor_another_endpoint(gunicorn, receiver, request):
    """One endpoint sleeps 3 s a message; the API answers as fast as without it, and the prompt one is served."""
    server = gunicorn(workers=2)
    token = fetch_token(server.url, server.cli("clients", "create", "--name", "hooks", "--org", ORG))

    def latencies(count: int) -> list[float]:
        spent = []
        with requests.Session() as session:
            for _ in range(count):
                begun = time.monotonic()
                create_ticket(server.url, token, session=session)
                spent.append(time.monotonic() - begun)
        return spent

    without = latencies(40)
    server.cli("webhooks", "add", "--url", receiver.url("/slow/3"))
    server.cli("webhooks", "add", "--url", receiver.url("/ok"))
    begun = time.monotonic()
    with_slow = latencies(40)
    prompt = receiver.wait_for(40, "/ok", seconds=10)
    assert len(prompt) == 40 and max(message.at for message in prompt) - begun < 6
    assert len(receiver.received("/slow/3")) < 10  # still crawling along
    assert statistics.median(with_slow) < max(0.05, 3 * statistics.median(without)), (without, with_slow)
    record(request.config, "webhooks-slow", f"create p50 {statistics.median(without) * 1000:.1f} ms without an "
           f"endpoint, {statistics.median(with_slow) * 1000:.1f} ms beside one that sleeps 3 s", {})


def test_two_postgresql_nodes_deliver_each_event_once(gunicorn, database_url, receiver, request):
    """Two nodes on one database, each with two workers: every event arrives, none twice."""
    settings = {"TICKETS_DATABASE_URL": database_url, "TICKETS_ISSUER": "http://localhost/security"}
    nodes = [gunicorn(workers=2, **settings) for _ in range(2)]
    endpoint = nodes[0].cli("webhooks", "add", "--url", receiver.url())
    credentials = nodes[0].cli("clients", "create", "--name", "hooks", "--org", ORG)
    time.sleep(1.2)  # each node reads endpoints it has not seen within a second
    made = set()
    for node in nodes:
        made |= changes(node.url, fetch_token(node.url, credentials), 10)
    messages = receiver.wait_for(80, seconds=30)
    ids = Counter(message.headers["webhook-id"] for message in messages)
    assert len(ids) == 80 and max(ids.values()) == 1, ids.most_common(3)
    assert {body["data"]["ticket"]["id"] for body in by_id(messages, endpoint["secret"]).values()} == made
    record(request.config, "webhooks-postgres", "80 events from 2 nodes x 2 workers on PostgreSQL: each once", {})


def deliverers(group: int) -> list[int]:
    """The processes of a gunicorn process group with a thread under SCHED_IDLE: its webhook deliverers."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            if fields[0] == "Z" or int(fields[2]) != group:  # state, pgrp
                continue
            threads = os.listdir(f"/proc/{entry}/task")
            if any(os.sched_getscheduler(int(thread)) == os.SCHED_IDLE for thread in threads):
                found.append(int(entry))
        except OSError:  # not a process, or gone meanwhile
            continue
    return found


def test_one_low_priority_deliverer_that_gunicorn_replaces_when_it_dies(gunicorn, receiver):
    server = gunicorn(workers=2)
    endpoint = server.cli("webhooks", "add", "--url", receiver.url())
    token = fetch_token(server.url, server.cli("clients", "create", "--name", "hooks", "--org", ORG))
    (first,) = deliverers(server.process.pid)
    os.kill(first, signal.SIGKILL)
    create_ticket(server.url, token)  # answered at once: delivery is not the workers' business
    (message,) = receiver.wait_for(1, seconds=20)
    assert message.verified(endpoint["secret"])["type"] == "ticket.created"
    (second,) = deliverers(server.process.pid)
    assert second != first


def test_webhooks_test_command_reaches_the_receiver(gunicorn, receiver):
    server = gunicorn(workers=1)
    endpoint = server.cli("webhooks", "add", "--url", receiver.url())
    answered = server.cli("webhooks", "test", endpoint["id"])
    assert answered["status"] == 200
    (message,) = receiver.wait_for(1)
    assert message.verified(endpoint["secret"])["type"] == "webhook.test"
    assert json.loads(message.body)["data"] == {"endpoint": endpoint["id"]}
