"""What the OAuth endpoints and the bearer protection use, bound to each app by init_oauth.

authlib's server and resource protector are module-level singletons shared by every app (tests
build several), so their hooks find the objects of the app serving the request here.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from tickets.core.ports import RevocationStore
from tickets.core.service import TicketService
from tickets.oauth.clients import ClientRegistry
from tickets.oauth.keys import KeyRing
from tickets.oauth.throttle import ExchangeThrottle
from tickets.oauth.tokens import TokenSigner

EXTENSION = "tickets.oauth"


@dataclass(frozen=True)
class OAuthServices:
    """The registry, keys, signer, throttle and revoked tokens of one app, and its ticket service (for the exchange)."""

    tickets: TicketService
    clients: ClientRegistry
    keys: KeyRing
    tokens: TokenSigner
    throttle: ExchangeThrottle
    revocations: RevocationStore


def oauth_services() -> OAuthServices:
    """Those of the app handling this request."""
    return current_app.extensions[EXTENSION]
