"""Webhooks (SPEC section 10), in-process: what is sent, signed, filtered, retried, disabled and rotated.

A real receiver on 127.0.0.1 (tests/webhook_receiver.py); every message is verified with the standardwebhooks
package. The deliverer runs in the test (drain()), as it does in gunicorn's deliverer process.
"""

from __future__ import annotations

import errno
import json
import os
import re
import socket
import threading
import time
from pathlib import Path

import pytest
import requests
from standardwebhooks.webhooks import WebhookVerificationError
from werkzeug.serving import make_server

from tests.conftest import bearer, exchange, fetch_token, make_client
from tests.webhook_receiver import Receiver
from tickets.context import current_services
from tickets.webhooks import deliverer as deliverer_module
from tickets.webhooks.sender import PIPELINE, Sender

TICKET = "/security/ticket"


@pytest.fixture
def receiver():
    started = Receiver().start()
    yield started
    started.stop()


@pytest.fixture
def kept_alive():
    """A receiver that keeps connections alive (HTTP/1.1), as most do: messages after the first go pipelined."""
    started = Receiver(keep_alive=True).start()
    yield started
    started.stop()


@pytest.fixture
def windows(monkeypatch) -> list[int]:
    """How many messages each Sender.post_many() call was given, in order."""
    sizes = []
    real_post_many = Sender.post_many
    monkeypatch.setattr(Sender, "post_many", lambda self, key, url, requests: sizes.append(len(requests))
                        or real_post_many(self, key, url, requests))
    return sizes


@pytest.fixture
def hooks(app):
    """add(url, org=None, events=None) registers an endpoint as the CLI would; drain() delivers what is due."""

    class Hooks:
        @staticmethod
        def add(url, org=None, events=None):
            with app.app_context():
                return current_services().webhooks.add(url, org, events)

        @staticmethod
        def drain():
            with app.app_context():
                current_services().deliverer.drain()

    return Hooks()


def types(messages) -> list[str]:
    return [json.loads(message.body)["type"] for message in messages]


def test_every_event_type_arrives_signed_with_the_ticket(test_client, auth, create_ticket, hooks, receiver):
    """created, updated, disabled, enabled, revoked, deleted, exchanged (useCount 1) and exchange_refused
    (with the reason): each verified by the standardwebhooks package, with the ticket as GET shows it."""
    endpoint = hooks.add(receiver.url())
    ticket = create_ticket(properties={"customer_id": "c-1"})
    url = f"{TICKET}/{ticket['id']}"
    test_client.put(url, json={"properties": {"customer_id": "c-1", "n": 2}}, headers=auth)
    token = exchange(test_client, ticket["id"]).json["access_token"]
    test_client.post(f"{url}/disable", headers=auth)
    assert exchange(test_client, ticket["id"]).json["error_description"] == "DISABLED"
    test_client.post(f"{url}/enable", headers=auth)
    test_client.post(f"{url}/revoke", headers=auth)
    other = create_ticket()
    test_client.delete(f"{TICKET}/{other['id']}", headers=auth)
    hooks.drain()
    messages = receiver.wait_for(10)
    bodies = [message.verified(endpoint["secret"]) for message in messages]
    by_type = {body["type"]: body for body in bodies}
    assert sorted(by_type) == sorted([
        "ticket.created", "ticket.updated", "ticket.exchanged", "ticket.disabled", "ticket.exchange_refused",
        "ticket.enabled", "ticket.revoked", "ticket.deleted",
    ])
    assert sum(1 for body in bodies if body["type"] == "ticket.created") == 2
    assert by_type["ticket.exchanged"]["data"]["ticket"]["useCount"] == 1
    assert by_type["ticket.exchange_refused"]["data"]["reason"] == "DISABLED"
    assert by_type["ticket.updated"]["data"]["ticket"]["properties"] == {"customer_id": "c-1", "n": 2}
    assert by_type["ticket.deleted"]["data"]["ticket"]["id"] == other["id"]
    assert set(by_type["ticket.created"]["data"]["ticket"]) >= {"id", "type", "organizationId", "version", "expired"}
    assert all(body["timestamp"].endswith("Z") for body in bodies)
    ids = [message.headers["webhook-id"] for message in messages]
    assert len(set(ids)) == len(ids) and all(i.startswith("msg_") for i in ids)
    everything = b"".join(message.body for message in messages).decode()
    assert token not in everything and token.rsplit(".", 1)[1] not in everything
    with pytest.raises(WebhookVerificationError):
        messages[0].verified("whsec_" + "A" * 43 + "=")


