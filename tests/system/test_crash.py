"""Crash safety: SIGKILL the whole gunicorn process group in the middle of writes, five times, on one data folder."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from dataclasses import dataclass, field

import pytest
import requests

from tickets.storage.framing import FILE_MAGIC, unframe

from .conftest import bearer, fetch_token
from .reporting import record

pytestmark = pytest.mark.system

WRITERS = 4
KILL_AFTER = (0.3, 0.7, 1.1, 1.5, 1.9)  # seconds of writing before each SIGKILL
ORG = "org-crash"
DURABLE_FILES = ("tickets.json", "clients.json", "keys.json")
FOLD_BYTES = 20_000  # the log is folded into tickets.json every few dozen writes, so kills land in folds too


@dataclass
class Acked:
    """What the service answered 2xx to, over every cycle: the writes it must still have after a crash."""

    created: dict = field(default_factory=dict)  # ticket id -> properties it was created with
    owner: dict = field(default_factory=dict)  # ticket id -> the writer that created it (and alone changes it)
    put: dict = field(default_factory=dict)  # ticket id -> (version, properties) of the last acknowledged PUT
    disabled: set = field(default_factory=set)  # ticket ids whose disable was answered 204
    counts: dict = field(default_factory=lambda: {"create": 0, "put": 0, "disable": 0, "lost_in_flight": 0})
    errors: list = field(default_factory=list)  # answers other than 2xx while the server was up
    lock: threading.Lock = field(default_factory=threading.Lock)


def writer(base_url: str, token: str, number: int, acked: Acked, stop: threading.Event) -> None:
    """Create, update and disable this writer's own tickets back to back until `stop` or a dead server."""
    session = requests.Session()
    with acked.lock:
        own = [ticket_id for ticket_id, owner in acked.owner.items() if owner == number]
    step = 0
    while not stop.is_set():
        step += 1
        try:
            if not own or step % 3 == 1:
                properties = {"writer": number, "step": step, "customer_id": f"c{number}-{step}"}
                response = session.post(
                    f"{base_url}/security/ticket",
                    json={"type": "MULTI_USE_TICKET", "properties": properties},
                    headers=bearer(token),
                    timeout=10,
                )
                if response.status_code == 200:
                    ticket_id = response.json()["id"]
                    with acked.lock:
                        acked.created[ticket_id] = properties
                        acked.owner[ticket_id] = number
                        acked.counts["create"] += 1
                    own.append(ticket_id)
            elif step % 3 == 2:
                ticket_id = own[step % len(own)]
                properties = {"writer": number, "step": step, "updated": True}
                response = session.put(
                    f"{base_url}/security/ticket/{ticket_id}",
                    json={"properties": properties},
                    headers=bearer(token),
                    timeout=10,
                )
                if response.status_code == 200:
                    with acked.lock:
                        acked.put[ticket_id] = (response.json()["version"], properties)
                        acked.counts["put"] += 1
            else:
                ticket_id = own[(step * 7) % len(own)]
                response = session.post(
                    f"{base_url}/security/ticket/{ticket_id}/disable", headers=bearer(token), timeout=10
                )
                if response.status_code == 204:
                    with acked.lock:
                        acked.disabled.add(ticket_id)
                        acked.counts["disable"] += 1
            if response.status_code >= 300:
                with acked.lock:
                    acked.errors.append((number, response.request.method, response.status_code, response.text[:200]))
                return
        except requests.RequestException:
            with acked.lock:
                acked.counts["lost_in_flight"] += 1
            return  # the server is gone: this write has no answer, so nothing is owed for it


def check_files(data_dir) -> tuple[int, int]:
    """Every durable data file parses as JSON, and every log generation is whole records (with good checksums)
    up to, at most, one record cut short at the end of the newest; returns (generations, records)."""
    for name in DURABLE_FILES:
        with open(data_dir / name) as handle:
            assert isinstance(json.load(handle), dict), name
    generations = sorted(data_dir.glob("tickets.*.log"))
    records = 0
    for number, path in enumerate(generations):
        data = path.read_bytes()
        assert data.startswith(FILE_MAGIC), path.name
        parsed, stop = unframe(data, len(FILE_MAGIC))
        records += len(parsed)
        if number < len(generations) - 1:
            assert stop == len(data), f"{path.name}: damaged before its end"
        else:
            assert len(data) - stop < 64 * 1024, f"{path.name}: more than one record's worth of damage at the end"
        for _, payload in parsed:
            assert isinstance(json.loads(payload), dict), path.name
    return len(generations), records


