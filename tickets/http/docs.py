"""What the OpenAPI document says beyond the schemas: who may call, and every error an operation answers.

Developers generate clients from the document (SPEC section 9), so each operation lists exactly the
statuses it can answer, each with its body: the API's error shape, or RFC 6749's on the OAuth endpoints.
"""

from __future__ import annotations

from flask_smorest import Blueprint

from schemas.oauth import OAuthErrorSchema
from tickets.core import scopes

# Security requirements: the oauth2 scheme carries the scopes (an http bearer scheme takes none);
# bearerAuth is the same token pasted by hand (Swagger UI's Authorize).
ANYONE: list = []
STAFF = [{"oauth2": [scopes.MANAGE]}, {"bearerAuth": []}]
STAFF_OR_OWN_TICKET = [{"oauth2": [scopes.MANAGE]}, {"oauth2": [scopes.TICKET]}, {"bearerAuth": []}]
CLIENT = [{"basicAuth": []}]

ERRORS = {
    400: "The request cannot be read (malformed JSON, a Host that is not trusted, a bad header).",
    401: "A valid bearer token is required.",
    403: "The token does not grant the scope, or names another organization.",
    404: "No such ticket (also: another organization's, used up, or past retention).",
    409: "The ticket's state forbids it.",
    412: "If-Match names another version than the ticket's.",
    413: "The body is over 64 KiB.",
    422: "The body or query does not validate.",
    503: "Storage is unavailable; nothing was changed.",
}
OAUTH_ERRORS = {
    400: "RFC 6749 error (invalid_request, invalid_grant with the refusal, unsupported_grant_type, ...).",
    401: "Client authentication failed (invalid_client).",
    403: "The client lacks scope global (insufficient_scope).",
    429: "Too many failed exchanges from this address (slow_down); see Retry-After.",
}
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait (1-60).", "schema": {"type": "integer"}}}


def errors(blp: Blueprint, *statuses: int, **descriptions: str):
    """Document the API's error answers of an operation (a decorator); descriptions override by 'e409=...'."""

    def decorate(view):
        for status in reversed(statuses):
            description = descriptions.get(f"e{status}", ERRORS[status])
            view = blp.alt_response(status, response="DEFAULT_ERROR", description=description)(view)
        return view

    return decorate


def oauth_errors(blp: Blueprint, *statuses: int):
    """Document the RFC 6749 error answers of an OAuth endpoint (a decorator); a body too large (413) and
    storage trouble (503) answer in the API's own shape, as everywhere."""

    def decorate(view):
        view = errors(blp, 413, 503)(view)
        for status in reversed(statuses):
            headers = RETRY_AFTER if status == 429 else None
            view = blp.alt_response(
                status, schema=OAuthErrorSchema, description=OAUTH_ERRORS[status], headers=headers
            )(view)
        return view

    return decorate
