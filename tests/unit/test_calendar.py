"""The calendar event of a scheduled ticket, without Flask."""

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import icalendar
import pytest
import vobject

from tickets.core.calendar import google_calendar_url, outlook_calendar_url, ticket_event
from tickets.core.domain import Policy, Ticket, TicketType, WrongTicketType
from tickets.core.rules import validity_window

NOW = datetime(2030, 1, 20, 8, 15, 42, tzinfo=UTC)
LINK = "https://tickets.example.com/t/ABCDEFGHJ"
# 09:30 at +05:30 is exactly 04:00 UTC.
SCHEDULED = "2030-01-31T09:30:00+05:30"
START_UTC = datetime(2030, 1, 31, 4, 0, tzinfo=UTC)
TRICKY_TITLE = "Review, part 1; notes\nΣυνάντηση με τον πελάτη — 顧客との打ち合わせ, 第二部; 終わり\nend"
SCHEDULED_TYPES = [ticket_type for ticket_type in TicketType if ticket_type.scheduled]
UNSCHEDULED_TYPES = [ticket_type for ticket_type in TicketType if not ticket_type.scheduled]
GOOGLE = "https://calendar.google.com/calendar/render"
OUTLOOK = "https://outlook.live.com/calendar/0/deeplink/compose"


def make_ticket(ticket_type=TicketType.SCHEDULE_TICKET, ticket_id="ABCDEFGHJ", **properties) -> Ticket:
    """A ticket as the store would hold it, scheduled at SCHEDULED unless told otherwise."""
    properties.setdefault("scheduled_date", SCHEDULED)
    created_at = datetime(2030, 1, 1, tzinfo=UTC)
    not_before, expires_at = validity_window(ticket_type, properties, created_at, None, Policy())
    return Ticket(
        id=ticket_id,
        type=ticket_type,
        organization_id="org-1",
        user_id="user-1",
        properties=properties,
        created_at=created_at,
        expires_at=expires_at,
        not_before=not_before,
    )


def parse_icalendar(data: bytes):
    """(calendar, its only VEVENT) as icalendar reads them."""
    calendar = icalendar.Calendar.from_ical(data)
    events = calendar.walk("VEVENT")
    assert len(events) == 1
    return calendar, events[0]


def parse_vobject(data: bytes):
    """(calendar, its only VEVENT) as vobject reads them."""
    calendar = vobject.readOne(data.decode("utf-8"))
    assert len(calendar.vevent_list) == 1
    return calendar, calendar.vevent


def query_of(url: str, expected_base: str) -> dict:
    """The single-valued query fields of `url`, after checking where it points."""
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == expected_base
    fields = parse_qs(parts.query, keep_blank_values=True, strict_parsing=True)
    assert all(len(values) == 1 for values in fields.values()), fields
    return {key: values[0] for key, values in fields.items()}


@pytest.mark.parametrize("ticket_type", SCHEDULED_TYPES)
def test_every_scheduled_type_gets_an_event(ticket_type):
    data = ticket_event(make_ticket(ticket_type, title="Checkup"), LINK, NOW)
    calendar, event = parse_icalendar(data)
    assert str(calendar["VERSION"]) == "2.0"
    assert str(calendar["PRODID"])
    assert str(calendar["METHOD"]) == "REQUEST"
    assert str(event["SUMMARY"]) == "Checkup"
    assert event.decoded("DTSTART") == START_UTC


def test_scheduled_types_are_all_covered():
    assert len(SCHEDULED_TYPES) == 5
    assert TicketType.SCHEDULE_TICKET in SCHEDULED_TYPES
    assert TicketType.MULTI_USE_TICKET not in SCHEDULED_TYPES


@pytest.mark.parametrize("ticket_type", UNSCHEDULED_TYPES)
def test_unscheduled_types_are_refused(ticket_type):
    ticket = make_ticket(ticket_type)
    with pytest.raises(WrongTicketType):
        ticket_event(ticket, LINK, NOW)
    with pytest.raises(WrongTicketType):
        google_calendar_url(ticket, LINK)
    with pytest.raises(WrongTicketType):
        outlook_calendar_url(ticket, LINK)


def test_output_is_crlf_bytes_wrapped_in_a_vcalendar():
    data = ticket_event(make_ticket(), LINK, NOW)
    assert isinstance(data, bytes)
    assert data.startswith(b"BEGIN:VCALENDAR\r\n")
    assert data.endswith(b"END:VCALENDAR\r\n")
    assert b"\n" not in data.replace(b"\r\n", b"")


