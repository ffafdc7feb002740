"""OAuth2 with authlib: the token endpoint's grants, introspection, and bearer protection of the API."""

from __future__ import annotations

import time

from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector
from authlib.integrations.flask_oauth2.requests import FlaskOAuth2Payload, FlaskOAuth2Request
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import (
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    TokenMixin,
    grants,
)
from authlib.oauth2.rfc6749.util import scope_to_list
from authlib.oauth2.rfc6750 import BearerTokenValidator, InsufficientScopeError
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from flask import Flask, current_app, g
from flask import request as flask_request
from flask_smorest import abort
from werkzeug.datastructures import CombinedMultiDict

from tickets.context import current_services
from tickets.domain import ExchangeRefused
from tickets.keys import InvalidToken
from tickets.observability import EXCHANGES, THROTTLED, TOKENS_ISSUED
from tickets.service import Caller
from tickets.tokens import TICKET_SCOPE, client_token_claims, ticket_token_claims, token_response

MANAGE_SCOPE = "global"
TOKEN_HEADERS = [("Content-Type", "application/json"), ("Cache-Control", "no-store"), ("Pragma", "no-cache")]


class AccessToken(dict, TokenMixin):
    """The verified claims of one of our JWTs, as authlib's token model."""

    def check_client(self, client):
        return self.get("client_id") == client.get_client_id()

    def get_scope(self):
        return self.get("scope", "")

    def get_expires_in(self):
        return self["exp"] - self["iat"]

    def is_expired(self):
        return self["exp"] < time.time()

    def is_revoked(self):
        """A token of a deleted client, or of a ticket revoked, disabled or deleted since, no longer stands."""
        services = current_services()
        if "ticket" in self:
            return not services.tickets.ticket_token_active(self["ticket"], self["iat"])
        return services.clients.find(self.get("client_id")) is None

    @property
    def is_ticket_token(self) -> bool:
        return "ticket" in self and "client_id" not in self


def read_token(token_string: str) -> AccessToken | None:
    """The claims of a token we signed and that is in its time, else None."""
    try:
        return AccessToken(current_services().keys.verify(token_string))
    except InvalidToken:
        return None


class BodyFirstPayload(FlaskOAuth2Payload):
    """Token parameters from the form body or, as existing clients send them, the query string; the body wins."""

    @property
    def data(self):
        return CombinedMultiDict([self._request.form, self._request.args])


class TokenRequest(FlaskOAuth2Request):
    def __init__(self, request):
        super().__init__(request)
        self.payload = BodyFirstPayload(request)

    @property
    def form(self):
        return self.payload.data


class TicketAuthorizationServer(AuthorizationServer):
    """authlib's server, reading parameters body-first and answering with our token generator."""

    def create_oauth2_request(self, request):
        return TokenRequest(flask_request)

    def create_token_response(self, request=None):
        try:
            return super().create_token_response(request)
        except OAuth2Error as error:  # raised while reading the request, e.g. insecure transport
            return self.handle_error_response(None, error)

    def create_endpoint_response(self, name, request=None):
        try:
            return super().create_endpoint_response(name, request)
        except OAuth2Error as error:
            return self.handle_error_response(None, error)


class TooManyFailures(OAuth2Error):
    """An address that keeps guessing tickets waits (HTTP 429 with Retry-After)."""

    error = "slow_down"
    status_code = 429

    def __init__(self, retry_after: int):
        super().__init__(description=f"Too many failed exchanges from this address; retry in {retry_after} s.")
        self.retry_after = retry_after

    def get_headers(self):
        return super().get_headers() + [("Retry-After", str(self.retry_after))]


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    """Client credentials with secret_basic or secret_post; scope defaults to the client's own."""

    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]
    TOKEN_RESPONSE_HEADER = TOKEN_HEADERS

    def validate_token_request(self):
        super().validate_token_request()
        requested = set(scope_to_list(self.request.payload.scope) or [])
        if requested - set(scope_to_list(self.client.scope)):
            raise InvalidScopeError()


