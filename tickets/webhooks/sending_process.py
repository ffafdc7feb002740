"""Rounds sent from a process of their own at idle priority (Linux's SCHED_IDLE): it runs only on CPU time
nothing else wants, so on a busy machine the API's workers never wait for it, and it holds no lock they share
(the deliverer, at nice 19, keeps the outbox and takes the log's lock; this process only POSTs).

The deliverer's threads hand rounds over one socket, pickled (multiprocessing.connection framing); answers
come back on it tagged with the round's number. The process is started at the first round and again after
it ends (a crash fails the rounds on their way: their messages are due again, at least once); it ends when
the socket closes, the deliverer having gone.

    python -m tickets.webhooks.sending_process FD TIMEOUT    (started by SendingProcess, not by hand)
"""

from __future__ import annotations

import itertools
import logging
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterable
from concurrent.futures import Future
from multiprocessing.connection import Connection
from pathlib import Path

from tickets.webhooks.endpoints import Endpoint
from tickets.webhooks.rounds import Attempt, Message, send_round
from tickets.webhooks.sender import Sender

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[2]  # the folder `tickets` is in: the child imports it from there
STOP_WAIT = 70.0  # seconds close() waits for the process: its rounds end within the timeout (at most 60 s)


class SendingProcessGone(ConnectionError):
    """The sending process ended with rounds on their way; what they held is due again."""


class SendingProcess:
    """The deliverer's side: a Rounds (tickets.webhooks.rounds) whose sends happen in the child process."""

    def __init__(self, timeout: float):
        self.timeout = timeout
        self._lock = threading.Lock()  # one writer on the socket at a time; guards the fields below
        self._child: subprocess.Popen | None = None
        self._socket: socket.socket | None = None  # our end; the channel frames messages on a copy of it
        self._channel: Connection | None = None
        self._waiting: dict[int, tuple[Connection, Future]] = {}  # rounds on their way, by number
        self._numbers = itertools.count()

    def send(self, endpoint: Endpoint, messages: list[Message], stop_at: float) -> list[Attempt]:
        answer: Future = Future()
        with self._lock:
            channel = self._open()
            number = next(self._numbers)
            self._waiting[number] = (channel, answer)
            try:
                channel.send(("round", number, endpoint, messages, stop_at))
            except BaseException as error:
                self._waiting.pop(number, None)
                if isinstance(error, OSError):
                    raise SendingProcessGone(f"the webhook sending process is gone: {error}") from error
                raise
        return answer.result()

    def keep_only(self, endpoint_ids: Iterable[str]) -> None:
        self._tell(("keep", list(endpoint_ids)))

    def stop(self) -> None:
        self._tell(("stop",))

    def close(self) -> None:
        with self._lock:
            ours, child = self._socket, self._child
            self._socket = self._channel = self._child = None
        if ours is not None:
            # Shut down, not only closed: our reader thread's blocked read keeps the socket open otherwise.
            # The child reads EOF: it finishes its rounds and exits.
            ours.shutdown(socket.SHUT_RDWR)
            ours.close()
        if child is not None:
            try:
                child.wait(STOP_WAIT)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()

    @property
    def pid(self) -> int | None:
        return self._child.pid if self._child is not None else None

    def _tell(self, request: tuple) -> None:
        with self._lock:
            if self._channel is not None:
                try:
                    self._channel.send(request)
                except OSError:  # gone: the reader fails its rounds, the next round starts another
                    pass

    def _open(self) -> Connection:
        """The socket to a running child, started now if there is none (the caller holds the lock)."""
        if self._channel is not None and self._child is not None and self._child.poll() is None:
            return self._channel
        ours, theirs = socket.socketpair()
        with theirs:
            child = subprocess.Popen(
                [sys.executable, "-m", __name__, str(theirs.fileno()), str(self.timeout)],
                pass_fds=(theirs.fileno(),), cwd=ROOT, stdin=subprocess.DEVNULL,
            )
        if self._socket is not None:
            self._socket.close()  # the last child's: its reader has read EOF and closed its copy
        channel = Connection(os.dup(ours.fileno()))
        self._child, self._socket, self._channel = child, ours, channel
        threading.Thread(target=self._read, args=(channel,), name="tickets-webhook-answers", daemon=True).start()
        return channel

    def _read(self, channel: Connection) -> None:
        """Hand each answer to the round waiting for it; when the child ends, fail those still waiting."""
        try:
            while True:
                number, attempts, error = channel.recv()
                with self._lock:
                    _, answer = self._waiting.pop(number, (None, None))
                if answer is None:
                    continue
                if error is None:
                    answer.set_result([Attempt(*attempt) for attempt in attempts])
                else:
                    answer.set_exception(RuntimeError(f"the webhook sending process failed a round: {error}"))
        except (EOFError, OSError):
            pass
        channel.close()
        with self._lock:
            if self._channel is channel:
                self._channel = None
            left = [number for number, (theirs, _) in self._waiting.items() if theirs is channel]
            answers = [self._waiting.pop(number)[1] for number in left]
        for answer in answers:
            answer.set_exception(SendingProcessGone("the webhook sending process ended"))


# --- the child process ---------------------------------------------------------------------------------------


def main(argv: list[str]) -> None:
    _lowest_priority()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s")
    channel, timeout = Connection(int(argv[0])), float(argv[1])
    sender, stopping, replies = Sender(timeout), threading.Event(), threading.Lock()
    rounds: list[threading.Thread] = []
    while True:
        try:
            request = channel.recv()
        except (EOFError, OSError):
            break
        if request[0] == "round":
            rounds = [thread for thread in rounds if thread.is_alive()]
            thread = threading.Thread(target=_round, args=(channel, replies, sender, stopping, *request[1:]),
                                      name="tickets-webhook-round", daemon=True)
            rounds.append(thread)
            thread.start()
        elif request[0] == "keep":
            sender.keep_only(request[1])
        elif request[0] == "stop":
            stopping.set()
    stopping.set()
    for thread in rounds:
        thread.join()


def _round(channel: Connection, replies: threading.Lock, sender: Sender, stopping: threading.Event, number: int,
           endpoint: Endpoint, messages: list[Message], stop_at: float) -> None:
    try:
        reply = (number, [tuple(attempt) for attempt in send_round(sender, endpoint, messages, stop_at, stopping)],
                 None)
    except Exception as error:  # noqa: BLE001  (the deliverer logs it and plans the messages again)
        log.exception("webhook round to %s failed", endpoint.id)
        reply = (number, None, type(error).__name__)
    with replies:
        try:
            channel.send(reply)
        except OSError:  # the deliverer is gone: what this round did is sent again by the next one
            pass


def _lowest_priority() -> None:
    """SCHED_IDLE for this thread and the threads it starts; where there is none, the nice 19 inherited from
    the deliverer."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        pass


if __name__ == "__main__":
    main(sys.argv[1:])
