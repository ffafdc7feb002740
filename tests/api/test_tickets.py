"""The management API under /security/ticket, through HTTP (SPEC sections 3 and 4)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import ORG, SCHEDULED_TYPES, T0, TICKET_FIELDS, bearer, exchange, fetch_token, make_client
from tickets.context import current_services

ALPHABET = set("ABCDEFGHJKMNPQRSTUVWXYZ23456789")
PLAIN_TYPES = ["SINGLE_USE_TICKET", "GENESYS_SINGLE_USE_TICKET", "MULTI_USE_TICKET", "GENESYS_MULTI_USE_TICKET"]
ALL_TYPES = PLAIN_TYPES + SCHEDULED_TYPES
# 09:30 at +05:30 is 04:00 UTC.
SCHEDULED = "2030-01-31T09:30:00+05:30"
SCHEDULED_UTC = datetime(2030, 1, 31, 4, 0, tzinfo=UTC)
TICKET = "/security/ticket"


def when(value: str) -> datetime:
    """A wire time (RFC 3339, Z) as an aware datetime."""
    assert value.endswith("Z"), value
    return datetime.fromisoformat(value)


def body(ticket_type="MULTI_USE_TICKET", properties=None, **fields) -> dict:
    return {"type": ticket_type, "properties": {} if properties is None else properties, **fields}


def scheduled_props(**extra) -> dict:
    return {"scheduled_date": SCHEDULED, **extra}


def props_for(ticket_type: str) -> dict:
    return scheduled_props() if ticket_type in SCHEDULED_TYPES else {}


def other_org_auth(app, test_client, org="org-b") -> dict:
    return bearer(fetch_token(test_client, make_client(app, name="other", org=org)))


def ids(response) -> list[str]:
    return [ticket["id"] for ticket in response.json]


# --- create -------------------------------------------------------------------------------------------


def test_create_answers_ticket_with_location_and_etag(test_client, auth, clock):
    """POST answers 200 with every Ticket field, a Location that resolves, and ETag "0"."""
    properties = {"conference_id": "c-1", "nested": {"a": [1, 2, {"b": None}]}}
    response = test_client.post(TICKET, json=body(properties=properties), headers=auth)
    assert response.status_code == 200
    ticket = response.json
    assert set(ticket) == TICKET_FIELDS
    assert response.headers["ETag"] == '"0"'
    assert response.headers["Location"].endswith(f"/security/ticket/{ticket['id']}")
    assert ticket["type"] == "MULTI_USE_TICKET"
    assert ticket["organizationId"] == ORG
    assert ticket["properties"] == properties
    assert ticket["disabled"] is None and ticket["revoked"] is None and ticket["lastUsedAt"] is None
    assert ticket["notBefore"] is None
    assert ticket["expired"] is False
    assert ticket["version"] == 0 and ticket["useCount"] == 0
    assert isinstance(ticket["userId"], str) and ticket["userId"]
    assert when(ticket["createdAt"]) == T0
    assert when(ticket["expiresAt"]) == T0 + timedelta(seconds=14_400)
    location = response.headers["Location"]
    fetched = test_client.get(location[location.index("/security/") :], headers=auth)
    assert fetched.status_code == 200
    assert fetched.json == ticket
    assert fetched.headers["ETag"] == '"0"'


@pytest.mark.parametrize("ticket_type", ALL_TYPES)
def test_each_type_has_its_validity_window(test_client, auth, clock, ticket_type):
    """Plain types live ttl from creation; scheduled ones open 30 min early and end duration + 1 h after."""
    response = test_client.post(TICKET, json=body(ticket_type, props_for(ticket_type)), headers=auth)
    assert response.status_code == 200, response.json
    ticket = response.json
    assert ticket["type"] == ticket_type
    if ticket_type in SCHEDULED_TYPES:
        assert when(ticket["notBefore"]) == SCHEDULED_UTC - timedelta(minutes=30)
        assert when(ticket["expiresAt"]) == SCHEDULED_UTC + timedelta(minutes=30) + timedelta(hours=1)
    else:
        assert ticket["notBefore"] is None
        assert when(ticket["expiresAt"]) == T0 + timedelta(hours=4)


@pytest.mark.parametrize("ticket_type", PLAIN_TYPES)
def test_ttl_sets_plain_lifetime(test_client, auth, clock, ticket_type):
    """A ttl in the create body is the plain ticket's lifetime from creation."""
    response = test_client.post(TICKET, json=body(ticket_type, ttl=600), headers=auth)
    assert response.status_code == 200, response.json
    assert when(response.json["expiresAt"]) == T0 + timedelta(seconds=600)
    assert "ttl" not in response.json


@pytest.mark.parametrize("ticket_type", SCHEDULED_TYPES)
def test_ttl_counts_from_scheduled_date(test_client, auth, clock, ticket_type):
    """A scheduled ticket with ttl ends scheduled_date + ttl, ignoring duration and grace."""
    response = test_client.post(TICKET, json=body(ticket_type, scheduled_props(duration=90), ttl=7200), headers=auth)
    assert response.status_code == 200, response.json
    assert when(response.json["notBefore"]) == SCHEDULED_UTC - timedelta(minutes=30)
    assert when(response.json["expiresAt"]) == SCHEDULED_UTC + timedelta(seconds=7200)


def test_duration_extends_scheduled_window(test_client, auth, clock):
    """Without ttl a scheduled ticket ends scheduled_date + duration + grace."""
    response = test_client.post(TICKET, json=body("SCHEDULE_TICKET", scheduled_props(duration=90)), headers=auth)
    assert response.status_code == 200
    assert when(response.json["expiresAt"]) == SCHEDULED_UTC + timedelta(minutes=90, hours=1)