class TicketGrant(grants.BaseGrant, grants.TokenEndpointMixin):
    """grant_type=ticket: the ticket is the credential, so no client authentication."""

    GRANT_TYPE = "ticket"
    TOKEN_RESPONSE_HEADER = TOKEN_HEADERS

    def validate_token_request(self):
        if not self.request.payload.data.get("ticket"):
            raise InvalidRequestError("Missing 'ticket' parameter.")

    def create_token_response(self):
        services = current_services()
        address = flask_request.remote_addr or "unknown"
        wait = services.throttle.retry_after(address, time.time())
        if wait:
            THROTTLED.inc()
            raise TooManyFailures(wait)
        try:
            ticket, token = services.tickets.exchange_ticket(self.request.payload.data["ticket"], self._issue)
        except ExchangeRefused as refused:
            services.throttle.record_failure(address, time.time())
            EXCHANGES.labels(refused.ticket_type or "unknown", refused.reason.value).inc()
            raise InvalidGrantError(refused.reason.value) from None
        EXCHANGES.labels(ticket.type.value, "success").inc()
        return 200, token, self.TOKEN_RESPONSE_HEADER

    def _issue(self, ticket):
        """The ticket and its token, made inside the locked change that uses it."""
        return ticket, self.generate_token(user=ticket, scope=TICKET_SCOPE, include_refresh_token=False)


def generate_token(grant_type, client, user=None, scope=None, expires_in=None, include_refresh_token=True):
    """authlib's token generator hook: a signed JWT for either grant."""
    config = current_app.config
    services = current_services()
    now = int(time.time())
    if grant_type == TicketGrant.GRANT_TYPE:
        claims = ticket_token_claims(user, config["TICKETS_ISSUER"], now, config["TICKETS_TICKET_TOKEN_TTL"])
    else:
        granted = client.get_allowed_scope(scope)
        claims = client_token_claims(client, granted, config["TICKETS_ISSUER"], now, config["TICKETS_TOKEN_TTL"])
    g.client_id, g.organization = claims.get("client_id"), claims.get("org")  # for the request log
    TOKENS_ISSUED.labels(grant_type).inc()
    return token_response(services.keys.sign(claims), claims)


def authenticate_bearer_client(query_client, request):
    """Introspection may also be called with the client's own access token."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value:
        return None
    token = read_token(value.strip())
    if token is None or token.is_ticket_token or token.is_expired():
        return None
    return query_client(token.get("client_id"))


class Introspection(IntrospectionEndpoint):
    """RFC 7662 for clients with scope global; inactive for anything we would not accept."""

    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "bearer_token"]

    def authenticate_endpoint_client(self, request):
        client = super().authenticate_endpoint_client(request)
        if MANAGE_SCOPE not in scope_to_list(client.scope):
            raise InsufficientScopeError()
        return client

    def check_params(self, request, client):
        """Only `token` is required; RFC 7662 says an unknown token_type_hint is ignored, not refused."""
        if "token" not in request.form:
            raise InvalidRequestError("Missing 'token' parameter.")

    def query_token(self, token_string, token_type_hint):
        return read_token(token_string)

    def check_permission(self, token, client, request):
        return True

    def introspect_token(self, token):
        return {**token, "active": True, "token_type": "Bearer"}


class JWTBearerValidator(BearerTokenValidator):
    def authenticate_token(self, token_string):
        return read_token(token_string)


class TicketResourceProtector(ResourceProtector):
    """Bearer protection whose errors take the API's JSON shape: 401 for any bad token, 403 for scope."""

    def raise_error_response(self, error):
        if isinstance(error, InsufficientScopeError):
            abort(403, message="This token does not grant the required scope.")
        headers = {"WWW-Authenticate": 'Bearer realm="tickets", error="invalid_token"'}
        if error.error == "missing_authorization":
            headers["WWW-Authenticate"] = 'Bearer realm="tickets"'
        abort(401, message="A valid bearer token is required.", headers=headers)


def find_client(client_id):
    return current_services().clients.find(client_id)


# Module-level singletons (authlib's pattern); grants and endpoints do not depend on the app.
authorization = TicketAuthorizationServer(query_client=find_client, save_token=lambda token, request: None)
authorization.register_grant(ClientCredentialsGrant)
authorization.register_grant(TicketGrant)
authorization.register_client_auth_method("bearer_token", authenticate_bearer_client)
authorization.register_endpoint(Introspection)
require_oauth = TicketResourceProtector()
require_oauth.register_token_validator(JWTBearerValidator())


def current_caller() -> Caller:
    """Who the verified token of this request speaks for."""
    token = g.authlib_server_oauth2_token
    if token.is_ticket_token:
        return Caller(client_id=None, organization_id=token.get("org"), ticket_id=token["ticket"])
    if MANAGE_SCOPE not in scope_to_list(token.get_scope()):
        abort(403, message="This token does not grant the required scope.")
    return Caller(client_id=token["client_id"], organization_id=token.get("org"))


def init_oauth(app: Flask) -> None:
    """Bind authlib's server to the app; init_app installs a default generator, so ours goes after it."""
    authorization.init_app(app)
    authorization.register_token_generator("default", generate_token)
