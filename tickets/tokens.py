"""The claims of the two kinds of access token (SPEC section 5), as plain functions."""

from __future__ import annotations

import secrets

from tickets.domain import Ticket

TICKET_SCOPE = "ticket"


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
        "scope": TICKET_SCOPE,
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
