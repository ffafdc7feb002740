"""A scheduled ticket as a calendar event: an RFC 5545 invite and add-event links for Google and Outlook."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from icalendar import Calendar, Event

from tickets.core.domain import Ticket, WrongTicketType

PRODID = "-//Ticket Service//Tickets//EN"
UID_DOMAIN = "tickets"
DEFAULT_SUMMARY = "Appointment"
GOOGLE_URL = "https://calendar.google.com/calendar/render"
OUTLOOK_URL = "https://outlook.live.com/calendar/0/deeplink/compose"


@dataclass(frozen=True)
class EventDetails:
    """What every form of the event shows: summary, UTC start and end, description text."""

    summary: str
    start: datetime
    end: datetime
    description: str


def event_uid(ticket: Ticket) -> str:
    """The event's UID: fixed by the ticket id alone, so reschedules replace rather than duplicate."""
    return f"{ticket.id}@{UID_DOMAIN}"


def event_details(ticket: Ticket, join_link: str) -> EventDetails:
    """The shared details of a scheduled ticket's event; WrongTicketType if it has no schedule."""
    start = ticket.scheduled_start
    if not ticket.type.scheduled or start is None:
        raise WrongTicketType(ticket.type.value)
    start = start.astimezone(UTC).replace(microsecond=0)
    end = start + timedelta(minutes=ticket.duration_minutes)
    summary = ticket.properties.get("title") or DEFAULT_SUMMARY
    description = ticket.properties.get("description")
    join = f"Join: {join_link}"
    return EventDetails(summary, start, end, f"{description}\n\n{join}" if description else join)


def is_cancelled(ticket: Ticket) -> bool:
    """Whether the event is off: the ticket is revoked or disabled."""
    return ticket.revoked is not None or ticket.disabled is not None


def ticket_event(ticket: Ticket, join_link: str, now: datetime) -> bytes:
    """The ticket's VCALENDAR (METHOD:REQUEST, or METHOD:CANCEL once revoked or disabled) as bytes."""
    details = event_details(ticket, join_link)
    cancelled = is_cancelled(ticket)
    event = Event()
    event.add("uid", event_uid(ticket))
    event.add("sequence", ticket.version)
    event.add("dtstamp", now.astimezone(UTC).replace(microsecond=0))
    event.add("dtstart", details.start)
    event.add("dtend", details.end)
    event.add("summary", details.summary)
    event.add("description", details.description)
    event.add("location", join_link)
    event.add("url", join_link)
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("method", "CANCEL" if cancelled else "REQUEST")
    calendar.add_component(event)
    return calendar.to_ical()


def google_calendar_url(ticket: Ticket, join_link: str) -> str:
    """Google Calendar's add-event page filled with the ticket's event."""
    details = event_details(ticket, join_link)
    query = {
        "action": "TEMPLATE",
        "text": details.summary,
        "dates": f"{details.start:%Y%m%dT%H%M%SZ}/{details.end:%Y%m%dT%H%M%SZ}",
        "details": details.description,
        "location": join_link,
    }
    return f"{GOOGLE_URL}?{urlencode(query)}"


def outlook_calendar_url(ticket: Ticket, join_link: str) -> str:
    """Outlook's add-event page filled with the ticket's event."""
    details = event_details(ticket, join_link)
    query = {
        "path": "/calendar/action/compose",
        "rru": "addevent",
        "subject": details.summary,
        "startdt": f"{details.start:%Y-%m-%dT%H:%M:%SZ}",
        "enddt": f"{details.end:%Y-%m-%dT%H:%M:%SZ}",
        "body": details.description,
        "location": join_link,
    }
    return f"{OUTLOOK_URL}?{urlencode(query)}"
