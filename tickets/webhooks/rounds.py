"""A round: one endpoint's due messages POSTed in order until one is not taken (anything but a 2xx answer).

The deliverer hands each round to a Rounds: InThread sends it in the caller's thread (tests, the CLI);
tickets.webhooks.sending_process.SendingProcess sends it from a process of its own at idle priority (the
service). Either way each message is signed when it goes out, so that its webhook-timestamp is fresh.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import NamedTuple, Protocol

from tickets.core import clock
from tickets.webhooks import signing
from tickets.webhooks.endpoints import Endpoint
from tickets.webhooks.sender import Sender

Message = tuple[str, bytes]  # (webhook-id, body)


class Attempt(NamedTuple):
    status: int | None  # None: no answer (timeout, refused, bad URL)
    at: float  # Unix seconds, also the message's webhook-timestamp


class Rounds(Protocol):
    def send(self, endpoint: Endpoint, messages: list[Message], stop_at: float) -> list[Attempt]:
        """POST the messages in order until one is not taken; none is started once one more could end after
        `stop_at` (but the first always is). One attempt per message tried, in order."""

    def keep_only(self, endpoint_ids: Iterable[str]) -> None:
        """Close the connections of other endpoints."""

    def stop(self) -> None:
        """Start no more messages; the rounds on their way end after their current one."""

    def close(self) -> None:
        """Give back what the rounds held (after stop(), once no round is on its way)."""


def send_round(sender: Sender, endpoint: Endpoint, messages: list[Message], stop_at: float,
               stopping: threading.Event) -> list[Attempt]:
    attempts = []
    for index, (message_id, payload) in enumerate(messages):
        if index and (stopping.is_set() or clock.timestamp() + sender.timeout > stop_at):
            break
        now = clock.timestamp()
        headers = signing.headers(message_id, payload, endpoint.signing_secrets(now), now)
        status = sender.post(endpoint.id, endpoint.url, payload, headers)
        attempts.append(Attempt(status, now))
        if status is None or not 200 <= status < 300:
            break
    return attempts


class InThread:
    """Rounds sent in the deliverer's own threads."""

    def __init__(self, timeout: float):
        self.sender = Sender(timeout)
        self._stopping = threading.Event()

    def send(self, endpoint: Endpoint, messages: list[Message], stop_at: float) -> list[Attempt]:
        return send_round(self.sender, endpoint, messages, stop_at, self._stopping)

    def keep_only(self, endpoint_ids: Iterable[str]) -> None:
        self.sender.keep_only(endpoint_ids)

    def stop(self) -> None:
        self._stopping.set()

    def close(self) -> None:
        self.sender.keep_only(())
