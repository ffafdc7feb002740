"""The application factory: `flask --app app ...` and `wsgi.py` both start here."""

from __future__ import annotations

from flask import Flask, request, send_from_directory
from flask_smorest import Api
from swagger_ui_bundle import swagger_ui_path
from werkzeug.middleware.proxy_fix import ProxyFix

from tickets import cli
from tickets.auth import init_oauth
from tickets.config import check_settings, load_settings, parse_list
from tickets.context import init_services
from tickets.logmask import MaskedPathMiddleware, mask_path
from tickets.observability import init_observability
from tickets.public_routes import blp as public_blp
from tickets.public_routes import root_blp
from tickets.routes import blp as tickets_blp
from tickets.storage import StorageError

MAX_BODY = 64 * 1024
SWAGGER_ASSETS = "/security/swagger-ui-assets/"
API_DEFAULTS = {
    "API_TITLE": "Ticket",
    "API_VERSION": "1.0",
    "OPENAPI_VERSION": "3.0.3",
    "OPENAPI_URL_PREFIX": "/security",
    "OPENAPI_JSON_PATH": "openapi.json",
    "OPENAPI_SWAGGER_UI_PATH": "/swagger-ui",
    "OPENAPI_SWAGGER_UI_URL": SWAGGER_ASSETS,
    "OPENAPI_SWAGGER_UI_CONFIG": {"persistAuthorization": True},
    "API_SPEC_OPTIONS": {
        "info": {"description": "Manage Tickets which allow customers to safe api access."},
        "components": {
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "basicAuth": {"type": "http", "scheme": "basic"},
                "oauth2": {
                    "type": "oauth2",
                    "flows": {
                        "clientCredentials": {
                            "tokenUrl": "/security/oauth/token",
                            "scopes": {"global": "Manage tickets.", "ticket": "A ticket's own token."},
                        }
                    },
                },
            }
        },
    },
    "MAX_CONTENT_LENGTH": MAX_BODY,
}


class TicketApi(Api):
    """flask-smorest's Api, whose error bodies always say something when werkzeug has something to say."""

    def handle_http_exception(self, error):
        payload, status, headers = super().handle_http_exception(error)
        if "message" not in payload and error.description and status != 500:
            payload["message"] = error.description
        # werkzeug's own headers (Allow on a 405) would otherwise be lost.
        own = {name: value for name, value in error.get_headers() if name.lower() != "content-type"}
        return payload, status, {**own, **(headers or {})}


class TicketFlask(Flask):
    """Flask whose log of an unexpected error names the path with ticket ids masked (they are secrets)."""

    def log_exception(self, exc_info) -> None:
        self.logger.error("Exception on %s [%s]", mask_path(request.path), request.method, exc_info=exc_info)


def create_app(config: dict | None = None) -> Flask:
    """Build the app: settings from TICKETS_* (overridden by `config`), storage checked, routes wired."""
    app = TicketFlask(__name__)
    app.config.update(API_DEFAULTS)
    app.config.update(load_settings())
    app.config.update(config or {})
    if isinstance(app.config["TICKETS_TRUSTED_HOSTS"], str):
        app.config["TICKETS_TRUSTED_HOSTS"] = parse_list(app.config["TICKETS_TRUSTED_HOSTS"])
    check_settings(app.config)
    # The same allow-list guards every request's Host, not only the calendar's join links.
    app.config["TRUSTED_HOSTS"] = app.config["TICKETS_TRUSTED_HOSTS"]
    app.wsgi_app = MaskedPathMiddleware(app.wsgi_app)
    if app.config["TICKETS_PROXY_FIX"]:
        hops = app.config["TICKETS_PROXY_FIX"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=0, x_port=0, x_prefix=0)

    init_services(app)
    init_oauth(app)
    api = TicketApi(app)
    api.register_blueprint(tickets_blp)
    api.register_blueprint(public_blp)
    api.register_blueprint(root_blp)
    init_observability(app)
    init_error_handlers(app)
    init_swagger_assets(app)
    cli.init_app(app)
    return app


def init_error_handlers(app: Flask) -> None:
    """Failures that are not HTTP errors still answer JSON in the API's shape."""

    @app.errorhandler(StorageError)
    def storage_unavailable(error):
        app.logger.error("storage error: %s", error)
        return {
            "code": 503,
            "status": "Service Unavailable",
            "message": "Storage is unavailable; nothing was changed.",
        }, 503

    @app.errorhandler(RecursionError)
    def too_deep(error):
        return {"code": 400, "status": "Bad Request", "message": "The body is nested too deeply."}, 400


def init_swagger_assets(app: Flask) -> None:
    """Swagger UI's files from the swagger-ui-bundle package: no CDN, as on-prem installs are often offline."""

    @app.route(f"{SWAGGER_ASSETS}<path:filename>")
    def swagger_ui_asset(filename):
        return send_from_directory(str(swagger_ui_path), filename, max_age=86_400)
