"""The service objects of one app, kept in `app.extensions` and found from any request or command."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import current_app

if TYPE_CHECKING:  # the types only: this module sits below every layer that asks for the services
    from tickets.core.service import TicketService
    from tickets.oauth.clients import ClientRegistry
    from tickets.oauth.keys import KeyRing
    from tickets.oauth.throttle import ExchangeThrottle
    from tickets.oauth.tokens import TokenSigner
    from tickets.storage import Storage

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


def current_services() -> Services:
    """The services of the app handling this request or command."""
    return current_app.extensions[EXTENSION]
