"""Errors and odd input (SPEC section 8): JSON bodies, the right 4xx, never a 500."""

from __future__ import annotations

import json
import logging

import pytest

from tests.conftest import bearer, fetch_token, make_client
from tickets.context import current_services

TICKET = "/security/ticket"
LEAKED = {
    "authenticated": "true",
    "authorities[0].authority": "x",
    "principal": "y",
    "credentials": "c",
    "details": "d",
}


def assert_error(response, status: int) -> None:
    """A JSON error body in the API's shape."""
    assert response.status_code == status, (response.status_code, response.data[:300])
    assert response.mimetype == "application/json", response.mimetype
    payload = response.json
    assert isinstance(payload, dict)
    assert payload["code"] == status
    assert isinstance(payload["status"], str) and payload["status"]


def assert_client_error(response) -> None:
    """Some 4xx in the API's JSON shape. Used only where the service's answer and the SPEC's differ (each says
    which): the assertion stays as it was until the service gives the SPEC's status, which then replaces it."""
    assert 400 <= response.status_code < 500, (response.status_code, response.data[:300])
    assert_error(response, response.status_code)


def post_raw(test_client, auth, text: str, url: str = TICKET, method: str = "post"):
    return getattr(test_client, method)(url, data=text, content_type="application/json", headers=auth)


@pytest.mark.parametrize("text", ["{bad", '{"type": "MULTI_USE_TICKET", "properties": {}', "\x00", "{'a': 1}", "{}{}"])
def test_malformed_json_is_400(test_client, auth, text):
    """A body that is not JSON is 400 with a JSON error body."""
    assert_error(post_raw(test_client, auth, text), 400)


def test_empty_json_body_is_422(test_client, auth):
    """An empty body declared as JSON is no body: type and properties are missing, a schema violation (422)."""
    response = post_raw(test_client, auth, "")
    assert_error(response, 422)
    assert set(response.json["errors"]["json"]) == {"type", "properties"}


def test_malformed_json_on_put_is_400(test_client, auth, create_ticket):
    """PUT with a broken body is 400 too."""
    ticket = create_ticket()
    assert_error(post_raw(test_client, auth, "{nope", f"{TICKET}/{ticket['id']}", "put"), 400)


def test_invalid_utf8_is_400(test_client, auth):
    """Bytes that are not UTF-8 are not JSON text (RFC 8259 section 8.1): malformed JSON, 400."""
    response = test_client.post(TICKET, data=b'{"type": "\xff\xfe"}', content_type="application/json", headers=auth)
    assert_error(response, 400)


@pytest.mark.parametrize("text", ["[]", '[{"type": "MULTI_USE_TICKET", "properties": {}}]', '"x"', "42", "true"])
def test_json_that_is_not_an_object_is_422(test_client, auth, text):
    """Valid JSON of the wrong shape is a schema violation (422)."""
    assert_error(post_raw(test_client, auth, text), 422)


def test_null_body_is_422(test_client, auth):
    """A JSON null body is valid JSON of the wrong shape: a schema violation (422)."""
    assert_error(post_raw(test_client, auth, "null"), 422)


def test_body_over_64_kib_is_413(test_client, auth):
    """A body over 64 KiB is 413 with a JSON error body."""
    payload = json.dumps({"type": "MULTI_USE_TICKET", "properties": {"blob": "x" * (65 * 1024)}})
    assert_error(post_raw(test_client, auth, payload), 413)


def test_body_just_under_64_kib_is_not_too_large_a_body(test_client, auth):
    """A body a little under the limit is read (no 413); properties that big are refused for the token they
    would make (SPEC section 11), with a 422 naming the limit."""
    payload = json.dumps({"type": "MULTI_USE_TICKET", "properties": {"blob": "x" * (60 * 1024)}})
    response = post_raw(test_client, auth, payload)
    assert response.status_code == 422
    assert "8190" in response.json["errors"]["json"]["properties"]["_schema"][0]


def test_body_over_64_kib_on_token_endpoint_is_413(test_client):
    """The token endpoint is bounded too."""
    response = test_client.post("/security/oauth/token", data={"grant_type": "ticket", "ticket": "A" * (70 * 1024)})
    assert response.status_code == 413


@pytest.mark.parametrize("path", ["/nope", "/security/nope", "/security/tickets", "/security/ticket/ABCDEFGHJ/nope"])
def test_unknown_path_is_404(test_client, auth, path):
    """Unknown paths are 404 with a JSON body."""
    assert_error(test_client.get(path, headers=auth), 404)


