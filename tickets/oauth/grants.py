"""The token endpoint's two grants: client credentials, and the ticket exchange (grant_type=ticket)."""

from __future__ import annotations

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import InvalidGrantError, InvalidRequestError, InvalidScopeError, grants
from authlib.oauth2.rfc6749.util import scope_to_list
from flask import g
from flask import request as flask_request

from tickets import metrics
from tickets.core import clock
from tickets.core.domain import ExchangeRefused
from tickets.oauth.services import oauth_services

TOKEN_HEADERS = [("Content-Type", "application/json"), ("Cache-Control", "no-store"), ("Pragma", "no-cache")]


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
        services = oauth_services()
        address = flask_request.remote_addr or "unknown"
        wait = services.throttle.retry_after(address, clock.timestamp())
        if wait:
            metrics.THROTTLED.inc()
            raise TooManyFailures(wait)
        try:
            exchange = services.tickets.exchange_ticket(self.request.payload.data["ticket"])
        except ExchangeRefused as refused:
            services.throttle.record_failure(address, clock.timestamp())
            metrics.EXCHANGES.labels(refused.ticket_type or "unknown", refused.reason.value).inc()
            raise InvalidGrantError(refused.reason.value) from None
        metrics.EXCHANGES.labels(exchange.ticket.type.value, "success").inc()
        metrics.TOKENS_ISSUED.labels(self.GRANT_TYPE).inc()
        g.organization = exchange.ticket.organization_id  # for the request log
        return 200, exchange.token, self.TOKEN_RESPONSE_HEADER


def generate_client_token(grant_type, client, user=None, scope=None, expires_in=None, include_refresh_token=True):
    """authlib's token generator hook, used by the client-credentials grant: a signed JWT."""
    token = oauth_services().tokens.client_token(client, client.get_allowed_scope(scope))
    g.client_id, g.organization = client.client_id, client.organization_id  # for the request log
    metrics.TOKENS_ISSUED.labels(grant_type).inc()
    return token
