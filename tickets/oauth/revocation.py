"""RFC 7009 token revocation: staff stop a token before its time (a used single-use ticket's, say)."""

from __future__ import annotations

from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oauth2.rfc6749.util import scope_to_list
from authlib.oauth2.rfc6750 import InsufficientScopeError
from authlib.oauth2.rfc7009 import RevocationEndpoint

from tickets.core import scopes
from tickets.oauth.protection import read_token
from tickets.oauth.services import oauth_services

NO_STORE = [("Cache-Control", "no-store"), ("Pragma", "no-cache")]


class Revocation(RevocationEndpoint):
    """For clients with scope global, authenticated as at the token endpoint; a token of the caller's own
    organization (any, for a system client) is revoked on every worker and node until it would have expired.
    The answer is 200 with an empty body whether or not anything was revoked: it tells nothing about tokens."""

    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def authenticate_endpoint_client(self, request):
        client = super().authenticate_endpoint_client(request)
        if scopes.MANAGE not in scope_to_list(client.scope):
            raise InsufficientScopeError()
        return client

    def check_params(self, request, client):
        """Only `token` is required; an unknown token_type_hint is ignored (RFC 7009 section 2.1)."""
        if "token" not in request.form:
            raise InvalidRequestError("Missing 'token' parameter.")

    def authenticate_token(self, request, client):
        self.check_params(request, client)
        token = read_token(request.form["token"])
        if token is None or token.is_expired():
            return None
        if client.organization_id is not None and token.get("org") != client.organization_id:
            return None  # another organization's token (or a system client's) is left alone
        return token

    def revoke_token(self, token, request):
        oauth_services().revocations.revoke(token["jti"], float(token["exp"]))

    def create_endpoint_response(self, request):
        status, _, _ = super().create_endpoint_response(request)
        return status, "", NO_STORE
