"""Schemas of the OAuth2 endpoints: the token form and response, RFC 6749 errors, RFC 7662 introspection."""

from marshmallow import INCLUDE, Schema, fields, validate

GRANT_TYPES = ["client_credentials", "ticket"]


class TokenRequestSchema(Schema):
    """The token endpoint's form (RFC 6749 section 4.4, and grant_type=ticket); other parameters are ignored."""

    class Meta:
        unknown = INCLUDE

    grant_type = fields.String(required=True, validate=validate.OneOf(GRANT_TYPES))
    ticket = fields.String(metadata={"description": "grant_type=ticket: the ticket id."})
    scope = fields.String(metadata={"description": "client_credentials: default is the client's scope."})
    client_id = fields.String(metadata={"description": "client_secret_post."})
    client_secret = fields.String(metadata={"description": "client_secret_post."})


class IntrospectionRequestSchema(Schema):
    """RFC 7662 section 2.1; other parameters are ignored."""

    class Meta:
        unknown = INCLUDE

    token = fields.String(required=True)
    token_type_hint = fields.String()


class RevocationRequestSchema(Schema):
    """RFC 7009 section 2.1; other parameters are ignored."""

    class Meta:
        unknown = INCLUDE

    token = fields.String(required=True)
    token_type_hint = fields.String(metadata={"description": "Ignored: every token here is an access token."})


class TokenResponseSchema(Schema):
    """RFC 6749 section 5.1."""

    access_token = fields.String(required=True)
    token_type = fields.String(required=True)
    expires_in = fields.Integer(required=True)
    scope = fields.String()


class OAuthErrorSchema(Schema):
    """RFC 6749 section 5.2."""

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


class JwkSchema(Schema):
    """One public key (RFC 7517): RSA (n, e) or EC P-256 (crv, x, y)."""

    class Meta:
        unknown = INCLUDE

    kty = fields.String(required=True, validate=validate.OneOf(["RSA", "EC"]))
    kid = fields.String(required=True)
    use = fields.String()
    alg = fields.String(validate=validate.OneOf(["RS256", "ES256"]))
    n = fields.String()
    e = fields.String()
    crv = fields.String()
    x = fields.String()
    y = fields.String()


class JwksSchema(Schema):
    """RFC 7517 section 5: the published keys."""

    keys = fields.List(fields.Nested(JwkSchema), required=True)


class MetadataSchema(Schema):
    """RFC 8414 section 2 (the fields this server publishes)."""

    class Meta:
        unknown = INCLUDE

    issuer = fields.String(required=True)
    token_endpoint = fields.String(required=True)
    introspection_endpoint = fields.String()
    revocation_endpoint = fields.String()
    jwks_uri = fields.String(required=True)
    grant_types_supported = fields.List(fields.String())
    response_types_supported = fields.List(fields.String(), required=True)
    token_endpoint_auth_methods_supported = fields.List(fields.String())
    introspection_endpoint_auth_methods_supported = fields.List(fields.String())
    revocation_endpoint_auth_methods_supported = fields.List(fields.String())
    scopes_supported = fields.List(fields.String())
