"""Shared fixtures: an app on a temporary data folder, its test client, OAuth clients and tokens."""

from __future__ import annotations

import copy
import inspect
import os
from datetime import UTC, datetime, timedelta

import pytest
from joserfc.jwk import RSAKey

from app import create_app
from tickets.context import current_services
from tickets.core import clock as service_clock
from tickets.storage import open_storage

ORG = "org-a"
T0 = datetime(2030, 1, 10, 12, 0, 0, tzinfo=UTC)
SCHEDULED_TYPES = [
    "SCHEDULE_TICKET",
    "APPOINTMENTS_SCHEDULE_TICKET",
    "GENESYS_SCHEDULE_TICKET",
    "SINGLE_USE_SCHEDULE_TICKET",
    "SINGLE_USE_APPOINTMENTS_SCHEDULE_TICKET",
]
# The reference's Ticket fields, plus notBefore, useCount and lastUsedAt (SPEC section 4).
TICKET_FIELDS = {
    "createdAt",
    "disabled",
    "expired",
    "expiresAt",
    "id",
    "organizationId",
    "properties",
    "revoked",
    "type",
    "userId",
    "version",
    "notBefore",
    "useCount",
    "lastUsedAt",
}


class FakeClock:
    """A settable stand-in for tickets.core.clock.utcnow."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock(monkeypatch):
    """The service's clock, frozen at T0 and moved by the test."""
    fake = FakeClock(T0)
    monkeypatch.setattr("tickets.core.clock.utcnow", fake)
    return fake


@pytest.fixture
def data_dir(tmp_path):
    """A fresh data folder for one test."""
    return tmp_path / "data"


@pytest.fixture(scope="session")
def signing_key() -> tuple[str, dict]:
    """One RS256 signing key for the whole run, as tickets/oauth/keys.py stores it: (kid, record).

    Making an RSA-2048 key costs tens of milliseconds, and nearly every test starts an app: the tests
    that are not about keys share this one. Tests of keys (rotation, ES256, first start) make their own.
    """
    key = RSAKey.generate_key(2048, parameters={"use": "sig", "alg": "RS256"}, auto_kid=True)
    record = {"jwk": key.as_dict(private=True), "alg": "RS256", "created": service_clock.timestamp(), "retired": None}
    return key.kid, record


def seed_signing_key(data_dir, signing_key: tuple[str, dict]) -> None:
    """Put a signing key into a data folder's key store, so that the app starting on it makes none."""
    kid, record = signing_key
    storage = open_storage(str(data_dir))
    try:
        storage.keys.put(kid, copy.deepcopy(record))
    finally:
        storage.close()


@pytest.fixture
def make_app(signing_key):
    """A factory of apps (TESTING) on a data folder holding the session's signing key; keywords are settings."""

    def build(data_dir, **config):
        seed_signing_key(data_dir, signing_key)
        return create_app({"TESTING": True, "TICKETS_DATA_DIR": str(data_dir), **config})

    return build


@pytest.fixture
def app(request, data_dir, make_app):
    """The app on a fresh data folder; a test that moves the clock has it frozen before anything is made."""
    if "clock" in request.fixturenames:
        request.getfixturevalue("clock")
    return make_app(data_dir)


@pytest.fixture
def test_client(app):
    """Flask's HTTP test client (`client` would be ambiguous beside OAuth clients)."""
    return app.test_client()


@pytest.fixture
def services(app):
    """The app's service objects (repository, registry, keys)."""
    with app.app_context():
        yield current_services()


def make_client(app, name="staff", org=ORG, scope="global") -> dict:
    """Register an OAuth client and return its credentials, as `clients create` prints them."""
    with app.app_context():
        return current_services().clients.create(name, org, scope)


def fetch_token(test_client, credentials: dict) -> str:
    """A client-credentials access token, by client_secret_basic."""
    response = test_client.post(
        "/security/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(credentials["client_id"], credentials["client_secret"]),
    )
    assert response.status_code == 200, response.json
    return response.json["access_token"]


def bearer(token: str) -> dict:
    """Authorization headers for a bearer token."""
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def oauth_client(app) -> dict:
    """Credentials of an organization's client with scope global."""
    return make_client(app)


@pytest.fixture
def system_client(app) -> dict:
    """Credentials of a system client (no organization)."""
    return make_client(app, name="system", org=None)


@pytest.fixture
def auth(test_client, oauth_client) -> dict:
    """Bearer headers of the organization's client."""
    return bearer(fetch_token(test_client, oauth_client))


@pytest.fixture
def system_auth(test_client, system_client) -> dict:
    """Bearer headers of the system client."""
    return bearer(fetch_token(test_client, system_client))


@pytest.fixture
def create_ticket(test_client, auth):
    """Create a ticket through the API (org client by default); returns the response JSON."""

    def create(ticket_type="MULTI_USE_TICKET", properties=None, headers=None, **fields):
        body = {"type": ticket_type, "properties": properties if properties is not None else {}, **fields}
        response = test_client.post("/security/ticket", json=body, headers=headers or auth)
        assert response.status_code == 200, response.json
        return response.json

    return create


def exchange(test_client, ticket_id: str, **extra):
    """POST the ticket grant, form-encoded."""
    return test_client.post("/security/oauth/token", data={"grant_type": "ticket", "ticket": ticket_id, **extra})


@pytest.fixture(scope="session")
def postgres_admin_url():
    """A PostgreSQL server for the whole run: TICKETS_TEST_DATABASE_URL, else a temporary local one.

    Skipped where PostgreSQL is not installed, except in CI, whose .ci/run installs it.
    """
    from tests.postgres import TempPostgres, find_bindir

    if os.environ.get("TICKETS_TEST_DATABASE_URL"):
        yield os.environ["TICKETS_TEST_DATABASE_URL"]
        return
    bindir = find_bindir()
    if bindir is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed; .ci/run should have installed it")
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    server = TempPostgres(bindir)
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def database_url(postgres_admin_url):
    """A fresh, empty database for one test."""
    from tests.postgres import create_database

    return create_database(postgres_admin_url)


def protocol_mismatches(implementation, protocol) -> list[str]:
    """How `implementation` fails to satisfy the typing.Protocol `protocol` structurally: each method the Protocol
    declares must exist and take the same parameters (names, kinds, defaults). Empty when it satisfies it."""
    problems = []
    for name, declared in vars(protocol).items():
        if name.startswith("_") or not inspect.isfunction(declared):
            continue
        method = getattr(implementation, name, None)
        if not callable(method):
            problems.append(f"{type(implementation).__name__} has no method {name}")
            continue
        wanted = parameter_shape(list(inspect.signature(declared).parameters.values())[1:])  # without self
        given = parameter_shape(list(inspect.signature(method).parameters.values()))
        if given != wanted:
            problems.append(f"{type(implementation).__name__}.{name} takes {given}, the Protocol {wanted}")
    return problems


def parameter_shape(parameters: list[inspect.Parameter]) -> list[tuple]:
    """What callers rely on of parameters: names, kinds, and which have a default."""
    return [(param.name, param.kind.name, param.default is inspect.Parameter.empty) for param in parameters]
