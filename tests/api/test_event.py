"""GET /security/ticket/{ticketId}/event through the API (SPEC section 6)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import icalendar
import pytest

from tests.conftest import SCHEDULED_TYPES, bearer, exchange, fetch_token, make_client
from tickets.core import clock as service_clock

TICKET = "/security/ticket"
# 09:30 at +05:30 is 04:00 UTC.
SCHEDULED = "2030-01-31T09:30:00+05:30"
START = datetime(2030, 1, 31, 4, 0, tzinfo=UTC)
PLAIN_TYPES = ["SINGLE_USE_TICKET", "GENESYS_SINGLE_USE_TICKET", "MULTI_USE_TICKET", "GENESYS_MULTI_USE_TICKET"]
PROPERTIES = {
    "scheduled_date": SCHEDULED,
    "duration": 45,
    "title": "Mortgage review",
    "description": "Bring your papers.",
}


def event_url(ticket_id: str) -> str:
    return f"{TICKET}/{ticket_id}/event"


def parse(response):
    """(calendar, its only VEVENT) of an ics response."""
    calendar = icalendar.Calendar.from_ical(response.data)
    events = calendar.walk("VEVENT")
    assert len(events) == 1
    return calendar, events[0]


def as_utc(value) -> datetime:
    return value.dt.astimezone(UTC)


@pytest.fixture
def scheduled(create_ticket):
    """A scheduled ticket with title, description and duration."""
    return create_ticket("SCHEDULE_TICKET", dict(PROPERTIES))


def test_ics_file(test_client, auth, scheduled):
    """The event is an ics attachment with one VEVENT carrying the schedule, title and join link."""
    response = test_client.get(event_url(scheduled["id"]), headers=auth)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/calendar; charset=utf-8"
    assert response.headers["Content-Disposition"] == f"attachment; filename={scheduled['id']}.ics"
    calendar, event = parse(response)
    link = f"http://localhost/t/{scheduled['id']}"
    assert str(calendar["VERSION"]) == "2.0"
    assert calendar.get("PRODID")
    assert str(calendar["METHOD"]) == "REQUEST"
    assert str(event["STATUS"]) == "CONFIRMED"
    assert str(event["UID"])
    assert int(event["SEQUENCE"]) == 0
    assert event.get("DTSTAMP") is not None
    assert as_utc(event["DTSTART"]) == START
    assert as_utc(event["DTEND"]) == START + timedelta(minutes=45)
    assert str(event["SUMMARY"]) == "Mortgage review"
    assert str(event["URL"]) == link
    assert link in str(event["LOCATION"])
    assert link in str(event["DESCRIPTION"])
    assert "Bring your papers." in str(event["DESCRIPTION"])


def test_explicit_ics_choice(test_client, auth, scheduled):
    """calendar=ics is the same file as the default."""
    response = test_client.get(event_url(scheduled["id"]), query_string={"calendar": "ics"}, headers=auth)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/calendar; charset=utf-8"
    assert str(parse(response)[1]["SUMMARY"]) == "Mortgage review"


@pytest.mark.parametrize("ticket_type", SCHEDULED_TYPES)
def test_every_scheduled_type_has_an_event(test_client, auth, create_ticket, ticket_type):
    """Every scheduled type has an event; without title there is a sensible default summary and 30 min."""
    ticket = create_ticket(ticket_type, {"scheduled_date": SCHEDULED})
    response = test_client.get(event_url(ticket["id"]), headers=auth)
    assert response.status_code == 200
    _, event = parse(response)
    assert str(event["SUMMARY"]).strip()
    assert as_utc(event["DTEND"]) - as_utc(event["DTSTART"]) == timedelta(minutes=30)


@pytest.mark.parametrize("ticket_type", PLAIN_TYPES)
def test_plain_ticket_has_no_event(test_client, auth, create_ticket, ticket_type):
    """A ticket that is not a scheduled type is 409 (any calendar choice)."""
    ticket = create_ticket(ticket_type, {"scheduled_date": SCHEDULED})
    for choice in ("ics", "google", "outlook"):
        response = test_client.get(event_url(ticket["id"]), query_string={"calendar": choice}, headers=auth)
        assert response.status_code == 409
        assert response.json["code"] == 409


def test_unicode_and_special_characters_survive(test_client, auth, create_ticket):
    """Commas, semicolons, new lines and non-Latin text come through the ics intact."""
    title = "Review, part 1; notes — Συνάντηση 顧客"
    description = "Line one\nLine two; with, commas"
    ticket = create_ticket("SCHEDULE_TICKET", {"scheduled_date": SCHEDULED, "title": title, "description": description})
    response = test_client.get(event_url(ticket["id"]), headers=auth)
    _, event = parse(response)
    assert str(event["SUMMARY"]) == title
    assert description in str(event["DESCRIPTION"])


# --- the join link -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers, base",
    [
        ({}, "http://localhost"),
        ({"X-Forwarded-Proto": "https"}, "https://localhost"),
        ({"X-Forwarded-Proto": "http"}, "http://localhost"),
        ({"Host": "127.0.0.1:8080"}, "http://127.0.0.1:8080"),
        ({"Host": "localhost:8443", "X-Forwarded-Proto": "https"}, "https://localhost:8443"),
    ],
)
def test_join_link_follows_host_and_proto(test_client, auth, scheduled, headers, base):
    """The join link is <X-Forwarded-Proto or scheme>://<Host>/t/<id>."""
    response = test_client.get(event_url(scheduled["id"]), headers={**auth, **headers})
    assert response.status_code == 200
    assert str(parse(response)[1]["URL"]) == f"{base}/t/{scheduled['id']}"