def test_a_message_carries_any_properties_a_ticket_may_hold(test_client, auth, create_ticket, hooks, receiver):
    """Messages are written by orjson, which stops at 64-bit whole numbers: a longer one, and text beyond ASCII,
    arrive as GET shows them all the same."""
    endpoint = hooks.add(receiver.url())
    properties = {"customer_id": "c-ü", "big": 2**70, "small": -(2**64), "ratio": 1e16, "title": "Café ☕ 😀"}
    ticket = create_ticket(properties=properties)
    hooks.drain()
    (message,) = receiver.wait_for(1)
    shown = test_client.get(f"{TICKET}/{ticket['id']}", headers=auth).json
    assert message.verified(endpoint["secret"])["data"]["ticket"]["properties"] == shown["properties"] == properties


def test_filters_by_organization_and_by_event_type(app, test_client, auth, create_ticket, hooks, receiver):
    """An endpoint hears only its organization's events, only the types it asked for; no endpoint, no event."""
    hooks.add(receiver.url("/org-a"), org="org-a")
    hooks.add(receiver.url("/org-b"), org="org-b")
    hooks.add(receiver.url("/revokes"), events=["ticket.revoked"])
    ticket = create_ticket()
    test_client.post(f"{TICKET}/{ticket['id']}/revoke", headers=auth)
    system = bearer(fetch_token(test_client, make_client(app, name="system", org=None)))
    test_client.post(TICKET, json={"type": "MULTI_USE_TICKET", "properties": {}, "organizationId": "org-c"},
                     headers=system)
    hooks.drain()
    assert types(receiver.wait_for(2, "/org-a")) == ["ticket.created", "ticket.revoked"]
    assert types(receiver.wait_for(1, "/revokes")) == ["ticket.revoked"]
    assert receiver.received("/org-b") == []


def test_a_repeat_that_changes_nothing_and_an_unknown_ticket_send_nothing(test_client, auth, create_ticket, hooks,
                                                                          receiver):
    hooks.add(receiver.url())
    ticket = create_ticket()
    for _ in range(3):
        test_client.post(f"{TICKET}/{ticket['id']}/disable", headers=auth)
        test_client.post(f"{TICKET}/{ticket['id']}/revoke", headers=auth)
    exchange(test_client, "ABCDEFGHJ")  # NOT_FOUND belongs to no organization
    hooks.drain()
    assert types(receiver.wait_for(3)) == ["ticket.created", "ticket.disabled", "ticket.revoked"]


def test_failures_are_retried_with_the_same_id_and_a_fresh_signature(test_client, create_ticket, hooks, receiver,
                                                                      monkeypatch):
    """500 twice, then 200: three attempts of one message, the same webhook-id and body each time."""
    monkeypatch.setattr(deliverer_module, "RETRIES", (0,) * 9)  # no waiting between attempts here
    endpoint = hooks.add(receiver.url("/fail/2"))
    create_ticket()
    for _ in range(5):
        hooks.drain()
    attempts = receiver.wait_for(3, "/fail/2")
    assert len(attempts) == 3
    assert len({message.headers["webhook-id"] for message in attempts}) == 1
    assert len({message.body for message in attempts}) == 1
    assert attempts[-1].verified(endpoint["secret"])["type"] == "ticket.created"
    hooks.drain()
    assert len(receiver.received("/fail/2")) == 3  # delivered: never again


def test_a_receiver_that_keeps_failing_is_given_up_after_ten_attempts(app, create_ticket, hooks, receiver,
                                                                       monkeypatch):
    monkeypatch.setattr(deliverer_module, "RETRIES", (0,) * 9)
    hooks.add(receiver.url("/fail/99"))
    create_ticket()
    for _ in range(15):
        hooks.drain()
    assert len(receiver.received("/fail/99")) == 10
    with app.app_context():
        services = current_services()
        backlog = services.storage.outbox.backlog(services.webhooks.targets)
    (state,) = backlog.values()
    assert state["pending"] == 0 and state["last"]["result"] == "gave_up" and state["last"]["status"] == 500


