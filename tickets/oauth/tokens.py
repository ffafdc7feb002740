"""Our access tokens: the claims of the two kinds (SPEC section 5), authlib's token model, the ticket token issuer."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable

from authlib.oauth2.rfc6749 import TokenMixin

from tickets.core import clock, scopes
from tickets.core.domain import Ticket
from tickets.oauth.keys import KeyRing


def client_token_claims(client, scope: str, issuer: str, now: int, ttl: int) -> dict:
    """A client-credentials token: sub and client_id are the client; org only for an organization's client."""
    claims = {
        "iss": issuer,
        "sub": client.client_id,
        "client_id": client.client_id,
        "scope": scope,
        "iat": now,
        "exp": now + ttl,
        "jti": secrets.token_urlsafe(16),
    }
    if client.organization_id:
        claims["org"] = client.organization_id
    return claims


def ticket_token_claims(ticket: Ticket, issuer: str, now: int, ttl: int) -> dict:
    """A customer's token from a ticket: sub is the ticket's user, scope is 'ticket'."""
    return {
        "iss": issuer,
        "sub": ticket.user_id,
        "org": ticket.organization_id,
        "scope": scopes.TICKET,
        "ticket": ticket.id,
        "ticket_type": ticket.type.value,
        "properties": ticket.properties,
        "iat": now,
        "exp": now + ttl,
        "jti": secrets.token_urlsafe(16),
    }


def token_response(access_token: str, claims: dict) -> dict:
    """The RFC 6749 section 5.1 body."""
    return {
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": claims["exp"] - claims["iat"],
        "scope": claims["scope"],
    }


SIGNATURE_BYTES = {"RS256": 256, "ES256": 64}  # RSA-2048 and P-256 signatures


def _b64_length(size: int) -> int:
    """Characters of unpadded base64url for `size` bytes."""
    return (size * 4 + 2) // 3


class TokenSigner:
    """Makes both kinds of token; the ticket service is given it as its TokenIssuer."""

    def __init__(self, keys: KeyRing, issuer: str, client_ttl: int, ticket_ttl: int):
        self.keys = keys
        self.issuer = issuer
        self.client_ttl = client_ttl
        self.ticket_ttl = ticket_ttl

    def ticket_token(self, ticket: Ticket) -> dict:
        """A customer's token for `ticket`."""
        claims = ticket_token_claims(ticket, self.issuer, int(clock.timestamp()), self.ticket_ttl)
        return token_response(self.keys.sign(claims), claims)

    def ticket_token_length(self, ticket: Ticket) -> int:
        """The length of `ticket`'s token: header, claims (as joserfc encodes them) and signature, in base64url."""
        claims = ticket_token_claims(ticket, self.issuer, int(clock.timestamp()), self.ticket_ttl)
        payload = json.dumps(claims, ensure_ascii=False, separators=(",", ":")).encode()
        header = self.keys.header()
        signature = SIGNATURE_BYTES[header["alg"]]
        header = json.dumps(header, separators=(",", ":"))
        return _b64_length(len(header)) + 1 + _b64_length(len(payload)) + 1 + _b64_length(signature)

    def client_token(self, client, scope: str) -> dict:
        """A client-credentials token with the granted `scope`."""
        claims = client_token_claims(client, scope, self.issuer, int(clock.timestamp()), self.client_ttl)
        return token_response(self.keys.sign(claims), claims)


class AccessToken(dict, TokenMixin):
    """The verified claims of one of our JWTs, as authlib's token model.

    `stands(claims)` says whether the token still stands (its client or ticket may be gone since).
    """

    def __init__(self, claims: dict, stands: Callable[[dict], bool]):
        super().__init__(claims)
        self._stands = stands

    def check_client(self, client):
        return self.get("client_id") == client.get_client_id()

    def get_scope(self):
        return self.get("scope", "")

    def get_expires_in(self):
        return self["exp"] - self["iat"]

    def is_expired(self):
        return self["exp"] < clock.timestamp()

    def is_revoked(self):
        return not self._stands(self)

    @property
    def is_ticket_token(self) -> bool:
        return "ticket" in self and "client_id" not in self