def test_join_link_uses_request_scheme(test_client, auth, scheduled):
    """Without X-Forwarded-Proto, an https request gives an https link."""
    response = test_client.get(event_url(scheduled["id"]), headers=auth, base_url="https://localhost")
    assert response.status_code == 200
    assert str(parse(response)[1]["URL"]) == f"https://localhost/t/{scheduled['id']}"


@pytest.mark.parametrize("proto", ["ftp", "javascript", "file", "https, http", "", "  "])
def test_other_proto_is_400(test_client, auth, scheduled, proto):
    """X-Forwarded-Proto other than http or https is 400 with a JSON body."""
    response = test_client.get(event_url(scheduled["id"]), headers={**auth, "X-Forwarded-Proto": proto})
    assert response.status_code == 400
    assert response.json["code"] == 400


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:80", "localhost@evil.example", "127.0.0.1.evil.example"]
)
def test_untrusted_host_is_400(test_client, auth, scheduled, host):
    """A Host outside TICKETS_TRUSTED_HOSTS is 400: no one can plant a link to their own site."""
    for choice in ("ics", "google", "outlook"):
        response = test_client.get(
            event_url(scheduled["id"]), query_string={"calendar": choice}, headers={**auth, "Host": host}
        )
        assert response.status_code == 400
        assert response.json["code"] == 400


@pytest.mark.parametrize(
    "spoof",
    [
        {"X-Forwarded-Host": "evil.example"},
        {"Forwarded": "host=evil.example;proto=https"},
        {"X-Forwarded-Host": "evil.example", "Forwarded": "for=1.2.3.4;host=evil.example"},
    ],
)
def test_forwarded_host_headers_are_ignored(test_client, auth, scheduled, spoof):
    """X-Forwarded-Host and Forwarded do not change the link's host."""
    response = test_client.get(event_url(scheduled["id"]), headers={**auth, **spoof})
    assert response.status_code == 200
    _, event = parse(response)
    assert str(event["URL"]) == f"http://localhost/t/{scheduled['id']}"
    assert "evil" not in response.get_data(as_text=True)


def test_configured_trusted_hosts(make_app, tmp_path):
    """TICKETS_TRUSTED_HOSTS (a comma-separated string) decides which hosts make links."""
    app = make_app(tmp_path / "hosts", TICKETS_TRUSTED_HOSTS="tickets.example.com, meet.example.org")
    client = app.test_client()
    credentials = make_client(app)
    minted = client.post(
        "/security/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(credentials["client_id"], credentials["client_secret"]),
        base_url="https://tickets.example.com",
    )
    assert minted.status_code == 200, minted.json
    headers = {**bearer(minted.json["access_token"]), "Host": "tickets.example.com"}
    created = client.post(
        TICKET, json={"type": "SCHEDULE_TICKET", "properties": {"scheduled_date": SCHEDULED}}, headers=headers
    )
    assert created.status_code == 200, created.json
    ticket_id = created.json["id"]
    for host in ("tickets.example.com", "meet.example.org"):
        response = client.get(event_url(ticket_id), headers={**headers, "Host": host, "X-Forwarded-Proto": "https"})
        assert response.status_code == 200
        assert str(parse(response)[1]["URL"]) == f"https://{host}/t/{ticket_id}"
    assert client.get(event_url(ticket_id), headers={**headers, "Host": "localhost"}).status_code == 400


# --- Google and Outlook ------------------------------------------------------------------------------------


def test_google_redirect(test_client, auth, scheduled):
    """calendar=google is a 302 to Google's add-event page filled with the event."""
    response = test_client.get(event_url(scheduled["id"]), query_string={"calendar": "google"}, headers=auth)
    assert response.status_code == 302
    target = urlsplit(response.headers["Location"])
    assert target.scheme == "https"
    assert target.netloc == "calendar.google.com"
    query = parse_qs(target.query)
    assert query["text"] == ["Mortgage review"]
    assert query["dates"] == ["20300131T040000Z/20300131T044500Z"]
    details = query["details"][0]
    assert f"http://localhost/t/{scheduled['id']}" in details
    assert "Bring your papers." in details


