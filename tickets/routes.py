"""The Ticket v1.0 management API under /security/ticket."""

from __future__ import annotations

import json

from flask import Response, make_response, redirect, request, url_for
from flask.views import MethodView
from flask_smorest import Blueprint, abort
from webargs.flaskparser import FlaskParser

from schemas.ticket import (
    CreateTicketWebCommandSchema,
    EventQueryArgsSchema,
    TicketQueryArgsSchema,
    TicketSchema,
    UpdateTicketWebCommandSchema,
)
from tickets import calendar, clock
from tickets.auth import MANAGE_SCOPE, TICKET_SCOPE, current_caller, require_oauth
from tickets.context import current_services
from tickets.domain import (
    ForeignOrganization,
    InvalidTicket,
    TicketNotFound,
    TicketRevoked,
    VersionConflict,
    WrongTicketType,
)
from tickets.observability import TICKETS_CREATED


class BodyParser(FlaskParser):
    """webargs' parser, for which every unparsable JSON body (say an integer too long to convert) is a 400."""

    def _raw_load_json(self, req):
        try:
            return super()._raw_load_json(req)
        except json.JSONDecodeError:
            raise
        except (ValueError, RecursionError) as error:
            raise json.JSONDecodeError(str(error), "<body>", 0) from None


class TicketBlueprint(Blueprint):
    """flask-smorest's Blueprint with that parser, documenting X-Pagination as the JSON string it is."""

    ARGUMENTS_PARSER = BodyParser()

    def _document_pagination_metadata(self, spec, resp_doc):
        resp_doc.setdefault("headers", {})[self.PAGINATION_HEADER_NAME] = {
            "description": "JSON object: total, total_pages, first_page, last_page, page, previous_page, next_page.",
            "schema": {"type": "string"},
        }


blp = TicketBlueprint(
    "tickets",
    __name__,
    url_prefix="/security/ticket",
    description="Manage tickets, which give customers safe, short-lived API access.",
)
BEARER = [{"bearerAuth": []}, {"oauth2": [MANAGE_SCOPE]}]
ETAG_HEADER = {"ETag": {"description": "The ticket's version, for If-Match.", "schema": {"type": "string"}}}
IF_MATCH = {
    "in": "header",
    "name": "If-Match",
    "required": False,
    "schema": {"type": "string"},
    "description": "Apply only if the ticket's ETag still matches (412 otherwise).",
}
DOMAIN_ERRORS = {
    TicketNotFound: (404, "No such ticket."),
    TicketRevoked: (409, "The ticket is revoked; it cannot be changed or enabled."),
    WrongTicketType: (409, "Only scheduled tickets have a calendar event."),
    VersionConflict: (412, "The ticket has changed since the ETag given in If-Match."),
    ForeignOrganization: (403, "A client may only act on its own organization."),
}


def etag(ticket) -> str:
    return f'"{ticket.version}"'


def version_check():
    """A predicate on the stored version from If-Match, or None when any version will do."""
    if not request.if_match or request.if_match.star_tag:
        return None
    return lambda version: request.if_match.contains(str(version))


def call(operation, *args, **kwargs):
    """Run a service operation, turning domain refusals into HTTP errors."""
    try:
        return operation(*args, **kwargs)
    except InvalidTicket as invalid:
        abort(422, errors={"json": invalid.errors})
    except tuple(DOMAIN_ERRORS) as error:
        status, message = DOMAIN_ERRORS[type(error)]
        abort(status, message=message)


TICKET_SCHEMA = TicketSchema()  # building a schema costs more than dumping one ticket


def with_etag(ticket, status: int = 200):
    response = make_response(TICKET_SCHEMA.dump(ticket), status)
    response.headers["ETag"] = etag(ticket)
    return response