@pytest.mark.parametrize(
    "ticket_id",
    [
        "ABCDEFGHJ",
        "0O1IL0O1I",
        "0O1IL",
        "abc",
        "A" * 65,
        "A" * 5000,
        "ÄÖÜßÄÖÜßÄ",
        "ABC%20DEFG",
        "ABCDE.FGH",
        "%00%00%00%00%00%00",
    ],
)
def test_unknown_or_impossible_ticket_id_is_404(test_client, auth, ticket_id):
    """Ids that do not exist, or cannot exist (wrong alphabet, too short or long), are 404 everywhere."""
    url = f"{TICKET}/{ticket_id}"
    assert_error(test_client.get(url, headers=auth), 404)
    assert_error(test_client.put(url, json={"properties": {}}, headers=auth), 404)
    assert_error(test_client.delete(url, headers=auth), 404)
    for action in ("disable", "enable", "revoke"):
        assert_error(test_client.post(f"{url}/{action}", headers=auth), 404)
    assert_error(test_client.get(f"{url}/event", headers=auth), 404)


@pytest.mark.parametrize(
    "method, path",
    [
        ("delete", TICKET),
        ("put", TICKET),
        ("patch", f"{TICKET}/ABCDEFGHJ"),
        ("post", f"{TICKET}/ABCDEFGHJ"),
        ("get", f"{TICKET}/ABCDEFGHJ/disable"),
        ("get", "/security/oauth/token"),
        ("post", "/security/.well-known/jwks.json"),
    ],
)
def test_wrong_method_is_405(test_client, auth, method, path):
    """A known path with the wrong method is 405 with a JSON body and an Allow header."""
    response = getattr(test_client, method)(path, headers=auth)
    assert_error(response, 405)
    assert response.headers.get("Allow")


def nested(depth: int, leaf: str = "1") -> str:
    return '{"a":' * depth + leaf + "}" * depth


@pytest.mark.parametrize(
    "depth, status",
    [
        (40, 422),
        (200, 422),
        (900, 422),
        # SPEC section 4: properties deeper than 32 levels are a 422 saying so. This body is past what the JSON
        # parser reads (Python's recursion limit), and the service answers 400 "Invalid JSON body" (reported).
        (5000, None),
        (100_000, 413),  # over 64 KiB before it is nested too deeply
    ],
)
def test_deeply_nested_properties_are_refused(test_client, auth, depth, status):
    """Properties nested deeper than 32 levels are a 422 saying so; a body over 64 KiB is a 413 first."""
    text = '{"type": "MULTI_USE_TICKET", "properties": ' + nested(depth) + "}"
    response = post_raw(test_client, auth, text)
    if status is None:
        assert_client_error(response)
        return
    assert_error(response, status)
    if status == 422:
        assert response.json["errors"]["json"]["properties"] == {"_schema": ["Nested deeper than 32 levels."]}


def test_deeply_nested_lists_are_4xx(test_client, auth):
    """Deep lists are refused like deep objects.

    SPEC section 4 makes this a 422; the service's JSON parser gives up first and it answers 400 (reported).
    """
    text = '{"type": "MULTI_USE_TICKET", "properties": {"a": ' + "[" * 5000 + "]" * 5000 + "}}"
    assert_client_error(post_raw(test_client, auth, text))


def test_deeply_nested_put_is_4xx(test_client, auth, create_ticket):
    """PUT with deep nesting is refused and leaves the ticket alone.

    SPEC section 4 makes this a 422; the service's JSON parser gives up first and it answers 400 (reported).
    """
    ticket = create_ticket()
    text = '{"properties": ' + nested(5000) + "}"
    assert_client_error(post_raw(test_client, auth, text, f"{TICKET}/{ticket['id']}", "put"))
    assert test_client.get(f"{TICKET}/{ticket['id']}", headers=auth).json == ticket


def test_moderate_nesting_round_trips(test_client, auth):
    """Ordinary nesting (a few levels) is stored and returned as given."""
    properties = {"a": {"b": {"c": {"d": [1, {"e": "f"}]}}}}
    response = test_client.post(TICKET, json={"type": "MULTI_USE_TICKET", "properties": properties}, headers=auth)
    assert response.status_code == 200
    assert response.json["properties"] == properties