@pytest.mark.parametrize("ttl", [59, 2_592_001, 0, -5, "600", 600.5, None])
def test_ttl_out_of_range_or_wrong_type_is_422(test_client, auth, ttl):
    """ttl must be a whole number of seconds from 60 to 2,592,000."""
    response = test_client.post(TICKET, json=body(ttl=ttl), headers=auth)
    assert response.status_code == 422
    assert "ttl" in response.json["errors"]["json"]


@pytest.mark.parametrize("ttl", [60, 2_592_000])
def test_ttl_bounds_are_accepted(test_client, auth, clock, ttl):
    """The ttl bounds themselves are valid."""
    response = test_client.post(TICKET, json=body(ttl=ttl), headers=auth)
    assert response.status_code == 200, response.json
    assert when(response.json["expiresAt"]) == T0 + timedelta(seconds=ttl)


def test_window_settings_are_honoured(make_app, tmp_path, clock):
    """TICKETS_TICKET_TTL, TICKETS_EARLY_JOIN and TICKETS_SCHEDULE_GRACE shape the windows."""
    app = make_app(tmp_path / "custom", TICKETS_TICKET_TTL=1000, TICKETS_EARLY_JOIN=600, TICKETS_SCHEDULE_GRACE=120)
    client = app.test_client()
    headers = bearer(fetch_token(client, make_client(app)))
    plain = client.post(TICKET, json=body(), headers=headers)
    assert when(plain.json["expiresAt"]) == T0 + timedelta(seconds=1000)
    scheduled = client.post(TICKET, json=body("SCHEDULE_TICKET", scheduled_props(duration=45)), headers=headers)
    assert when(scheduled.json["notBefore"]) == SCHEDULED_UTC - timedelta(seconds=600)
    assert when(scheduled.json["expiresAt"]) == SCHEDULED_UTC + timedelta(minutes=45, seconds=120)


@pytest.mark.parametrize("length, expected", [(None, 9), (0, 9), (6, 6), (7, 7), (32, 32), (64, 64)])
def test_length_sets_id_length(test_client, auth, length, expected):
    """length absent or 0 gives 9 characters; 6 to 64 are taken as given."""
    fields = {} if length is None else {"length": length}
    response = test_client.post(TICKET, json=body(**fields), headers=auth)
    assert response.status_code == 200, response.json
    assert len(response.json["id"]) == expected
    assert set(response.json["id"]) <= ALPHABET


@pytest.mark.parametrize("length", [5, 65, 1, -1, 1000, "9", 9.5, True])
def test_bad_length_is_422(test_client, auth, length):
    """length outside 6..64 (and not 0), or not an integer, is a 422 naming length."""
    response = test_client.post(TICKET, json=body(length=length), headers=auth)
    assert response.status_code == 422
    assert "length" in response.json["errors"]["json"]


def test_ids_use_only_the_unambiguous_alphabet(test_client, auth):
    """Generated ids never contain 0, O, 1, I, L or lower case."""
    seen = set()
    for _ in range(8):
        response = test_client.post(TICKET, json=body(length=64), headers=auth)
        seen |= set(response.json["id"])
    assert seen <= ALPHABET
    assert len(seen) > 20  # random, not one repeated character


def test_ids_are_unique(test_client, auth):
    """Two tickets never share an id."""
    created = {test_client.post(TICKET, json=body(length=6), headers=auth).json["id"] for _ in range(20)}
    assert len(created) == 20


def test_get_is_case_insensitive(test_client, auth, create_ticket):
    """An id in lower or mixed case finds the same ticket."""
    ticket = create_ticket()
    mixed = "".join(ch.lower() if i % 2 else ch for i, ch in enumerate(ticket["id"]))
    for variant in (ticket["id"].lower(), mixed):
        response = test_client.get(f"{TICKET}/{variant}", headers=auth)
        assert response.status_code == 200
        assert response.json["id"] == ticket["id"]


def test_case_insensitive_ids_work_for_changes(test_client, auth, create_ticket):
    """PUT, disable and DELETE also accept a lower-case id."""
    ticket = create_ticket()
    lower = ticket["id"].lower()
    assert test_client.put(f"{TICKET}/{lower}", json={"properties": {"a": 1}}, headers=auth).status_code == 200
    assert test_client.post(f"{TICKET}/{lower}/disable", headers=auth).status_code == 204
    assert test_client.delete(f"{TICKET}/{lower}", headers=auth).status_code == 204
    assert test_client.get(f"{TICKET}/{ticket['id']}", headers=auth).status_code == 404


def test_disabled_at_creation(test_client, auth, clock):
    """disabled: true creates the ticket disabled, stamped with the creation time."""
    response = test_client.post(TICKET, json=body(disabled=True), headers=auth)
    assert response.status_code == 200
    assert when(response.json["disabled"]) == T0
    assert response.json["version"] == 0
    assert exchange(test_client, response.json["id"]).json == {
        "error": "invalid_grant",
        "error_description": "DISABLED",
    }


def test_disabled_false_at_creation(test_client, auth):
    """disabled: false creates an enabled ticket."""
    response = test_client.post(TICKET, json=body(disabled=False), headers=auth)
    assert response.status_code == 200
    assert response.json["disabled"] is None


def test_customer_id_becomes_user_id(test_client, auth):
    """properties.customer_id is the ticket's userId; without it one is generated per ticket."""
    named = test_client.post(TICKET, json=body(properties={"customer_id": "cust-42"}), headers=auth).json
    assert named["userId"] == "cust-42"
    assert named["properties"] == {"customer_id": "cust-42"}
    first = test_client.post(TICKET, json=body(), headers=auth).json
    second = test_client.post(TICKET, json=body(), headers=auth).json
    assert first["userId"] and second["userId"] and first["userId"] != second["userId"]


