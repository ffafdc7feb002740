"""The application factory: `flask --app app ...` and `wsgi.py` both start here."""

from __future__ import annotations

from flask import Flask, request
from werkzeug.middleware.proxy_fix import ProxyFix

from tickets import cli
from tickets.config import load_settings
from tickets.context import EXTENSION, Services
from tickets.core.domain import Policy
from tickets.core.service import TicketService
from tickets.http import health, join, oauth
from tickets.http import tickets as tickets_api
from tickets.http.api import API_SETTINGS, TicketApi, init_error_handlers
from tickets.http.headers import init_headers
from tickets.http.logmask import MaskedPathMiddleware, init_log_masking, mask_ids
from tickets.http.observability import init_observability, request_log
from tickets.http.swagger import init_swagger_assets
from tickets.oauth.clients import ClientRegistry
from tickets.oauth.keys import KeyRing
from tickets.oauth.server import init_oauth
from tickets.oauth.throttle import ExchangeThrottle
from tickets.oauth.tokens import TokenSigner
from tickets.storage import open_storage
from tickets.webhooks.deliverer import Deliverer
from tickets.webhooks.endpoints import WebhookRegistry

MAX_BODY = 64 * 1024


class TicketFlask(Flask):
    """Flask whose log of an unexpected error names the path with ticket ids masked (they are secrets)."""

    def log_exception(self, exc_info) -> None:
        self.logger.error("Exception on %s [%s]", mask_ids(request.path), request.method, exc_info=exc_info)


def create_app(config: dict | None = None) -> Flask:
    """Build the app: settings from TICKETS_* (overridden by `config`), storage checked, routes wired."""
    app = TicketFlask(__name__, template_folder="tickets/http/templates", static_folder="tickets/http/static")
    app.config.update(API_SETTINGS, MAX_CONTENT_LENGTH=MAX_BODY)
    app.config.update(config or {})
    app.config.update(load_settings(config))
    app.config["OPENAPI_SWAGGER_UI_CONFIG"] = {"persistAuthorization": bool(app.config["TICKETS_SWAGGER_PERSIST_AUTH"])}
    # The same allow-list guards every request's Host, not only the calendar's join links.
    app.config["TRUSTED_HOSTS"] = app.config["TICKETS_TRUSTED_HOSTS"]
    app.wsgi_app = MaskedPathMiddleware(app.wsgi_app)
    if app.config["TICKETS_PROXY_FIX"]:
        hops = app.config["TICKETS_PROXY_FIX"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=0, x_port=0, x_prefix=0)

    services = app.extensions[EXTENSION] = build_services(app.config)
    init_oauth(app, services.for_oauth())
    api = TicketApi(app)
    for blueprint in (tickets_api.blp, oauth.blp, health.blp):
        api.register_blueprint(blueprint)
    oauth.init_root_metadata(app)
    if app.config["TICKETS_JOIN_PAGE"]:
        app.register_blueprint(join.blp)
    init_observability(app)
    init_log_masking(app.logger, request_log)
    init_error_handlers(app, api)
    init_swagger_assets(app)
    init_headers(app)
    cli.init_app(app)
    return app


def build_services(config, keep_tickets: bool = True) -> Services:
    """Open (and check) the store and wire the services on it (`keep_tickets`: see open_storage)."""
    storage = open_storage(
        config["TICKETS_DATA_DIR"], config["TICKETS_DATABASE_URL"],
        throttle_limit=config["TICKETS_EXCHANGE_FAILURES_PER_MINUTE"], fold_bytes=config["TICKETS_FOLD_BYTES"],
        keep_tickets=keep_tickets,
    )
    policy = Policy(
        ticket_ttl=config["TICKETS_TICKET_TTL"],
        early_join=config["TICKETS_EARLY_JOIN"],
        schedule_grace=config["TICKETS_SCHEDULE_GRACE"],
        retention=config["TICKETS_RETENTION"],
    )
    max_token_ttl = max(config["TICKETS_TOKEN_TTL"], config["TICKETS_TICKET_TOKEN_TTL"])
    keys = KeyRing(storage.keys, config["TICKETS_ISSUER"], config["TICKETS_JWT_ALG"], max_token_ttl)
    keys.ensure_key()
    tokens = TokenSigner(
        keys, config["TICKETS_ISSUER"],
        client_ttl=config["TICKETS_TOKEN_TTL"], ticket_ttl=config["TICKETS_TICKET_TOKEN_TTL"],
    )
    webhooks = WebhookRegistry(storage.webhooks, config["TICKETS_WEBHOOK_SECRET_OVERLAP"])
    tickets = TicketService(
        storage.tickets, policy, tokens,
        consumed_ttl=config["TICKETS_TICKET_TOKEN_TTL"], purge_interval=config["TICKETS_PURGE_INTERVAL"],
        events=webhooks,
    )
    return Services(
        tickets=tickets,
        clients=ClientRegistry(storage.clients),
        keys=keys,
        tokens=tokens,
        throttle=ExchangeThrottle(storage.throttle, config["TICKETS_EXCHANGE_FAILURES_PER_MINUTE"]),
        storage=storage,
        webhooks=webhooks,
        deliverer=Deliverer(storage.outbox, webhooks, config["TICKETS_WEBHOOK_TIMEOUT"]),
    )