@pytest.mark.parametrize(
    "number, status",
    [
        # NaN and Infinity are not JSON (RFC 8259 section 6), so SPEC section 8 makes these malformed JSON, 400.
        # Python's parser reads them and the service answers 422 "Numbers must be finite" (reported).
        ("NaN", None),
        ("Infinity", None),
        ("-Infinity", None),
        # Valid JSON numbers whose value overflows to infinity: a value that cannot be stored, 422.
        ("1e400", 422),
        ("-1e999", 422),
    ],
)
def test_non_finite_numbers_are_refused(test_client, auth, number, status):
    """NaN and infinities (also by overflow) cannot be stored as JSON: refused, never a 500, nothing stored."""
    text = '{"type": "MULTI_USE_TICKET", "properties": {"x": ' + number + "}}"
    response = post_raw(test_client, auth, text)
    if status is None:
        assert_client_error(response)
    else:
        assert_error(response, status)
        assert response.json["errors"]["json"]["properties"] == {"_schema": ["Numbers must be finite."]}
    assert test_client.get(TICKET, headers=auth).json == []


@pytest.mark.parametrize("number", ["NaN", "Infinity"])
def test_non_finite_numbers_on_put_are_4xx(test_client, auth, create_ticket, number):
    """PUT refuses NaN and infinities too, changing nothing.

    They are not JSON (RFC 8259 section 6), so SPEC section 8 makes them a 400; the service answers 422 (reported).
    """
    ticket = create_ticket()
    text = '{"properties": {"deep": [{"x": ' + number + "}]}}"
    assert_client_error(post_raw(test_client, auth, text, f"{TICKET}/{ticket['id']}", "put"))
    assert test_client.get(f"{TICKET}/{ticket['id']}", headers=auth).json == ticket


@pytest.mark.parametrize(
    "digits, status",
    [
        (30, 200),
        (400, 200),
        (4300, 200),
        # Past the parser's limit on integer size (Python's 4,300 digits; RFC 8259 section 9 lets a parser limit
        # the range of numbers), the body cannot be read: malformed JSON to this service, 400.
        (5000, 400),
        (50_000, 400),
    ],
)
def test_huge_integers_are_echoed_exactly_or_400(test_client, auth, digits, status):
    """A huge integer is stored and echoed exactly, or, past what the parser reads, refused as malformed (400)."""
    number = "9" * digits
    text = '{"type": "MULTI_USE_TICKET", "properties": {"n": ' + number + "}}"
    response = post_raw(test_client, auth, text)
    if status == 200:
        assert response.status_code == 200, response.data[:300]
        assert str(response.json["properties"]["n"]) == number
        fetched = test_client.get(f"{TICKET}/{response.json['id']}", headers=auth)
        assert fetched.status_code == 200
        assert str(fetched.json["properties"]["n"]) == number
    else:
        assert_error(response, status)


@pytest.mark.parametrize(
    "key, value",
    [("duration", 10**30), ("length", 10**30), ("ttl", 10**30), ("duration", -(10**30))],
)
def test_huge_integers_in_meaningful_fields_are_422(test_client, auth, key, value):
    """Huge numbers where a bounded one is meant are 422, not 500."""
    payload = {"type": "SCHEDULE_TICKET", "properties": {"scheduled_date": "2030-01-31T09:30:00Z"}}
    if key == "duration":
        payload["properties"]["duration"] = value
    else:
        payload[key] = value
    response = test_client.post(TICKET, json=payload, headers=auth)
    assert_error(response, 422)