def test_properties_are_stored_as_given(test_client, auth):
    """Free-form properties come back exactly, unicode, nulls and nesting included."""
    properties = {
        "conference_id": "conf-1",
        "applicationId": "app-7",
        "unicode": "Συνάντηση — 顧客",
        "list": [1, 2.5, True, None, {"x": "y"}],
        "empty": {},
    }
    created = test_client.post(TICKET, json=body(properties=properties), headers=auth).json
    assert created["properties"] == properties
    assert test_client.get(f"{TICKET}/{created['id']}", headers=auth).json["properties"] == properties


def test_missing_properties_is_422(test_client, auth):
    """properties is required."""
    response = test_client.post(TICKET, json={"type": "MULTI_USE_TICKET"}, headers=auth)
    assert response.status_code == 422
    assert "properties" in response.json["errors"]["json"]


@pytest.mark.parametrize("properties", [None, [], "x", 5])
def test_properties_not_an_object_is_422(test_client, auth, properties):
    """properties must be a JSON object."""
    response = test_client.post(TICKET, json={"type": "MULTI_USE_TICKET", "properties": properties}, headers=auth)
    assert response.status_code == 422
    assert "properties" in response.json["errors"]["json"]


def test_lone_surrogates_are_refused(test_client, auth):
    """A lone surrogate (JSON can carry one as an escape) is a 422, never a stored ticket whose token cannot be made."""
    for body in (
        '{"type": "SINGLE_USE_TICKET", "properties": {"x": "\\ud800"}}',
        '{"type": "SINGLE_USE_TICKET", "properties": {"\\udfff": 1}}',
        '{"type": "SCHEDULE_TICKET", "properties": {"scheduled_date": "2030-01-01T10:00:00Z", "title": "\\ud83d"}}',
        '{"type": "SINGLE_USE_TICKET", "properties": {}, "organizationId": "org-a\\ud800"}',
    ):
        response = test_client.post(
            "/security/ticket", data=body, headers={**auth, "Content-Type": "application/json"}
        )
        assert response.status_code == 422, body


@pytest.mark.parametrize("ticket_type", [None, "", "BOGUS_TICKET", "multi_use_ticket", 3])
def test_bad_or_missing_type_is_422(test_client, auth, ticket_type):
    """type must be one of the documented values."""
    payload = {"properties": {}} if ticket_type is None else {"type": ticket_type, "properties": {}}
    response = test_client.post(TICKET, json=payload, headers=auth)
    assert response.status_code == 422
    assert "type" in response.json["errors"]["json"]


@pytest.mark.parametrize("field", ["foo", "id", "version", "userId", "expiresAt"])
def test_unknown_field_is_422(test_client, auth, field):
    """Any field beyond the documented ones and ttl is refused, naming it."""
    response = test_client.post(TICKET, json=body(**{field: "x"}), headers=auth)
    assert response.status_code == 422
    assert field in response.json["errors"]["json"]


BAD_PROPERTIES = [
    ("customer_id", 42),
    ("customer_id", ""),
    ("customer_id", None),
    ("customer_id", ["a"]),
    ("scheduled_date", "tomorrow"),
    ("scheduled_date", "2030-01-31T09:30:00"),
    ("scheduled_date", "2030-01-31"),
    ("scheduled_date", "2030-02-30T09:30:00Z"),
    ("scheduled_date", 1_900_000_000),
    ("scheduled_date", None),
    ("duration", "30"),
    ("duration", 0),
    ("duration", 1441),
    ("duration", -5),
    ("duration", 30.5),
    ("duration", True),
    ("duration", None),
    ("title", 5),
    ("description", ["x"]),
]


@pytest.mark.parametrize("ticket_type", ["SCHEDULE_TICKET", "MULTI_USE_TICKET", "GENESYS_SINGLE_USE_TICKET"])
def test_bad_meaningful_property_is_422_naming_it(test_client, auth, ticket_type):
    """Wrong types or values of the meaningful keys are a 422 naming the key, on every type."""
    for key, value in BAD_PROPERTIES:
        properties = {**scheduled_props(), key: value}
        response = test_client.post(TICKET, json=body(ticket_type, properties), headers=auth)
        assert response.status_code == 422, (key, value, response.json)
        assert key in response.json["errors"]["json"]["properties"], (key, value, response.json)
    assert test_client.get(TICKET, headers=auth).json == []


@pytest.mark.parametrize("value", ["2030-01-31T09:30:00Z", "2030-01-31T09:30:00.123+01:00", "2030-01-31t09:30:00z"])
def test_rfc3339_scheduled_dates_are_accepted(test_client, auth, value):
    """RFC 3339 date-times with an offset (Z, fractions, lower case) are valid."""
    response = test_client.post(TICKET, json=body("SCHEDULE_TICKET", {"scheduled_date": value}), headers=auth)
    assert response.status_code == 200, response.json


@pytest.mark.parametrize("duration", [1, 1440])
def test_duration_bounds_are_accepted(test_client, auth, clock, duration):
    """duration may be 1 to 1440 minutes."""
    response = test_client.post(TICKET, json=body("SCHEDULE_TICKET", scheduled_props(duration=duration)), headers=auth)
    assert response.status_code == 200, response.json
    assert when(response.json["expiresAt"]) == SCHEDULED_UTC + timedelta(minutes=duration, hours=1)


