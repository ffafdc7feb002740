"""A scheduled ticket as a calendar event: an RFC 5545 invite and add-event links for Google and Outlook."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from icalendar import Calendar, Event, vCalAddress

from tickets.core.domain import Ticket, WrongTicketType

PRODID = "-//Ticket Service//Tickets//EN"
UID_DOMAIN = "tickets"
DEFAULT_SUMMARY = "Appointment"
GOOGLE_URL = "https://calendar.google.com/calendar/render"
OUTLOOK_URL = "https://outlook.live.com/calendar/0/deeplink/compose"
DEFAULT_ORGANIZER = "mailto:no-reply@localhost"
MAX_REDIRECT = 8192  # characters of an add-event link (it travels in a Location header)
ELLIPSIS = "…"


@dataclass(frozen=True)
class EventDetails:
    """What every form of the event shows: summary, UTC start and end, the description's own text (note)
    and the description as shown (the note, then the join link)."""

    summary: str
    start: datetime
    end: datetime
    note: str
    description: str


# Control characters (C0, DEL, C1) but the line feed, which RFC 5545 escaping carries as \n.
CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def plain_text(value: str) -> str:
    """A text value a calendar application can show: line breaks kept as line feeds, other controls dropped."""
    return CONTROL.sub("", value.replace("\r\n", "\n").replace("\r", "\n"))


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
    summary = plain_text(ticket.properties.get("title") or "") or DEFAULT_SUMMARY
    note = plain_text(ticket.properties.get("description") or "")
    return EventDetails(summary, start, end, note, described(note, join_link))


def described(note: str, join_link: str) -> str:
    """The description as every form of the event shows it: the ticket's own text, then the join link."""
    join = f"Join: {join_link}"
    return f"{note}\n\n{join}" if note else join


def is_cancelled(ticket: Ticket) -> bool:
    """Whether the event is off: the ticket is revoked or disabled."""
    return ticket.revoked is not None or ticket.disabled is not None


def ticket_event(ticket: Ticket, join_link: str, now: datetime, organizer: str = DEFAULT_ORGANIZER) -> bytes:
    """The ticket's VCALENDAR (METHOD:REQUEST, or METHOD:CANCEL once revoked or disabled) as bytes; the
    ORGANIZER (a calendar address, e.g. mailto:...) is what RFC 5546 requires of an event with a METHOD."""
    details = event_details(ticket, join_link)
    cancelled = is_cancelled(ticket)
    event = Event()
    event.add("uid", event_uid(ticket))
    event.add("organizer", vCalAddress(organizer))
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
    """Google Calendar's add-event page filled with the ticket's event (at most MAX_REDIRECT characters)."""
    details = event_details(ticket, join_link)

    def url(summary: str, description: str) -> str:
        query = {
            "action": "TEMPLATE",
            "text": summary,
            "dates": f"{details.start:%Y%m%dT%H%M%SZ}/{details.end:%Y%m%dT%H%M%SZ}",
            "details": description,
            "location": join_link,
        }
        return f"{GOOGLE_URL}?{urlencode(query)}"

    return _fitted(url, details, join_link)


def outlook_calendar_url(ticket: Ticket, join_link: str) -> str:
    """Outlook's add-event page filled with the ticket's event (at most MAX_REDIRECT characters)."""
    details = event_details(ticket, join_link)

    def url(summary: str, description: str) -> str:
        query = {
            "path": "/calendar/action/compose",
            "rru": "addevent",
            "subject": summary,
            "startdt": f"{details.start:%Y-%m-%dT%H:%M:%SZ}",
            "enddt": f"{details.end:%Y-%m-%dT%H:%M:%SZ}",
            "body": description,
            "location": join_link,
        }
        return f"{OUTLOOK_URL}?{urlencode(query)}"

    return _fitted(url, details, join_link)


def _fitted(url, details: EventDetails, join_link: str) -> str:
    """The url of (summary, description), the description's own text (then the summary) shortened with an
    ellipsis until it fits a Location header that every browser and proxy accepts; the join link stays whole."""
    note, summary = details.note, details.summary
    if len(url(summary, described(note, join_link))) > MAX_REDIRECT:
        note = _shortened(lambda text: url(summary, described(text, join_link)), note)
    if len(url(summary, described(note, join_link))) > MAX_REDIRECT:
        summary = _shortened(lambda text: url(text, described(note, join_link)), summary)
    return url(summary, described(note, join_link))


def _shortened(url_of, text: str) -> str:
    """The longest start of `text` (with an ellipsis) for which url_of(...) fits; '' if none does."""
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if len(url_of(text[:middle] + ELLIPSIS)) <= MAX_REDIRECT:
            low = middle
        else:
            high = middle - 1
    return text[:low] + ELLIPSIS if low else ""