def test_outlook_redirect(test_client, auth, scheduled):
    """calendar=outlook is a 302 to Outlook's compose page filled with the event."""
    response = test_client.get(
        event_url(scheduled["id"]),
        query_string={"calendar": "outlook"},
        headers={**auth, "X-Forwarded-Proto": "https"},
    )
    assert response.status_code == 302
    target = urlsplit(response.headers["Location"])
    assert target.scheme == "https"
    assert target.netloc == "outlook.live.com"
    query = parse_qs(target.query)
    assert query["subject"] == ["Mortgage review"]
    assert datetime.fromisoformat(query["startdt"][0]) == START
    assert datetime.fromisoformat(query["enddt"][0]) == START + timedelta(minutes=45)
    assert f"https://localhost/t/{scheduled['id']}" in query["body"][0]


def test_redirect_links_encode_special_characters(test_client, auth, create_ticket):
    """Ampersands, hashes and new lines in the title cannot break out of their query parameter."""
    title = "A&B #1 = ok?\nnext"
    ticket = create_ticket("SCHEDULE_TICKET", {"scheduled_date": SCHEDULED, "title": title})
    for choice, key in (("google", "text"), ("outlook", "subject")):
        response = test_client.get(event_url(ticket["id"]), query_string={"calendar": choice}, headers=auth)
        assert response.status_code == 302
        target = urlsplit(response.headers["Location"])
        assert not target.fragment
        assert parse_qs(target.query)[key] == [title]


@pytest.mark.parametrize("choice", ["bogus", "GOOGLEX", "", "ical"])
def test_unknown_calendar_is_422(test_client, auth, scheduled, choice):
    """Any calendar other than ics, google or outlook is 422."""
    response = test_client.get(event_url(scheduled["id"]), query_string={"calendar": choice}, headers=auth)
    assert response.status_code == 422
    assert response.json["code"] == 422


# --- who may fetch it ----------------------------------------------------------------------------------------


def test_event_needs_a_token(test_client, scheduled):
    """Without a token the event is 401."""
    response = test_client.get(event_url(scheduled["id"]))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_unknown_ticket_event_is_404(test_client, auth):
    """An unknown ticket has no event: 404."""
    response = test_client.get(event_url("ABCDEFGHJ"), headers=auth)
    assert response.status_code == 404
    assert response.json["code"] == 404


def test_event_with_lower_case_id(test_client, auth, scheduled):
    """The event is found by a lower-case id too, and names the canonical id."""
    response = test_client.get(event_url(scheduled["id"].lower()), headers=auth)
    assert response.status_code == 200
    assert str(parse(response)[1]["URL"]).endswith(f"/t/{scheduled['id']}")


def test_own_ticket_token_fetches_its_event_only(test_client, create_ticket):
    """A ticket's own token may fetch its event; another ticket's event is 404 to it."""
    soon = (service_clock.utcnow() + timedelta(minutes=10)).isoformat()
    mine = create_ticket("SCHEDULE_TICKET", {"scheduled_date": soon})
    other = create_ticket("SCHEDULE_TICKET", {"scheduled_date": soon})
    token = exchange(test_client, mine["id"])
    assert token.status_code == 200, token.json
    headers = bearer(token.json["access_token"])
    own = test_client.get(event_url(mine["id"]), headers=headers)
    assert own.status_code == 200
    assert str(parse(own)[1]["URL"]).endswith(f"/t/{mine['id']}")
    assert (
        test_client.get(event_url(mine["id"]), query_string={"calendar": "google"}, headers=headers).status_code == 302
    )
    foreign = test_client.get(event_url(other["id"]), headers=headers)
    assert foreign.status_code == 404
    assert (
        test_client.get(event_url(other["id"]), query_string={"calendar": "google"}, headers=headers).status_code == 404
    )


def test_other_organization_event_is_404(app, test_client, scheduled):
    """Another organization's client gets 404 for the event."""
    other = bearer(fetch_token(test_client, make_client(app, name="other", org="org-b")))
    assert test_client.get(event_url(scheduled["id"]), headers=other).status_code == 404


def test_system_client_fetches_any_event(test_client, system_auth, scheduled):
    """A system client may fetch any organization's event."""
    assert test_client.get(event_url(scheduled["id"]), headers=system_auth).status_code == 200


# --- life cycle ---------------------------------------------------------------------------------------------


