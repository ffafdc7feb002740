"""A control for `make bench`'s webhook runs: CPU work that has nothing to do with the service, run the way the
deliverer runs (under SCHED_IDLE, a burst every tenth of a second), so that its cost to the exchange can be set
beside the webhooks' cost.

    python bench/idle_load.py SHARE

SHARE is the CPU time to use, as a share of one core (0.09: 9 ms of CPU time every 100 ms). It counts its own
CPU time, not the clock's, so time it waits for the CPU does not count as work done. It runs until stopped.
"""

from __future__ import annotations

import sys
import time

from webhook_receiver import idle  # only on CPU time nothing else wants, as the receiver and the deliverer

TICK = 0.1  # seconds: the deliverer's POLL


def burst(cpu_seconds: float) -> None:
    """Spin until this thread has used `cpu_seconds` of CPU time."""
    end = time.thread_time() + cpu_seconds
    spun = 0
    while time.thread_time() < end:
        for number in range(200):
            spun += number


def main(share: float) -> None:
    idle()
    next_tick = time.monotonic()
    while True:
        burst(share * TICK)
        next_tick += TICK
        time.sleep(max(0.0, next_tick - time.monotonic()))


if __name__ == "__main__":
    main(min(1.0, max(0.0, float(sys.argv[1]))))
