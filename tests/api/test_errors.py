"""Errors and odd input (SPEC section 8): JSON bodies, the right 4xx, never a 500."""

from __future__ import annotations

import json

import pytest

from tests.conftest import bearer, fetch_token, make_client

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
    """Some 4xx, in the API's JSON shape: never a 500."""
    assert 400 <= response.status_code < 500, (response.status_code, response.data[:300])
    assert_error(response, response.status_code)


def post_raw(test_client, auth, text: str, url: str = TICKET, method: str = "post"):
    return getattr(test_client, method)(url, data=text, content_type="application/json", headers=auth)


@pytest.mark.parametrize("text", ["{bad", '{"type": "MULTI_USE_TICKET", "properties": {}', "\x00", "{'a': 1}", "{}{}"])
def test_malformed_json_is_400(test_client, auth, text):
    """A body that is not JSON is 400 with a JSON error body."""
    assert_error(post_raw(test_client, auth, text), 400)


def test_empty_json_body_is_4xx(test_client, auth):
    """An empty body declared as JSON is refused (400 or 422), in the API's shape."""
    response = post_raw(test_client, auth, "")
    assert response.status_code in (400, 422)
    assert_client_error(response)


def test_malformed_json_on_put_is_400(test_client, auth, create_ticket):
    """PUT with a broken body is 400 too."""
    ticket = create_ticket()
    assert_error(post_raw(test_client, auth, "{nope", f"{TICKET}/{ticket['id']}", "put"), 400)


def test_invalid_utf8_is_4xx(test_client, auth):
    """Bytes that are not UTF-8 are a client error."""
    response = test_client.post(TICKET, data=b'{"type": "\xff\xfe"}', content_type="application/json", headers=auth)
    assert_client_error(response)


@pytest.mark.parametrize("text", ["[]", '[{"type": "MULTI_USE_TICKET", "properties": {}}]', '"x"', "42", "true"])
def test_json_that_is_not_an_object_is_422(test_client, auth, text):
    """Valid JSON of the wrong shape is a schema violation (422)."""
    assert_error(post_raw(test_client, auth, text), 422)


def test_null_body_is_4xx(test_client, auth):
    """A JSON null body is refused."""
    assert_client_error(post_raw(test_client, auth, "null"))


def test_body_over_64_kib_is_413(test_client, auth):
    """A body over 64 KiB is 413 with a JSON error body."""
    payload = json.dumps({"type": "MULTI_USE_TICKET", "properties": {"blob": "x" * (65 * 1024)}})
    assert_error(post_raw(test_client, auth, payload), 413)


def test_body_just_under_64_kib_is_accepted(test_client, auth):
    """A body a little under the limit is fine."""
    payload = json.dumps({"type": "MULTI_USE_TICKET", "properties": {"blob": "x" * (60 * 1024)}})
    assert post_raw(test_client, auth, payload).status_code == 200


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


@pytest.mark.parametrize("depth", [40, 200, 900, 5000, 100_000])
def test_deeply_nested_properties_are_4xx(test_client, auth, depth):
    """Absurdly deep nesting is refused with a 4xx, never a 500."""
    text = '{"type": "MULTI_USE_TICKET", "properties": ' + nested(depth) + "}"
    assert_client_error(post_raw(test_client, auth, text))


def test_deeply_nested_lists_are_4xx(test_client, auth):
    """Deep lists are refused like deep objects."""
    text = '{"type": "MULTI_USE_TICKET", "properties": {"a": ' + "[" * 5000 + "]" * 5000 + "}}"
    assert_client_error(post_raw(test_client, auth, text))


def test_deeply_nested_put_is_4xx(test_client, auth, create_ticket):
    """PUT with deep nesting is a 4xx and leaves the ticket alone."""
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


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400", "-1e999"])
def test_non_finite_numbers_are_4xx(test_client, auth, number):
    """NaN and infinities (also by overflow) cannot be stored as JSON: a 4xx, never a 500."""
    text = '{"type": "MULTI_USE_TICKET", "properties": {"x": ' + number + "}}"
    response = post_raw(test_client, auth, text)
    assert_client_error(response)
    assert test_client.get(TICKET, headers=auth).json == []