def test_offset_start_is_the_exact_utc_instant_in_icalendar():
    data = ticket_event(make_ticket(duration=45), LINK, NOW)
    _, event = parse_icalendar(data)
    start, end = event.decoded("DTSTART"), event.decoded("DTEND")
    assert start.utcoffset() == timedelta(0)
    assert start == START_UTC
    assert end == START_UTC + timedelta(minutes=45)
    assert b"DTSTART:20300131T040000Z\r\n" in data
    assert b"DTEND:20300131T044500Z\r\n" in data


def test_offset_start_is_the_exact_utc_instant_in_vobject():
    _, event = parse_vobject(ticket_event(make_ticket(duration=45), LINK, NOW))
    start, end = event.dtstart.value, event.dtend.value
    assert start.utcoffset() == timedelta(0)
    assert start == START_UTC
    assert start == datetime.fromisoformat(SCHEDULED)
    assert end - start == timedelta(minutes=45)


def test_duration_defaults_to_thirty_minutes():
    _, event = parse_icalendar(ticket_event(make_ticket(), LINK, NOW))
    assert event.decoded("DTEND") - event.decoded("DTSTART") == timedelta(minutes=30)
    _, event = parse_vobject(ticket_event(make_ticket(), LINK, NOW))
    assert event.dtend.value - event.dtstart.value == timedelta(minutes=30)


def test_negative_offset_and_z_are_exact_too():
    _, event = parse_icalendar(ticket_event(make_ticket(scheduled_date="2030-01-30T23:45:00-04:15"), LINK, NOW))
    assert event.decoded("DTSTART") == datetime(2030, 1, 31, 4, 0, tzinfo=UTC)
    _, event = parse_vobject(ticket_event(make_ticket(scheduled_date="2030-01-31T04:00:00Z"), LINK, NOW))
    assert event.dtstart.value == datetime(2030, 1, 31, 4, 0, tzinfo=UTC)


def test_dtstamp_is_now_in_utc():
    local_now = NOW.astimezone(datetime.fromisoformat("2030-01-01T00:00:00+02:00").tzinfo)
    data = ticket_event(make_ticket(), LINK, local_now)
    _, event = parse_icalendar(data)
    assert event.decoded("DTSTAMP") == NOW
    assert b"DTSTAMP:20300120T081542Z\r\n" in data
    _, event = parse_vobject(data)
    assert event.dtstamp.value == NOW


def test_uid_is_stable_across_calls_and_reschedules_while_sequence_grows():
    ticket = make_ticket(title="First")
    first = ticket_event(ticket, LINK, NOW)
    again = ticket_event(ticket, LINK, NOW + timedelta(minutes=5))
    moved = ticket.replace(
        version=ticket.version + 1,
        properties={**ticket.properties, "scheduled_date": "2030-02-02T10:00:00+01:00", "title": "Moved"},
    )
    rescheduled = ticket_event(moved, LINK, NOW + timedelta(days=1))

    events = [parse_icalendar(data)[1] for data in (first, again, rescheduled)]
    uids = {str(event["UID"]) for event in events}
    assert len(uids) == 1
    assert uids == {"ABCDEFGHJ@tickets"}
    assert [int(event["SEQUENCE"]) for event in events] == [0, 0, 1]
    assert events[2].decoded("DTSTART") == datetime(2030, 2, 2, 9, 0, tzinfo=UTC)

    vevents = [parse_vobject(data)[1] for data in (first, rescheduled)]
    assert vevents[0].uid.value == vevents[1].uid.value == "ABCDEFGHJ@tickets"
    assert int(vevents[0].sequence.value) < int(vevents[1].sequence.value)


def test_uid_differs_between_tickets():
    one = parse_icalendar(ticket_event(make_ticket(ticket_id="ABCDEFGHJ"), LINK, NOW))[1]
    other = parse_icalendar(ticket_event(make_ticket(ticket_id="KMNPQRSTU"), LINK, NOW))[1]
    assert str(one["UID"]) != str(other["UID"])


def test_sequence_is_the_ticket_version():
    ticket = make_ticket().replace(version=7)
    data = ticket_event(ticket, LINK, NOW)
    assert int(parse_icalendar(data)[1]["SEQUENCE"]) == 7
    assert int(parse_vobject(data)[1].sequence.value) == 7


