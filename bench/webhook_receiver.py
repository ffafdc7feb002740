"""A healthy webhook receiver for `make bench`: answers every POST 200 at once (HTTP/1.1, kept alive) and keeps,
for each message, how long after its event it arrived (now minus the body's `timestamp`, in ms).

    python bench/webhook_receiver.py PORT

GET /stats answers {"count", "latencies_ms"} so far; DELETE /stats forgets them. It stands for the back
office's server, which would run on another machine: it is a bare asyncio protocol so that it takes as
little as possible of the CPU the service is measured on. The signature is not checked here (the tests do
that with the standardwebhooks package): the bench measures the service, not a verifier.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import datetime

LATENCIES: list[float] = []
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


def event_time(body: bytes) -> float:
    return datetime.fromisoformat(json.loads(body)["timestamp"].replace("Z", "+00:00")).timestamp()


class Receiver(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buffer[:head_end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            end = head_end + 4 + length
            if len(self.buffer) < end:
                return
            body, self.buffer = self.buffer[head_end + 4 : end], self.buffer[end:]
            self.transport.write(self.answer(head.split(" ", 1)[0], body))

    def answer(self, method: str, body: bytes) -> bytes:
        if method == "POST":
            LATENCIES.append((time.time() - event_time(body)) * 1000)
            return OK
        if method == "DELETE":
            LATENCIES.clear()
            return OK
        payload = json.dumps({"count": len(LATENCIES), "latencies_ms": LATENCIES}).encode()
        return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
            len(payload), payload)


async def main(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(Receiver, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