def test_reschedule_keeps_uid_and_raises_sequence(test_client, auth, scheduled):
    """After a PUT the event keeps its UID, has a higher SEQUENCE and the new times."""
    url = event_url(scheduled["id"])
    _, before = parse(test_client.get(url, headers=auth))
    moved = {**PROPERTIES, "scheduled_date": "2030-02-01T10:00:00Z", "duration": 60}
    assert test_client.put(f"{TICKET}/{scheduled['id']}", json={"properties": moved}, headers=auth).status_code == 200
    _, after = parse(test_client.get(url, headers=auth))
    assert str(after["UID"]) == str(before["UID"])
    assert int(after["SEQUENCE"]) > int(before["SEQUENCE"])
    assert int(after["SEQUENCE"]) == 1
    assert as_utc(after["DTSTART"]) == datetime(2030, 2, 1, 10, 0, tzinfo=UTC)
    assert as_utc(after["DTEND"]) == datetime(2030, 2, 1, 11, 0, tzinfo=UTC)
    assert test_client.put(f"{TICKET}/{scheduled['id']}", json={"properties": moved}, headers=auth).status_code == 200
    _, third = parse(test_client.get(url, headers=auth))
    assert str(third["UID"]) == str(before["UID"])
    assert int(third["SEQUENCE"]) == 2


def test_uids_differ_between_tickets(test_client, auth, create_ticket):
    """Two tickets' events have different UIDs."""
    first = create_ticket("SCHEDULE_TICKET", {"scheduled_date": SCHEDULED})
    second = create_ticket("SCHEDULE_TICKET", {"scheduled_date": SCHEDULED})
    uid_one = str(parse(test_client.get(event_url(first["id"]), headers=auth))[1]["UID"])
    uid_two = str(parse(test_client.get(event_url(second["id"]), headers=auth))[1]["UID"])
    assert uid_one != uid_two


def test_revoked_ticket_event_is_cancelled(test_client, auth, scheduled):
    """Once revoked the event is STATUS:CANCELLED in a METHOD:CANCEL calendar, same UID, higher SEQUENCE."""
    url = event_url(scheduled["id"])
    _, before = parse(test_client.get(url, headers=auth))
    assert test_client.post(f"{TICKET}/{scheduled['id']}/revoke", headers=auth).status_code == 204
    response = test_client.get(url, headers=auth)
    assert response.status_code == 200
    calendar, event = parse(response)
    assert str(calendar["METHOD"]).upper() == "CANCEL"
    assert str(event["STATUS"]).upper() == "CANCELLED"
    assert str(event["UID"]) == str(before["UID"])
    assert int(event["SEQUENCE"]) > int(before["SEQUENCE"])


def test_disabled_ticket_event_is_cancelled(test_client, auth, scheduled):
    """A disabled ticket's event is cancelled too, and confirmed again once enabled."""
    url = event_url(scheduled["id"])
    test_client.post(f"{TICKET}/{scheduled['id']}/disable", headers=auth)
    calendar, event = parse(test_client.get(url, headers=auth))
    assert str(calendar["METHOD"]).upper() == "CANCEL"
    assert str(event["STATUS"]).upper() == "CANCELLED"
    test_client.post(f"{TICKET}/{scheduled['id']}/enable", headers=auth)
    calendar, event = parse(test_client.get(url, headers=auth))
    assert str(calendar["METHOD"]) == "REQUEST"
    assert str(event["STATUS"]) == "CONFIRMED"
    assert int(event["SEQUENCE"]) == 2


def test_deleted_ticket_event_is_404(test_client, auth, scheduled):
    """A deleted ticket has no event."""
    test_client.delete(f"{TICKET}/{scheduled['id']}", headers=auth)
    assert test_client.get(event_url(scheduled["id"]), headers=auth).status_code == 404


def test_the_served_invite_names_the_configured_organizer(test_client, auth, create_ticket, make_app, tmp_path):
    """ORGANIZER defaults to mailto:no-reply@ the issuer's host; TICKETS_CALENDAR_ORGANIZER sets it."""
    ticket = create_ticket("SCHEDULE_TICKET", {"scheduled_date": "2030-01-31T09:30:00+02:00"})
    body = test_client.get(f"/security/ticket/{ticket['id']}/event", headers=auth).data.decode()
    assert "ORGANIZER:mailto:no-reply@localhost\r\n" in body
    other = make_app(tmp_path / "org", TICKETS_CALENDAR_ORGANIZER="mailto:desk@bank.example").test_client()
    headers = bearer(fetch_token(other, make_client(other.application)))
    made = other.post("/security/ticket", json={"type": "SCHEDULE_TICKET", "properties": {
        "scheduled_date": "2030-01-31T09:30:00+02:00"}}, headers=headers).json
    assert "ORGANIZER:mailto:desk@bank.example\r\n" in other.get(
        f"/security/ticket/{made['id']}/event", headers=headers).data.decode()