def test_410_gone_disables_the_endpoint(app, test_client, create_ticket, hooks, receiver):
    gone = hooks.add(receiver.url("/gone"))
    hooks.add(receiver.url("/ok"))
    create_ticket()
    hooks.drain()
    create_ticket()
    hooks.drain()
    assert len(receiver.received("/gone")) == 1
    assert types(receiver.wait_for(2, "/ok")) == ["ticket.created", "ticket.created"]
    listed = {entry["id"]: entry for entry in json.loads(
        app.test_cli_runner().invoke(args=["webhooks", "list"]).output)}
    assert listed[gone["id"]]["disabled"]["reason"] == "410 Gone"
    assert listed[gone["id"]]["last"]["result"] == "gone"


def test_rotation_signs_with_both_secrets_during_the_overlap(app, create_ticket, hooks, receiver):
    endpoint = hooks.add(receiver.url())
    rotated = json.loads(app.test_cli_runner().invoke(args=["webhooks", "rotate-secret", endpoint["id"]]).output)
    assert rotated["secret"] != endpoint["secret"] and rotated["secret"].startswith("whsec_")
    create_ticket()
    hooks.drain()
    (message,) = receiver.wait_for(1)
    assert len(message.headers["webhook-signature"].split(" ")) == 2
    assert message.verified(endpoint["secret"]) == message.verified(rotated["secret"])


def test_a_slow_receiver_does_not_hold_up_another(create_ticket, hooks, receiver):
    """The slow endpoint sleeps 2 s per message; the prompt one has all its messages long before."""
    hooks.add(receiver.url("/slow/2"))
    hooks.add(receiver.url("/ok"))
    for _ in range(3):
        create_ticket()
    started = deliverer_module.clock.monotonic()
    hooks.drain()
    prompt = receiver.wait_for(3, "/ok", seconds=5)
    assert len(prompt) == 3 and max(message.at for message in prompt) - started < 1.5
    slow = receiver.wait_for(3, "/slow/2")  # one by one, 2 s each: the prompt endpoint did not wait for them
    assert len(slow) == 3 and max(message.at for message in slow) - started > 3.5


def test_many_slow_receivers_do_not_hold_up_another(create_ticket, hooks, receiver):
    """Ten endpoints that take 2 s each, and a prompt one: every endpoint has a thread of its own, however many
    of them are slow, so the prompt one's message is not queued behind theirs."""
    for _ in range(10):
        hooks.add(receiver.url("/slow/2"))
    hooks.add(receiver.url("/ok"))
    create_ticket()
    started = deliverer_module.clock.monotonic()
    hooks.drain()
    (prompt,) = receiver.wait_for(1, "/ok", seconds=5)
    assert prompt.at - started < 1.5
    assert len(receiver.wait_for(10, "/slow/2")) == 10


def test_the_timeout_bounds_the_whole_answer(receiver):
    """A receiver that sends its answer a byte at a time never lets a socket read time out; the POST is still
    cut off once the timeout has passed (and a slow answer within the timeout is taken)."""
    sender = Sender(timeout=1)
    started = time.monotonic()
    assert sender.post("ep_trickle", receiver.url("/trickle/5"), b"{}", {}) is None
    assert 1 <= time.monotonic() - started < 2.5
    assert sender.post("ep_trickle", receiver.url("/trickle/0.3"), b"{}", {}) == 200
    assert sender.post("ep_ok", receiver.url("/ok"), b"{}", {}) == 200


def test_a_long_round_hands_back_what_it_did_not_send(create_ticket, hooks, receiver, monkeypatch):
    """One endpoint's round starts sends only while one more could end within ROUND (so it ends inside a
    PostgreSQL claim); what it did not send is due again at once, without an attempt counted."""
    monkeypatch.setattr(deliverer_module, "ROUND", 0.0)  # every round sends one message
    handed_back = []
    real_later = deliverer_module._later
    monkeypatch.setattr(deliverer_module, "_later", lambda *a: handed_back.append(real_later(*a)) or handed_back[-1])
    hooks.add(receiver.url("/ok"))
    for _ in range(3):
        create_ticket()
    hooks.drain()
    messages = receiver.wait_for(3, "/ok")
    assert len(messages) == 3 and len({message.headers["webhook-id"] for message in messages}) == 3
    assert receiver.wait_for(4, "/ok", seconds=0.5) == messages  # none twice
    assert len(handed_back) >= 2 and {outcome.attempts for outcome in handed_back} == {0}


