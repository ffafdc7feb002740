"""Mixed load on 4 gunicorn workers from 12 threads: no lost update, no use after revoke, one use per single-use."""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass

import pytest
import requests

from .conftest import bearer, fetch_token
from .reporting import ARTIFACTS, record

pytestmark = pytest.mark.system

THREADS = 12
DURATION = 8.0  # seconds of load
SEED_TICKETS = 24
RECENT = 30  # threads pick among the newest tickets, so that they contend for the same ones
PUT_ATTEMPTS = 6
ORG = "org-load"
# op: weight
MIX = {"put": 34, "exchange": 34, "create": 12, "revoke": 8, "delete": 5, "get": 7}
# What each operation may answer while the threads race: another thread's delete or single-use exchange makes a
# GET, PUT or revoke 404, its PUT makes an If-Match stale (412), its revoke makes a PUT 409, and an exchange may
# meet a revoked or used-up ticket (400). check_invariants() then holds every answer to what was acknowledged.
EXPECTED = {
    "create": {200},
    "get": {200, 404},
    "put": {200, 404, 409, 412},
    "exchange": {200, 400},
    "revoke": {204, 404},
    "delete": {204, 404, 412},
}


@dataclass
class Event:
    """One response, as one thread saw it."""

    thread: int
    seq: int  # the thread's own order of requests
    op: str
    ticket: str
    sent: float  # time.monotonic() just before the request
    received: float  # time.monotonic() just after the response
    status: int
    version: int | None = None  # from the body (get, put) or the If-Match sent (delete)
    detail: str | None = None  # exchange refusal; ticket type for create


class Client:
    """One thread's connection and log of events."""

    def __init__(self, base_url: str, token: str, number: int, log: list, pool: list, lock: threading.Lock):
        self.base_url = base_url
        self.auth = bearer(token)
        self.number = number
        self.session = requests.Session()
        self.log = log
        self.pool = pool
        self.lock = lock
        self.seq = 0
        self.random = random.Random(number)

    def send(self, op: str, ticket: str, method: str, path: str, **kwargs) -> tuple[requests.Response, Event]:
        self.seq += 1
        sent = time.monotonic()
        response = self.session.request(method, f"{self.base_url}/security{path}", timeout=30, **kwargs)
        event = Event(self.number, self.seq, op, ticket, sent, time.monotonic(), response.status_code)
        if op in ("get", "put", "create") and response.status_code == 200:
            event.version = response.json()["version"]
            event.ticket = event.ticket or response.json()["id"]
        self.log.append(event)
        return response, event

    def create(self) -> None:
        ticket_type = "SINGLE_USE_TICKET" if self.random.random() < 0.35 else "MULTI_USE_TICKET"
        body = {"type": ticket_type, "properties": {"by": self.number}}
        _, event = self.send("create", "", "POST", "/ticket", json=body, headers=self.auth)
        event.detail = ticket_type
        if event.status == 200:
            with self.lock:
                self.pool.append(event.ticket)

    def get(self, ticket: str) -> requests.Response:
        return self.send("get", ticket, "GET", f"/ticket/{ticket}", headers=self.auth)[0]

    def put(self, ticket: str) -> int:
        """GET, then PUT with its ETag in If-Match; on 412 start over. Returns the number of 412s."""
        conflicts = 0
        for _ in range(PUT_ATTEMPTS):
            current = self.get(ticket)
            if current.status_code != 200:
                return conflicts
            headers = {**self.auth, "If-Match": current.headers["ETag"]}
            body = {"properties": {"by": self.number, "seq": self.seq}}
            response, _ = self.send("put", ticket, "PUT", f"/ticket/{ticket}", json=body, headers=headers)
            if response.status_code != 412:
                return conflicts
            conflicts += 1
        return conflicts

    def exchange(self, ticket: str) -> None:
        form = {"grant_type": "ticket", "ticket": ticket}
        response, event = self.send("exchange", ticket, "POST", "/oauth/token", data=form)
        if response.status_code == 400:
            event.detail = response.json().get("error_description")

    def revoke(self, ticket: str) -> None:
        self.send("revoke", ticket, "POST", f"/ticket/{ticket}/revoke", headers=self.auth)

    def delete(self, ticket: str) -> None:
        current = self.get(ticket)
        if current.status_code != 200:
            return
        headers = {**self.auth, "If-Match": current.headers["ETag"]}
        _, event = self.send("delete", ticket, "DELETE", f"/ticket/{ticket}", headers=headers)
        event.version = current.json()["version"]

    def run(self, deadline: float, stats: Counter, failures: list) -> None:
        ops, weights = list(MIX), list(MIX.values())
        try:
            while time.monotonic() < deadline:
                op = self.random.choices(ops, weights)[0]
                if op == "create":
                    self.create()
                    continue
                with self.lock:
                    ticket = self.random.choice(self.pool[-RECENT:])
                if op == "put":
                    conflicts = self.put(ticket)
                    with self.lock:
                        stats["412 retries"] += conflicts
                else:
                    getattr(self, op)(ticket)
        except (requests.RequestException, ValueError, KeyError) as error:
            failures.append(f"thread {self.number}: {error!r}")