@pytest.mark.parametrize(
    "properties, status",
    [
        ({"\u0000": "nul key"}, 200),
        ({"x": "\ud800"}, 422),  # a lone surrogate is no Unicode text
        ({"": ""}, 200),
        # SPEC section 11: properties that would make the ticket's token too big for a header are a 422 naming
        # the limit. The service stores this one (200) and its token cannot be sent (reported).
        ({"k" * 10_000: 1}, None),
        ({"scheduled_date": "9999-12-31T23:59:59+00:00"}, 422),  # outside the years 1970 to 9000
        ({"scheduled_date": "0001-01-01T00:00:00+00:00"}, 422),
        ({"scheduled_date": "2030-01-31T09:30:00+23:59"}, 200),
        ({"scheduled_date": "2030-01-31T09:30:00-23:59"}, 200),
    ],
)
def test_odd_properties_are_kept_or_422(test_client, auth, properties, status):
    """Odd but parseable properties are stored as given (and make an event), or are a 422; never a 500."""
    text = json.dumps({"type": "SCHEDULE_TICKET", "properties": {"scheduled_date": "2030-01-31T09:30:00Z"}})
    payload = json.loads(text)
    payload["properties"].update(properties)
    response = test_client.post(TICKET, json=payload, headers=auth)
    if status is None:
        assert response.status_code < 500, response.data[:300]
        if response.status_code == 200:
            fetched = test_client.get(f"{TICKET}/{response.json['id']}", headers=auth)
            assert fetched.status_code == 200
            event = test_client.get(f"{TICKET}/{response.json['id']}/event", headers=auth)
            assert event.status_code < 500
        return
    if status == 422:
        assert_error(response, 422)
        assert set(response.json["errors"]["json"]) == {"properties"}
        return
    assert response.status_code == 200, response.data[:300]
    fetched = test_client.get(f"{TICKET}/{response.json['id']}", headers=auth)
    assert fetched.status_code == 200
    assert fetched.json["properties"] == payload["properties"]
    event = test_client.get(f"{TICKET}/{response.json['id']}/event", headers=auth)
    assert event.status_code == 200
    assert event.mimetype == "text/calendar"


def test_far_future_scheduled_date_with_long_ttl_is_422(test_client, auth):
    """A window that would pass year 9999 is refused (422 naming scheduled_date), never a 500."""
    payload = {
        "type": "SCHEDULE_TICKET",
        "properties": {"scheduled_date": "9999-12-31T23:00:00Z", "duration": 1440},
        "ttl": 2_592_000,
    }
    response = test_client.post(TICKET, json=payload, headers=auth)
    assert_error(response, 422)
    assert "scheduled_date" in response.json["errors"]["json"]["properties"]


def test_every_error_body_has_code_and_status(test_client, auth, create_ticket, app):
    """A sample of every error class answers JSON with code and status."""
    ticket = create_ticket()
    url = f"{TICKET}/{ticket['id']}"
    test_client.post(f"{url}/revoke", headers=auth)
    narrow = bearer(fetch_token(test_client, make_client(app, name="narrow", scope="other")))
    cases = [
        (test_client.get(TICKET), 401),
        (test_client.get(TICKET, headers={"Authorization": "Bearer nope"}), 401),
        (test_client.get(TICKET, headers=narrow), 403),
        (test_client.get(f"{TICKET}/ABCDEFGHJ", headers=auth), 404),
        (test_client.put(url, json={"properties": {}}, headers=auth), 409),
        (test_client.post(f"{url}/enable", headers=auth), 409),
        (test_client.put(url, json={"properties": {}}, headers={**auth, "If-Match": '"7"'}), 412),
        (test_client.post(TICKET, json={"type": "x"}, headers=auth), 422),
        (post_raw(test_client, auth, "{"), 400),
        (test_client.delete(TICKET, headers=auth), 405),
        (test_client.get("/security/nothing"), 404),
    ]
    for response, status in cases:
        assert_error(response, status)
    assert "errors" in cases[7][0].json


def test_unauthenticated_requests_are_401_before_validation(test_client):
    """No token: 401 even when the body or query would not validate."""
    assert test_client.put("/security/ticket/ABCDEFGHJ", json={"bogus": 1}).status_code == 401
    assert test_client.get("/security/ticket/ABCDEFGHJ/event?calendar=nope").status_code == 401
    assert test_client.post("/security/ticket", json={"bogus": 1}).status_code == 401


def test_leaked_query_parameters_are_ignored_on_post(test_client, auth):
    """The reference's leaked internals in the query string change nothing on create."""
    response = test_client.post(
        TICKET, query_string=LEAKED, json={"type": "MULTI_USE_TICKET", "properties": {"a": 1}}, headers=auth
    )
    assert response.status_code == 200
    assert response.json["properties"] == {"a": 1}
    assert not set(LEAKED) & set(response.json)


def test_leaked_query_parameters_are_ignored_on_put(test_client, auth, create_ticket):
    """...and on update."""
    ticket = create_ticket()
    response = test_client.put(
        f"{TICKET}/{ticket['id']}", query_string=LEAKED, json={"properties": {"b": 2}}, headers=auth
    )
    assert response.status_code == 200
    assert response.json["properties"] == {"b": 2}
    assert response.json["version"] == 1


def test_leaked_query_parameters_do_not_authenticate(test_client):
    """authenticated=true without a token is still 401."""
    response = test_client.post(TICKET, query_string=LEAKED, json={"type": "MULTI_USE_TICKET", "properties": {}})
    assert_error(response, 401)