@pytest.mark.parametrize("ticket_type", SCHEDULED_TYPES)
def test_scheduled_types_require_scheduled_date(test_client, auth, ticket_type):
    """A scheduled type without scheduled_date is a 422 naming it."""
    response = test_client.post(TICKET, json=body(ticket_type, {"title": "x"}), headers=auth)
    assert response.status_code == 422
    assert "scheduled_date" in response.json["errors"]["json"]["properties"]


def test_system_client_must_name_organization(test_client, system_auth):
    """A system client that omits organizationId gets a 422 naming it."""
    for payload in (body(), body(organizationId=None), body(organizationId="")):
        response = test_client.post(TICKET, json=payload, headers=system_auth)
        assert response.status_code == 422, payload
        assert "organizationId" in response.json["errors"]["json"]


def test_system_client_creates_for_named_organization(test_client, system_auth, auth):
    """A system client's ticket belongs to the organization it names, and that organization sees it."""
    response = test_client.post(TICKET, json=body(organizationId=ORG), headers=system_auth)
    assert response.status_code == 200
    assert response.json["organizationId"] == ORG
    assert test_client.get(f"{TICKET}/{response.json['id']}", headers=auth).status_code == 200


def test_org_client_may_name_its_own_organization(test_client, auth):
    """An organization's client naming its own organization is fine."""
    response = test_client.post(TICKET, json=body(organizationId=ORG), headers=auth)
    assert response.status_code == 200
    assert response.json["organizationId"] == ORG


def test_org_client_naming_another_org_is_403(test_client, auth, create_ticket):
    """Naming another organization is 403 on create and on update, and changes nothing."""
    response = test_client.post(TICKET, json=body(organizationId="org-b"), headers=auth)
    assert response.status_code == 403
    assert response.json["code"] == 403
    ticket = create_ticket()
    update = test_client.put(
        f"{TICKET}/{ticket['id']}", json={"properties": {"a": 1}, "organizationId": "org-b"}, headers=auth
    )
    assert update.status_code == 403
    after = test_client.get(f"{TICKET}/{ticket['id']}", headers=auth).json
    assert after["organizationId"] == ORG and after["version"] == 0 and after["properties"] == {}


def test_system_client_may_move_ticket(test_client, system_auth, auth, app, create_ticket):
    """A system client's PUT may move a ticket to another organization."""
    ticket = create_ticket()
    response = test_client.put(
        f"{TICKET}/{ticket['id']}", json={"properties": {}, "organizationId": "org-b"}, headers=system_auth
    )
    assert response.status_code == 200
    assert response.json["organizationId"] == "org-b"
    assert test_client.get(f"{TICKET}/{ticket['id']}", headers=auth).status_code == 404
    org_b = other_org_auth(app, test_client)
    assert test_client.get(f"{TICKET}/{ticket['id']}", headers=org_b).status_code == 200


@pytest.mark.parametrize(
    "method, suffix, payload",
    [
        ("get", "", None),
        ("put", "", {"properties": {"x": 1}}),
        ("delete", "", None),
        ("post", "/disable", None),
        ("post", "/enable", None),
        ("post", "/revoke", None),
        ("get", "/event", None),
    ],
)
def test_other_organizations_ticket_is_404(app, test_client, auth, method, suffix, payload):
    """Another organization's ticket is 404 (never 403) on every operation, and is left unchanged."""
    ticket = test_client.post(TICKET, json=body("SCHEDULE_TICKET", scheduled_props()), headers=auth).json
    org_b = other_org_auth(app, test_client)
    kwargs = {"headers": org_b}
    if payload is not None:
        kwargs["json"] = payload
    response = getattr(test_client, method)(f"{TICKET}/{ticket['id']}{suffix}", **kwargs)
    assert response.status_code == 404
    assert response.json["code"] == 404
    after = test_client.get(f"{TICKET}/{ticket['id']}", headers=auth)
    assert after.status_code == 200
    assert after.json == ticket


def test_list_shows_only_own_organization(app, test_client, auth, system_auth, create_ticket):
    """An organization's client lists only its tickets; a system client sees all, and may filter."""
    mine = create_ticket()
    org_b = other_org_auth(app, test_client)
    theirs = test_client.post(TICKET, json=body(), headers=org_b).json
    assert ids(test_client.get(TICKET, headers=auth)) == [mine["id"]]
    assert ids(test_client.get(TICKET, headers=org_b)) == [theirs["id"]]
    assert set(ids(test_client.get(TICKET, headers=system_auth))) == {mine["id"], theirs["id"]}
    filtered = test_client.get(TICKET, query_string={"organizationId": "org-b"}, headers=system_auth)
    assert ids(filtered) == [theirs["id"]]


# --- list ---------------------------------------------------------------------------------------------


def test_list_paginates(test_client, auth, create_ticket):
    """page and page_size cut the list; X-Pagination carries the total as JSON."""
    created = {create_ticket()["id"] for _ in range(5)}
    everything = test_client.get(TICKET, headers=auth)
    assert everything.status_code == 200
    assert set(ids(everything)) == created
    assert all(set(ticket) == TICKET_FIELDS for ticket in everything.json)
    seen = []
    for page in (1, 2, 3):
        response = test_client.get(TICKET, query_string={"page": page, "page_size": 2}, headers=auth)
        assert response.status_code == 200
        pagination = json.loads(response.headers["X-Pagination"])
        assert pagination["total"] == 5
        assert pagination["total_pages"] == 3
        assert pagination["page"] == page
        assert len(response.json) == (1 if page == 3 else 2)
        seen += ids(response)
    assert sorted(seen) == sorted(created)
    beyond = test_client.get(TICKET, query_string={"page": 9, "page_size": 2}, headers=auth)
    assert beyond.status_code == 200  # a page past the end is empty, as flask-smorest paginates
    assert beyond.json == []
    assert json.loads(beyond.headers["X-Pagination"])["total"] == 5


