"""The webhook sending process (the service's Rounds): a real child process POSTing to a real receiver on
127.0.0.1, under SCHED_IDLE; rounds on their way when it dies fail, and the next round starts another."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from tests.webhook_receiver import Receiver
from tickets.core import clock
from tickets.webhooks.endpoints import Endpoint, new_secret
from tickets.webhooks.rounds import Attempt
from tickets.webhooks.sending_process import SendingProcess, SendingProcessGone

SCHED_IDLE = 5


@pytest.fixture
def receiver():
    started = Receiver().start()
    yield started
    started.stop()


@pytest.fixture
def process():
    sending = SendingProcess(timeout=2)
    yield sending
    sending.stop()
    sending.close()


def endpoint(url: str, secret: str) -> Endpoint:
    return Endpoint("ep_test", url, None, None, ({"secret": secret, "until": None},), None)


def bodies(count: int) -> list[tuple[str, bytes]]:
    return [(f"msg_{number}", b'{"type":"ticket.created","n":%d}' % number) for number in range(count)]


def policy(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[38])


def test_a_round_goes_out_in_order_signed_from_an_idle_process(process, receiver):
    secret = new_secret()
    began = clock.timestamp()
    attempts = process.send(endpoint(receiver.url(), secret), bodies(5), began + 60)
    assert [attempt.status for attempt in attempts] == [200] * 5
    assert all(began - 1 <= attempt.at <= clock.timestamp() for attempt in attempts)
    messages = receiver.wait_for(5)
    assert [message.headers["webhook-id"] for message in messages] == [f"msg_{n}" for n in range(5)]
    assert [message.verified(secret)["n"] for message in messages] == list(range(5))
    assert policy(process.pid) == SCHED_IDLE


def test_a_round_stops_at_the_first_message_not_taken(process, receiver):
    attempts = process.send(endpoint(receiver.url("/fail/1"), new_secret()), bodies(3), clock.timestamp() + 60)
    assert [attempt.status for attempt in attempts] == [500]
    assert process.send(endpoint("http://127.0.0.1:1/nothing", new_secret()), bodies(2), clock.timestamp() + 60) \
        == [Attempt(None, pytest.approx(clock.timestamp(), abs=5))]


def test_a_round_started_late_sends_only_its_first_message(process, receiver):
    attempts = process.send(endpoint(receiver.url(), new_secret()), bodies(3), clock.timestamp())
    assert [attempt.status for attempt in attempts] == [200]


def test_rounds_on_their_way_fail_when_the_process_dies_and_the_next_starts_another(process, receiver):
    slow = endpoint(receiver.url("/slow/3"), new_secret())
    assert [attempt.status for attempt in process.send(endpoint(receiver.url(), new_secret()), bodies(1),
                                                         clock.timestamp() + 60)] == [200]
    first = process.pid
    failed = []

    def slow_round():
        try:
            process.send(slow, bodies(1), clock.timestamp() + 60)
        except SendingProcessGone as error:
            failed.append(error)

    waiting = threading.Thread(target=slow_round)
    waiting.start()
    receiver.wait_for(2, seconds=5)  # the slow one has arrived: its round waits for the answer
    os.kill(first, signal.SIGKILL)
    waiting.join(5)
    assert not waiting.is_alive() and len(failed) == 1
    attempts = process.send(endpoint(receiver.url(), new_secret()), bodies(1), clock.timestamp() + 60)
    assert [attempt.status for attempt in attempts] == [200] and process.pid != first


def test_close_ends_the_process(receiver):
    sending = SendingProcess(timeout=2)
    sending.send(endpoint(receiver.url(), new_secret()), bodies(1), clock.timestamp() + 60)
    pid = sending.pid
    sending.stop()
    sending.close()
    deadline = time.monotonic() + 5
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{pid}")
