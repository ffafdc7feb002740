"""flask-smorest's Api for the service: the OpenAPI settings, and one place that turns errors into HTTP answers."""

from __future__ import annotations

from flask import Flask
from flask_smorest import Api
from werkzeug.exceptions import default_exceptions

from tickets.core import scopes
from tickets.core.domain import (
    ForeignOrganization,
    InvalidTicket,
    TicketError,
    TicketNotFound,
    TicketRevoked,
    VersionConflict,
    WrongTicketType,
)
from tickets.core.ports import StorageError

SWAGGER_ASSETS = "/security/swagger-ui-assets/"
API_SETTINGS = {
    "API_TITLE": "Ticket",
    "API_VERSION": "1.0",
    "OPENAPI_VERSION": "3.0.3",
    "OPENAPI_URL_PREFIX": "/security",
    "OPENAPI_JSON_PATH": "openapi.json",
    "OPENAPI_SWAGGER_UI_PATH": "/swagger-ui",
    "OPENAPI_SWAGGER_UI_URL": SWAGGER_ASSETS,
    "API_SPEC_OPTIONS": {
        "info": {
            "description": "Staff software creates tickets (short random codes in a join link); a customer's "
            "browser exchanges one for a signed JWT at the token endpoint; other services verify it with the "
            "published keys. Management calls need a bearer token with scope global (client credentials).",
            "license": {"name": "Proprietary", "url": "/static/LICENSE.txt"},
            "contact": {"name": "The ticket service's operators", "url": "/security/swagger-ui"},
        },
        "servers": [{"url": "/", "description": "This service."}],
        "components": {
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "basicAuth": {"type": "http", "scheme": "basic"},
                "oauth2": {
                    "type": "oauth2",
                    "flows": {
                        "clientCredentials": {
                            "tokenUrl": "/security/oauth/token",
                            "scopes": {scopes.MANAGE: "Manage tickets.", scopes.TICKET: "A ticket's own token."},
                        }
                    },
                },
            }
        },
    },
}
# The domain's refusals, as HTTP: status and message (InvalidTicket carries field errors instead).
DOMAIN_ERRORS = {
    TicketNotFound: (404, "No such ticket."),
    TicketRevoked: (409, "The ticket is revoked; it cannot be changed or enabled."),
    WrongTicketType: (409, "Only scheduled tickets have a calendar event."),
    VersionConflict: (412, "The ticket has changed since the ETag given in If-Match."),
    ForeignOrganization: (403, "A client may only act on its own organization."),
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

    def http_error(self, status: int, **data):
        """The API's JSON error answer for `status`, as flask-smorest's abort(status, **data) would give it."""
        error = default_exceptions[status]()
        error.data = data
        return self.handle_http_exception(error)


def init_error_handlers(app: Flask, api: TicketApi) -> None:
    """Domain refusals and failures that are not HTTP errors answer JSON in the API's shape."""

    @app.errorhandler(TicketError)
    def domain_refusal(error):
        if isinstance(error, InvalidTicket):
            return api.http_error(422, errors={"json": error.errors})
        status, message = DOMAIN_ERRORS[type(error)]
        return api.http_error(status, message=message)

    @app.errorhandler(StorageError)
    def storage_unavailable(error):
        app.logger.error("storage error: %s", error)
        return api.http_error(503, message="Storage is unavailable; nothing was changed.")

    @app.errorhandler(RecursionError)
    def too_deep(error):
        return api.http_error(400, message="The body is nested too deeply.")
