"""A real webhook receiver for the tests: an HTTP server on 127.0.0.1 that records every message it gets and
answers as each path says: /ok (200), /fail/<n> (500 for the first n messages, then 200), /fail-at/<n> (500 for
the n-th message only), /gone (410), /slow/<seconds> (sleeps, then 200), /trickle/<seconds> (a 200 sent a byte
at a time over that long). It speaks HTTP/1.0 (a connection per message) unless made with keep_alive=True."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook


@dataclass
class Message:
    path: str
    headers: dict
    body: bytes
    at: float

    def verified(self, secret: str) -> dict:
        """The message as the standardwebhooks library reads it (raises if the signature is wrong)."""
        return Webhook(secret).verify(self.body, self.headers)


class Receiver:
    """Start with start(); `url(path)`; the messages so far in `messages` (thread-safe)."""

    def __init__(self, keep_alive: bool = False):
        self.messages: list[Message] = []
        self.connections = 0
        self.failures: dict[str, int] = {}
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"

            def setup(self):
                super().setup()
                with receiver.lock:
                    receiver.connections += 1

            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.messages.append(Message(self.path, dict(self.headers), body, time.monotonic()))
                    status = receiver.status_for(self.path)
                if self.path.startswith("/slow/"):
                    time.sleep(float(self.path.rsplit("/", 1)[1]))
                if self.path.startswith("/trickle/"):
                    return self.trickle(float(self.path.rsplit("/", 1)[1]))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def trickle(self, seconds: float) -> None:
                """Every read of the sender's gets a byte quickly; the whole answer takes `seconds`."""
                answer = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
                try:
                    for byte in answer:
                        self.wfile.write(bytes([byte]))
                        time.sleep(seconds / len(answer))
                except OSError:  # cut off by the sender
                    self.close_connection = True

            def log_message(self, *args):  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True

    def status_for(self, path: str) -> int:
        if path.startswith("/gone"):
            return 410
        if path.startswith("/fail/"):
            seen = self.failures.get(path, 0)
            self.failures[path] = seen + 1
            return 500 if seen < int(path.rsplit("/", 1)[1]) else 200
        if path.startswith("/fail-at/"):
            seen = self.failures[path] = self.failures.get(path, 0) + 1
            return 500 if seen == int(path.rsplit("/", 1)[1]) else 200
        return 200

    def url(self, path: str = "/ok") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def start(self) -> Receiver:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def received(self, path: str | None = None) -> list[Message]:
        with self.lock:
            return [message for message in self.messages if path is None or message.path == path]

    def wait_for(self, count: int, path: str | None = None, seconds: float = 15.0) -> list[Message]:
        """At least `count` messages (to `path`), or what came within `seconds`."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and len(self.received(path)) < count:
            time.sleep(0.02)
        return self.received(path)
