"""Delivery, inside the service and never on a request's path: serve() runs in one process beside the
gunicorn workers (delivery.py, gunicorn's dirty worker); the outbox says who may deliver (on the TinyDB
files one process at a time; on PostgreSQL whoever claims a delivery).

Each endpoint's due messages go out in order on a thread of its own, so a slow or dead receiver holds up
only itself, a window at a time (pipelined where the receiver has shown it can take it: sender.py); a round
sends for at most ROUND seconds, so it ends well inside PostgreSQL's claim (LEASE). A failure holds back the
rest of the round, but not what was pipelined after it in its window (SPEC §10 does not promise order).
A non-2xx answer, a timeout or a refused connection is retried after about 5 s, 30 s, 2 min, 10 min,
30 min, 1 h, 2 h, 4 h and 8 h, then given up; 410 Gone disables the endpoint.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from tickets import metrics
from tickets.core import clock
from tickets.core.ports import Delivery, Outbox, Outcome, StorageError, Targets
from tickets.webhooks import messages
from tickets.webhooks.endpoints import Endpoint, WebhookRegistry
from tickets.webhooks.sender import Sender

log = logging.getLogger(__name__)
RETRIES = (5, 30, 120, 600, 1800, 3600, 7200, 14400, 28800)  # seconds after the 1st, 2nd, ... failed attempt
# Seconds between looks at the outbox: messages normally leave within a second. A round ending does not bring
# the next look forward (unless more was due than a look takes), so that under load each round carries a tenth
# of a second of messages: its fixed costs (the settle above all) are shared, and the deliverer wakes less often.
POLL = 0.1
BATCH = 200
# Seconds one endpoint's round may go on starting sends; each answer comes within the timeout (at most 60 s, plus
# the name lookup) and a window is only as long as fits, so a round is over long before a PostgreSQL claim runs
# out (tickets/storage/pg_outbox.py: LEASE, 300 s).
ROUND = 120.0
GAUGES_EVERY = 5.0
COUNT_EVERY = 1.0  # seconds a long round may keep its attempts from the metrics (counting each costs a lock)


class Deliverer:
    """Sends what the outbox says is due, records what came of it."""

    def __init__(self, outbox: Outbox, registry: WebhookRegistry, timeout: float):
        self.outbox = outbox
        self.registry = registry
        self.timeout = timeout
        self.sender = Sender(timeout)
        self._busy: dict[str, threading.Thread] = {}  # endpoints with messages on their way, and their thread
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._gauged = float("-inf")
        self._settler: ThreadPoolExecutor | None = None

    def settle_at_this_priority(self) -> None:
        """Settle from a thread made now, at the caller's CPU priority (Linux keeps one per thread). delivery.py
        calls this from a thread that keeps the workers' priority, and sends from one that runs when idle: a
        settle holds the log's write lock that the workers queue on, and at the lowest priority it was often left
        waiting for the CPU meanwhile (its hold's p90 was 1.3-1.5 ms under load, and is 0.3 ms so)."""
        self._settler = ThreadPoolExecutor(1, thread_name_prefix="tickets-webhook-settle")
        self._settler.submit(lambda: None).result()  # its thread is made now, by this thread

    def serve(self, go_on: Callable[[], bool] = lambda: True) -> None:
        """Deliver in this thread until stop() or until go_on() is false; then let the messages on their way
        be answered (at most one per endpoint: the rest is settled as not sent) and return."""
        while go_on() and not self._stopping.is_set():
            try:
                self.run_once()
            except StorageError as error:  # storage trouble: the outbox is durable, try again shortly
                log.warning("webhook delivery paused: %s", error)
            except Exception:  # noqa: BLE001  (a bug must not end delivery for good; it is logged)
                log.exception("webhook delivery failed")
            self._wake.wait(POLL)
            self._wake.clear()
        self._stopping.set()
        with self._lock:
            rounds = list(self._busy.values())
        for thread in rounds:
            thread.join()
        if self._settler is not None:
            self._settler.shutdown(wait=False)

    def stop(self) -> None:
        """Ask serve() to return (from a signal handler or another thread)."""
        self._stopping.set()
        self._wake.set()

    def run_once(self) -> int:
        """Start sending what is due now (if this process may); returns how many messages were started."""
        if not self.outbox.lead():
            return 0
        now = clock.timestamp()
        endpoints = self.registry.endpoints()
        targets = self.registry.targets_among(endpoints)
        self._update_gauges(now, targets)
        with self._lock:
            busy = set(self._busy)
        due = self.outbox.due(now, targets, BATCH, busy)
        by_endpoint: dict[str, list[Delivery]] = defaultdict(list)
        for delivery in due:
            by_endpoint[delivery.endpoint_id].append(delivery)
        self.sender.keep_only(endpoints.keys() | busy)
        for endpoint_id, deliveries in by_endpoint.items():
            thread = threading.Thread(
                target=self._send_all,
                args=(endpoints.get(endpoint_id), endpoint_id, deliveries, now, len(due) == BATCH),
                name=f"tickets-webhook-{endpoint_id}", daemon=True,
            )
            with self._lock:
                self._busy[endpoint_id] = thread
            thread.start()
        if not by_endpoint:
            self._settle([])  # events found owed to no one any more are dropped
        return len(due)

    def drain(self, seconds: float = 10.0) -> None:
        """Run until nothing is due or on its way (tests, `webhooks` commands)."""
        deadline = clock.monotonic() + seconds
        while clock.monotonic() < deadline:
            with self._lock:
                busy = bool(self._busy)  # before looking: a round ending meanwhile may leave more due
            started = self.run_once()
            if not started and not busy:
                return
            threading.Event().wait(0.02)

    def _send_all(self, endpoint: Endpoint | None, endpoint_id: str, deliveries: list[Delivery], began: float,
                  more_due: bool):
        try:
            self._settle(self._send_round(endpoint, deliveries, began))
        except Exception:  # noqa: BLE001  (logged; what was not settled goes out again)
            log.exception("webhook delivery to %s failed", endpoint_id)
            self.outbox.forget_plan()
        finally:
            with self._lock:
                self._busy.pop(endpoint_id, None)
            if more_due:
                self._wake.set()

    def _settle(self, outcomes: list[Outcome]) -> None:
        if self._settler is None:
            self.outbox.settle(outcomes)
        else:
            self._settler.submit(self.outbox.settle, outcomes).result()

    def _send_round(self, endpoint: Endpoint | None, deliveries: list[Delivery], began: float) -> list[Outcome]:
        """Send one endpoint's due messages in order, a window at a time, until a window has a failure; what came
        of each."""
        outcomes, tally, counted = [], Counter(), clock.monotonic()
        sent, retry_at = 0, None
        try:
            while sent < len(deliveries):
                if sent and (self._stopping.is_set() or clock.timestamp() + self.timeout > began + ROUND):
                    break  # stopping, or this round has gone on long enough: the rest is due again at once
                if endpoint is None or endpoint.disabled:  # deleted, or disabled (410) meanwhile
                    outcomes.extend(_dropped(delivery) for delivery in deliveries[sent:])
                    sent = len(deliveries)
                    break
                # each answer of a window may take the timeout: a window ends within ROUND, as one POST would
                room = int((began + ROUND - clock.timestamp()) / self.timeout)
                batch = deliveries[sent:sent + max(1, min(room, self.sender.window(endpoint.id, endpoint.url)))]
                window = self._send_window(endpoint, batch)
                outcomes += window
                sent += len(window)
                tally.update((delivery.event_type, outcome.result)
                             for delivery, outcome in zip(batch[:len(window)], window, strict=True))
                if clock.monotonic() - counted > COUNT_EVERY:
                    _count(tally)
                    tally, counted = Counter(), clock.monotonic()
                failed = next((outcome for outcome in window if outcome.result != "delivered"), None)
                if failed is not None:  # the receiver is in trouble: the rest waits for its retry
                    retry_at = failed.next_at
                    break
                if not window:  # the receiver closed the connection before any answer: due again at once
                    break
            outcomes.extend(_later(rest, retry_at) for rest in deliveries[sent:])
        finally:
            _count(tally)
        return outcomes

    def _send_window(self, endpoint: Endpoint, deliveries: list[Delivery]) -> list[Outcome]:
        """POST the messages together (Sender.window() said how many may go): what came of those answered."""
        now = clock.timestamp()
        secrets = endpoint.signing_secrets(now)
        requests = []
        for delivery in deliveries:
            payload = messages.body(delivery.event)
            requests.append((payload, messages.headers(delivery.event_id, payload, secrets, now)))
        statuses = self.sender.post_many(endpoint.id, endpoint.url, requests)
        outcomes = [self._judge(delivery, status, now)
                    for delivery, status in zip(deliveries[:len(statuses)], statuses, strict=True)]
        if any(outcome.result == "gone" for outcome in outcomes):
            self.registry.disable(endpoint.id, "410 Gone")
            log.warning("webhook endpoint %s answered 410 Gone: disabled", endpoint.id)
        return outcomes

    def _judge(self, delivery: Delivery, status: int | None, now: float) -> Outcome:
        """What an answer's status (None: no answer) makes of an attempt."""
        attempts = delivery.attempts + 1
        if status is not None and 200 <= status < 300:
            result, next_at = "delivered", None
        elif status == 410:
            result, next_at = "gone", None
        elif attempts > len(RETRIES):
            log.warning("webhook %s to %s: gave up after %d attempts", delivery.event_id, delivery.endpoint_id,
                        attempts)
            result, next_at = "gave_up", None
        else:
            result, next_at = "failed", now + RETRIES[attempts - 1]
        return _outcome(delivery, attempts, result, status, now, next_at)

    def _update_gauges(self, now: float, targets: Targets) -> None:
        if now - self._gauged < GAUGES_EVERY:
            return
        self._gauged = now
        backlog = self.outbox.backlog(targets)
        metrics.WEBHOOK_PENDING.set(sum(entry["pending"] for entry in backlog.values()))
        oldest = self.outbox.oldest()
        metrics.WEBHOOK_OLDEST.set(now - oldest if oldest else 0)


def _count(tally: Counter) -> None:
    """The metrics of a round's attempts so far (counted in bulk: each count takes a lock and writes a file)."""
    if not tally:  # nothing tried since the last count (or a round of dropped deliveries only)
        return
    metrics.WEBHOOK_ATTEMPTS.inc(sum(tally.values()))
    for (event_type, result), count in tally.items():
        metrics.WEBHOOK_DELIVERIES.labels(event_type, result).inc(count)


def _outcome(delivery: Delivery, attempts: int, result: str, status, at: float, next_at) -> Outcome:
    return Outcome(delivery.event_id, delivery.endpoint_id, attempts, result, status, at, next_at)


def _later(delivery: Delivery, next_at: float | None) -> Outcome:
    """Not tried this round: due with the retry of an earlier message that failed, or (`next_at` None) at once;
    no attempt counted."""
    if next_at is None:
        next_at = clock.timestamp()
    return _outcome(delivery, delivery.attempts, "deferred", None, clock.timestamp(), next_at)


def _dropped(delivery: Delivery) -> Outcome:
    """An endpoint deleted or disabled meanwhile: the delivery is owed to no one."""
    return _outcome(delivery, delivery.attempts, "dropped", None, clock.timestamp(), None)