@pytest.mark.parametrize("query", [{"page": 0}, {"page": "x"}, {"page_size": 0}, {"page_size": "many"}])
def test_bad_pagination_is_422(test_client, auth, query):
    """Nonsense pagination parameters are 422, not 500."""
    response = test_client.get(TICKET, query_string=query, headers=auth)
    assert response.status_code == 422
    assert response.json["code"] == 422


def test_list_filters_by_type(test_client, auth, create_ticket):
    """type= keeps only tickets of that type."""
    multi = create_ticket("MULTI_USE_TICKET")
    single = create_ticket("SINGLE_USE_TICKET")
    scheduled = create_ticket("SCHEDULE_TICKET", scheduled_props())
    assert ids(test_client.get(TICKET, query_string={"type": "SINGLE_USE_TICKET"}, headers=auth)) == [single["id"]]
    assert ids(test_client.get(TICKET, query_string={"type": "MULTI_USE_TICKET"}, headers=auth)) == [multi["id"]]
    assert ids(test_client.get(TICKET, query_string={"type": "SCHEDULE_TICKET"}, headers=auth)) == [scheduled["id"]]
    assert test_client.get(TICKET, query_string={"type": "GENESYS_SCHEDULE_TICKET"}, headers=auth).json == []


def test_list_filters_by_status(test_client, auth, create_ticket, clock):
    """status= active, disabled, revoked, expired; revoked beats disabled beats expired."""
    active = create_ticket()
    future = create_ticket("SCHEDULE_TICKET", scheduled_props())  # window not open yet: still active
    disabled = create_ticket()
    revoked = create_ticket()
    revoked_and_disabled = create_ticket()
    expiring = create_ticket(ttl=60)
    assert test_client.post(f"{TICKET}/{disabled['id']}/disable", headers=auth).status_code == 204
    assert test_client.post(f"{TICKET}/{revoked['id']}/revoke", headers=auth).status_code == 204
    assert test_client.post(f"{TICKET}/{revoked_and_disabled['id']}/disable", headers=auth).status_code == 204
    assert test_client.post(f"{TICKET}/{revoked_and_disabled['id']}/revoke", headers=auth).status_code == 204
    clock.advance(seconds=61)

    def listed(status):
        response = test_client.get(TICKET, query_string={"status": status}, headers=auth)
        assert response.status_code == 200
        return set(ids(response))

    assert listed("active") == {active["id"], future["id"]}
    assert listed("disabled") == {disabled["id"]}
    assert listed("revoked") == {revoked["id"], revoked_and_disabled["id"]}
    assert listed("expired") == {expiring["id"]}
    assert len(test_client.get(TICKET, headers=auth).json) == 6


@pytest.mark.parametrize("query", [{"status": "bogus"}, {"status": "ACTIVE_"}, {"type": "NOPE"}])
def test_list_bad_filter_is_422(test_client, auth, query):
    """An unknown status or type filter is 422."""
    response = test_client.get(TICKET, query_string=query, headers=auth)
    assert response.status_code == 422
    assert response.json["code"] == 422


# --- update -------------------------------------------------------------------------------------------


def test_put_replaces_properties_and_bumps_version(test_client, auth, create_ticket):
    """PUT replaces properties whole, adds one to version, and answers the new ETag."""
    ticket = create_ticket(properties={"customer_id": "cust-1", "keep": "no"})
    response = test_client.put(f"{TICKET}/{ticket['id']}", json={"properties": {"new": 1}}, headers=auth)
    assert response.status_code == 200
    assert set(response.json) == TICKET_FIELDS
    assert response.json["properties"] == {"new": 1}
    assert response.json["version"] == 1
    assert response.headers["ETag"] == '"1"'
    assert response.json["userId"] == "cust-1"
    assert response.json["createdAt"] == ticket["createdAt"]
    fetched = test_client.get(f"{TICKET}/{ticket['id']}", headers=auth)
    assert fetched.json == response.json
    assert fetched.headers["ETag"] == '"1"'


def test_put_customer_id_does_not_change_user_id(test_client, auth, create_ticket):
    """userId is fixed at creation; a later customer_id changes only the property."""
    ticket = create_ticket(properties={"customer_id": "first"})
    response = test_client.put(f"{TICKET}/{ticket['id']}", json={"properties": {"customer_id": "second"}}, headers=auth)
    assert response.status_code == 200
    assert response.json["userId"] == "first"
    assert response.json["properties"] == {"customer_id": "second"}


def test_put_if_match(test_client, auth, create_ticket):
    """If-Match: the current ETag or * applies; a stale one is 412 and changes nothing; none is accepted."""
    ticket = create_ticket()
    url = f"{TICKET}/{ticket['id']}"
    ok = test_client.put(url, json={"properties": {"v": 1}}, headers={**auth, "If-Match": '"0"'})
    assert ok.status_code == 200
    assert ok.json["version"] == 1
    stale = test_client.put(url, json={"properties": {"v": 2}}, headers={**auth, "If-Match": '"0"'})
    assert stale.status_code == 412
    assert stale.json["code"] == 412
    assert test_client.get(url, headers=auth).json["properties"] == {"v": 1}
    star = test_client.put(url, json={"properties": {"v": 3}}, headers={**auth, "If-Match": "*"})
    assert star.status_code == 200
    assert star.json["version"] == 2
    bare = test_client.put(url, json={"properties": {"v": 4}}, headers=auth)
    assert bare.status_code == 200
    assert bare.json["version"] == 3
    listed = test_client.put(url, json={"properties": {"v": 5}}, headers={**auth, "If-Match": '"9", "3"'})
    assert listed.status_code == 200
    assert listed.json["version"] == 4