def test_a_kept_alive_receiver_gets_a_round_pipelined_each_message_once(create_ticket, hooks, kept_alive, windows):
    """The first message proves the connection; the rest go PIPELINE at a time on it, in order, each once."""
    endpoint = hooks.add(kept_alive.url())
    made = [create_ticket()["id"] for _ in range(40)]
    hooks.drain()
    messages = kept_alive.wait_for(40)
    assert [message.verified(endpoint["secret"])["data"]["ticket"]["id"] for message in messages] == made
    assert windows == [1, PIPELINE, PIPELINE, 40 - 1 - 2 * PIPELINE] and kept_alive.connections == 1
    assert kept_alive.wait_for(41, seconds=0.5) == messages  # none twice


def test_a_window_is_only_as_long_as_the_round_has_time_for(app, create_ticket, hooks, kept_alive, windows,
                                                            monkeypatch):
    """Each pipelined answer may take the timeout: with two timeouts' worth of ROUND, windows of two."""
    hooks.add(kept_alive.url())
    for _ in range(7):
        create_ticket()
    with app.app_context():
        timeout = current_services().deliverer.timeout
    monkeypatch.setattr(deliverer_module, "ROUND", 2.9 * timeout)
    hooks.drain()
    assert len(kept_alive.wait_for(7)) == 7 and windows == [1, 2, 2, 2]


def test_a_failure_inside_a_pipelined_window_holds_back_only_that_message(create_ticket, hooks, kept_alive,
                                                                         monkeypatch):
    """The 3rd of 10 is answered 500: the ones pipelined after it were answered 200 and are not sent again; it
    is, with the same id, and the round's rest waits for that retry."""
    monkeypatch.setattr(deliverer_module, "RETRIES", (0,) * 9)
    hooks.add(kept_alive.url("/fail-at/3"))
    for _ in range(10):
        create_ticket()
    for _ in range(3):
        hooks.drain()
    messages = kept_alive.wait_for(11)
    ids = [message.headers["webhook-id"] for message in messages]
    assert len(ids) == 11 and len(set(ids)) == 10 and ids[-1] == ids[2]
    assert kept_alive.wait_for(12, seconds=0.5) == messages


def test_settles_keep_the_priority_of_the_thread_that_asked_for_them(app, create_ticket, hooks, receiver,
                                                                     monkeypatch):
    """delivery.py asks from a thread that keeps its priority, and sends from one that lowers it (Linux keeps one
    per thread): a settle holds the log's write lock, so it runs at the workers' priority while the sending runs at
    the lowest."""
    with app.app_context():
        deliverer = current_services().deliverer
    priorities = []
    real_settle = deliverer.outbox.settle
    monkeypatch.setattr(deliverer.outbox, "settle", lambda outcomes: priorities.append(
        os.getpriority(os.PRIO_PROCESS, 0)) or real_settle(outcomes))
    hooks.add(receiver.url())
    create_ticket()
    ours = os.getpriority(os.PRIO_PROCESS, 0)

    def as_delivery_py_does():
        deliverer.settle_at_this_priority()
        os.nice(5)
        deliverer.drain()

    thread = threading.Thread(target=as_delivery_py_does)
    thread.start()
    thread.join()
    deliverer._settler.shutdown()
    assert len(receiver.wait_for(1)) == 1
    assert priorities and set(priorities) == {ours}


def test_a_change_that_failed_has_no_event(test_client, auth, create_ticket, data_dir, hooks, receiver,
                                           monkeypatch):
    """The event is part of the change: a create whose sync fails (503) leaves no ticket and no message."""
    hooks.add(receiver.url())

    def broken(fd):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fdatasync", broken)
    monkeypatch.setattr(os, "fsync", broken)
    refused = test_client.post(TICKET, json={"type": "MULTI_USE_TICKET", "properties": {}}, headers=auth)
    assert refused.status_code == 503
    monkeypatch.undo()
    create_ticket()
    hooks.drain()
    assert types(receiver.wait_for(1)) == ["ticket.created"]


