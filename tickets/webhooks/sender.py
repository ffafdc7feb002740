"""POSTing messages over one kept-alive connection per endpoint: the request is written here, the answer is
read by httptools (llhttp, the parser of Node.js and uvicorn).

Delivery shares the machine with the API, so its cost per message matters: on loopback a POST takes 26 µs of
CPU this way, against 60 µs through http.client and 159 µs through urllib3 (README, Libraries). Redirects are
not followed (a 3xx is a failed attempt); https verifies the receiver's certificate. The timeout bounds the
whole POST: every socket operation gets only the time left of it, so a receiver that answers a byte at a
time is cut off all the same.
"""

from __future__ import annotations

import logging
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

import httptools

from tickets.core import clock

log = logging.getLogger(__name__)
MAX_ANSWER = 64 * 1024  # bytes of an answer's body read to keep the connection; a longer one closes it
READ = 64 * 1024
# Characters that must not reach a request line or a header: they would end it early or start another.
UNSAFE = frozenset(chr(code) for code in (*range(0x21), 0x7F))


class Sender:
    """POSTs to endpoints; each endpoint's connection is used by one thread at a time (the deliverer's rule)."""

    def __init__(self, timeout: float):
        self.timeout = timeout
        self._connections: dict[str, _Connection] = {}
        self._tls = ssl.create_default_context()

    def post(self, key: str, url: str, payload: bytes, headers: dict[str, str]) -> int | None:
        """The answer's status, or None if there was none (timeout, refused, bad URL)."""
        deadline = clock.monotonic() + self.timeout
        try:
            request = _head(url, payload, headers)
        except ValueError as error:
            return _failed(key, error)
        for attempt in (1, 2):
            connection = self._connections.get(key)
            reused = connection is not None and connection.url == url
            try:
                if not reused:
                    self.close(key)
                    connection = self._connections[key] = _Connection.open(url, self._tls, deadline)
                status, keep = connection.exchange(request + payload, deadline)
                if not keep:
                    self.close(key)
                return status
            except _Stale as error:  # the receiver had closed the kept-alive connection: one new try
                self.close(key)
                if not reused or attempt == 2:
                    return _failed(key, error)
            except (OSError, httptools.HttpParserError, httptools.HttpParserUpgrade, ValueError) as error:
                self.close(key)
                return _failed(key, error)
        return None

    def close(self, key: str) -> None:
        connection = self._connections.pop(key, None)
        if connection is not None:
            connection.sock.close()

    def keep_only(self, keys) -> None:
        """Close the connections of endpoints that are gone."""
        for key in list(self._connections.keys() - set(keys)):
            self.close(key)


class _Stale(ConnectionError):
    """A kept-alive connection closed by the receiver before any of the answer came."""


@dataclass
class _Connection:
    url: str
    sock: socket.socket

    @classmethod
    def open(cls, url: str, tls: ssl.SSLContext, deadline: float) -> _Connection:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        sock = socket.create_connection((parts.hostname, port), timeout=_left(deadline))
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if parts.scheme == "https":
                sock = tls.wrap_socket(sock, server_hostname=parts.hostname)
        except BaseException:
            sock.close()
            raise
        return cls(url, sock)

    def exchange(self, request: bytes, deadline: float) -> tuple[int, bool]:
        """Send the request, read the final answer: its status, and whether the connection may be kept."""
        answer = _Answer()
        try:
            self.sock.settimeout(_left(deadline))
            self.sock.sendall(request)
            return self._read(answer, deadline)
        except (BrokenPipeError, ConnectionResetError) as error:
            if answer.received:
                raise
            raise _Stale(str(error)) from error
        except (httptools.HttpParserError, httptools.HttpParserUpgrade):
            if answer.status is None:  # else what followed a whole answer is the receiver's trouble, not ours
                raise
            return answer.status, False

    def _read(self, answer: _Answer, deadline: float) -> tuple[int, bool]:
        parser = answer.parser = httptools.HttpResponseParser(answer)
        while answer.status is None:
            self.sock.settimeout(_left(deadline))
            data = self.sock.recv(READ)
            if not data:
                return self._closed(answer)
            parser.feed_data(data)
            if answer.size > MAX_ANSWER and answer.headers_done:
                return parser.get_status_code(), False
        return answer.status, answer.keep and not answer.extra

    @staticmethod
    def _closed(answer: _Answer) -> tuple[int, bool]:
        """The receiver closed the connection: the end of an answer sent without a length, or none at all."""
        if answer.headers_done:
            return answer.parser.get_status_code(), False
        if answer.received:
            raise ConnectionError("the receiver closed the connection in the middle of its answer")
        raise _Stale("the receiver closed the connection")


class _Answer:
    """httptools' callbacks: what has come of the answer so far (1xx interim answers are passed over)."""

    def __init__(self):
        self.parser: httptools.HttpResponseParser | None = None
        self.received = False
        self.headers_done = False
        self.size = 0
        self.status: int | None = None
        self.keep = False
        self.extra = False

    def on_message_begin(self) -> None:
        if self.status is not None:  # a second answer to one request: the connection is out of step
            self.extra = True
        self.received = True

    def on_headers_complete(self) -> None:
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        self.size += len(body)

    def on_message_complete(self) -> None:
        status = self.parser.get_status_code()
        if status >= 200 and self.status is None:
            self.status, self.keep = status, self.parser.should_keep_alive()
        self.headers_done, self.size = False, 0


def _head(url: str, payload: bytes, headers: dict[str, str]) -> bytes:
    """The request line and headers, refusing anything that would let a value start a header of its own."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("not an http(s) URL")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if parts.port:
        host = f"{host}:{parts.port}"
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    lines = [f"POST {target} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(payload)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if UNSAFE.intersection(target + host) or any("\r" in line or "\n" in line for line in lines):
        raise ValueError("a character that cannot be sent in a request line or header")
    return "\r\n".join(lines).encode("latin-1") + b"\r\n\r\n"


def _left(deadline: float) -> float:
    left = deadline - clock.monotonic()
    if left <= 0:
        raise TimeoutError("no whole answer in time")
    return left


def _failed(key: str, error: Exception) -> None:
    log.info("webhook POST to %s: %s", key, type(error).__name__)  # the endpoint, not its URL: it may hold a credential
    return None
