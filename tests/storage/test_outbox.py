"""The TinyDB outbox's state (tickets/storage/outbox.py) without files: what is due, when, and how often."""

from datetime import UTC, datetime, timedelta

import pytest

from tickets.core.domain import EventType, Ticket, TicketEvent, TicketType
from tickets.storage.codec import event_to_record
from tickets.storage.outbox import OutboxState

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def event(number: int, organization: str = "org-a", event_type: EventType = EventType.CREATED) -> dict:
    ticket = Ticket(
        id=f"T{number:08d}", type=TicketType.MULTI_USE_TICKET, organization_id=organization, user_id="u",
        properties={}, created_at=NOW, expires_at=NOW + timedelta(hours=4),
    )
    return event_to_record(TicketEvent(f"msg_{number}", event_type, NOW, ticket))


def everyone(organization_id, event_type) -> list[str]:
    return ["ep_a", "ep_b"]


@pytest.fixture
def state() -> OutboxState:
    outbox = OutboxState()
    outbox.apply({"e": [event(number) for number in range(5)]}, "log")
    return outbox


def ids(deliveries) -> list[tuple[str, str]]:
    return [(delivery.event_id, delivery.endpoint_id) for delivery in deliveries]


def settle(state: OutboxState, endpoint: str, event_ids, **outcome) -> None:
    state.apply({"w": {event_id: {endpoint: {"n": 1, "at": 0.0, **outcome}} for event_id in event_ids}}, "log")


def test_every_delivery_is_handed_out_once_oldest_first_per_endpoint(state):
    due = state.due(100.0, everyone, limit=100)
    assert sorted(ids(due)) == sorted((f"msg_{n}", endpoint) for n in range(5) for endpoint in ("ep_a", "ep_b"))
    assert [event_id for event_id, endpoint in ids(due) if endpoint == "ep_a"] == [f"msg_{n}" for n in range(5)]
    assert state.due(100.0, everyone, limit=100) == []  # on their way: not handed out twice


def test_limit_and_busy_endpoints(state):
    assert len(state.due(100.0, everyone, limit=3)) == 3
    rest = state.due(100.0, everyone, limit=100, skip={"ep_b"})
    assert {endpoint for _, endpoint in ids(rest)} == {"ep_a"}
    assert {endpoint for _, endpoint in ids(state.due(100.0, everyone, limit=100))} == {"ep_b"}


def test_a_failed_delivery_is_due_again_at_its_retry_time_only(state):
    state.due(100.0, everyone, limit=100)
    settle(state, "ep_a", ["msg_0"], next=130.0)
    settle(state, "ep_a", ["msg_1", "msg_2", "msg_3", "msg_4"], done="delivered")
    assert state.due(129.0, everyone, limit=100) == []
    (again,) = state.due(130.0, everyone, limit=100)
    assert (again.event_id, again.endpoint_id, again.attempts) == ("msg_0", "ep_a", 1)


def test_an_event_every_endpoint_has_is_finished(state):
    state.due(100.0, everyone, limit=100)
    settle(state, "ep_a", ["msg_0", "msg_1"], done="delivered")
    assert state.take_finished() == []
    settle(state, "ep_b", ["msg_0"], done="gave_up")
    assert state.take_finished() == ["msg_0"]


def test_pending_counts_deliveries_never_tried(state):
    backlog = state.backlog(everyone)
    assert backlog["ep_a"]["pending"] == backlog["ep_b"]["pending"] == 5
    state.due(100.0, everyone, limit=100)
    settle(state, "ep_b", ["msg_0", "msg_1"], done="delivered")
    assert state.backlog(everyone)["ep_b"]["pending"] == 3


def test_the_endpoints_of_an_event_are_chosen_once(state):
    only_a = state.due(100.0, lambda organization_id, event_type: ["ep_a"], limit=100)
    assert {endpoint for _, endpoint in ids(only_a)} == {"ep_a"}
    assert state.due(100.0, everyone, limit=100) == []  # ep_b, added later, is owed none of them
    state.apply({"e": [event(9)]}, "log")
    assert sorted(ids(state.due(100.0, everyone, limit=100))) == [("msg_9", "ep_a"), ("msg_9", "ep_b")]


def test_an_event_no_endpoint_wants_is_finished_at_once(state):
    assert state.due(100.0, lambda organization_id, event_type: [], limit=100) == []
    assert state.take_finished() == [f"msg_{n}" for n in range(5)]


def test_forgetting_the_plan_hands_out_again_what_was_never_settled(state):
    state.due(100.0, everyone, limit=100)
    settle(state, "ep_a", ["msg_0"], done="delivered")
    state.forget_plan()
    again = ids(state.due(100.0, everyone, limit=100))
    assert ("msg_0", "ep_a") not in again and len(again) == 9


def test_a_stale_retry_is_not_handed_out(state):
    state.due(100.0, everyone, limit=100)
    settle(state, "ep_a", ["msg_0"], next=110.0)
    settle(state, "ep_a", ["msg_0"], done="delivered")  # e.g. the plan was made again meanwhile
    assert ("msg_0", "ep_a") not in ids(state.due(200.0, everyone, limit=100))


def test_an_unreadable_event_is_refused():
    broken = event(1)
    broken["type"] = "ticket.exploded"
    with pytest.raises(Exception, match="webhook record"):
        OutboxState().apply({"e": [broken]}, "log")