def test_live_ticket_is_confirmed_request():
    data = ticket_event(make_ticket(), LINK, NOW)
    calendar, event = parse_icalendar(data)
    assert str(calendar["METHOD"]) == "REQUEST"
    assert str(event["STATUS"]) == "CONFIRMED"
    calendar, event = parse_vobject(data)
    assert calendar.method.value == "REQUEST"
    assert event.status.value == "CONFIRMED"


@pytest.mark.parametrize("field", ["revoked", "disabled"])
def test_revoked_or_disabled_ticket_is_a_cancellation(field):
    live = make_ticket(title="Checkup").replace(version=2)
    gone = live.replace(version=3, **{field: NOW})
    data = ticket_event(gone, LINK, NOW)
    calendar, event = parse_icalendar(data)
    assert str(calendar["METHOD"]) == "CANCEL"
    assert str(event["STATUS"]) == "CANCELLED"
    assert int(event["SEQUENCE"]) == 3
    assert str(event["UID"]) == str(parse_icalendar(ticket_event(live, LINK, NOW))[1]["UID"])
    assert event.decoded("DTSTART") == START_UTC
    calendar, event = parse_vobject(data)
    assert calendar.method.value == "CANCEL"
    assert event.status.value == "CANCELLED"


def test_tricky_title_round_trips_through_both_parsers_and_is_folded():
    description = "Bring: ID, papers; forms\nΠαρακαλώ — よろしくお願いします" * 3
    data = ticket_event(make_ticket(title=TRICKY_TITLE, description=description), LINK, NOW)

    lines = data.split(b"\r\n")
    assert max(len(line) for line in lines) <= 75
    assert any(line.startswith(b" ") for line in lines), "long values must be folded"
    for line in lines:
        line.decode("utf-8")  # folding must not split a multi-byte character
    assert b"\\," in data and b"\\;" in data and b"\\n" in data

    _, event = parse_icalendar(data)
    assert str(event["SUMMARY"]) == TRICKY_TITLE
    assert str(event["DESCRIPTION"]) == f"{description}\n\nJoin: {LINK}"
    _, event = parse_vobject(data)
    assert event.summary.value == TRICKY_TITLE
    assert event.description.value == f"{description}\n\nJoin: {LINK}"


def test_default_summary_without_title():
    for ticket in (make_ticket(), make_ticket(title="")):
        data = ticket_event(ticket, LINK, NOW)
        assert str(parse_icalendar(data)[1]["SUMMARY"]) == "Appointment"
        assert parse_vobject(data)[1].summary.value == "Appointment"


def test_join_link_is_in_url_location_and_description():
    data = ticket_event(make_ticket(description="Room 4, second floor"), LINK, NOW)
    _, event = parse_icalendar(data)
    assert str(event["URL"]) == LINK
    assert str(event["LOCATION"]) == LINK
    assert str(event["DESCRIPTION"]) == f"Room 4, second floor\n\nJoin: {LINK}"
    _, event = parse_vobject(data)
    assert event.url.value == LINK
    assert event.location.value == LINK
    assert event.description.value.endswith(LINK)


def test_description_without_one_is_just_the_join_link():
    _, event = parse_icalendar(ticket_event(make_ticket(), LINK, NOW))
    assert str(event["DESCRIPTION"]) == f"Join: {LINK}"


def test_google_url_carries_the_event():
    ticket = make_ticket(title=TRICKY_TITLE, description="Bring ID & papers", duration=90)
    fields = query_of(google_calendar_url(ticket, LINK), GOOGLE)
    assert fields == {
        "action": "TEMPLATE",
        "text": TRICKY_TITLE,
        "dates": "20300131T040000Z/20300131T053000Z",
        "details": f"Bring ID & papers\n\nJoin: {LINK}",
        "location": LINK,
    }


def test_outlook_url_carries_the_event():
    ticket = make_ticket(title=TRICKY_TITLE, description="Bring ID & papers", duration=90)
    fields = query_of(outlook_calendar_url(ticket, LINK), OUTLOOK)
    assert fields == {
        "path": "/calendar/action/compose",
        "rru": "addevent",
        "subject": TRICKY_TITLE,
        "startdt": "2030-01-31T04:00:00Z",
        "enddt": "2030-01-31T05:30:00Z",
        "body": f"Bring ID & papers\n\nJoin: {LINK}",
        "location": LINK,
    }
    assert datetime.fromisoformat(fields["startdt"]) == START_UTC


