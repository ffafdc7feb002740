"""The webhook deliverer, as gunicorn's "dirty app": gunicorn.conf.py has gunicorn run it in one process of
its own beside the HTTP workers, started, restarted and stopped with them (no extra process to start).

A process of its own, so that delivering never holds a worker's interpreter lock; at the lowest priority, so
that on a busy machine requests come first and messages wait a little (they are durable). Its settles, which
hold the log's write lock that the workers queue on, run on a thread left at the workers' priority.
"""

from __future__ import annotations

import gc
import os
import threading

from gunicorn.dirty.app import DirtyApp

from app import build_services
from tickets.config import load_settings

NICE = 19
STOP_WAIT = 20.0  # seconds to let messages on their way be answered when gunicorn stops


class WebhookDelivery(DirtyApp):
    workers = 1  # one deliverer per gunicorn; the outbox keeps several apart all the same (files or SKIP LOCKED)

    def init(self) -> None:
        # The log's ticket records are passed over here: delivering needs only its outbox.
        self.services = build_services(load_settings(), keep_tickets=False)
        gc.freeze()  # as in wsgi.py: long-lived, so out of the collector's sight
        self.services.deliverer.settle_at_this_priority()  # before lowering it: settles hold the log's lock
        os.nice(NICE)  # this thread's, and that of the threads it makes from here on (per thread on Linux)
        self.thread = threading.Thread(target=self.services.deliverer.serve, name="tickets-deliverer", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.services.deliverer.stop()
        self.thread.join(STOP_WAIT)
        self.services.storage.close()
