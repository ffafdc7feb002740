"""Domain rules without Flask or storage: windows, statuses, refusals, ids, property checks."""

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from tickets.core.domain import Policy, Refusal, Ticket, TicketStatus, TicketType, format_time, parse_rfc3339
from tickets.core.rules import (
    ID_ALPHABET,
    check_json_value,
    check_length,
    check_properties,
    new_ticket_id,
    normalize_ticket_id,
    validity_window,
)

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
POLICY = Policy(ticket_ttl=14_400, early_join=1_800, schedule_grace=3_600, retention=604_800)


def make(ticket_type=TicketType.MULTI_USE_TICKET, properties=None, **fields) -> Ticket:
    """A ticket created at NOW with its window computed by the domain."""
    properties = properties or {}
    ttl = fields.pop("ttl", None)
    not_before, expires_at = validity_window(ticket_type, properties, NOW, ttl, POLICY)
    return Ticket(
        id="ABCDEFGHJ", type=ticket_type, organization_id="org", user_id="u", properties=properties,
        created_at=NOW, expires_at=expires_at, not_before=not_before, ttl=ttl, **fields,
    )


def test_single_and_multi_use_types_are_classified():
    """Every SINGLE_USE type is single use; every SCHEDULE type is scheduled."""
    single = {t for t in TicketType if t.single_use}
    scheduled = {t for t in TicketType if t.scheduled}
    assert single == {
        TicketType.SINGLE_USE_TICKET, TicketType.GENESYS_SINGLE_USE_TICKET,
        TicketType.SINGLE_USE_SCHEDULE_TICKET, TicketType.SINGLE_USE_APPOINTMENTS_SCHEDULE_TICKET,
    }
    assert scheduled == {
        TicketType.SCHEDULE_TICKET, TicketType.APPOINTMENTS_SCHEDULE_TICKET, TicketType.GENESYS_SCHEDULE_TICKET,
        TicketType.SINGLE_USE_SCHEDULE_TICKET, TicketType.SINGLE_USE_APPOINTMENTS_SCHEDULE_TICKET,
    }


def test_plain_window_is_creation_plus_ttl():
    """Plain tickets: valid from creation for ttl, default TICKETS_TICKET_TTL."""
    assert validity_window(TicketType.SINGLE_USE_TICKET, {}, NOW, None, POLICY) == (None, NOW + timedelta(hours=4))
    assert validity_window(TicketType.MULTI_USE_TICKET, {}, NOW, 60, POLICY) == (None, NOW + timedelta(seconds=60))


def test_scheduled_window_uses_early_join_duration_and_grace():
    """Scheduled: from start - early join to start + duration + grace, or start + ttl."""
    props = {"scheduled_date": "2030-02-01T10:00:00+02:00", "duration": 45}
    start = datetime(2030, 2, 1, 8, 0, tzinfo=UTC)
    assert validity_window(TicketType.SCHEDULE_TICKET, props, NOW, None, POLICY) == (
        start - timedelta(minutes=30), start + timedelta(minutes=45, hours=1),
    )
    assert validity_window(TicketType.SCHEDULE_TICKET, props, NOW, 600, POLICY)[1] == start + timedelta(seconds=600)


def test_default_duration_is_thirty_minutes():
    """Without duration a scheduled ticket lasts 30 minutes plus grace."""
    props = {"scheduled_date": "2030-02-01T08:00:00Z"}
    _, end = validity_window(TicketType.GENESYS_SCHEDULE_TICKET, props, NOW, None, POLICY)
    assert end == datetime(2030, 2, 1, 9, 30, tzinfo=UTC)


def test_refusal_order_and_status():
    """Revoked beats disabled beats expired beats not-yet-valid."""
    ticket = make()
    assert ticket.refusal(NOW) is None and ticket.status(NOW) == TicketStatus.ACTIVE
    later = NOW + timedelta(hours=5)
    assert ticket.refusal(later) == Refusal.EXPIRED and ticket.status(later) == TicketStatus.EXPIRED
    disabled = ticket.replace(disabled=NOW)
    assert disabled.refusal(later) == Refusal.DISABLED and disabled.status(later) == TicketStatus.DISABLED
    revoked = disabled.replace(revoked=NOW)
    assert revoked.refusal(later) == Refusal.REVOKED and revoked.status(later) == TicketStatus.REVOKED