def test_the_cli_adds_lists_tests_and_deletes(app, hooks, receiver, create_ticket):
    """add prints the secret once; list never does, and shows the last outcome and what is owed; test sends
    webhook.test now; bad URLs and event types are refused."""
    runner = app.test_cli_runner()
    added = json.loads(runner.invoke(args=["webhooks", "add", "--url", receiver.url(), "--org", "org-a",
                                           "--events", "ticket.created,ticket.exchanged"]).output)
    assert set(added) == {"id", "url", "organizationId", "events", "secret", "disabled"}
    assert added["events"] == ["ticket.created", "ticket.exchanged"] and added["organizationId"] == "org-a"
    create_ticket()
    listed = json.loads(runner.invoke(args=["webhooks", "list"]).output)
    assert listed[0]["pending"] == 1 and "secret" not in json.dumps(listed)  # owed, never tried yet
    hooks.drain()
    receiver.wait_for(1)
    (entry,) = json.loads(runner.invoke(args=["webhooks", "list"]).output)
    assert entry["pending"] == 0 and entry["last"]["result"] == "delivered" and entry["last"]["status"] == 200
    tested = runner.invoke(args=["webhooks", "test", added["id"]])
    assert tested.exit_code == 0 and json.loads(tested.output)["status"] == 200
    test_message = receiver.received()[-1]
    assert test_message.verified(added["secret"])["type"] == "webhook.test"
    for bad in (["--url", "ftp://x/"], ["--url", "not a url"], ["--url", receiver.url(), "--events", "nope"],
                ["--url", receiver.url(), "--org", ""], ["--url", receiver.url(), "--events", ""],
                ["--url", receiver.url(), "--events", " , "]):
        refused = runner.invoke(args=["webhooks", "add", *bad])
        assert refused.exit_code == 2, bad
    assert json.loads(runner.invoke(args=["webhooks", "delete", added["id"]]).output) == {"deleted": added["id"]}
    assert json.loads(runner.invoke(args=["webhooks", "list"]).output) == []
    assert runner.invoke(args=["webhooks", "test", added["id"]]).exit_code == 1


def readme_receiver() -> str:
    """The receiver the README shows, as written there."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.DOTALL)
    (code,) = [block for block in blocks if "WebhookVerificationError" in block]
    return code


def test_the_readme_receiver_verifies_our_messages(app, create_ticket, hooks, test_client, capfd, monkeypatch):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    endpoint = hooks.add(f"http://127.0.0.1:{port}/hooks/tickets")
    monkeypatch.setenv("WEBHOOK_SECRET", endpoint["secret"])
    namespace: dict = {"__name__": "readme_receiver"}  # a module of its own, as the file would be
    exec(compile(readme_receiver(), "README.md", "exec"), namespace)  # noqa: S102  (our own README's code)
    server = make_server("127.0.0.1", port, namespace["app"], threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        ticket = create_ticket()
        assert exchange(test_client, ticket["id"]).status_code == 200
        hooks.drain()
        assert f"customer joined: {ticket['id']}" in capfd.readouterr().out
        forged = requests.post(f"http://127.0.0.1:{port}/hooks/tickets", data=b"{}", timeout=5, headers={
            "webhook-id": "msg_x", "webhook-timestamp": str(int(time.time())), "webhook-signature": "v1,AAAA"})
        assert forged.status_code == 400
        with app.app_context():
            services = current_services()
            (state,) = services.storage.outbox.backlog(services.webhooks.targets).values()
        assert state["last"]["status"] == 204 and state["pending"] == 0
    finally:
        server.shutdown()


def test_planning_looks_at_the_endpoints_once_per_round_not_once_per_event(app, create_ticket, hooks, receiver,
                                                                            monkeypatch):
    """Each look at the endpoints' records is a stat of webhooks.json: a round planning 30 events looks once
    (its gauges and its senders included)."""
    hooks.add(receiver.url())
    for _ in range(30):
        create_ticket()
    with app.app_context():
        services = current_services()
        records = services.webhooks.records
        looks = []
        real_version = records.version
        monkeypatch.setattr(records, "version", lambda: looks.append(1) or real_version())
        assert services.deliverer.run_once() == 30
        assert len(looks) == 1
        services.deliverer.drain()
    assert len(receiver.wait_for(30)) == 30
