"""The CLI (tickets/cli.py) through Flask's CLI runner: clients, keys and tickets commands and the JSON they print.

Each command acts on the app's data at once; the token endpoint and the JWKS show it. tests/system runs the real
`flask` command against a running gunicorn.
"""

from __future__ import annotations

import base64
import json

import pytest

from tests.conftest import ORG, bearer, fetch_token

TOKEN = "/security/oauth/token"
JWKS = "/security/.well-known/jwks.json"
CREDENTIALS = {"client_id", "client_secret", "organizationId", "scope"}


def run(app, *args):
    """`flask --app app <args>` on this app: the result, exit code and output."""
    return app.test_cli_runner().invoke(args=list(args))


def run_json(app, *args):
    """A command that must succeed, and the one JSON value it prints."""
    result = run(app, *args)
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.output)


def client_token(test_client, credentials: dict):
    """POST the client-credentials grant with Basic authentication."""
    return test_client.post(
        TOKEN,
        data={"grant_type": "client_credentials"},
        auth=(credentials["client_id"], credentials["client_secret"]),
    )


def listed_ids(app) -> list[str]:
    return [entry["client_id"] for entry in run_json(app, "clients", "list")]


# --- clients -------------------------------------------------------------------------------------------------------


def test_clients_create_with_org(app, test_client):
    """`clients create --name --org` prints the credentials once; the secret gets an organization's token."""
    created = run_json(app, "clients", "create", "--name", "staff", "--org", ORG)
    assert set(created) == CREDENTIALS
    assert created["organizationId"] == ORG
    assert created["scope"] == "global"
    assert len(created["client_secret"]) >= 43  # 256 random bits, base64url
    response = client_token(test_client, created)
    assert response.status_code == 200, response.json
    assert response.json["scope"] == "global"
    assert test_client.get("/security/ticket", headers=bearer(response.json["access_token"])).status_code == 200


def test_clients_create_without_org_is_a_system_client(app, test_client):
    """Without --org the client is a system client: organizationId null, and it must name one to create."""
    created = run_json(app, "clients", "create", "--name", "system")
    assert set(created) == CREDENTIALS
    assert created["organizationId"] is None
    auth = bearer(fetch_token(test_client, created))
    refused = test_client.post("/security/ticket", json={"type": "MULTI_USE_TICKET", "properties": {}}, headers=auth)
    assert refused.status_code == 422
    assert "organizationId" in refused.json["errors"]["json"]


def test_clients_create_with_scope(app, test_client):
    """--scope sets the registered scope (space-separated, repeats dropped); tokens carry it."""
    created = run_json(app, "clients", "create", "--name", "wide", "--org", ORG, "--scope", "global reports global")
    assert created["scope"] == "global reports"
    assert client_token(test_client, created).json["scope"] == "global reports"
    narrow = run_json(app, "clients", "create", "--name", "narrow", "--org", ORG, "--scope", "reports")
    token = fetch_token(test_client, narrow)
    assert test_client.get("/security/ticket", headers=bearer(token)).status_code == 403


@pytest.mark.parametrize("scope", ["ticket", "global ticket", "", "   ", 'quote"d', "back\\slash"])
def test_clients_create_refuses_a_bad_scope(app, scope):
    """A reserved or malformed scope: non-zero exit, a message naming --scope, and no client created."""
    result = run(app, "clients", "create", "--name", "bad", "--org", ORG, "--scope", scope)
    assert result.exit_code == 2, result.output
    assert "--scope" in result.output
    assert "client_secret" not in result.output
    assert listed_ids(app) == []


@pytest.mark.parametrize("org", ["", " ", "a b", "org/../x", "x" * 65, "ação", "org\u0000", "a;b"])
def test_clients_create_refuses_a_bad_organization_id(app, org):
    """An empty or odd --org never silently makes a system client: non-zero exit, a message, nothing created."""
    result = run(app, "clients", "create", "--name", "bad", "--org", org)
    assert result.exit_code == 2, result.output
    assert "--org" in result.output and "client_secret" not in result.output
    assert listed_ids(app) == []


@pytest.mark.parametrize("org", ["a", "org-a", "Org_1.2", "0b9a6c1e-3f4d-4a5b-9c8d-7e6f5a4b3c2d", "x" * 64])
def test_clients_create_accepts_organization_ids(app, org):
    assert run_json(app, "clients", "create", "--name", "ok", "--org", org)["organizationId"] == org


def test_clients_list_never_shows_a_secret(app):
    """`clients list` prints every client's public fields, sorted by id, and nothing secret."""
    staff = run_json(app, "clients", "create", "--name", "staff", "--org", ORG)
    system = run_json(app, "clients", "create", "--name", "system")
    result = run(app, "clients", "list")
    assert result.exit_code == 0
    assert staff["client_secret"] not in result.output and system["client_secret"] not in result.output
    expected = [
        {"client_id": staff["client_id"], "name": "staff", "organizationId": ORG, "scope": "global"},
        {"client_id": system["client_id"], "name": "system", "organizationId": None, "scope": "global"},
    ]
    assert json.loads(result.output) == sorted(expected, key=lambda entry: entry["client_id"])