def check_invariants(events: list[Event], finals: dict) -> tuple[list[str], Counter]:
    """Every violation of the invariants, and a few counts."""
    problems = []
    counts = Counter()
    by_ticket = defaultdict(list)
    for event in events:
        by_ticket[event.ticket].append(event)
        if event.status not in EXPECTED[event.op]:
            problems.append(f"unexpected {event.op} {event.status}: {event}")

    for ticket, seen in by_ticket.items():
        if ticket not in finals:
            continue  # a failed create, reported above
        ok = lambda op, status, seen=seen: [e for e in seen if e.op == op and e.status == status]  # noqa: E731
        puts, revokes, deletes, exchanges = ok("put", 200), ok("revoke", 204), ok("delete", 204), ok("exchange", 200)
        single_use = finals[ticket]["type"] == "SINGLE_USE_TICKET"
        changes = len(puts) + (1 if revokes else 0)

        put_versions = [e.version for e in puts]
        if len(set(put_versions)) != len(put_versions):
            problems.append(f"{ticket}: two successful PUTs got the same version (lost update): {put_versions}")
        if single_use and len(exchanges) > 1:
            problems.append(f"{ticket}: single-use ticket exchanged {len(exchanges)} times")
        for stopper in sorted(revokes + deletes, key=lambda e: e.received)[:1]:
            late = [e for e in exchanges if e.sent > stopper.received]
            if late:
                problems.append(f"{ticket}: exchanged after its {stopper.op} was answered: {late[0]} vs {stopper}")
        if revokes:
            late = [e for e in puts if e.sent > min(e.received for e in revokes)]
            if late:
                problems.append(f"{ticket}: updated after its revoke was answered: {late[0]}")

        final = finals[ticket]["response"]
        if final is not None:
            if final["version"] != changes:
                problems.append(f"{ticket}: version {final['version']}, but {changes} acknowledged changes")
            if (final["revoked"] is not None) != bool(revokes):
                problems.append(f"{ticket}: revoked={final['revoked']} after {len(revokes)} acknowledged revokes")
            if final["useCount"] != len(exchanges):
                problems.append(f"{ticket}: useCount {final['useCount']}, but {len(exchanges)} tokens issued")
            if deletes:
                problems.append(f"{ticket}: still there after an acknowledged delete")
            if single_use and exchanges:
                problems.append(f"{ticket}: single-use ticket still readable after its exchange")
        elif deletes:
            if deletes[0].version != changes:
                problems.append(f"{ticket}: deleted at version {deletes[0].version}, but {changes} changes acked")
        elif not (single_use and len(exchanges) == 1):
            problems.append(f"{ticket}: gone without an acknowledged delete or exchange")

        # What each thread saw of this ticket, in its own order: a PUT's version is above everything the
        # thread saw before, a GET's never below.
        for thread in {e.thread for e in seen}:
            last = -1
            for event in sorted((e for e in seen if e.thread == thread), key=lambda e: e.seq):
                if event.version is None or event.op == "delete":
                    continue
                if event.op == "put" and event.version <= last or event.version < last:
                    problems.append(f"{ticket}: thread {thread} saw version {event.version} after {last}: {event}")
                last = max(last, event.version)

        counts["tickets"] += 1
        counts["single-use exchanged once"] += single_use and len(exchanges) == 1
        counts["single-use with >1 exchange attempt"] += single_use and len(ok("exchange", 400)) + len(exchanges) > 1
        counts["revoked"] += bool(revokes)
        counts["deleted"] += bool(deletes)
    return problems, counts


def removed(events: list[Event], ticket: str, ticket_type: str) -> bool:
    """Whether an acknowledged request removed the ticket: a delete (204) or, if single-use, an exchange (200)."""
    single_use = ticket_type == "SINGLE_USE_TICKET"
    mine = [e for e in events if e.ticket == ticket]
    return any(e.op == "delete" and e.status == 204 for e in mine) or (
        single_use and any(e.op == "exchange" and e.status == 200 for e in mine)
    )


def test_mixed_load_keeps_every_invariant(gunicorn, request):
    """12 threads of create/PUT/exchange/revoke/delete for 8 s on 4 workers: no lost update or late success."""
    server = gunicorn(workers=4, TICKETS_EXCHANGE_FAILURES_PER_MINUTE=0)  # refusals are expected here
    token = fetch_token(server.url, server.cli("clients", "create", "--name", "load", "--org", ORG))
    lock, pool, stats, failures = threading.Lock(), [], Counter(), []
    logs = [[] for _ in range(THREADS + 1)]
    seeder = Client(server.url, token, THREADS, logs[THREADS], pool, lock)
    for _ in range(SEED_TICKETS):
        seeder.create()

    deadline = time.monotonic() + DURATION
    clients = [Client(server.url, token, n, logs[n], pool, lock) for n in range(THREADS)]
    threads = [threading.Thread(target=c.run, args=(deadline, stats, failures), daemon=True) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=DURATION + 60)
    assert not any(thread.is_alive() for thread in threads), "a load thread did not finish"
    assert failures == [], failures

    events = [event for log in logs for event in log]
    finals = {}
    for created in (e for e in events if e.op == "create" and e.status == 200):
        response = requests.get(f"{server.url}/security/ticket/{created.ticket}", headers=bearer(token), timeout=30)
        # The load is over: nothing races this GET. Only an acknowledged delete or single-use exchange removes it.
        expected = 404 if removed(events, created.ticket, created.detail) else 200
        assert response.status_code == expected, (created.ticket, response.text)
        body = response.json() if response.status_code == 200 else None
        finals[created.ticket] = {"response": body, "type": created.detail}
    problems, counts = check_invariants(events, finals)

    ops = Counter(f"{e.op} {e.status}" for e in events)
    ARTIFACTS.mkdir(exist_ok=True)
    with open(ARTIFACTS / "mixed-load-events.jsonl", "w") as handle:
        for event in sorted(events, key=lambda e: e.sent):
            handle.write(json.dumps(asdict(event)) + "\n")
    summary = f"{len(events)} requests, {dict(sorted(ops.items()))}, {dict(counts)}, {dict(stats)}"
    record(request.config, "mixed-load", summary, {"requests": len(events), "ops": ops, **counts, **stats})
    assert problems == [], "\n".join(problems[:20])