@pytest.mark.parametrize("stale", ['"1"', '"00"', '"abc"', 'W/"1"'])
def test_put_if_match_mismatch_is_412(test_client, auth, create_ticket, stale):
    """An If-Match that is not the current ETag is 412."""
    ticket = create_ticket()
    response = test_client.put(
        f"{TICKET}/{ticket['id']}", json={"properties": {"v": 1}}, headers={**auth, "If-Match": stale}
    )
    assert response.status_code == 412
    assert test_client.get(f"{TICKET}/{ticket['id']}", headers=auth).json["version"] == 0


def test_put_etag_follows_state_changes(test_client, auth, create_ticket):
    """The ETag after disable is the one If-Match needs next."""
    ticket = create_ticket()
    url = f"{TICKET}/{ticket['id']}"
    test_client.post(f"{url}/disable", headers=auth)
    current = test_client.get(url, headers=auth).headers["ETag"]
    assert current == '"1"'
    assert test_client.put(url, json={"properties": {}}, headers={**auth, "If-Match": '"0"'}).status_code == 412
    assert test_client.put(url, json={"properties": {}}, headers={**auth, "If-Match": current}).status_code == 200


def test_put_reschedule_recomputes_window(test_client, auth, clock, create_ticket):
    """A new scheduled_date or duration moves notBefore and expiresAt."""
    ticket = create_ticket("SCHEDULE_TICKET", scheduled_props())
    response = test_client.put(
        f"{TICKET}/{ticket['id']}",
        json={"properties": {"scheduled_date": "2030-02-05T10:00:00Z", "duration": 60}},
        headers=auth,
    )
    assert response.status_code == 200
    start = datetime(2030, 2, 5, 10, 0, tzinfo=UTC)
    assert when(response.json["notBefore"]) == start - timedelta(minutes=30)
    assert when(response.json["expiresAt"]) == start + timedelta(minutes=60, hours=1)
    assert response.json["createdAt"] == ticket["createdAt"]


def test_put_keeps_creation_ttl(test_client, auth, clock, create_ticket):
    """A ttl given at creation applies again to a rescheduled ticket; plain tickets keep their lifetime."""
    scheduled = create_ticket("SCHEDULE_TICKET", scheduled_props(), ttl=900)
    response = test_client.put(
        f"{TICKET}/{scheduled['id']}", json={"properties": {"scheduled_date": "2030-02-05T10:00:00Z"}}, headers=auth
    )
    assert response.status_code == 200
    assert when(response.json["expiresAt"]) == datetime(2030, 2, 5, 10, 0, tzinfo=UTC) + timedelta(seconds=900)
    plain = create_ticket(ttl=600)
    clock.advance(seconds=100)
    updated = test_client.put(f"{TICKET}/{plain['id']}", json={"properties": {"x": 1}}, headers=auth)
    assert updated.status_code == 200
    assert updated.json["expiresAt"] == plain["expiresAt"]


def test_put_with_ttl_is_422(test_client, auth, create_ticket):
    """ttl is not a field of the update."""
    ticket = create_ticket(ttl=600)
    response = test_client.put(f"{TICKET}/{ticket['id']}", json={"properties": {}, "ttl": 900}, headers=auth)
    assert response.status_code == 422
    assert "ttl" in response.json["errors"]["json"]
    assert test_client.get(f"{TICKET}/{ticket['id']}", headers=auth).json["version"] == 0


@pytest.mark.parametrize(
    "payload, field",
    [
        ({}, "properties"),
        ({"properties": []}, "properties"),
        ({"properties": {}, "type": "SINGLE_USE_TICKET"}, "type"),
        ({"properties": {}, "disabled": True}, "disabled"),
        ({"properties": {}, "bogus": 1}, "bogus"),
    ],
)
def test_put_schema_violations_are_422(test_client, auth, create_ticket, payload, field):
    """PUT requires properties and refuses any field but properties and organizationId."""
    ticket = create_ticket()
    response = test_client.put(f"{TICKET}/{ticket['id']}", json=payload, headers=auth)
    assert response.status_code == 422
    assert field in response.json["errors"]["json"]


@pytest.mark.parametrize("ticket_type", ["SCHEDULE_TICKET", "MULTI_USE_TICKET"])
def test_put_revalidates_meaningful_keys(test_client, auth, create_ticket, ticket_type):
    """PUT re-validates the meaningful keys, naming the bad one, and changes nothing."""
    ticket = create_ticket(ticket_type, scheduled_props())
    for key, value in BAD_PROPERTIES:
        response = test_client.put(
            f"{TICKET}/{ticket['id']}", json={"properties": {**scheduled_props(), key: value}}, headers=auth
        )
        assert response.status_code == 422, (key, value, response.json)
        assert key in response.json["errors"]["json"]["properties"], (key, value, response.json)
    assert test_client.get(f"{TICKET}/{ticket['id']}", headers=auth).json == ticket


def test_put_scheduled_without_date_is_422(test_client, auth, create_ticket):
    """A scheduled ticket's update still needs scheduled_date."""
    ticket = create_ticket("SCHEDULE_TICKET", scheduled_props())
    response = test_client.put(f"{TICKET}/{ticket['id']}", json={"properties": {"title": "x"}}, headers=auth)
    assert response.status_code == 422
    assert "scheduled_date" in response.json["errors"]["json"]["properties"]


