"""The OAuth2 endpoints: token and introspection (authlib answers), the public keys and the RFC 8414 metadata."""

from __future__ import annotations

from flask import Flask, current_app
from flask_smorest import Blueprint

from schemas.oauth import (
    GRANT_TYPES,
    IntrospectionRequestSchema,
    IntrospectionSchema,
    JwksSchema,
    MetadataSchema,
    RevocationRequestSchema,
    TokenRequestSchema,
    TokenResponseSchema,
)
from tickets.context import current_services
from tickets.core import scopes
from tickets.http.docs import ANYONE, CLIENT, errors, oauth_errors
from tickets.oauth.server import authorization

blp = Blueprint("oauth", __name__, url_prefix="/security", description="OAuth2 tokens, keys and metadata.")
NO_STORE = {
    "Cache-Control": {"description": "no-store (RFC 6749 section 5.1).", "schema": {"type": "string"}},
    "Pragma": {"description": "no-cache.", "schema": {"type": "string"}},
}

FORM = "application/x-www-form-urlencoded"


def form_body(schema) -> dict:
    """A form-encoded request body that authlib reads itself (so documented, not parsed, here)."""
    return {"required": True, "content": {FORM: {"schema": schema}}}


@blp.route("/oauth/token", methods=["POST"])
@blp.doc(operationId="issueToken", requestBody=form_body(TokenRequestSchema), security=ANYONE)
@blp.response(200, TokenResponseSchema, headers=NO_STORE)
@oauth_errors(blp, 400, 401, 429)
def issue_token():
    """Get an access token

    Open to anyone: grant_type=ticket with ticket=<id> needs no client authentication (the ticket is the
    credential); grant_type=client_credentials authenticates the client in the body (client_id and
    client_secret, client_secret_post) or with HTTP Basic (client_secret_basic). Parameters may also come
    in the query string; the body wins.
    """
    return authorization.create_token_response()


@blp.route("/oauth/introspect", methods=["POST"])
@blp.doc(operationId="introspectToken", requestBody=form_body(IntrospectionRequestSchema),
         security=[*CLIENT, {"bearerAuth": []}])
@blp.response(200, IntrospectionSchema, headers=NO_STORE)
@oauth_errors(blp, 400, 401, 403)
def introspect_token():
    """Introspect a token

    RFC 7662, for clients with scope global, authenticated as at the token endpoint or by their own
    bearer token (whose scope must include global). A token of another organization is inactive.
    """
    return authorization.create_endpoint_response("introspection")


@blp.route("/oauth/revoke", methods=["POST"])
@blp.doc(operationId="revokeToken", requestBody=form_body(RevocationRequestSchema), security=CLIENT)
@blp.response(200, description="Revoked, or nothing to revoke: the answer is the same, with no body.",
              headers=NO_STORE)
@oauth_errors(blp, 400, 401, 403)
def revoke_token():
    """Revoke a token

    RFC 7009, for clients with scope global: the token (of the caller's organization; any, for a system
    client) is refused everywhere from now on, until it would have expired.
    """
    return authorization.create_endpoint_response("revocation")


@blp.route("/.well-known/jwks.json")
@blp.doc(operationId="getJwks", security=ANYONE)
@blp.response(200, JwksSchema)
@errors(blp, 400, 503, e400="The Host header is not a trusted host.")
def jwks():
    """Public signing keys

    The JWKS that verifies every token this service signs (RS256 or ES256, by kid).
    """
    return current_services().keys.jwks()


def server_metadata() -> dict:
    """RFC 8414 metadata, every URL derived from the configured issuer."""
    issuer = current_app.config["TICKETS_ISSUER"]
    return {
        "issuer": issuer,
        "token_endpoint": f"{issuer}/oauth/token",
        "introspection_endpoint": f"{issuer}/oauth/introspect",
        "revocation_endpoint": f"{issuer}/oauth/revoke",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "grant_types_supported": GRANT_TYPES,
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        # Registered names only (RFC 8414): a client's own bearer token also works, as the API documents.
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "scopes_supported": list(scopes.ALL),
    }


@blp.route("/.well-known/oauth-authorization-server")
@blp.doc(operationId="getAuthorizationServerMetadata", security=ANYONE)
@blp.response(200, MetadataSchema)
@errors(blp, 400, e400="The Host header is not a trusted host.")
def metadata():
    """Authorization server metadata

    RFC 8414: the issuer, the endpoints, grant types and authentication methods. Also served at the
    RFC's own place for an issuer with a path, /.well-known/oauth-authorization-server/security.
    """
    return server_metadata()


def init_root_metadata(app: Flask) -> None:
    """RFC 8414 section 3: for an issuer with a path, the metadata also lives at /.well-known/...<path>
    (outside the API document: the same operation as getAuthorizationServerMetadata)."""
    app.add_url_rule("/.well-known/oauth-authorization-server/security", "root_metadata", server_metadata)
