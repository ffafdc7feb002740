"""tickets/core/domain.py without Flask or storage: types, statuses, refusals, retention, wire times."""

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from tickets.core.domain import Policy, Refusal, Ticket, TicketStatus, TicketType, format_time
from tickets.core.rules import validity_window

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


def test_format_time_is_utc_with_z():
    """Times leave the service as RFC 3339 UTC with Z."""
    assert format_time(datetime(2030, 1, 1, 10, 0, tzinfo=UTC)) == "2030-01-01T10:00:00.000Z"
    assert format_time(None) is None


@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.sampled_from(
    [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-11)), ZoneInfo("UTC")])))
def test_format_time_writes_what_isoformat_would(value):
    """The hand-written format is isoformat's, in UTC, to the millisecond, with a Z, for any aware time."""
    expected = value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert format_time(value) == expected