def test_put_revoked_is_409(test_client, auth, create_ticket):
    """A revoked ticket cannot be updated."""
    ticket = create_ticket()
    test_client.post(f"{TICKET}/{ticket['id']}/revoke", headers=auth)
    response = test_client.put(f"{TICKET}/{ticket['id']}", json={"properties": {"x": 1}}, headers=auth)
    assert response.status_code == 409
    assert response.json["code"] == 409
    assert test_client.get(f"{TICKET}/{ticket['id']}", headers=auth).json["properties"] == {}


# --- disable, enable, revoke ----------------------------------------------------------------------------


def test_disable_and_enable(test_client, auth, clock, create_ticket):
    """disable stamps the time and bumps version; a repeat changes neither; enable clears it, once."""
    ticket = create_ticket()
    url = f"{TICKET}/{ticket['id']}"
    clock.advance(seconds=10)
    response = test_client.post(f"{url}/disable", headers=auth)
    assert response.status_code == 204
    assert response.data == b""
    first = test_client.get(url, headers=auth).json
    assert when(first["disabled"]) == T0 + timedelta(seconds=10)
    assert first["version"] == 1
    clock.advance(seconds=10)
    assert test_client.post(f"{url}/disable", headers=auth).status_code == 204
    again = test_client.get(url, headers=auth).json
    assert again["disabled"] == first["disabled"]
    assert again["version"] == 1
    assert test_client.post(f"{url}/enable", headers=auth).status_code == 204
    enabled = test_client.get(url, headers=auth).json
    assert enabled["disabled"] is None
    assert enabled["version"] == 2
    assert test_client.post(f"{url}/enable", headers=auth).status_code == 204
    assert test_client.get(url, headers=auth).json["version"] == 2


def test_enable_of_enabled_ticket_changes_nothing(test_client, auth, create_ticket):
    """Enabling a ticket that was never disabled is a 204 no-op."""
    ticket = create_ticket()
    assert test_client.post(f"{TICKET}/{ticket['id']}/enable", headers=auth).status_code == 204
    assert test_client.get(f"{TICKET}/{ticket['id']}", headers=auth).json == ticket


def test_revoke_is_idempotent_and_permanent(test_client, auth, clock, create_ticket):
    """revoke stamps the time once; repeats change nothing; enable is then 409."""
    ticket = create_ticket()
    url = f"{TICKET}/{ticket['id']}"
    clock.advance(seconds=5)
    response = test_client.post(f"{url}/revoke", headers=auth)
    assert response.status_code == 204
    assert response.data == b""
    first = test_client.get(url, headers=auth).json
    assert when(first["revoked"]) == T0 + timedelta(seconds=5)
    assert first["version"] == 1
    clock.advance(seconds=5)
    assert test_client.post(f"{url}/revoke", headers=auth).status_code == 204
    again = test_client.get(url, headers=auth).json
    assert again == first
    enable = test_client.post(f"{url}/enable", headers=auth)
    assert enable.status_code == 409
    assert enable.json["code"] == 409
    assert test_client.get(url, headers=auth).json == first


def test_revoke_of_disabled_ticket_stays_revoked(test_client, auth, create_ticket):
    """A disabled ticket that is revoked cannot be enabled again."""
    ticket = create_ticket()
    url = f"{TICKET}/{ticket['id']}"
    test_client.post(f"{url}/disable", headers=auth)
    assert test_client.post(f"{url}/revoke", headers=auth).status_code == 204
    assert test_client.post(f"{url}/enable", headers=auth).status_code == 409
    after = test_client.get(url, headers=auth).json
    assert after["revoked"] is not None
    assert exchange(test_client, ticket["id"]).json["error_description"] == "REVOKED"


@pytest.mark.parametrize("action", ["disable", "enable", "revoke"])
def test_state_change_of_unknown_ticket_is_404(test_client, auth, action):
    """State changes of a ticket that does not exist are 404."""
    response = test_client.post(f"{TICKET}/ABCDEFGHJ/{action}", headers=auth)
    assert response.status_code == 404
    assert response.json["code"] == 404


# --- delete -------------------------------------------------------------------------------------------


def test_delete_then_404(test_client, auth, create_ticket):
    """DELETE answers 204; the ticket is then gone for every operation and the exchange."""
    ticket = create_ticket()
    url = f"{TICKET}/{ticket['id']}"
    response = test_client.delete(url, headers=auth)
    assert response.status_code == 204
    assert response.data == b""
    assert test_client.get(url, headers=auth).status_code == 404
    assert test_client.delete(url, headers=auth).status_code == 404
    assert test_client.put(url, json={"properties": {}}, headers=auth).status_code == 404
    assert test_client.post(f"{url}/disable", headers=auth).status_code == 404
    assert ids(test_client.get(TICKET, headers=auth)) == []
    assert exchange(test_client, ticket["id"]).json["error_description"] == "NOT_FOUND"


# --- retention ----------------------------------------------------------------------------------------


