"""authlib's authorization server: the token endpoint and introspection, reading parameters body-first."""

from __future__ import annotations

import base64
import binascii
from functools import cached_property
from urllib.parse import unquote

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.integrations.flask_oauth2.requests import FlaskOAuth2Payload, FlaskOAuth2Request
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749.errors import InsecureTransportError
from flask import Flask, current_app
from flask import request as flask_request
from werkzeug.datastructures import CombinedMultiDict

from tickets.oauth.grants import ClientCredentialsGrant, TicketGrant, generate_client_token
from tickets.oauth.introspection import Introspection, authenticate_bearer_client
from tickets.oauth.revocation import Revocation
from tickets.oauth.services import EXTENSION, OAuthServices, oauth_services
from tickets.oauth.throttle import peer_address


class BodyFirstPayload(FlaskOAuth2Payload):
    """Token parameters from the form body or, as existing clients send them, the query string; the body wins."""

    @cached_property  # authlib asks for it several times a request
    def data(self):
        return CombinedMultiDict([self._request.form, self._request.args])


class TokenRequest(FlaskOAuth2Request):
    """authlib's request, with our rule for plain http (SPEC section 11) instead of authlib's, which trusts
    the Host header and builds the full URL for it on every request."""

    def __init__(self, request):
        if not transport_is_secure(request):
            raise InsecureTransportError()
        # What OAuth2Request.__init__ sets, without its transport check.
        self.method, self.uri, self.headers, self._body = request.method, request.path, request.headers, None
        self.client = self.auth_method = self.user = self.credential = None
        self.authorization_code = self.refresh_token = self._scope = None
        self._request = request
        self.payload = BodyFirstPayload(request)

    @property
    def form(self):
        return self.payload.data


def transport_is_secure(request) -> bool:
    """https (the request's own, or a configured proxy's word for it); plain http only from a loopback peer
    with no proxy in between, or with TICKETS_ALLOW_HTTP=1. Never decided by the Host header."""
    if request.scheme == "https":
        return True
    config = current_app.config
    if config["TICKETS_ALLOW_HTTP"]:
        return True
    return not config["TICKETS_PROXY_FIX"] and is_loopback(request.remote_addr)


def is_loopback(address: str | None) -> bool:
    parsed = peer_address(address)
    return parsed is not None and parsed.is_loopback


class TicketAuthorizationServer(AuthorizationServer):
    """authlib's server, reading parameters body-first; errors while reading the request are RFC 6749 errors too."""

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


def find_client(client_id):
    return oauth_services().clients.find(client_id)


def authenticate_basic(query_client, request):
    """client_secret_basic: credentials that cannot be decoded (not base64, not UTF-8, no colon), an unknown
    client and a wrong secret all give None, so the client hears the same invalid_client (401) for each."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        client_id, secret = base64.b64decode(value.strip(), validate=True).decode("utf-8").split(":", 1)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return _checked(query_client(unquote(client_id)), unquote(secret))


def authenticate_post(query_client, request):
    """client_secret_post, with the same answer for an unknown client as for a wrong secret."""
    client_id, secret = request.form.get("client_id"), request.form.get("client_secret")
    if not client_id or not secret:
        return None
    return _checked(query_client(client_id), secret)


def _checked(client, secret: str):
    return client if client is not None and secret and client.check_client_secret(secret) else None


# Module-level singletons (authlib's pattern); grants and endpoints find the app's services per request.
authorization = TicketAuthorizationServer(query_client=find_client, save_token=lambda token, request: None)
authorization.register_grant(ClientCredentialsGrant)
authorization.register_grant(TicketGrant)
authorization.register_client_auth_method("client_secret_basic", authenticate_basic)
authorization.register_client_auth_method("client_secret_post", authenticate_post)
authorization.register_client_auth_method("bearer_token", authenticate_bearer_client)
authorization.register_endpoint(Introspection)
authorization.register_endpoint(Revocation)


def init_oauth(app: Flask, services: OAuthServices) -> None:
    """Bind authlib's server to the app; init_app installs a default generator, so ours goes after it."""
    app.extensions[EXTENSION] = services
    authorization.init_app(app)
    authorization.register_token_generator("default", generate_client_token)