def test_clients_list_of_none_is_an_empty_array(app):
    """With no client registered, the list is []."""
    assert run_json(app, "clients", "list") == []


def test_clients_delete(app, test_client):
    """`clients delete ID` prints what it deleted; the client's secret and live tokens stop working at once."""
    created = run_json(app, "clients", "create", "--name", "doomed", "--org", ORG)
    token = fetch_token(test_client, created)
    assert run_json(app, "clients", "delete", created["client_id"]) == {"deleted": created["client_id"]}
    assert listed_ids(app) == []
    listed = test_client.get("/security/ticket", headers=bearer(token))
    assert listed.status_code == 401
    refused = client_token(test_client, created)
    assert refused.status_code == 401
    assert refused.json["error"] == "invalid_client"


def test_clients_delete_of_an_unknown_id_fails(app):
    """Deleting a client that does not exist exits non-zero, saying so."""
    result = run(app, "clients", "delete", "nobody")
    assert result.exit_code == 1
    assert "no client nobody" in result.output


def test_clients_rotate_secret(app, test_client):
    """`clients rotate-secret ID` prints the credentials with a new secret; the old one is refused at once."""
    created = run_json(app, "clients", "create", "--name", "rotating", "--org", ORG, "--scope", "global reports")
    rotated = run_json(app, "clients", "rotate-secret", created["client_id"])
    assert set(rotated) == CREDENTIALS
    assert {key: rotated[key] for key in ("client_id", "organizationId", "scope")} == {
        "client_id": created["client_id"], "organizationId": ORG, "scope": "global reports",
    }
    assert rotated["client_secret"] != created["client_secret"]
    old = client_token(test_client, created)
    assert old.status_code == 401
    assert old.json["error"] == "invalid_client"
    assert client_token(test_client, rotated).status_code == 200


def test_clients_rotate_secret_of_an_unknown_id_fails(app):
    """Rotating the secret of a client that does not exist exits non-zero, saying so."""
    result = run(app, "clients", "rotate-secret", "nobody")
    assert result.exit_code == 1
    assert "no client nobody" in result.output


# --- keys ----------------------------------------------------------------------------------------------------------


def test_keys_rotate(app, test_client, oauth_client):
    """`keys rotate` prints the new kid: the JWKS publishes it beside the old one, and new tokens use it."""
    old_kids = {key["kid"] for key in test_client.get(JWKS).json["keys"]}
    old_token = fetch_token(test_client, oauth_client)
    rotated = run_json(app, "keys", "rotate")
    assert set(rotated) == {"kid"}
    assert rotated["kid"] not in old_kids
    assert {key["kid"] for key in test_client.get(JWKS).json["keys"]} == old_kids | {rotated["kid"]}
    new_token = fetch_token(test_client, oauth_client)
    assert token_header(new_token)["kid"] == rotated["kid"]
    assert token_header(old_token)["kid"] in old_kids
    assert test_client.get("/security/ticket", headers=bearer(old_token)).status_code == 200
    assert test_client.get("/security/ticket", headers=bearer(new_token)).status_code == 200


def token_header(token: str) -> dict:
    """The JOSE header of a JWT, unverified."""
    part = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


# --- tickets -------------------------------------------------------------------------------------------------------


def test_tickets_purge(app, test_client, auth, oauth_client, clock):
    """`tickets purge` removes the tickets past retention now and prints how many; a second run finds none."""
    short = test_client.post(
        "/security/ticket", json={"type": "MULTI_USE_TICKET", "properties": {}, "ttl": 60}, headers=auth
    )
    assert short.status_code == 200
    default = test_client.post("/security/ticket", json={"type": "MULTI_USE_TICKET", "properties": {}}, headers=auth)
    assert default.status_code == 200
    assert run_json(app, "tickets", "purge") == {"purged": 0}
    clock.advance(seconds=60 + 604_800)  # the 60-second ticket's retention has ended; the 4-hour one's has not
    assert run_json(app, "tickets", "purge") == {"purged": 1}
    assert run_json(app, "tickets", "purge") == {"purged": 0}
    listed = test_client.get("/security/ticket", headers=bearer(fetch_token(test_client, oauth_client)))
    assert [ticket["id"] for ticket in listed.json] == [default.json["id"]]
    clock.advance(seconds=14_400)
    assert run_json(app, "tickets", "purge") == {"purged": 1}


def test_tickets_purge_keeps_tickets_within_retention(app, test_client, auth, oauth_client, clock):
    """A ticket whose retention has not ended survives the purge."""
    old = test_client.post(
        "/security/ticket", json={"type": "MULTI_USE_TICKET", "properties": {}, "ttl": 60}, headers=auth
    ).json
    clock.advance(seconds=60 + 604_800 - 10)
    young = test_client.post(
        "/security/ticket",
        json={"type": "MULTI_USE_TICKET", "properties": {}, "ttl": 60},
        headers=bearer(fetch_token(test_client, oauth_client)),
    ).json
    clock.advance(seconds=10)
    assert run_json(app, "tickets", "purge") == {"purged": 1}
    listed = test_client.get("/security/ticket", headers=bearer(fetch_token(test_client, oauth_client)))
    assert [ticket["id"] for ticket in listed.json] == [young["id"]]
    assert old["id"] != young["id"]