def test_expired_ticket_readable_until_retention_ends(test_client, auth, oauth_client, services, clock, create_ticket):
    """Expired tickets read as expired:true for TICKETS_RETENTION, then are 404, unlisted and purgeable."""
    ticket = create_ticket(ttl=600)
    url = f"{TICKET}/{ticket['id']}"
    clock.advance(seconds=599)
    assert test_client.get(url, headers=auth).json["expired"] is False
    clock.advance(seconds=1)
    expired = test_client.get(url, headers=auth)
    assert expired.status_code == 200
    assert expired.json["expired"] is True
    assert ids(test_client.get(TICKET, query_string={"status": "expired"}, headers=auth)) == [ticket["id"]]
    clock.advance(seconds=604_800 - 1)
    auth = bearer(fetch_token(test_client, oauth_client))  # a week on, the first token has long expired
    assert test_client.get(url, headers=auth).json["expired"] is True
    clock.advance(seconds=1)
    assert test_client.get(url, headers=auth).status_code == 404
    assert ids(test_client.get(TICKET, headers=auth)) == []
    assert ids(test_client.get(TICKET, query_string={"status": "expired"}, headers=auth)) == []
    assert test_client.post(f"{url}/enable", headers=auth).status_code == 404
    assert test_client.delete(url, headers=auth).status_code == 404
    assert exchange(test_client, ticket["id"]).json["error_description"] == "NOT_FOUND"
    assert services.tickets.repository.count() == 1
    services.tickets.purge()
    assert services.tickets.repository.count() == 0


def test_purge_keeps_tickets_within_retention(test_client, oauth_client, services, clock, create_ticket):
    """purge() removes only tickets past retention."""
    old = create_ticket(ttl=60)
    clock.advance(seconds=60 + 604_800 - 10)
    young = create_ticket(ttl=60, headers=bearer(fetch_token(test_client, oauth_client)))
    clock.advance(seconds=10)
    services.tickets.purge()
    assert services.tickets.repository.count() == 1
    remaining = services.tickets.repository.all()
    assert [ticket.id for ticket in remaining] == [young["id"]]
    assert old["id"] != young["id"]


def test_retention_setting_is_honoured(make_app, tmp_path, clock):
    """TICKETS_RETENTION sets how long an expired ticket stays readable."""
    app = make_app(tmp_path / "ret", TICKETS_RETENTION=100)
    client = app.test_client()
    headers = bearer(fetch_token(client, make_client(app)))
    ticket = client.post(TICKET, json=body(ttl=60), headers=headers).json
    clock.advance(seconds=60 + 99)
    assert client.get(f"{TICKET}/{ticket['id']}", headers=headers).json["expired"] is True
    clock.advance(seconds=1)
    assert client.get(f"{TICKET}/{ticket['id']}", headers=headers).status_code == 404


def test_tickets_past_retention_are_removed_without_asking(make_app, tmp_path, clock):
    """Storage drops tickets past retention on its own as the service is used."""
    app = make_app(tmp_path / "auto", TICKETS_PURGE_INTERVAL=0)
    client = app.test_client()
    headers = bearer(fetch_token(client, make_client(app)))
    for _ in range(3):
        assert client.post(TICKET, json=body(ttl=60), headers=headers).status_code == 200
    with app.app_context():
        repository = current_services().tickets.repository
        assert repository.count() == 3
        clock.advance(seconds=60 + 604_800)
        headers = bearer(fetch_token(client, make_client(app)))
        assert client.post(TICKET, json=body(), headers=headers).status_code == 200
        assert repository.count() == 1


BAD_ORGANIZATIONS = ["", " ", "a b", "org/x", "x" * 65, "ação", "tab\there"]


@pytest.mark.parametrize("org", BAD_ORGANIZATIONS)
def test_a_bad_organization_id_is_422_everywhere_it_enters(test_client, system_auth, auth, create_ticket, org):
    """organizationId must be 1-64 of letters, digits, '-', '_', '.' (SPEC section 2): create, update, list filter."""
    created = test_client.post(TICKET, json=body(organizationId=org), headers=system_auth)
    assert created.status_code == 422 and "organizationId" in created.json["errors"]["json"], org
    ticket = create_ticket()
    updated = test_client.put(f"{TICKET}/{ticket['id']}", json={"properties": {}, "organizationId": org},
                              headers=system_auth)
    assert updated.status_code == 422 and "organizationId" in updated.json["errors"]["json"], org
    listed = test_client.get(TICKET, query_string={"organizationId": org}, headers=system_auth)
    assert listed.status_code == 422, org


def test_properties_that_make_the_token_too_long_are_refused(test_client, auth, create_ticket):
    """The ticket's token must fit an Authorization header (8,190 bytes): checked at create and update, with the
    token's real length (non-ASCII text counts in UTF-8 bytes), and a ticket that fits exchanges into such a token."""
    fits = create_ticket(properties={"blob": "x" * 5000})
    token = exchange(test_client, fits["id"]).json["access_token"]
    assert len("Authorization: Bearer " + token) <= 8190
    for properties in ({"blob": "x" * 6200}, {"blob": "ä" * 3200}, {"deep": [{"k": "v" * 100}] * 60}):
        created = test_client.post(TICKET, json=body(properties=properties), headers=auth)
        assert created.status_code == 422, created.json
        assert "8190" in created.json["errors"]["json"]["properties"]["_schema"][0]
        updated = test_client.put(f"{TICKET}/{fits['id']}", json={"properties": properties}, headers=auth)
        assert updated.status_code == 422
    assert test_client.get(f"{TICKET}/{fits['id']}", headers=auth).json["version"] == 0


def test_the_token_length_is_exact(services, create_ticket):
    """The length checked is the length of the token the exchange then signs."""
    from tickets.core.rules import MAX_AUTHORIZATION_LINE  # noqa: F401  (the limit the check uses)

    for properties in ({}, {"note": "Grüße ✓ 顧客"}, {"blob": "y" * 4000, "n": [1, 2.5, None, True]}):
        ticket = services.tickets.get_ticket(services_caller(), create_ticket(properties=properties)["id"])
        predicted = services.tokens.ticket_token_length(ticket)
        assert predicted == len(services.tokens.ticket_token(ticket)["access_token"]), properties


def services_caller():
    from tickets.core.service import Caller

    return Caller(client_id="x", organization_id=ORG)
