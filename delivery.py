"""The webhook deliverer, as gunicorn's "dirty app": gunicorn.conf.py has gunicorn run it in one process of
its own beside the HTTP workers, started, restarted and stopped with them (no extra process to start).

A process of its own, so that delivering never holds a worker's interpreter lock; under SCHED_IDLE, so that
on a busy machine requests come first and messages wait a little (they are durable). Its settles, which hold
the log's write lock that the workers queue on, run on a thread left at the workers' priority.
"""

from __future__ import annotations

import gc
import os
import sys
import threading

from gunicorn.dirty.app import DirtyApp

from app import build_services
from tickets.config import load_settings

NICE = 19  # where there is no SCHED_IDLE
# Seconds a thread may keep the interpreter lock from another that asks for it (Python's default is 0.005): the
# settling thread asks while it holds the log's write lock, and the thread holding the interpreter lock runs
# only on CPU the workers leave, so that wait keeps them from writing.
SWITCH_INTERVAL = 0.001
STOP_WAIT = 20.0  # seconds to let messages on their way be answered when gunicorn stops


class WebhookDelivery(DirtyApp):
    workers = 1  # one deliverer per gunicorn; the outbox keeps several apart all the same (files or SKIP LOCKED)

    def init(self) -> None:
        # The log's ticket records are passed over here: delivering needs only its outbox.
        self.services = build_services(load_settings(), keep_tickets=False)
        gc.freeze()  # as in wsgi.py: long-lived, so out of the collector's sight
        self.services.deliverer.settle_at_this_priority()  # this thread's: settles hold the log's lock
        sys.setswitchinterval(SWITCH_INTERVAL)
        self.thread = threading.Thread(target=self._deliver, name="tickets-deliverer", daemon=True)
        self.thread.start()

    def _deliver(self) -> None:
        # Only the delivering threads run when idle: this process's main thread keeps gunicorn's heartbeat.
        run_when_idle()
        self.services.deliverer.serve()

    def close(self) -> None:
        self.services.deliverer.stop()
        self.thread.join(STOP_WAIT)
        self.services.storage.close()


def run_when_idle() -> None:
    """Put this thread, and the threads it makes from here on, under SCHED_IDLE (Linux keeps a policy per
    thread): it runs only on CPU time nothing else wants, a worker waking takes the CPU from it at once, and the
    scheduler sends a waking worker to a CPU that runs only such threads as to an idle one. At nice 19 a
    thread that had the CPU kept it for its slice. Where there is no SCHED_IDLE (not Linux), nice 19."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        os.nice(NICE)