def test_links_use_the_default_summary_without_title():
    google = query_of(google_calendar_url(make_ticket(), LINK), GOOGLE)
    outlook = query_of(outlook_calendar_url(make_ticket(), LINK), OUTLOOK)
    assert google["text"] == outlook["subject"] == "Appointment"
    assert google["details"] == outlook["body"] == f"Join: {LINK}"


def test_all_three_forms_agree():
    ticket = make_ticket(title="Follow-up", description="Notes", duration=20)
    _, event = parse_icalendar(ticket_event(ticket, LINK, NOW))
    google = query_of(google_calendar_url(ticket, LINK), GOOGLE)
    outlook = query_of(outlook_calendar_url(ticket, LINK), OUTLOOK)
    start, end = event.decoded("DTSTART"), event.decoded("DTEND")
    assert google["text"] == outlook["subject"] == str(event["SUMMARY"])
    assert google["details"] == outlook["body"] == str(event["DESCRIPTION"])
    assert google["dates"] == f"{start:%Y%m%dT%H%M%SZ}/{end:%Y%m%dT%H%M%SZ}"
    assert datetime.fromisoformat(outlook["startdt"]) == start
    assert datetime.fromisoformat(outlook["enddt"]) == end


@pytest.mark.parametrize("control", ["\x00", "\x1b", "\x7f", "\x07", "\x85", "\t", "\x0b"])
def test_control_characters_never_reach_the_invite(control):
    """NUL, ESC, DEL and the other control characters are dropped from every text value (SPEC section 6);
    line breaks survive as line breaks."""
    ticket = make_ticket(title=f"Ti{control}tle", description=f"line one\r\nline{control} two\rthree")
    raw = ticket_event(ticket, LINK, NOW)
    assert control.encode("utf-8") not in raw
    for _, event in (parse_icalendar(raw), parse_vobject(raw)):
        summary = event["SUMMARY"] if isinstance(event, icalendar.Event) else event.summary.value
        description = event["DESCRIPTION"] if isinstance(event, icalendar.Event) else event.description.value
        assert str(summary) == "Title"
        assert str(description) == f"line one\nline two\nthree\n\nJoin: {LINK}"
    for url in (google_calendar_url(ticket, LINK), outlook_calendar_url(ticket, LINK)):
        assert "%1B" not in url and "%00" not in url and "%7F" not in url


@pytest.mark.parametrize("make_url", [google_calendar_url, outlook_calendar_url])
@pytest.mark.parametrize(
    "title, description",
    [("Call", "d" * 30_000), ("T" * 30_000, "short"), ("Ω" * 9_000, "ä" * 9_000), ("Call", "x" * 8_150)],
)
def test_add_event_links_fit_in_8_kib(make_url, title, description):
    """A long description (then title) is shortened with an ellipsis; the join link and times stay whole."""
    ticket = make_ticket(title=title, description=description)
    url = make_url(ticket, LINK)
    assert len(url) <= 8192
    fields = query_of(url, GOOGLE if make_url is google_calendar_url else OUTLOOK)
    text = fields.get("details", fields.get("body"))
    assert text.endswith(f"Join: {LINK}")
    assert "…" in text or "…" in fields.get("text", fields.get("subject"))


def test_links_that_fit_are_not_shortened():
    ticket = make_ticket(title="Call", description="d" * 1000)
    fields = query_of(google_calendar_url(ticket, LINK), GOOGLE)
    assert fields["details"] == "d" * 1000 + f"\n\nJoin: {LINK}" and fields["text"] == "Call"


def test_the_invite_has_an_organizer_as_rfc_5546_requires():
    """ORGANIZER is set (METHOD:REQUEST and CANCEL both need one), read the same by both parsers."""
    for ticket in (make_ticket(), make_ticket().replace(revoked=NOW)):
        data = ticket_event(ticket, LINK, NOW, "mailto:appointments@bank.example")
        _, event = parse_icalendar(data)
        assert str(event["ORGANIZER"]) == "mailto:appointments@bank.example"
        _, vevent = parse_vobject(data)
        assert vevent.organizer.value == "mailto:appointments@bank.example"
    assert "ORGANIZER:mailto:no-reply@localhost" in ticket_event(make_ticket(), LINK, NOW).decode()
