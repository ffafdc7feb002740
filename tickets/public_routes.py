"""The endpoints without a bearer token: OAuth2 token and introspection, keys, metadata, health."""

from __future__ import annotations

from flask import current_app, jsonify
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import INCLUDE, Schema, fields

from tickets.auth import authorization
from tickets.context import current_services
from tickets.storage import StorageError

blp = Blueprint("oauth", __name__, url_prefix="/security", description="OAuth2 tokens, keys and service health.")
# RFC 8414 section 3: for an issuer with a path, the metadata also lives at /.well-known/...<path>.
root_blp = Blueprint("well_known", __name__, description="RFC 8414 metadata at the root.")

FORM = "application/x-www-form-urlencoded"
TOKEN_FORM = {
    "type": "object",
    "required": ["grant_type"],
    "properties": {
        "grant_type": {"type": "string", "enum": ["client_credentials", "ticket"]},
        "ticket": {"type": "string", "description": "grant_type=ticket: the ticket id."},
        "scope": {"type": "string", "description": "client_credentials: default is the client's scope."},
        "client_id": {"type": "string", "description": "client_secret_post."},
        "client_secret": {"type": "string", "description": "client_secret_post."},
    },
}
INTROSPECT_FORM = {
    "type": "object",
    "required": ["token"],
    "properties": {"token": {"type": "string"}, "token_type_hint": {"type": "string"}},
}


class TokenResponseSchema(Schema):
    access_token = fields.String(required=True)
    token_type = fields.String(required=True)
    expires_in = fields.Integer(required=True)
    scope = fields.String()


class OAuthErrorSchema(Schema):
    error = fields.String(required=True)
    error_description = fields.String()
    error_uri = fields.String()


class IntrospectionSchema(Schema):
    """RFC 7662 section 2.2: `active`, and for an active token its claims (ticket tokens carry more)."""

    class Meta:
        unknown = INCLUDE

    active = fields.Boolean(required=True)
    token_type = fields.String()
    scope = fields.String()
    client_id = fields.String()
    sub = fields.String()
    iss = fields.String()
    exp = fields.Integer()
    iat = fields.Integer()
    jti = fields.String()
    org = fields.String()
    ticket = fields.String()
    ticket_type = fields.String()
    properties = fields.Dict()


class HealthSchema(Schema):
    status = fields.String(required=True)
    message = fields.String()


def form_body(schema: dict) -> dict:
    return {"required": True, "content": {FORM: {"schema": schema}}}


@blp.route("/oauth/token", methods=["POST"])
@blp.doc(requestBody=form_body(TOKEN_FORM), security=[{}, {"basicAuth": []}])
@blp.response(200, TokenResponseSchema)
@blp.alt_response(400, schema=OAuthErrorSchema, description="RFC 6749 error; invalid_grant carries the refusal.")
@blp.alt_response(401, schema=OAuthErrorSchema, description="Client authentication failed.")
@blp.alt_response(429, schema=OAuthErrorSchema, description="Too many failed exchanges; see Retry-After.")
def issue_token():
    """Get an access token (client credentials, or a ticket)"""
    return authorization.create_token_response()


@blp.route("/oauth/introspect", methods=["POST"])
@blp.doc(requestBody=form_body(INTROSPECT_FORM), security=[{"basicAuth": []}, {"bearerAuth": []}])
@blp.response(200, IntrospectionSchema)
@blp.alt_response(400, schema=OAuthErrorSchema, description="RFC 6749 error.")
@blp.alt_response(401, schema=OAuthErrorSchema, description="Client authentication failed.")
@blp.alt_response(403, schema=OAuthErrorSchema, description="The client lacks scope global.")
def introspect_token():
    """Introspect a token (RFC 7662)"""
    return authorization.create_endpoint_response("introspection")


@blp.route("/.well-known/jwks.json")
@blp.response(200, description="The public signing keys.")
def jwks():
    """Public signing keys"""
    return jsonify(current_services().keys.jwks())


def server_metadata() -> dict:
    """RFC 8414 metadata, every URL derived from the configured issuer."""
    issuer = current_app.config["TICKETS_ISSUER"]
    return {
        "issuer": issuer,
        "token_endpoint": f"{issuer}/oauth/token",
        "introspection_endpoint": f"{issuer}/oauth/introspect",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "grant_types_supported": ["client_credentials", "ticket"],
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "bearer"],
        "scopes_supported": ["global", "ticket"],
    }


@blp.route("/.well-known/oauth-authorization-server")
@blp.response(200, description="RFC 8414 authorization server metadata.")
def metadata():
    """Authorization server metadata"""
    return jsonify(server_metadata())


@root_blp.route("/.well-known/oauth-authorization-server/security")
@root_blp.response(200, description="RFC 8414 authorization server metadata.")
def root_metadata():
    """Authorization server metadata (RFC 8414 location)"""
    return jsonify(server_metadata())


@blp.route("/health")
class Health(MethodView):
    @blp.response(200, HealthSchema)
    @blp.alt_response(503, schema=HealthSchema, description="Storage is not readable.")
    def get(self):
        """Service health"""
        try:
            current_services().storage.check()
        except StorageError as error:
            return {"status": "unavailable", "message": str(error)}, 503
        return {"status": "ok"}