@blp.route("")
class Tickets(MethodView):
    decorators = [require_oauth(MANAGE_SCOPE)]

    @blp.doc(security=BEARER)
    @blp.arguments(CreateTicketWebCommandSchema)
    @blp.response(200, TicketSchema, headers={**ETAG_HEADER, "Location": {"schema": {"type": "string"}}})
    def post(self, command):
        """Create a ticket"""
        ticket = call(current_services().tickets.issue_ticket, current_caller(), command)
        TICKETS_CREATED.labels(ticket.type.value).inc()
        response = with_etag(ticket)
        response.headers["Location"] = url_for("tickets.TicketById", ticketId=ticket.id)
        return response

    @blp.doc(security=BEARER)
    @blp.arguments(TicketQueryArgsSchema, location="query")
    @blp.response(200, TicketSchema(many=True))
    @blp.paginate()
    def get(self, filters, pagination_parameters):
        """List tickets"""
        found = current_services().tickets.list_tickets(
            current_caller(), filters.get("type"), filters.get("status"), filters.get("organizationId")
        )
        pagination_parameters.item_count = len(found)
        return found[pagination_parameters.first_item : pagination_parameters.last_item + 1]


@blp.route("/<ticketId>")
class TicketById(MethodView):
    @require_oauth([MANAGE_SCOPE, TICKET_SCOPE])
    @blp.doc(security=[*BEARER, {"bearerAuth": [TICKET_SCOPE]}])
    @blp.response(200, TicketSchema, headers=ETAG_HEADER)
    def get(self, ticketId):
        """Get a ticket."""
        return with_etag(call(current_services().tickets.get_ticket, current_caller(), ticketId))

    @require_oauth(MANAGE_SCOPE)  # outermost: a caller without a token learns nothing from validation
    @blp.doc(security=BEARER, parameters=[IF_MATCH])
    @blp.arguments(UpdateTicketWebCommandSchema)
    @blp.response(200, TicketSchema, headers=ETAG_HEADER)
    @blp.alt_response(412, response="DEFAULT_ERROR", description="If-Match does not match.")
    def put(self, command, ticketId):
        """Update a ticket"""
        ticket = call(current_services().tickets.update_ticket, current_caller(), ticketId, command, version_check())
        return with_etag(ticket)

    @require_oauth(MANAGE_SCOPE)
    @blp.doc(security=BEARER, parameters=[IF_MATCH])
    @blp.response(204)
    def delete(self, ticketId):
        """Delete a ticket."""
        call(current_services().tickets.delete_ticket, current_caller(), ticketId, version_check())


def _state_change(name: str, summary: str, operation: str):
    """POST /<id>/<name>: an idempotent state change answering 204."""

    @blp.route(f"/<ticketId>/{name}", methods=["POST"], endpoint=f"ticket_{name}")
    @require_oauth(MANAGE_SCOPE)
    @blp.doc(security=BEARER, summary=summary)
    @blp.response(204)
    def view(ticketId):
        call(getattr(current_services().tickets, operation), current_caller(), ticketId)

    view.__doc__ = summary
    return view


disable = _state_change("disable", "Disable a ticket", "disable_ticket")
enable = _state_change("enable", "Enable a ticket", "enable_ticket")
revoke = _state_change("revoke", "Revoke a ticket", "revoke_ticket")


@blp.route("/<ticketId>/event")
@require_oauth([MANAGE_SCOPE, TICKET_SCOPE])
@blp.doc(security=[*BEARER, {"bearerAuth": [TICKET_SCOPE]}])
@blp.arguments(EventQueryArgsSchema, location="query")
@blp.response(200, content_type="text/calendar", description="The iCalendar file.")
@blp.alt_response(302, description="Redirect to the provider's add-event page.")
def ticket_event(args, ticketId):
    """Add to calendar"""
    ticket = call(current_services().tickets.get_ticket, current_caller(), ticketId)
    link = f"{_join_base()}/t/{ticket.id}"
    choice = args["calendar"]
    if choice == "google":
        return redirect(call(calendar.google_calendar_url, ticket, link), 302)
    if choice == "outlook":
        return redirect(call(calendar.outlook_calendar_url, ticket, link), 302)
    body = call(calendar.ticket_event, ticket, link, clock.utcnow())
    response = Response(body, mimetype="text/calendar")
    response.headers["Content-Type"] = "text/calendar; charset=utf-8"
    response.headers["Content-Disposition"] = f"attachment; filename={ticket.id}.ics"
    return response


def _join_base() -> str:
    """<proto>://<host> of the join link: only a trusted Host, only http or https."""
    proto = request.headers.get("X-Forwarded-Proto", request.scheme).strip().lower()
    if proto not in ("http", "https"):
        abort(400, message="X-Forwarded-Proto must be http or https.")
    return f"{proto}://{request.host}"
