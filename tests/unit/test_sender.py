"""The webhook sender against real sockets on 127.0.0.1: receivers that answer in the ways HTTP/1.1 allows,
and some that misbehave."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import threading
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tickets.webhooks.sender import MAX_ANSWER, PIPELINE, Sender, _head

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


class ScriptedReceiver:
    """Answers each request with answer(number) (bytes, or None to close the connection without a word);
    keeps each request it read and counts connections."""

    def __init__(self, answer, close_after_each=False, tls: ssl.SSLContext | None = None, then: bytes = b""):
        """`then`: sent a moment after each answer, before closing (a 408 on an idle connection, say)."""
        self.answer, self.close_after_each, self.tls, self.then = answer, close_after_each, tls, then
        self.requests: list[bytes] = []
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, path="/hook", scheme="http"):
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def _accept(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            buffer = b""
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buffer += data
                head, _, rest = buffer.partition(b"\r\n\r\n")
                length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                                  if line.lower().startswith(b"content-length")))
                while len(rest) < length:
                    rest += conn.recv(65536)
                self.requests.append(head + b"\r\n\r\n" + rest[:length])
                buffer = rest[length:]
                answer = self.answer(len(self.requests))
                if answer is None:
                    return
                conn.sendall(answer)
                if self.then:
                    time.sleep(0.1)
                    conn.sendall(self.then)
                if self.close_after_each or self.then or b"connection: close" in answer.lower():
                    return
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        self.listener.close()


@pytest.fixture
def receivers():
    made = []
    yield lambda *args, **kwargs: made.append(ScriptedReceiver(*args, **kwargs)) or made[-1]
    for receiver in made:
        receiver.close()


def test_one_kept_alive_connection_carries_every_message(receivers):
    receiver = receivers(lambda number: OK)
    sender = Sender(timeout=2)
    assert [sender.post("ep", receiver.url(), b'{"n":%d}' % n, {"webhook-id": "msg_1"}) for n in range(5)] == [200] * 5
    assert receiver.connections == 1
    request = receiver.requests[0]
    assert request.startswith(b"POST /hook HTTP/1.1\r\n") and f"Host: 127.0.0.1:{receiver.port}".encode() in request
    assert b"webhook-id: msg_1\r\n" in request and request.endswith(b'\r\n\r\n{"n":0}')


def test_a_connection_the_receiver_closed_meanwhile_is_opened_again(receivers):
    """Closed after each answer without saying so: the next message finds it closed and goes on a new one."""
    receiver = receivers(lambda number: OK, close_after_each=True)
    sender = Sender(timeout=2)
    assert [sender.post("ep", receiver.url(), b"{}", {}) for _ in range(3)] == [200, 200, 200]
    assert receiver.connections == 3 and len(receiver.requests) == 3


def test_a_receiver_that_closes_without_answering_is_a_failed_attempt(receivers):
    receiver = receivers(lambda number: None)
    assert Sender(timeout=2).post("ep", receiver.url(), b"{}", {}) is None


@pytest.mark.parametrize("answer, status", [
    (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", 204),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 200),
    (b"HTTP/1.1 503 Busy\r\nContent-Length: 4\r\n\r\nbusy", 503),
    (b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/\r\nContent-Length: 0\r\n\r\n", 302),
    (b"HTTP/1.1 410 Gone\r\nContent-Length: 0\r\n\r\n", 410),
])
def test_the_final_status_is_what_counts(receivers, answer, status):
    receiver = receivers(lambda number: answer)
    sender = Sender(timeout=2)
    assert sender.post("ep", receiver.url(), b"{}", {}) == status
    assert sender.post("ep", receiver.url(), b"{}", {}) == status
    assert receiver.connections == 1


def test_an_answer_ended_by_closing_the_connection(receivers):
    receiver = receivers(lambda number: b"HTTP/1.0 200 OK\r\n\r\nthanks", close_after_each=True)
    sender = Sender(timeout=2)
    assert sender.post("ep", receiver.url(), b"{}", {}) == 200
    assert sender.post("ep", receiver.url(), b"{}", {}) == 200
    assert receiver.connections == 2


def test_a_long_answer_is_not_read_to_its_end(receivers):
    big = b"x" * (4 * MAX_ANSWER)
    receiver = receivers(lambda number: b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(big), big))
    sender = Sender(timeout=2)
    assert sender.post("ep", receiver.url(), b"{}", {}) == 200
    assert sender.post("ep", receiver.url(), b"{}", {}) == 200
    assert receiver.connections == 2  # the rest of the first answer was never read: its connection was closed


def test_what_a_receiver_sends_on_an_idle_connection_is_never_taken_for_an_answer(receivers):
    """A 408 sent on the kept-alive connection before closing it: the next message goes on a new connection,
    and its answer is the receiver's answer to it."""
    receiver = receivers(lambda number: OK if number == 1 else b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
                         then=b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
    sender = Sender(timeout=2)
    assert sender.post("ep", receiver.url(), b"{}", {}) == 200
    time.sleep(0.3)
    assert sender.post("ep", receiver.url(), b"{}", {}) == 201
    assert receiver.connections == 2 and len(receiver.requests) == 2  # and the second was sent once


@pytest.mark.parametrize("answer, status", [
    (b"HTTP/1.1 200 OK\nContent-Length: 0\n\n", 200),  # bare LF line ends
    (b"HTTP/1.1 503 Busy\r\nContent-Length: 3\r\n\r\nbusy", 503),  # more than it said
])
def test_a_sloppy_answer_still_says_its_status(receivers, answer, status):
    """The receiver answered, and may have acted on the message: a failed attempt would send it again."""
    receiver = receivers(lambda number: answer)
    assert Sender(timeout=2).post("ep", receiver.url(), b"{}", {}) == status


def messages(count: int) -> list[tuple[bytes, dict]]:
    return [(b'{"n":%d}' % number, {"webhook-id": f"msg_{number}"}) for number in range(count)]


def test_a_proven_connection_carries_messages_pipelined(receivers):
    """After one short 2xx kept alive, the next messages are written together: this receiver answers them only
    once all of them have come, so a sender that waited for each answer would get none."""
    held = 5
    receiver = receivers(lambda number: OK if number == 1 else (OK * held if number == 1 + held else b""))
    sender = Sender(timeout=2)
    assert sender.window("ep", receiver.url()) == 1
    assert sender.post_many("ep", receiver.url(), messages(1)) == [200]
    assert sender.window("ep", receiver.url()) == PIPELINE
    assert sender.post_many("ep", receiver.url(), messages(held)) == [200] * held
    assert receiver.connections == 1
    assert [request.rsplit(b"\r\n\r\n", 1)[1] for request in receiver.requests[1:]] == [
        payload for payload, _ in messages(held)]


def test_pipelined_answers_keep_their_order_and_each_its_status(receivers):
    answers = {1: OK, 2: OK, 3: b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n",
               4: b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\nok", 5: OK}
    receiver = receivers(lambda number: answers[number])
    sender = Sender(timeout=2)
    sender.post_many("ep", receiver.url(), messages(1))
    assert sender.post_many("ep", receiver.url(), messages(4)) == [200, 500, 202, 200]
    assert receiver.connections == 1 and sender.window("ep", receiver.url()) == PIPELINE


@pytest.mark.parametrize("first", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n" + b"x" * 2000,  # a long answer
    b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",  # HTTP/1.0
    b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n",  # not a 2xx
])
def test_only_a_short_2xx_kept_alive_on_http_1_1_proves_a_connection(receivers, first):
    receiver = receivers(lambda number: first)
    sender = Sender(timeout=2)
    sender.post_many("ep", receiver.url(), messages(1))
    assert sender.window("ep", receiver.url()) == 1


def test_a_connection_closed_as_announced_leaves_the_rest_for_a_new_one(receivers):
    """A receiver that closes after so many requests says so in its last answer: the unanswered go again, on
    a new connection, still pipelined after it proves itself."""
    closing = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    receiver = receivers(lambda number: closing if number == 3 else OK)
    sender = Sender(timeout=2)
    sender.post_many("ep", receiver.url(), messages(1))
    assert sender.post_many("ep", receiver.url(), messages(4)) == [200, 200]  # the 3rd answer said close
    assert sender.window("ep", receiver.url()) == 1  # no connection now
    assert sender.post_many("ep", receiver.url(), messages(1)) == [200]
    assert sender.window("ep", receiver.url()) == PIPELINE and receiver.connections == 2


def test_a_receiver_that_drops_pipelined_requests_gets_one_at_a_time(receivers):
    """It answers one of a window and closes without a word: the unanswered are left to the caller to send
    again, and this endpoint is never pipelined to again."""
    receiver = receivers(lambda number: None if number == 3 else OK)
    sender = Sender(timeout=2)
    sender.post_many("ep", receiver.url(), messages(1))
    assert sender.post_many("ep", receiver.url(), messages(4)) == [200]
    assert sender.post_many("ep", receiver.url(), messages(1)) == [200]
    assert sender.window("ep", receiver.url()) == 1
    assert sender.window("other", receiver.url()) == 1  # (no connection yet) but others are not judged by it
    sender.post_many("other", receiver.url(), messages(1))
    assert sender.window("other", receiver.url()) == PIPELINE


def test_a_pipelined_answer_that_never_comes_is_a_failed_attempt(receivers):
    receiver = receivers(lambda number: b"" if number >= 3 else OK)  # it goes quiet after the 2nd
    sender = Sender(timeout=0.5)
    sender.post_many("ep", receiver.url(), messages(1))
    started = time.monotonic()
    assert sender.post_many("ep", receiver.url(), messages(3)) == [200, None]
    assert time.monotonic() - started < 1.5
    assert sender.window("ep", receiver.url()) == 1


def test_bytes_after_a_windows_last_answer_spoil_none_of_its_answers(receivers):
    sloppy = OK + b"trailing bytes"
    receiver = receivers(lambda number: sloppy if number == 4 else OK)
    sender = Sender(timeout=2)
    sender.post_many("ep", receiver.url(), messages(1))
    assert sender.post_many("ep", receiver.url(), messages(3)) == [200, 200, 200]
    assert sender.window("ep", receiver.url()) == 1


def test_a_long_answer_in_a_window_takes_the_proof_back(receivers):
    """Pipelining relies on short answers (they fit in our receive buffer): after a long one, a message goes alone
    and must prove the connection again."""
    long = b"HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n" + b"x" * 2000
    receiver = receivers(lambda number: long if number == 3 else OK)
    sender = Sender(timeout=2)
    sender.post_many("ep", receiver.url(), messages(1))
    assert sender.post_many("ep", receiver.url(), messages(2)) == [200, 200]
    assert sender.window("ep", receiver.url()) == 1
    assert sender.post_many("ep", receiver.url(), messages(1)) == [200]
    assert sender.window("ep", receiver.url()) == PIPELINE and receiver.connections == 1


def test_more_answers_than_requests_are_none_of_them_trusted(receivers):
    receiver = receivers(lambda number: OK if number == 1 else OK * 3)
    sender = Sender(timeout=2)
    sender.post_many("ep", receiver.url(), messages(1))
    statuses = sender.post_many("ep", receiver.url(), messages(2))
    assert statuses == [None] and sender.window("ep", receiver.url()) == 1


def test_the_host_header_is_ascii():
    head = _head("http://bücher.example:8080/hook?a=1", b"{}", {"webhook-id": "msg_1"})
    assert head.startswith(b"POST /hook?a=1 HTTP/1.1\r\nHost: xn--bcher-kva.example:8080\r\nContent-Length: 2\r\n")
    assert b"Host: [fe80::1]\r\n" in _head("http://[fe80::1%25eth0]/hook", b"{}", {})


def test_garbage_instead_of_an_answer_is_a_failed_attempt(receivers):
    receiver = receivers(lambda number: b"SSH-2.0-OpenSSH_9.6\r\n")
    assert Sender(timeout=2).post("ep", receiver.url(), b"{}", {}) is None


@pytest.mark.parametrize("url, headers", [
    ("http://127.0.0.1:{port}/a b", {}),
    ("http://127.0.0.1:{port}/hook", {"webhook-id": "msg\r\nX-Injected: 1"}),
    ("http://127.0.0.1:{port}/hook", {"webhook-id": "msg\nX-Injected: 1"}),
    ("ftp://127.0.0.1:{port}/hook", {}),
    ("http://127.0.0.1:{port}/é", {}),
    ("http://127.0.0.1:{port}/hook", {"Host": "elsewhere.example"}),
    ("http://127.0.0.1:{port}/hook", {"Content-Length": "0"}),
    ("http://127.0.0.1:{port}/hook", {"webhook id": "msg_1"}),
])
def test_nothing_is_sent_that_would_split_a_request(receivers, url, headers):
    receiver = receivers(lambda number: OK)
    assert Sender(timeout=2).post("ep", url.format(port=receiver.port), b"{}", headers) is None
    assert receiver.requests == []


def test_a_refused_connection_is_a_failed_attempt():
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
    assert Sender(timeout=2).post("ep", f"http://127.0.0.1:{port}/hook", b"{}", {}) is None


def test_https_needs_a_certificate_the_machine_trusts(receivers, tmp_path, monkeypatch):
    cert_file, key_file = self_signed(tmp_path, "127.0.0.1")
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert_file, key_file)
    receiver = receivers(lambda number: OK, tls=tls)
    url = receiver.url(scheme="https")
    assert Sender(timeout=2).post("ep", url, b"{}", {}) is None  # not trusted: nothing is sent
    assert receiver.requests == []
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))
    assert Sender(timeout=2).post("ep", url, b"{}", {}) == 200
    assert len(receiver.requests) == 1


def self_signed(folder, address: str):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, address)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(address))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file
