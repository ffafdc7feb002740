"""RFC 7662 introspection, for clients with scope global (authenticated as at the token endpoint, or by bearer)."""

from __future__ import annotations

from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oauth2.rfc6749.util import scope_to_list
from authlib.oauth2.rfc6750 import InsufficientScopeError
from authlib.oauth2.rfc7662 import IntrospectionEndpoint

from tickets.core import scopes
from tickets.oauth.protection import read_token


def authenticate_bearer_client(query_client, request):
    """Introspection may also be called with the client's own access token."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value:
        return None
    token = read_token(value.strip())
    if token is None or token.is_ticket_token or token.is_expired() or token.is_revoked():
        return None
    request.bearer_scope = token.get_scope()  # the token's own scope decides, not only the client's
    return query_client(token.get("client_id"))


class Introspection(IntrospectionEndpoint):
    """Inactive for anything we would not accept on the API."""

    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "bearer_token"]

    def authenticate_endpoint_client(self, request):
        client = super().authenticate_endpoint_client(request)
        granted = getattr(request, "bearer_scope", None) if request.auth_method == "bearer_token" else client.scope
        if scopes.MANAGE not in scope_to_list(granted or ""):
            raise InsufficientScopeError()
        return client

    def check_params(self, request, client):
        """Only `token` is required; RFC 7662 says an unknown token_type_hint is ignored, not refused."""
        if "token" not in request.form:
            raise InvalidRequestError("Missing 'token' parameter.")

    def query_token(self, token_string, token_type_hint):
        return read_token(token_string)

    def check_permission(self, token, client, request):
        """A system client may introspect every token; an organization's client only its organization's
        (another organization's, or a system client's, is {"active": false}, as RFC 7662 section 2.2 allows)."""
        return client.organization_id is None or token.get("org") == client.organization_id

    def introspect_token(self, token):
        return {**token, "active": True, "token_type": "Bearer"}
