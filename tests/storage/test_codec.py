"""A webhook message's ticket is made from the stored record (codec.record_view); the API's view of the Ticket built
from that record (schemas.ticket.ticket_view) is the oracle."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.ticket import ticket_view
from tests.unit.test_schemas import tickets
from tickets.core.domain import format_time
from tickets.storage.codec import api_time, format_iso, parse_time, record_to_ticket, record_view, ticket_to_record

# Records the service writes hold UTC; a folder converted from format 1, or mended by hand, may hold other offsets.
zones = st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-9, minutes=-30))])
times = st.datetimes(min_value=datetime(1999, 1, 1), max_value=datetime(2101, 1, 1), timezones=zones)


@settings(max_examples=500, deadline=None)
@given(tickets, st.data())
def test_a_records_view_is_the_tickets(ticket, data):
    record = ticket_to_record(ticket)
    for field in ("createdAt", "expiresAt", "notBefore", "disabled", "revoked", "lastUsedAt"):
        if record[field] is not None or field in ("createdAt", "expiresAt"):
            record[field] = format_iso(data.draw(times))
    now = format_iso(data.draw(st.sampled_from([parse_time(record["expiresAt"])]) | times))
    expected = ticket_view(record_to_ticket(ticket.id, record), parse_time(now))
    assert record_view(ticket.id, record, now) == expected


@given(times)
def test_a_stored_time_as_the_api_writes_it(moment):
    assert api_time(format_iso(moment)) == format_time(moment)
    assert api_time(format_iso(moment.replace(microsecond=0))) == format_time(moment.replace(microsecond=0))
    assert api_time(None) is None


@pytest.mark.parametrize(("written", "shown"), [
    ("2026-01-31 09:30:00.123456+00:00", "2026-01-31T09:30:00.123Z"),
    ("2026-01-31T09:30:00,123456+00:00", "2026-01-31T09:30:00.123Z"),
    ("2026-W05-6T09:30:00.123456+00:00", "2026-01-31T09:30:00.123Z"),
    ("2026-01-31T11:30:00.123456+02:00", "2026-01-31T09:30:00.123Z"),
    ("2026-01-31T09:30:00+00:00", "2026-01-31T09:30:00.000Z"),
])
def test_a_time_in_another_layout_is_read_and_written_again(written, shown):
    """A mended file may hold any layout fromisoformat reads: the fast path takes only the service's own."""
    assert api_time(written) == shown
