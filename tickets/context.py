"""The service objects of one app, kept in `app.extensions` for the HTTP views and the CLI."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from tickets.core.service import TicketService
from tickets.oauth.clients import ClientRegistry
from tickets.oauth.keys import KeyRing
from tickets.oauth.services import OAuthServices
from tickets.oauth.throttle import ExchangeThrottle
from tickets.oauth.tokens import TokenSigner
from tickets.storage import Storage
from tickets.webhooks.deliverer import Deliverer
from tickets.webhooks.endpoints import WebhookRegistry

EXTENSION = "tickets"


@dataclass
class Services:
    """Everything a request needs, in one place (built by app.build_services)."""

    tickets: TicketService
    clients: ClientRegistry
    keys: KeyRing
    tokens: TokenSigner
    throttle: ExchangeThrottle
    storage: Storage
    webhooks: WebhookRegistry
    deliverer: Deliverer

    def for_oauth(self) -> OAuthServices:
        """The part the OAuth layer uses (see tickets.oauth.services)."""
        return OAuthServices(self.tickets, self.clients, self.keys, self.tokens, self.throttle, self.storage.revoked)


def current_services() -> Services:
    """The services of the app handling this request or command."""
    return current_app.extensions[EXTENSION]
