"""The webhooks' outbox in the TinyDB store: events ride in the same log record as the ticket change
they report, and what the deliverer did comes back as records of the same log.

Log records: "e" (events, with their change; an event about a ticket the record stores leaves out the
ticket), "w" (delivery outcomes: {event: {endpoint: state}}),
"c" (events owed to no one any more), "l" (each endpoint's last outcome). A worker keeps the events
still owed to someone, their deliveries' state and the last outcomes in memory (OutboxState); the
snapshot keeps them too (its `_outbox` table and `_meta.webhooks`).
"""

from __future__ import annotations

import heapq
import os
from collections import deque
from collections.abc import Sequence

from tickets.core.domain import EventType
from tickets.core.ports import CorruptStore, Delivery, Outcome, Targets
from tickets.storage.codec import check_event, check_record
from tickets.storage.locks import FileLock

DONE = ("delivered", "gave_up", "gone", "dropped")


class OutboxState:
    """Events still owed to someone (by id, oldest first), their deliveries' state, the last outcomes; and,
    in the process that delivers, the plan: which endpoint is owed what, and when.

    The plan is made from the rest when first asked for, and each new event is added to it once (its
    endpoints chosen then, as the PostgreSQL outbox expands an event into delivery rows once), so that
    finding what is due costs the deliveries found, not the events kept.
    """

    def __init__(self):
        self.events: dict[str, dict] = {}  # event id -> event record
        self.deliveries: dict[str, dict[str, dict]] = {}  # event id -> endpoint id -> {"n", "next", "done", ...}
        self.last: dict[str, dict] = {}  # endpoint id -> the last outcome
        self._owed: dict[str, set[str]] = {}  # planned event id -> endpoints still owed it
        self._fresh: dict[str, deque[str]] = {}  # endpoint id -> event ids never tried, oldest first
        self._retry: dict[str, list[tuple[float, str]]] = {}  # endpoint id -> heap of (next try, event id)
        self._finished: list[str] = []  # events owed to no one any more, to be dropped by the next settle

    def apply(self, record: dict, path: str) -> None:
        """Apply the outbox parts of one log record."""
        try:
            for event in record.get("e", ()):
                if "ticket" not in event:  # the ticket as this same record stores it (the record is ours alone)
                    event["ticket"] = record["t"][event["ticketId"]]
                check_event(event)
                self.events[event["id"]] = event
            for event_id, states in record.get("w", {}).items():
                self.deliveries.setdefault(event_id, {}).update(states)
                if event_id in self._owed:
                    self._replan(event_id, states)
            for event_id in record.get("c", ()):
                self.events.pop(event_id, None)
                self.deliveries.pop(event_id, None)
                self._owed.pop(event_id, None)
            self.last.update(record.get("l", {}))
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise CorruptStore(f"{path} holds a webhook record this service cannot read ({error!r})") from error

    def due(self, now: float, targets: Targets, limit: int, skip=frozenset()) -> list[Delivery]:
        """Deliveries whose time has come, oldest first per endpoint, none to the endpoints in `skip`; each is
        handed out once (a settle's outcome plans a retry)."""
        self._plan_new(targets)
        due: list[Delivery] = []
        for endpoint in list(self._fresh.keys() | self._retry.keys()):
            if endpoint not in skip:
                due.extend(self._take(endpoint, now, limit - len(due)))
        return due

    def take_finished(self) -> list[str]:
        finished, self._finished = self._finished, []
        return finished

    def forget_plan(self) -> None:
        """Plan again from the stored state at the next due() (after a delivery round that failed)."""
        self._owed, self._fresh, self._retry = {}, {}, {}

    def backlog(self, targets: Targets) -> dict[str, dict]:
        counts: dict[str, dict] = {endpoint: {"pending": 0, "last": last} for endpoint, last in self.last.items()}
        for event_id, event in self.events.items():
            for endpoint in self._owed.get(event_id) or self._still_owed(event_id, event, targets):
                counts.setdefault(endpoint, {"pending": 0, "last": None})["pending"] += 1
        return counts

    def snapshot_rows(self) -> dict[str, dict]:
        """The `_outbox` table of a snapshot: each event with its deliveries."""
        return {event_id: {"event": record, "deliveries": self.deliveries.get(event_id, {})}
                for event_id, record in self.events.items()}

    def load_rows(self, rows: dict, path: str) -> None:
        """Read the `_outbox` table of a snapshot. Its tickets are checked as the tickets table's are: a message
        is made of one later, and one edited out of shape would hold up its endpoint at every round."""
        for event_id, row in rows.items():
            try:
                check_record(row["event"]["ticket"])
            except (KeyError, TypeError, ValueError) as error:
                raise CorruptStore(f"{path}: webhook event {event_id} holds a ticket this service cannot read "
                                   f"({error}); it was left untouched") from error
            self.apply({"e": [row["event"]], "w": {event_id: row.get("deliveries", {})}}, path)

    def _plan_new(self, targets: Targets) -> None:
        """Add the events not in the plan yet: the newest, since events are planned in the order they came."""
        new = []
        for event_id in reversed(self.events):
            if event_id in self._owed:
                break
            new.append(event_id)
        for event_id in reversed(new):
            owed = self._still_owed(event_id, self.events[event_id], targets)
            self._owed[event_id] = set(owed)
            if not owed:
                self._finished.append(event_id)
            for endpoint in owed:
                state = self.deliveries.get(event_id, {}).get(endpoint)
                if state and state.get("next"):
                    heapq.heappush(self._retry.setdefault(endpoint, []), (state["next"], event_id))
                else:
                    self._fresh.setdefault(endpoint, deque()).append(event_id)

    def _still_owed(self, event_id: str, event: dict, targets: Targets) -> list[str]:
        states = self.deliveries.get(event_id, {})
        wanted = targets(event["ticket"]["organizationId"], EventType(event["type"]))
        return [endpoint for endpoint in wanted if states.get(endpoint, {}).get("done") not in DONE]

    def _replan(self, event_id: str, states: dict[str, dict]) -> None:
        """What a settle says of a planned event: done for an endpoint, or tried again later."""
        owed = self._owed[event_id]
        for endpoint, state in states.items():
            if state.get("done"):
                owed.discard(endpoint)
            elif state.get("next") and endpoint in owed:
                heapq.heappush(self._retry.setdefault(endpoint, []), (state["next"], event_id))
        if not owed:
            self._finished.append(event_id)

    def _take(self, endpoint: str, now: float, limit: int) -> list[Delivery]:
        taken = []
        retry, fresh = self._retry.get(endpoint, []), self._fresh.get(endpoint, deque())
        while retry and retry[0][0] <= now and len(taken) < limit:
            next_at, event_id = heapq.heappop(retry)
            state = self.deliveries.get(event_id, {}).get(endpoint, {})
            if endpoint in self._owed.get(event_id, ()) and state.get("next") == next_at:  # else stale
                taken.append(Delivery(self.events[event_id], endpoint, state.get("n", 0)))
        while fresh and len(taken) < limit:
            event_id = fresh.popleft()
            if endpoint in self._owed.get(event_id, ()) and endpoint not in self.deliveries.get(event_id, {}):
                taken.append(Delivery(self.events[event_id], endpoint, 0))
        if not retry:
            self._retry.pop(endpoint, None)
        if not fresh:
            self._fresh.pop(endpoint, None)
        return taken


class LogOutbox:
    """The Outbox (tickets.core.ports) of the TinyDB store: the worker holding webhooks.lock delivers."""

    def __init__(self, store):
        self.store = store  # the LogTicketStore whose log holds the outbox
        self._lead = FileLock(os.path.join(store.folder, "webhooks.lock"))
        self._leading = False

    def lead(self) -> bool:
        """Take the delivery lock if free, and keep it while this process lives (its death frees it)."""
        if not self._leading:
            self._leading = self._lead.try_acquire()
        return self._leading

    def due(self, now: float, targets: Targets, limit: int, skip=frozenset()) -> list[Delivery]:
        return self.store.outbox_due(now, targets, limit, skip)

    def settle(self, outcomes: Sequence[Outcome]) -> None:
        self.store.outbox_settle(outcomes)

    def forget_plan(self) -> None:
        self.store.outbox_forget_plan()

    def backlog(self, targets: Targets) -> dict[str, dict]:
        return self.store.outbox_backlog(targets)

    def oldest(self) -> float | None:
        return self.store.outbox_oldest()
