"""Real OAuth2 and JWT libraries against real gunicorn, the CLI acting on the running service, the data folder."""

from __future__ import annotations

import json
import os
import stat

import jwt
import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session

from tickets.core import clock  # the wall clock; the service under test runs in another process

from .conftest import Gunicorn, bearer, create_ticket, exchange, fetch_token

pytestmark = pytest.mark.system

ISSUER = "https://tickets.example.test/security"
TOKEN_TTL = 1800
TICKET_TOKEN_TTL = 5400
SETTINGS = {
    "TICKETS_ISSUER": ISSUER,
    "TICKETS_TOKEN_TTL": TOKEN_TTL,
    "TICKETS_TICKET_TOKEN_TTL": TICKET_TOKEN_TTL,
    "TICKETS_EXCHANGE_FAILURES_PER_MINUTE": 1000,
}
TRIES = 6  # requests on fresh connections, so that both workers answer


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One gunicorn with 2 workers for the module."""
    root = tmp_path_factory.mktemp("real-clients")
    service = Gunicorn(root / "data", root / "logs", workers=2, env=SETTINGS)
    service.start()
    yield service
    service.stop()


def token_url(server) -> str:
    return f"{server.url}/security/oauth/token"


def decode(server, token: str) -> dict:
    """Verify with PyJWT against the published JWKS, as a resource server would."""
    keys = jwt.PyJWKClient(f"{server.url}/security/.well-known/jwks.json", cache_keys=False)
    signing_key = keys.get_signing_key_from_jwt(token)
    return jwt.decode(
        token,
        signing_key.key,
        algorithms=["RS256"],
        issuer=ISSUER,
        options={"require": ["iss", "sub", "iat", "exp", "jti"]},
    )


def jwks_kids(server) -> set[str]:
    response = requests.get(f"{server.url}/security/.well-known/jwks.json", timeout=30)
    assert response.status_code == 200
    return {key["kid"] for key in response.json()["keys"]}


def client_auth_refused(response: requests.Response) -> bool:
    """A failed client authentication: 401 invalid_client (RFC 6749 section 5.2)."""
    return response.status_code == 401 and response.json().get("error") == "invalid_client"


def post_token(server, client_id: str, secret: str, method: str) -> requests.Response:
    """client_credentials by basic or post, on a new connection."""
    data = {"grant_type": "client_credentials"}
    if method == "basic":
        return requests.post(token_url(server), data=data, auth=(client_id, secret), timeout=30)
    return requests.post(token_url(server), data={**data, "client_id": client_id, "client_secret": secret}, timeout=30)


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_authlib_client_credentials(server, method):
    """authlib's OAuth2Session gets a token by each auth method and creates a ticket with it."""
    credentials = server.cli("clients", "create", "--name", f"authlib-{method}", "--org", "org-authlib")
    with OAuth2Session(
        credentials["client_id"], credentials["client_secret"], token_endpoint_auth_method=method
    ) as oauth:
        token = oauth.fetch_token(token_url(server), grant_type="client_credentials")
        assert token["token_type"].lower() == "bearer"
        assert token["scope"] == "global"
        assert token["expires_in"] == TOKEN_TTL
        response = oauth.post(
            f"{server.url}/security/ticket",
            json={"type": "MULTI_USE_TICKET", "properties": {"via": method}},
            timeout=30,
        )
    assert response.status_code == 200, response.text
    assert response.json()["organizationId"] == "org-authlib"
    assert response.json()["properties"] == {"via": method}


