"""A healthy webhook receiver for `make bench`: answers every POST 200 at once (HTTP/1.1, kept alive) and keeps,
for each message, how long after its event it arrived (now minus the body's `timestamp`, in ms).

    python bench/webhook_receiver.py PORT

GET /stats answers {"count", "latencies_ms"} so far; DELETE /stats forgets them. It stands for the back
office's server, which would run on another machine. So that it takes as little as it can of the CPU the
service is measured on, it is a bare asyncio protocol that keeps each message's arrival time and the bytes of
its `timestamp` (the latencies are worked out when asked for), and it runs under SCHED_IDLE: only on CPU time
nothing else wants. The signature is not checked here (the tests do that with the standardwebhooks package):
the bench measures the service, not a verifier.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import time
from datetime import datetime

ARRIVALS: list[tuple[float, bytes]] = []  # (arrival, the body's "timestamp" value)
LATENCIES: list[float] = []  # those of ARRIVALS worked out so far, in the same order
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)
TIMESTAMP = re.compile(rb'"timestamp":"([^"]+)"')


def latencies() -> list[float]:
    """Milliseconds from each message's event to its arrival (each worked out once: the bench asks often)."""
    LATENCIES.extend((arrived - datetime.fromisoformat(stamp.decode().replace("Z", "+00:00")).timestamp()) * 1000
                     for arrived, stamp in ARRIVALS[len(LATENCIES):])
    return LATENCIES


class Receiver(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        answers = []
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                break
            length = LENGTH.search(self.buffer, 0, head_end + 2)
            end = head_end + 4 + (int(length.group(1)) if length else 0)
            if len(self.buffer) < end:
                break
            method = self.buffer[:self.buffer.index(b" ")]
            body, self.buffer = self.buffer[head_end + 4 : end], self.buffer[end:]
            answers.append(self.answer(method, body))
        if answers:
            self.transport.write(b"".join(answers))

    def answer(self, method: bytes, body: bytes) -> bytes:
        if method == b"POST":
            ARRIVALS.append((time.time(), TIMESTAMP.search(body).group(1)))
            return OK
        if method == b"DELETE":
            ARRIVALS.clear()
            LATENCIES.clear()
            return OK
        payload = json.dumps({"count": len(ARRIVALS), "latencies_ms": latencies()}).encode()
        return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
            len(payload), payload)


async def main(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(Receiver, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def idle() -> None:
    """Run only on CPU time nothing else wants (or, where there is no SCHED_IDLE, at the lowest priority)."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        os.nice(19)


if __name__ == "__main__":
    idle()
    asyncio.run(main(int(sys.argv[1])))
