"""tickets/core/rules.py without Flask or storage: validity windows, ids, lengths, property checks, RFC 3339 dates."""

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from tickets.core.domain import Policy, TicketType, parse_rfc3339
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


@pytest.mark.parametrize("value", ["2030-01-01T10:00:00+02:00:30", "2030-01-01T10:00:00.1234567Z", "2030-01-01T10:00Z"])
def test_rfc3339_is_strict(value):
    """Offsets with seconds, 7-digit fractions and missing seconds are not RFC 3339."""
    assert parse_rfc3339(value) is None
