"""The OAuth2 endpoints: token and introspection (authlib answers), the public keys and the RFC 8414 metadata."""

from __future__ import annotations

from flask import current_app
from flask_smorest import Blueprint

from schemas.oauth import (
    GRANT_TYPES,
    IntrospectionRequestSchema,
    IntrospectionSchema,
    OAuthErrorSchema,
    RevocationRequestSchema,
    TokenRequestSchema,
    TokenResponseSchema,
)
from tickets.context import current_services
from tickets.core import scopes
from tickets.oauth.server import authorization

blp = Blueprint("oauth", __name__, url_prefix="/security", description="OAuth2 tokens, keys and service health.")
# RFC 8414 section 3: for an issuer with a path, the metadata also lives at /.well-known/...<path>.
root_blp = Blueprint("well_known", __name__, description="RFC 8414 metadata at the root.")

FORM = "application/x-www-form-urlencoded"


def form_body(schema) -> dict:
    """A form-encoded request body that authlib reads itself (so documented, not parsed, here)."""
    return {"required": True, "content": {FORM: {"schema": schema}}}


@blp.route("/oauth/token", methods=["POST"])
@blp.doc(requestBody=form_body(TokenRequestSchema), security=[{}, {"basicAuth": []}])
@blp.response(200, TokenResponseSchema)
@blp.alt_response(400, schema=OAuthErrorSchema, description="RFC 6749 error; invalid_grant carries the refusal.")
@blp.alt_response(401, schema=OAuthErrorSchema, description="Client authentication failed.")
@blp.alt_response(429, schema=OAuthErrorSchema, description="Too many failed exchanges; see Retry-After.")
def issue_token():
    """Get an access token (client credentials, or a ticket)"""
    return authorization.create_token_response()


@blp.route("/oauth/introspect", methods=["POST"])
@blp.doc(requestBody=form_body(IntrospectionRequestSchema), security=[{"basicAuth": []}, {"bearerAuth": []}])
@blp.response(200, IntrospectionSchema)
@blp.alt_response(400, schema=OAuthErrorSchema, description="RFC 6749 error.")
@blp.alt_response(401, schema=OAuthErrorSchema, description="Client authentication failed.")
@blp.alt_response(403, schema=OAuthErrorSchema, description="The client lacks scope global.")
def introspect_token():
    """Introspect a token (RFC 7662)"""
    return authorization.create_endpoint_response("introspection")


@blp.route("/oauth/revoke", methods=["POST"])
@blp.doc(requestBody=form_body(RevocationRequestSchema), security=[{"basicAuth": []}])
@blp.response(200, description="Revoked, or nothing to revoke: the answer is the same (RFC 7009), with no body.")
@blp.alt_response(400, schema=OAuthErrorSchema, description="RFC 6749 error.")
@blp.alt_response(401, schema=OAuthErrorSchema, description="Client authentication failed.")
@blp.alt_response(403, schema=OAuthErrorSchema, description="The client lacks scope global.")
def revoke_token():
    """Revoke a token (RFC 7009)"""
    return authorization.create_endpoint_response("revocation")


@blp.route("/.well-known/jwks.json")
@blp.response(200, description="The public signing keys.")
def jwks():
    """Public signing keys"""
    return current_services().keys.jwks()


def server_metadata() -> dict:
    """RFC 8414 metadata, every URL derived from the configured issuer."""
    issuer = current_app.config["TICKETS_ISSUER"]
    return {
        "issuer": issuer,
        "token_endpoint": f"{issuer}/oauth/token",
        "introspection_endpoint": f"{issuer}/oauth/introspect",
        "revocation_endpoint": f"{issuer}/oauth/revoke",
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "grant_types_supported": GRANT_TYPES,
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "bearer"],
        "scopes_supported": list(scopes.ALL),
    }


@blp.route("/.well-known/oauth-authorization-server")
@blp.response(200, description="RFC 8414 authorization server metadata.")
def metadata():
    """Authorization server metadata"""
    return server_metadata()


@root_blp.route("/.well-known/oauth-authorization-server/security")
@root_blp.response(200, description="RFC 8414 authorization server metadata.")
def root_metadata():
    """Authorization server metadata (RFC 8414 location)"""
    return server_metadata()
