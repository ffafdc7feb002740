"""POSTing messages with the standard library's http.client, one kept-alive connection per endpoint.

Delivery shares the machine with the API, so its cost per message matters: on loopback a POST through
urllib3 took 159 µs of CPU against 66 µs through http.client (README, Libraries). Redirects
are not followed (a 3xx is a failed attempt); https verifies the receiver's certificate. The timeout bounds
the whole POST, not each socket operation: a watchdog thread cuts off a receiver that answers too slowly.
"""

from __future__ import annotations

import http.client
import logging
import socket
import ssl
import threading
from urllib.parse import urlsplit

from tickets.core import clock

log = logging.getLogger(__name__)
MAX_ANSWER = 64 * 1024  # bytes of an answer's body read to keep the connection; a longer one closes it
# A kept-alive connection the receiver has closed meanwhile fails like this before anything was sent.
STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)


class Sender:
    """POSTs to endpoints; each endpoint's connection is used by one thread at a time (the deliverer's rule)."""

    def __init__(self, timeout: float):
        self.timeout = timeout
        self._connections: dict[str, http.client.HTTPConnection] = {}
        self._tls = ssl.create_default_context()
        self._watched: dict[str, _Watch] = {}  # the POSTs on their way, by endpoint
        self._watchdog: threading.Thread | None = None
        self._watchdog_lock = threading.Lock()

    def post(self, key: str, url: str, payload: bytes, headers: dict[str, str]) -> int | None:
        """The answer's status, or None if there was none (timeout, refused, bad URL)."""
        watch = self._watch(key)
        try:
            for attempt in (1, 2):
                reused = key in self._connections
                try:
                    connection = watch.connection = self._connection(key, url)
                    connection.request("POST", _target(url), body=payload, headers=headers)
                    return self._answer(key, connection.getresponse())
                except (*STALE, OSError, http.client.HTTPException, ValueError) as error:
                    self.close(key)
                    if watch.cut:
                        return _failed(key, TimeoutError("no whole answer in time"))
                    if not isinstance(error, STALE) or not reused or attempt == 2:
                        return _failed(key, error)
            return None
        finally:
            self._watched.pop(key, None)

    def close(self, key: str) -> None:
        connection = self._connections.pop(key, None)
        if connection is not None:
            connection.close()

    def keep_only(self, keys) -> None:
        """Close the connections of endpoints that are gone."""
        for key in list(self._connections.keys() - set(keys)):
            self.close(key)

    def _watch(self, key: str) -> _Watch:
        watch = self._watched[key] = _Watch(clock.monotonic() + self.timeout)
        with self._watchdog_lock:
            if self._watchdog is None or not self._watchdog.is_alive():  # started here: the deliverer is forked
                self._watchdog = threading.Thread(target=self._cut_late_posts, name="tickets-webhook-watchdog",
                                                  daemon=True)
                self._watchdog.start()
        return watch

    def _cut_late_posts(self) -> None:
        """Shut the socket of any POST past its deadline: the thread blocked in it wakes with an error."""
        while True:
            threading.Event().wait(min(0.25, self.timeout / 4))
            now = clock.monotonic()
            for watch in list(self._watched.values()):
                sock = watch.connection.sock if watch.connection is not None else None
                if now > watch.deadline and sock is not None and not watch.cut:
                    watch.cut = True
                    try:  # socket.socket's own: ssl.SSLSocket.shutdown would also drop its TLS state under the reader
                        socket.socket.shutdown(sock, socket.SHUT_RDWR)
                    except OSError:
                        pass

    def _connection(self, key: str, url: str) -> http.client.HTTPConnection:
        connection = self._connections.get(key)
        if connection is None:
            parts = urlsplit(url)
            if parts.scheme == "https":
                connection = http.client.HTTPSConnection(
                    parts.hostname, parts.port, timeout=self.timeout, context=self._tls
                )
            elif parts.scheme == "http":
                connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=self.timeout)
            else:
                raise ValueError(f"not an http(s) URL: {url}")
            self._connections[key] = connection
        return connection

    def _answer(self, key: str, response: http.client.HTTPResponse) -> int:
        body = response.read(MAX_ANSWER + 1)
        if response.will_close or len(body) > MAX_ANSWER:
            self.close(key)
        return response.status


class _Watch:
    """One POST on its way: when it must be over, its connection, and whether the watchdog cut it off."""

    def __init__(self, deadline: float):
        self.deadline = deadline
        self.connection: http.client.HTTPConnection | None = None
        self.cut = False


def _target(url: str) -> str:
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def _failed(key: str, error: Exception) -> None:
    log.info("webhook POST to %s: %s", key, type(error).__name__)  # the endpoint, not its URL: it may hold a credential
    return None
