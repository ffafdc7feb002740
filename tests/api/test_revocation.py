"""RFC 7009 token revocation (SPEC section 11): staff stop any token, on every worker, until it would have expired."""

from __future__ import annotations

import pytest

from tests.conftest import ORG, bearer, exchange, fetch_token, make_client

REVOKE = "/security/oauth/revoke"
INTROSPECT = "/security/oauth/introspect"


def revoke(test_client, credentials: dict, token: str, how: str = "basic", **extra):
    data = {"token": token, **extra}
    if how == "basic":
        return test_client.post(REVOKE, data=data, auth=(credentials["client_id"], credentials["client_secret"]))
    secrets = {"client_id": credentials["client_id"], "client_secret": credentials["client_secret"]}
    return test_client.post(REVOKE, data={**data, **secrets})


def active(test_client, credentials: dict, token: str) -> bool:
    response = test_client.post(
        INTROSPECT, data={"token": token}, auth=(credentials["client_id"], credentials["client_secret"])
    )
    return response.json["active"]


@pytest.mark.parametrize("how", ["basic", "post"])
def test_a_revoked_client_token_is_refused_everywhere_from_then_on(test_client, oauth_client, how):
    """200 with an empty body; the token is then 401 on the API, inactive at introspection, and useless as the
    bearer credential of introspection; a second token of the same client still works."""
    doomed, kept = fetch_token(test_client, oauth_client), fetch_token(test_client, oauth_client)
    assert test_client.get("/security/ticket", headers=bearer(doomed)).status_code == 200
    response = revoke(test_client, oauth_client, doomed, how)
    assert (response.status_code, response.data) == (200, b"")
    assert response.headers["Cache-Control"] == "no-store"
    assert test_client.get("/security/ticket", headers=bearer(doomed)).status_code == 401
    assert active(test_client, oauth_client, doomed) is False
    as_bearer = test_client.post(INTROSPECT, data={"token": kept}, headers=bearer(doomed))
    assert as_bearer.status_code == 401
    assert test_client.get("/security/ticket", headers=bearer(kept)).status_code == 200


def test_staff_stop_the_token_of_a_used_single_use_ticket(test_client, oauth_client, create_ticket):
    """The case revocation is for: the ticket is gone (its own revoke is 404), its token would live for hours."""
    ticket = create_ticket("SINGLE_USE_TICKET")
    token = exchange(test_client, ticket["id"]).json["access_token"]
    assert active(test_client, oauth_client, token) is True
    staff = bearer(fetch_token(test_client, oauth_client))
    assert test_client.post(f"/security/ticket/{ticket['id']}/revoke", headers=staff).status_code == 404
    assert revoke(test_client, oauth_client, token).status_code == 200
    assert active(test_client, oauth_client, token) is False


def test_a_token_of_another_organization_is_left_alone(app, test_client, oauth_client, system_client):
    """200 all the same (nothing said), but the token stays active; a system client may revoke any token."""
    stranger = make_client(app, name="stranger", org="org-b")
    theirs = fetch_token(test_client, stranger)
    system_token = fetch_token(test_client, system_client)
    for token in (theirs, system_token):
        response = revoke(test_client, oauth_client, token)
        assert (response.status_code, response.data) == (200, b"")
        assert active(test_client, system_client, token) is True
    assert revoke(test_client, system_client, theirs).status_code == 200
    assert active(test_client, system_client, theirs) is False


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c", "eyJhbGciOiJub25lIn0.e30."])
def test_unknown_or_forged_tokens_get_the_same_answer(test_client, oauth_client, token):
    response = revoke(test_client, oauth_client, token)
    assert (response.status_code, response.data) == (200, b"")


def test_revocation_needs_an_authenticated_client_with_scope_global(app, test_client, oauth_client):
    token = fetch_token(test_client, oauth_client)
    anonymous = test_client.post(REVOKE, data={"token": token})
    assert anonymous.status_code == 401 and anonymous.json["error"] == "invalid_client"
    wrong = test_client.post(REVOKE, data={"token": token}, auth=(oauth_client["client_id"], "nope"))
    assert wrong.status_code == 401
    reporter = make_client(app, name="reporter", scope="reports")
    refused = revoke(test_client, reporter, token)
    assert refused.status_code == 403 and refused.json["error"] == "insufficient_scope"
    missing = test_client.post(REVOKE, data={}, auth=(oauth_client["client_id"], oauth_client["client_secret"]))
    assert missing.status_code == 400 and missing.json["error"] == "invalid_request"
    assert active(test_client, oauth_client, token) is True


def test_every_worker_refuses_a_token_another_revoked(make_app, tmp_path):
    """Two app instances on one data folder (as two gunicorn workers): one revokes, the other refuses at once."""
    first = make_app(tmp_path / "shared")
    second = make_app(tmp_path / "shared")
    credentials = make_client(first, org=ORG)
    token = fetch_token(first.test_client(), credentials)
    assert second.test_client().get("/security/ticket", headers=bearer(token)).status_code == 200
    assert revoke(first.test_client(), credentials, token).status_code == 200
    assert second.test_client().get("/security/ticket", headers=bearer(token)).status_code == 401


def test_the_metadata_names_the_revocation_endpoint(test_client):
    metadata = test_client.get("/security/.well-known/oauth-authorization-server").json
    assert metadata["revocation_endpoint"].endswith("/security/oauth/revoke")
    assert metadata["revocation_endpoint_auth_methods_supported"] == ["client_secret_basic", "client_secret_post"]
