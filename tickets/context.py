"""The service objects of one app, built from its config and kept in `app.extensions`."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app

from tickets.clients import ClientRegistry
from tickets.domain import Policy
from tickets.keys import KeyRing
from tickets.service import TicketService
from tickets.storage import Storage, open_storage
from tickets.throttle import ExchangeThrottle


@dataclass
class Services:
    """Everything a request needs, in one place."""

    tickets: TicketService
    clients: ClientRegistry
    keys: KeyRing
    throttle: ExchangeThrottle
    storage: Storage


def build_services(config) -> Services:
    """Open (and check) the store and wire the services on it."""
    storage = open_storage(config["TICKETS_DATA_DIR"], config["TICKETS_DATABASE_URL"])
    policy = Policy(
        ticket_ttl=config["TICKETS_TICKET_TTL"],
        early_join=config["TICKETS_EARLY_JOIN"],
        schedule_grace=config["TICKETS_SCHEDULE_GRACE"],
        retention=config["TICKETS_RETENTION"],
    )
    max_token_ttl = max(config["TICKETS_TOKEN_TTL"], config["TICKETS_TICKET_TOKEN_TTL"])
    keys = KeyRing(storage.keys, config["TICKETS_ISSUER"], config["TICKETS_JWT_ALG"], max_token_ttl)
    keys.ensure_key()
    storage.tickets.prepare()
    return Services(
        tickets=TicketService(
            storage.tickets, policy,
            consumed_ttl=config["TICKETS_TICKET_TOKEN_TTL"], purge_interval=config["TICKETS_PURGE_INTERVAL"],
        ),
        clients=ClientRegistry(storage.clients),
        keys=keys,
        throttle=ExchangeThrottle(storage.throttle, config["TICKETS_EXCHANGE_FAILURES_PER_MINUTE"]),
        storage=storage,
    )


def init_services(app: Flask) -> None:
    app.extensions["tickets"] = build_services(app.config)


def current_services() -> Services:
    return current_app.extensions["tickets"]
