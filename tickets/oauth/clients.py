"""The OAuth2 client registry: generated secrets, stored only as keyed hashes."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from authlib.oauth2.rfc6749 import ClientMixin
from authlib.oauth2.rfc6749.util import scope_to_list

from tickets.core import clock, scopes
from tickets.core.ports import RecordStore
from tickets.core.rules import is_organization_id
from tickets.oauth.freshness import Freshness

GRANT_TYPES = ("client_credentials",)
AUTH_METHODS = ("client_secret_basic", "client_secret_post")
# Scope tokens per RFC 6749 section 3.3: printable ASCII without space, quote or backslash.
SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")
MAX_CACHED = 10_000  # clients kept in memory per worker; unknown ids count too, so guesses cannot grow it


class ClientNotFound(LookupError):
    """No client with this id."""


def hash_secret(secret: str, salt: str) -> str:
    """HMAC-SHA-256: secrets carry 256 random bits, so a fast keyed hash is right (no slow KDF)."""
    return hmac.new(salt.encode(), secret.encode(), hashlib.sha256).hexdigest()


def check_scope(scope: str) -> str:
    """A scope string of space-separated RFC 6749 tokens, normalized; raises ValueError."""
    tokens = scope.split()
    if not tokens or not all(SCOPE_TOKEN.match(token) for token in tokens):
        raise ValueError(f"invalid scope {scope!r}")
    if scopes.TICKET in tokens:
        raise ValueError(f"scope {scopes.TICKET!r} is reserved for tokens exchanged from tickets")
    return " ".join(dict.fromkeys(tokens))


class Client(ClientMixin):
    """A registered client as authlib sees it."""

    def __init__(self, client_id: str, record: dict):
        self.client_id = client_id
        self.name = record["name"]
        self.organization_id = record.get("organizationId")
        self.scope = record["scope"]
        self._salt = record["salt"]
        self._secret_hash = record["secretHash"]

    def get_client_id(self):
        return self.client_id

    def get_default_redirect_uri(self):
        return None

    def get_allowed_scope(self, scope):
        if not scope:
            return self.scope
        allowed = set(scope_to_list(self.scope))
        return " ".join(token for token in scope_to_list(scope) if token in allowed)

    def check_redirect_uri(self, redirect_uri):
        return False

    def check_client_secret(self, client_secret):
        return hmac.compare_digest(hash_secret(client_secret, self._salt), self._secret_hash)

    def check_endpoint_auth_method(self, method, endpoint):
        return method in AUTH_METHODS or method == "bearer_token" and endpoint == "introspection"

    def check_response_type(self, response_type):
        return False

    def check_grant_type(self, grant_type):
        return grant_type in GRANT_TYPES

    def public(self) -> dict:
        return {
            "client_id": self.client_id,
            "name": self.name,
            "organizationId": self.organization_id,
            "scope": self.scope,
        }


class ClientRegistry:
    """Create, find, rotate and delete clients in a record repository; found clients are kept in memory
    while the records stay the same (see tickets.oauth.freshness)."""

    def __init__(self, records: RecordStore):
        self.records = records
        self._found: dict[str, Client | None] = {}
        self._freshness = Freshness(records)

    def find(self, client_id: str) -> Client | None:
        if not isinstance(client_id, str) or not client_id:
            return None
        if self._freshness.stale() or len(self._found) >= MAX_CACHED:
            self._found.clear()
        if client_id not in self._found:
            record = self.records.get(client_id)
            self._found[client_id] = Client(client_id, record) if record else None
        return self._found[client_id]

    def create(self, name: str, organization_id: str | None, scope: str) -> dict:
        """Register a client; returns its public fields with the secret, shown only this once."""
        if organization_id is not None and not is_organization_id(organization_id):
            raise ValueError(f"invalid organization id {organization_id!r}")
        client_id = secrets.token_hex(16)
        secret = secrets.token_urlsafe(32)
        salt = secrets.token_hex(16)
        record = {
            "name": name,
            "organizationId": organization_id,
            "scope": check_scope(scope),
            "salt": salt,
            "secretHash": hash_secret(secret, salt),
            "createdAt": clock.timestamp(),
        }
        self.records.put(client_id, record)
        self._freshness.expire()
        return _credentials(Client(client_id, record), secret)

    def rotate_secret(self, client_id: str) -> dict:
        """A new secret for an existing client; the old one stops working at once."""
        with self.records.locked():
            record = self.records.get(client_id)
            if record is None:
                raise ClientNotFound(client_id)
            secret = secrets.token_urlsafe(32)
            salt = secrets.token_hex(16)
            record.update(salt=salt, secretHash=hash_secret(secret, salt))
            self.records.put(client_id, record)
        self._freshness.expire()
        return _credentials(Client(client_id, record), secret)

    def delete(self, client_id: str) -> None:
        deleted = self.records.delete(client_id)
        self._freshness.expire()
        if not deleted:
            raise ClientNotFound(client_id)

    def list(self) -> list[dict]:
        return [Client(client_id, record).public() for client_id, record in sorted(self.records.all().items())]


def _credentials(client: Client, secret: str) -> dict:
    return {
        "client_id": client.client_id,
        "client_secret": secret,
        "organizationId": client.organization_id,
        "scope": client.scope,
    }