def check_acked(base_url: str, token: str, acked: Acked) -> int:
    """Every acknowledged write is visible after the restart; returns how many tickets were checked."""
    session = requests.Session()
    missing, stale = [], []
    for ticket_id, properties in acked.created.items():
        response = session.get(f"{base_url}/security/ticket/{ticket_id}", headers=bearer(token), timeout=10)
        if response.status_code != 200:
            missing.append((ticket_id, response.status_code))
            continue
        ticket = response.json()
        if ticket_id in acked.put:
            version, sent = acked.put[ticket_id]
            if ticket["version"] < version or (ticket["version"] == version and ticket["properties"] != sent):
                stale.append((ticket_id, "put", version, ticket["version"]))
        elif ticket["properties"] != properties:
            # No PUT was acknowledged, but one in flight at a kill may have landed: then the version moved.
            if ticket["version"] == 0:
                stale.append((ticket_id, "create", 0, ticket["version"]))
        if ticket_id in acked.disabled and ticket["disabled"] is None:
            stale.append((ticket_id, "disable", None, ticket["version"]))
    assert missing == [], f"acknowledged tickets lost after SIGKILL: {missing[:10]}"
    assert stale == [], f"acknowledged changes lost after SIGKILL: {stale[:10]}"
    return len(acked.created)


def test_acknowledged_writes_survive_sigkill_of_the_process_group(gunicorn, request):
    """Five SIGKILLs of gunicorn's whole process group during writes: files parse, every 2xx write is kept."""
    server = gunicorn(workers=2, TICKETS_FOLD_BYTES=FOLD_BYTES)
    token = fetch_token(server.url, server.cli("clients", "create", "--name", "crash", "--org", ORG))
    acked = Acked()
    per_cycle = []
    for cycle, delay in enumerate(KILL_AFTER, start=1):
        before = dict(acked.counts)
        stop = threading.Event()
        # Each writer carries on with the tickets it created in earlier cycles.
        threads = [
            threading.Thread(target=writer, args=(server.url, token, n, acked, stop), daemon=True)
            for n in range(WRITERS)
        ]
        for thread in threads:
            thread.start()
        time.sleep(delay)
        os.killpg(server.process.pid, signal.SIGKILL)
        stop.set()
        server.process.wait(timeout=10)
        for thread in threads:
            thread.join(timeout=15)
        assert not any(thread.is_alive() for thread in threads), "a writer hung after the kill"
        assert acked.errors == [], f"cycle {cycle}: refused writes"

        generations, records = check_files(server.data_dir)
        server.stop()  # closes the log files; the group is already dead
        server.start()
        checked = check_acked(server.url, token, acked)
        acked_now = {key: acked.counts[key] - before[key] for key in before}
        assert acked_now["create"] > 0, f"cycle {cycle}: no write was acknowledged before the kill"
        per_cycle.append(
            {"kill_after_s": delay, "log_generations": generations, "log_records": records, "checked": checked,
             **acked_now}
        )

    totals = {key: sum(cycle[key] for cycle in per_cycle) for key in ("create", "put", "disable", "lost_in_flight")}
    header = json.loads(server.data_dir.joinpath("tickets.json").read_text().split("\n", 1)[0] + "}}")
    folds = header["_meta"]["log"]["generation"] - 1
    summary = (
        f"{len(KILL_AFTER)} kills, {folds} folds of the log; "
        f"acked writes {totals['create'] + totals['put'] + totals['disable']} "
        f"(create {totals['create']}, put {totals['put']}, disable {totals['disable']}) all found after restart; "
        f"{totals['lost_in_flight']} requests cut off in flight"
    )
    record(request.config, "crash", summary, {"kills": len(KILL_AFTER), "totals": totals, "cycles": per_cycle})