@pytest.mark.parametrize("number", ["NaN", "Infinity"])
def test_non_finite_numbers_on_put_are_4xx(test_client, auth, create_ticket, number):
    """PUT refuses NaN and infinities too, changing nothing."""
    ticket = create_ticket()
    text = '{"properties": {"deep": [{"x": ' + number + "}]}}"
    assert_client_error(post_raw(test_client, auth, text, f"{TICKET}/{ticket['id']}", "put"))
    assert test_client.get(f"{TICKET}/{ticket['id']}", headers=auth).json == ticket


@pytest.mark.parametrize("digits", [30, 400, 4300, 5000, 50_000])
def test_huge_integers_never_500(test_client, auth, digits):
    """A huge integer is either stored and echoed exactly, or refused with a 4xx."""
    number = "9" * digits
    text = '{"type": "MULTI_USE_TICKET", "properties": {"n": ' + number + "}}"
    response = post_raw(test_client, auth, text)
    if response.status_code == 200:
        assert str(response.json["properties"]["n"]) == number
        fetched = test_client.get(f"{TICKET}/{response.json['id']}", headers=auth)
        assert fetched.status_code == 200
        assert str(fetched.json["properties"]["n"]) == number
    else:
        assert_client_error(response)


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
    "properties",
    [
        {"\u0000": "nul key"},
        {"x": "\ud800"},
        {"": ""},
        {"k" * 10_000: 1},
        {"scheduled_date": "9999-12-31T23:59:59+00:00"},
        {"scheduled_date": "0001-01-01T00:00:00+00:00"},
        {"scheduled_date": "2030-01-31T09:30:00+23:59"},
        {"scheduled_date": "2030-01-31T09:30:00-23:59"},
    ],
)
def test_odd_properties_never_500(test_client, auth, properties):
    """Odd but parseable properties give 200 or a 4xx, never a 500."""
    text = json.dumps({"type": "SCHEDULE_TICKET", "properties": {"scheduled_date": "2030-01-31T09:30:00Z"}})
    payload = json.loads(text)
    payload["properties"].update(properties)
    response = test_client.post(TICKET, json=payload, headers=auth)
    assert response.status_code < 500, response.data[:300]
    if response.status_code == 200:
        fetched = test_client.get(f"{TICKET}/{response.json['id']}", headers=auth)
        assert fetched.status_code == 200
        event = test_client.get(f"{TICKET}/{response.json['id']}/event", headers=auth)
        assert event.status_code < 500


def test_far_future_scheduled_date_with_long_ttl_never_500(test_client, auth):
    """A window that would pass year 9999 is refused or capped, never a 500."""
    payload = {
        "type": "SCHEDULE_TICKET",
        "properties": {"scheduled_date": "9999-12-31T23:00:00Z", "duration": 1440},
        "ttl": 2_592_000,
    }
    response = test_client.post(TICKET, json=payload, headers=auth)
    assert response.status_code < 500, response.data[:300]


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
    "query",
    [
        {"page": "-1"},
        {"page": "99999999999999999999999"},
        {"page_size": "99999999999999999999999"},
        {"type": "\x00"},
        {"status": "%"},
    ],
)
def test_odd_query_strings_never_500(test_client, auth, query):
    """Odd list query strings give 200 or a JSON 4xx."""
    response = test_client.get(TICKET, query_string=query, headers=auth)
    if response.status_code != 200:
        assert_client_error(response)


@pytest.mark.parametrize(
    "headers",
    [
        {"If-Match": "W/"},
        {"If-Match": '"'},
        {"If-Match": "\x7f"},
        {"Content-Type": "text/plain"},
        {"Content-Type": "application/json; charset=latin-1"},
    ],
)
def test_odd_headers_never_500(test_client, auth, create_ticket, headers):
    """Odd If-Match or Content-Type headers give a 2xx or a JSON 4xx."""
    ticket = create_ticket()
    response = test_client.put(
        f"{TICKET}/{ticket['id']}", data=json.dumps({"properties": {}}), headers={**auth, **headers}
    )
    if response.status_code >= 300:
        assert_client_error(response)
