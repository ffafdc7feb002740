"""Bearer protection of the API: our JWTs verified, then checked against the live registry on every request."""

from __future__ import annotations

from authlib.integrations.flask_oauth2 import ResourceProtector
from authlib.oauth2.rfc6749.util import scope_to_list
from authlib.oauth2.rfc6750 import BearerTokenValidator, InsufficientScopeError
from flask import g
from flask import request as flask_request
from flask_smorest import abort

from tickets.core import scopes
from tickets.core.service import Caller
from tickets.oauth.keys import InvalidToken
from tickets.oauth.services import oauth_services
from tickets.oauth.tokens import AccessToken


def token_stands(claims: dict) -> bool:
    """A token revoked (RFC 7009), of a deleted client, or of a ticket revoked, disabled or deleted since,
    no longer stands."""
    services = oauth_services()
    if services.revocations.is_revoked(claims.get("jti", "")):
        return False
    if "ticket" in claims:
        return services.tickets.ticket_token_active(claims["ticket"], claims["iat"])
    return services.clients.find(claims.get("client_id")) is not None


def read_token(token_string: str) -> AccessToken | None:
    """The claims of a token we signed and that is in its time, else None."""
    try:
        return AccessToken(oauth_services().keys.verify(token_string), token_stands)
    except InvalidToken:
        return None


class JWTBearerValidator(BearerTokenValidator):
    def authenticate_token(self, token_string):
        return read_token(token_string)


class BearerRequest:
    """What bearer validation reads of a request: its headers (authlib's wrapper also builds the full URL)."""

    def __init__(self, headers):
        self.headers = headers


class TicketResourceProtector(ResourceProtector):
    """Bearer protection whose errors take the API's JSON shape: 401 for any bad token, 403 for scope."""

    def acquire_token(self, scopes=None, **kwargs):
        token = self.validate_request(scopes=[scopes] if isinstance(scopes, str) else scopes,
                                      request=BearerRequest(flask_request.headers))
        g.authlib_server_oauth2_token = token
        return token

    def raise_error_response(self, error):
        if isinstance(error, InsufficientScopeError):
            abort(403, message="This token does not grant the required scope.")
        headers = {"WWW-Authenticate": 'Bearer realm="tickets", error="invalid_token"'}
        if error.error == "missing_authorization":
            headers["WWW-Authenticate"] = 'Bearer realm="tickets"'
        abort(401, message="A valid bearer token is required.", headers=headers)


require_oauth = TicketResourceProtector()
require_oauth.register_token_validator(JWTBearerValidator())


def current_caller() -> Caller:
    """Who the verified token of this request speaks for."""
    token = g.authlib_server_oauth2_token
    if token.is_ticket_token:
        return Caller(client_id=None, organization_id=token.get("org"), ticket_id=token["ticket"])
    if scopes.MANAGE not in scope_to_list(token.get_scope()):
        abort(403, message="This token does not grant the required scope.")
    return Caller(client_id=token["client_id"], organization_id=token.get("org"))
