"""Headers of SPEC section 11: nosniff on every answer, no-store on the OAuth endpoints, a CSP on Swagger UI."""

from __future__ import annotations

import pytest

from tests.conftest import bearer, exchange, fetch_token


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/security/health"),
        ("GET", "/security/openapi.json"),
        ("GET", "/security/.well-known/jwks.json"),
        ("GET", "/security/ticket"),
        ("GET", "/security/no-such-thing"),
        ("GET", "/metrics"),
        ("GET", "/security/swagger-ui"),
        ("POST", "/security/oauth/token"),
    ],
)
def test_every_answer_says_nosniff(test_client, method, path):
    assert test_client.open(path, method=method).headers["X-Content-Type-Options"] == "nosniff"


def test_token_and_introspection_answers_are_never_cached(test_client, oauth_client, create_ticket):
    """Success or error, client credentials or ticket, token or introspection: no-store and no-cache."""
    token = fetch_token(test_client, oauth_client)
    answers = [
        test_client.post("/security/oauth/token", data={"grant_type": "client_credentials"},
                         auth=(oauth_client["client_id"], oauth_client["client_secret"])),
        test_client.post("/security/oauth/token", data={"grant_type": "client_credentials"}, auth=("x", "y")),
        exchange(test_client, create_ticket()["id"]),
        exchange(test_client, "ABCDEFGHJ"),
        test_client.post("/security/oauth/token", data={"grant_type": "nope"}),
        test_client.post("/security/oauth/introspect", data={"token": token}, headers=bearer(token)),
        test_client.post("/security/oauth/introspect", data={"token": token}),
    ]
    for answer in answers:
        assert (answer.headers["Cache-Control"], answer.headers["Pragma"]) == ("no-store", "no-cache"), answer.json


def test_swagger_ui_allows_only_its_own_origin_and_no_framing(test_client):
    page = test_client.get("/security/swagger-ui")
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy.split("script-src", 1)[1].split(";", 1)[0]
    assert b"<script>" not in page.data  # every script is a file the policy allows


def test_swagger_ui_keeps_no_token_unless_asked(test_client, make_app, tmp_path):
    """persistAuthorization (tokens in localStorage) is off unless TICKETS_SWAGGER_PERSIST_AUTH=1."""
    assert b"&#34;persistAuthorization&#34;: false" in test_client.get("/security/swagger-ui").data
    persisting = make_app(tmp_path / "persist", TICKETS_SWAGGER_PERSIST_AUTH=1).test_client()
    assert b"&#34;persistAuthorization&#34;: true" in persisting.get("/security/swagger-ui").data