def test_leaked_query_parameters_are_not_documented(test_client):
    """The OpenAPI document names none of the leaked parameters."""
    response = test_client.get("/security/openapi.json")
    assert response.status_code == 200
    documented = set()
    for operations in response.json["paths"].values():
        for name, operation in operations.items():
            candidates = operations.get("parameters", []) if name == "parameters" else operation.get("parameters", [])
            documented |= {parameter["name"] for parameter in candidates}
    assert not documented & set(LEAKED)
    assert "authorities[0]" not in response.get_data(as_text=True)


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8080", "localhost.evil.example", "127.0.0.2"])
def test_untrusted_host_is_400(test_client, auth, host):
    """A Host that is not in TICKETS_TRUSTED_HOSTS is 400 with a JSON body."""
    response = test_client.get(TICKET, headers={**auth, "Host": host})
    assert_error(response, 400)
    created = test_client.post(
        TICKET, json={"type": "MULTI_USE_TICKET", "properties": {}}, headers={**auth, "Host": host}
    )
    assert_error(created, 400)


@pytest.mark.parametrize("host", ["localhost", "localhost:8080", "127.0.0.1", "127.0.0.1:8080"])
def test_trusted_hosts_are_served(test_client, auth, host):
    """The default trusted hosts, with or without a port, are served."""
    assert test_client.get(TICKET, headers={**auth, "Host": host}).status_code == 200


@pytest.mark.parametrize(
    "query, status",
    [
        ({"page": "-1"}, 422),
        ({"page": "99999999999999999999999"}, 200),  # a page past the end: empty
        ({"page_size": "99999999999999999999999"}, 422),  # page_size is 1 to 100
        ({"type": "\x00"}, 422),
        ({"status": "%"}, 422),
    ],
)
def test_odd_query_strings_are_200_or_422(test_client, auth, query, status):
    """Odd list query strings give an empty page or a JSON 422 naming the parameter."""
    response = test_client.get(TICKET, query_string=query, headers=auth)
    if status == 200:
        assert response.status_code == 200
        assert response.json == []
    else:
        assert_error(response, status)
        assert set(response.json["errors"]["query"]) == set(query)


@pytest.mark.parametrize(
    "headers, status",
    [
        ({"If-Match": "W/"}, 412),
        # SPEC section 3: an If-Match that does not match is a 412. werkzeug reads a lone quote as no entity-tag at
        # all, and the service applies the change (200) as if no If-Match had been sent (reported).
        ({"If-Match": '"'}, None),
        ({"If-Match": "\x7f"}, 412),
        ({"Content-Type": "text/plain"}, 422),  # not read as JSON: properties is missing
        ({"Content-Type": "application/json; charset=latin-1"}, 200),
    ],
)
def test_odd_headers_answer_one_status(test_client, auth, create_ticket, headers, status):
    """Odd If-Match or Content-Type headers give the one status they call for, never a 500."""
    ticket = create_ticket()
    response = test_client.put(
        f"{TICKET}/{ticket['id']}",
        data=json.dumps({"properties": {}}),
        headers={**auth, "Content-Type": "application/json", **headers},
    )
    if status is None:
        if response.status_code >= 300:
            assert_client_error(response)
    elif status == 200:
        assert response.status_code == 200, response.data[:300]
        assert response.json["version"] == 1
    else:
        assert_error(response, status)


def test_unexpected_errors_log_masked_paths(make_app, data_dir, monkeypatch, caplog):
    """A 500's log line names the path with the ticket id masked (the app not in testing mode)."""
    app = make_app(data_dir, TESTING=False)
    test_client = app.test_client()
    with app.app_context():
        services = current_services()
        credentials = services.clients.create("x", "org-a", "global")
    auth = bearer(fetch_token(test_client, credentials))
    ticket = test_client.post("/security/ticket", json={"type": "MULTI_USE_TICKET", "properties": {}}, headers=auth)

    def explode(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(services.tickets, "get_ticket", explode)
    ticket_id = ticket.json["id"]
    with caplog.at_level(logging.ERROR):
        response = test_client.get(f"/security/ticket/{ticket_id}", headers=auth)
    assert response.status_code == 500 and response.json["code"] == 500
    assert ticket_id not in caplog.text
    assert f"/security/ticket/{ticket_id[:2]}***" in caplog.text
