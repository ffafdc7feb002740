"""The webhooks' outbox on PostgreSQL: every worker of every node may deliver; rows are claimed with
FOR UPDATE SKIP LOCKED and held for a lease, so each delivery has one deliverer at a time.

An event row (stored in the same transaction as its ticket change) is expanded once into one delivery
row per endpoint that wants it; a delivery is due when its next_at has come and no lease holds it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from tickets.core import clock
from tickets.core.domain import EventType
from tickets.core.ports import Delivery, Outcome, Targets
from tickets.storage.codec import check_event
from tickets.storage.postgres import PgStore

# Seconds a claimed delivery is this deliverer's; then another may take it (at least once). A deliverer's
# round ends long before (tickets/webhooks/deliverer.py: ROUND plus one timeout).
LEASE = 300.0
EXPAND_BATCH = 200


class PgOutbox:
    """The Outbox (tickets.core.ports) of the PostgreSQL store."""

    def __init__(self, store: PgStore):
        self.store = store

    def lead(self) -> bool:
        return True  # claims, not a leader, keep deliveries apart

    def due(self, now: float, targets: Targets, limit: int, skip=frozenset()) -> list[Delivery]:
        self._expand(targets)
        with self.store.transaction() as conn:
            rows = conn.execute(
                "UPDATE webhook_deliveries AS d SET lease_until = %s FROM ("
                "  SELECT event_id, endpoint_id FROM webhook_deliveries"
                "  WHERE done IS NULL AND next_at <= %s AND lease_until <= %s AND endpoint_id <> ALL(%s)"
                "  ORDER BY next_at LIMIT %s FOR UPDATE SKIP LOCKED"
                ") AS due, webhook_events AS e "
                "WHERE d.event_id = due.event_id AND d.endpoint_id = due.endpoint_id AND e.id = d.event_id "
                "RETURNING e.record, d.endpoint_id, d.attempts",
                (now + LEASE, now, now, list(skip), limit),
            ).fetchall()
        return [Delivery(_event(record), endpoint, attempts) for record, endpoint, attempts in rows]

    def _expand(self, targets: Targets) -> None:
        """Give each new event one delivery row per endpoint that wants it; drop those nobody wants."""
        with self.store.transaction() as conn:
            events = conn.execute(
                "SELECT id, record FROM webhook_events WHERE NOT expanded ORDER BY happened_at LIMIT %s "
                "FOR UPDATE SKIP LOCKED",
                (EXPAND_BATCH,),
            ).fetchall()
            now = clock.timestamp()
            for event_id, record in events:
                event = json.loads(record)
                endpoints = targets(event["ticket"]["organizationId"], EventType(event["type"]))
                if not endpoints:
                    conn.execute("DELETE FROM webhook_events WHERE id = %s", (event_id,))
                    continue
                for endpoint in endpoints:
                    conn.execute(
                        "INSERT INTO webhook_deliveries (event_id, endpoint_id, next_at) VALUES (%s, %s, %s) "
                        "ON CONFLICT DO NOTHING",
                        (event_id, endpoint, now),
                    )
                conn.execute("UPDATE webhook_events SET expanded = true WHERE id = %s", (event_id,))

    def settle(self, outcomes: Sequence[Outcome]) -> None:
        if not outcomes:
            return
        last = {outcome.endpoint_id: outcome for outcome in outcomes if outcome.result != "deferred"}
        event_ids = sorted({outcome.event_id for outcome in outcomes})
        with self.store.transaction() as conn, conn.cursor() as cursor:
            # Settles of one event's endpoints run at once on different threads or nodes: each locks the events
            # first (in one order), so the last to finish sees every other's outcome and drops the event.
            cursor.execute("SELECT id FROM webhook_events WHERE id = ANY(%s) ORDER BY id FOR UPDATE", (event_ids,))
            cursor.executemany(
                "UPDATE webhook_deliveries SET attempts = %s, next_at = %s, done = %s, status = %s, at = %s, "
                "lease_until = 0 WHERE event_id = %s AND endpoint_id = %s",
                [(outcome.attempts, outcome.next_at or outcome.at, None if outcome.next_at else outcome.result,
                  outcome.status, outcome.at, outcome.event_id, outcome.endpoint_id) for outcome in outcomes],
            )
            cursor.executemany(
                "INSERT INTO webhook_results (endpoint_id, result, status, at) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (endpoint_id) DO UPDATE SET result = EXCLUDED.result, status = EXCLUDED.status, "
                "at = EXCLUDED.at WHERE webhook_results.at <= EXCLUDED.at",
                [(outcome.endpoint_id, outcome.result, outcome.status, outcome.at) for outcome in last.values()],
            )
            cursor.execute(
                "DELETE FROM webhook_events AS e WHERE e.id = ANY(%s) AND NOT EXISTS ("
                "SELECT 1 FROM webhook_deliveries AS d WHERE d.event_id = e.id AND d.done IS NULL)",
                (event_ids,),
            )

    def forget_plan(self) -> None:
        """Nothing to do: deliveries handed out and never settled are due again when their lease ends."""

    def backlog(self, targets: Targets) -> dict[str, dict]:
        self._expand(targets)
        with self.store.connection() as conn:
            pending = conn.execute(
                "SELECT endpoint_id, count(*) FROM webhook_deliveries WHERE done IS NULL GROUP BY endpoint_id"
            ).fetchall()
            results = conn.execute("SELECT endpoint_id, result, status, at FROM webhook_results").fetchall()
        found = {endpoint: {"pending": 0, "last": {"result": result, "status": status, "at": at}}
                 for endpoint, result, status, at in results}
        for endpoint, count in pending:
            found.setdefault(endpoint, {"pending": 0, "last": None})["pending"] = count
        return found

    def oldest(self) -> float | None:
        with self.store.connection() as conn:
            row = conn.execute(
                "SELECT extract(epoch FROM min(happened_at)) FROM webhook_events AS e WHERE NOT expanded OR EXISTS ("
                "SELECT 1 FROM webhook_deliveries AS d WHERE d.event_id = e.id AND d.done IS NULL)"
            ).fetchone()
        return float(row[0]) if row and row[0] is not None else None


def _event(text: str) -> dict:
    """An event row's record, checked as the TinyDB outbox checks what it reads."""
    record = json.loads(text)
    check_event(record)
    return record