def test_pyjwt_verifies_client_and_ticket_tokens(server):
    """PyJWT verifies both kinds of token with the JWKS and the configured issuer; claims per SPEC 5."""
    org_client = server.cli("clients", "create", "--name", "jwt-org", "--org", "org-jwt")
    system_client = server.cli("clients", "create", "--name", "jwt-system")
    assert system_client["organizationId"] is None

    before = int(clock.timestamp())
    org_token = fetch_token(server.url, org_client)
    claims = decode(server, org_token)
    assert jwt.get_unverified_header(org_token)["kid"]
    assert claims["iss"] == ISSUER
    assert claims["sub"] == claims["client_id"] == org_client["client_id"]
    assert claims["org"] == "org-jwt"
    assert claims["scope"] == "global"
    assert before - 5 <= claims["iat"] <= clock.timestamp() + 5
    assert claims["exp"] - claims["iat"] == TOKEN_TTL
    assert isinstance(claims["jti"], str) and claims["jti"]

    system_claims = decode(server, fetch_token(server.url, system_client))
    assert system_claims["sub"] == system_claims["client_id"] == system_client["client_id"]
    assert "org" not in system_claims
    assert system_claims["jti"] != claims["jti"]

    properties = {"customer_id": "customer-42", "conference_id": "conf-7", "applicationId": "app-1", "x": [1, {"y": 2}]}
    ticket = create_ticket(server.url, org_token, "MULTI_USE_TICKET", properties)
    exchanged = exchange(server.url, ticket["id"].lower())  # ids are looked up case-insensitively
    assert exchanged.status_code == 200, exchanged.text
    assert exchanged.json()["expires_in"] == TICKET_TOKEN_TTL
    ticket_claims = decode(server, exchanged.json()["access_token"])
    assert ticket_claims["iss"] == ISSUER
    assert ticket_claims["sub"] == "customer-42" == ticket["userId"]
    assert ticket_claims["org"] == "org-jwt"
    assert ticket_claims["scope"] == "ticket"
    assert ticket_claims["ticket"] == ticket["id"]
    assert ticket_claims["ticket_type"] == "MULTI_USE_TICKET"
    assert ticket_claims["properties"] == properties
    assert ticket_claims["exp"] - ticket_claims["iat"] == TICKET_TOKEN_TTL
    assert ticket_claims["jti"] and "client_id" not in ticket_claims

    metadata = requests.get(f"{server.url}/security/.well-known/oauth-authorization-server", timeout=30).json()
    assert metadata["issuer"] == ISSUER


def test_keys_rotate_while_running(server):
    """After `keys rotate` new tokens carry the new kid, older tokens still work, and both kids are published."""
    credentials = server.cli("clients", "create", "--name", "rotation", "--org", "org-rotate")
    old_token = fetch_token(server.url, credentials)
    old_kid = jwt.get_unverified_header(old_token)["kid"]
    ticket = create_ticket(server.url, old_token)

    new_kid = server.cli("keys", "rotate")["kid"]
    assert new_kid != old_kid

    for _ in range(TRIES):
        fresh = fetch_token(server.url, credentials)
        assert jwt.get_unverified_header(fresh)["kid"] == new_kid
        assert decode(server, fresh)["client_id"] == credentials["client_id"]
        response = requests.get(f"{server.url}/security/ticket/{ticket['id']}", headers=bearer(old_token), timeout=30)
        assert response.status_code == 200, response.text
        assert {old_kid, new_kid} <= jwks_kids(server)
    assert decode(server, old_token)["client_id"] == credentials["client_id"]


