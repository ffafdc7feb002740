"""authlib's authorization server: the token endpoint and introspection, reading parameters body-first."""

from __future__ import annotations

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.integrations.flask_oauth2.requests import FlaskOAuth2Payload, FlaskOAuth2Request
from authlib.oauth2 import OAuth2Error
from flask import Flask
from flask import request as flask_request
from werkzeug.datastructures import CombinedMultiDict

from tickets.oauth.grants import ClientCredentialsGrant, TicketGrant, generate_client_token
from tickets.oauth.introspection import Introspection, authenticate_bearer_client
from tickets.oauth.services import EXTENSION, OAuthServices, oauth_services


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


# Module-level singletons (authlib's pattern); grants and endpoints find the app's services per request.
authorization = TicketAuthorizationServer(query_client=find_client, save_token=lambda token, request: None)
authorization.register_grant(ClientCredentialsGrant)
authorization.register_grant(TicketGrant)
authorization.register_client_auth_method("bearer_token", authenticate_bearer_client)
authorization.register_endpoint(Introspection)


def init_oauth(app: Flask, services: OAuthServices) -> None:
    """Bind authlib's server to the app; init_app installs a default generator, so ours goes after it."""
    app.extensions[EXTENSION] = services
    authorization.init_app(app)
    authorization.register_token_generator("default", generate_client_token)