def test_scheduled_ticket_is_not_yet_valid_before_early_join():
    """A scheduled ticket refuses before start - early join, and is listed active meanwhile."""
    ticket = make(TicketType.SCHEDULE_TICKET, {"scheduled_date": "2030-01-02T12:00:00Z"})
    assert ticket.refusal(NOW) == Refusal.NOT_YET_VALID
    assert ticket.status(NOW) == TicketStatus.ACTIVE
    assert ticket.refusal(datetime(2030, 1, 2, 11, 31, tzinfo=UTC)) is None


def test_gone_after_retention():
    """An expired ticket is gone only once retention has passed."""
    ticket = make(ttl=60)
    assert not ticket.gone(NOW + timedelta(seconds=60 + 604_799), POLICY.retention)
    assert ticket.gone(NOW + timedelta(seconds=60 + 604_800), POLICY.retention)


def test_used_single_use_ticket_is_gone_at_once():
    """A consumed single-use ticket is gone for readers even before it expires."""
    ticket = make(TicketType.SINGLE_USE_TICKET)
    assert not ticket.gone(NOW, POLICY.retention)
    assert ticket.replace(consumed_at=NOW).gone(NOW, POLICY.retention)


def test_ids_use_the_whole_unambiguous_alphabet():
    """Ids draw uniformly from the alphabet without 0/O/1/I/L."""
    assert not set("0O1IL") & set(ID_ALPHABET)
    counts = Counter("".join(new_ticket_id(None) for _ in range(4000)))
    assert set(counts) == set(ID_ALPHABET)
    expected = 4000 * 9 / len(ID_ALPHABET)
    assert all(abs(count - expected) < expected * 0.25 for count in counts.values())


def test_id_length_and_normalization():
    """Default length 9; lookups are case-insensitive; impossible ids normalize to None."""
    assert len(new_ticket_id(None)) == 9 and len(new_ticket_id(0)) == 9 and len(new_ticket_id(64)) == 64
    assert normalize_ticket_id("abcdefghj") == "ABCDEFGHJ"
    assert normalize_ticket_id("ABCDEFGH0") is None
    assert normalize_ticket_id("ABC") is None
    assert normalize_ticket_id("A" * 65) is None


@pytest.mark.parametrize("length,ok", [(None, True), (0, True), (6, True), (64, True), (5, False), (65, False)])
def test_check_length(length, ok):
    """length: absent or 0, else 6-64."""
    assert (check_length(length) == {}) is ok


def test_parse_rfc3339_requires_an_offset():
    """Dates without offsets, or not dates at all, are refused."""
    assert parse_rfc3339("2030-01-01T10:00:00+05:30") == datetime(2030, 1, 1, 4, 30, tzinfo=UTC)
    assert parse_rfc3339("2030-01-01T10:00:00Z") == datetime(2030, 1, 1, 10, tzinfo=UTC)
    for bad in ("2030-01-01T10:00:00", "2030-01-01", "tomorrow", 5, None, "2030-13-01T10:00:00Z"):
        assert parse_rfc3339(bad) is None


def test_check_properties_names_each_bad_key():
    """Wrong types of meaningful keys are reported by key; other keys pass."""
    errors = check_properties(
        {"customer_id": 5, "scheduled_date": "soon", "duration": 0, "title": [], "description": 3, "x": object()},
        TicketType.MULTI_USE_TICKET,
    )
    assert set(errors) == {"customer_id", "scheduled_date", "duration", "title", "description"}
    assert check_properties({"duration": True}, TicketType.MULTI_USE_TICKET).keys() == {"duration"}
    assert check_properties({}, TicketType.SCHEDULE_TICKET).keys() == {"scheduled_date"}
    assert check_properties({"duration": 1440, "customer_id": "c"}, TicketType.SINGLE_USE_TICKET) == {}


def test_check_json_value_refuses_deep_and_non_finite():
    """Properties must be finite and not absurdly deep."""
    deep = []
    for _ in range(40):
        deep = [deep]
    assert check_json_value({"a": deep})
    assert check_json_value({"a": float("nan")})
    assert check_json_value({"a": [1, 2.5, {"b": None}]}) is None


def test_format_time_is_utc_with_z():
    """Times leave the service as RFC 3339 UTC with Z."""
    assert format_time(datetime(2030, 1, 1, 10, 0, tzinfo=UTC)) == "2030-01-01T10:00:00.000Z"
    assert format_time(None) is None