def test_rotate_secret_refuses_old_secret(server):
    """`clients rotate-secret` on the running service: the old secret is refused at once, the new one works."""
    credentials = server.cli("clients", "create", "--name", "rotate-secret", "--org", "org-secret")
    assert post_token(server, credentials["client_id"], credentials["client_secret"], "basic").status_code == 200

    rotated = server.cli("clients", "rotate-secret", credentials["client_id"])
    assert rotated["client_id"] == credentials["client_id"]
    assert rotated["organizationId"] == "org-secret" and rotated["scope"] == "global"
    assert rotated["client_secret"] != credentials["client_secret"]

    for _ in range(TRIES // 2):
        for method in ("basic", "post"):
            old = post_token(server, credentials["client_id"], credentials["client_secret"], method)
            assert client_auth_refused(old), f"{method}: {old.status_code} {old.text}"
            new = post_token(server, rotated["client_id"], rotated["client_secret"], method)
            assert new.status_code == 200, f"{method}: {new.status_code} {new.text}"


def test_delete_client_revokes_its_tokens_and_list_hides_secrets(server):
    """`clients delete` makes its live token 401 at once; `clients list` never shows a secret."""
    credentials = server.cli("clients", "create", "--name", "doomed", "--org", "org-doomed")
    token = fetch_token(server.url, credentials)
    assert requests.get(f"{server.url}/security/ticket", headers=bearer(token), timeout=30).status_code == 200

    listing = server.cli("clients", "list", check=False)
    assert listing.returncode == 0, listing.stderr
    assert credentials["client_secret"] not in listing.stdout
    entries = json.loads(listing.stdout)
    mine = [entry for entry in entries if entry["client_id"] == credentials["client_id"]]
    assert len(mine) == 1
    assert mine[0]["organizationId"] == "org-doomed" and mine[0]["scope"] == "global"
    for entry in entries:
        assert not [key for key in entry if "secret" in key.lower() or "hash" in key.lower() or "salt" in key.lower()]

    assert server.cli("clients", "delete", credentials["client_id"]) == {"deleted": credentials["client_id"]}
    for _ in range(TRIES):
        listed = requests.get(f"{server.url}/security/ticket", headers=bearer(token), timeout=30)
        assert listed.status_code == 401, listed.text
        assert listed.headers.get("WWW-Authenticate", "").startswith("Bearer")
        created = requests.post(
            f"{server.url}/security/ticket",
            json={"type": "MULTI_USE_TICKET", "properties": {}},
            headers=bearer(token),
            timeout=30,
        )
        assert created.status_code == 401, created.text
    refused = post_token(server, credentials["client_id"], credentials["client_secret"], "basic")
    assert client_auth_refused(refused), refused.text
    assert credentials["client_id"] not in [entry["client_id"] for entry in server.cli("clients", "list")]


def test_data_folder_modes_and_no_secret_on_disk(server):
    """The data folder is 0700, every file in it 0600, and no client secret is stored in clear."""
    credentials = server.cli("clients", "create", "--name", "disk", "--org", "org-disk")
    rotated = server.cli("clients", "rotate-secret", credentials["client_id"])
    token = fetch_token(server.url, rotated)
    ticket = create_ticket(server.url, token, "SINGLE_USE_TICKET", {"customer_id": "disk-user"})
    assert exchange(server.url, ticket["id"]).status_code == 200
    assert exchange(server.url, "NQTXYZWVV").status_code == 400  # a failure, so the throttle file is written

    data_dir = server.data_dir
    assert stat.S_IMODE(os.stat(data_dir).st_mode) == 0o700
    seen = []
    for folder, dirs, files in os.walk(data_dir):
        for name in dirs:
            path = os.path.join(folder, name)
            assert stat.S_IMODE(os.lstat(path).st_mode) == 0o700, path
        for name in files:
            path = os.path.join(folder, name)
            seen.append(name)
            mode = os.lstat(path).st_mode
            assert stat.S_ISREG(mode), path
            assert stat.S_IMODE(mode) == 0o600, f"{path} has mode {oct(stat.S_IMODE(mode))}"
            content = open(path, "rb").read()
            for secret in (credentials["client_secret"], rotated["client_secret"]):
                assert secret.encode() not in content, f"a client secret is stored in clear in {path}"
    assert {"tickets.json", "clients.json", "keys.json"} <= set(seen)


def test_corrupt_tickets_file_stops_startup(gunicorn):
    """A corrupt tickets.json stops gunicorn with a message naming the file, and the file is left untouched."""
    service = gunicorn(workers=2)
    service.cli("clients", "create", "--name", "before-corruption", "--org", "org-c")
    service.stop()
    path = service.data_dir / "tickets.json"
    path.write_bytes(b"{not json")
    os.chmod(path, 0o600)
    before = path.read_bytes()

    service.spawn()
    code = service.wait_exit(timeout=20)
    output = service.output()
    assert code is not None, f"gunicorn kept running on a corrupt data file:\n{output}"
    assert code != 0, output
    assert str(path) in output, output
    assert path.read_bytes() == before
