"""The Ticket v1.0 management API under /security/ticket: views parse, call the service, return the object."""

from __future__ import annotations

import json

from flask import Response, redirect, request, url_for
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
from tickets import metrics
from tickets.context import current_services
from tickets.core import calendar, clock, scopes
from tickets.oauth.protection import current_caller, require_oauth


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
BEARER = [{"bearerAuth": []}, {"oauth2": [scopes.MANAGE]}]
BEARER_OR_OWN_TICKET = [*BEARER, {"bearerAuth": [scopes.TICKET]}]
ETAG_HEADER = {"ETag": {"description": "The ticket's version, for If-Match.", "schema": {"type": "string"}}}
IF_MATCH = {
    "in": "header",
    "name": "If-Match",
    "required": False,
    "schema": {"type": "string"},
    "description": "Apply only if the ticket's ETag still matches (412 otherwise).",
}


def etag(ticket) -> dict:
    """The ETag header of a ticket: its version, quoted."""
    return {"ETag": f'"{ticket.version}"'}


def version_check():
    """A predicate on the stored version from If-Match, or None when any version will do."""
    if not request.if_match or request.if_match.star_tag:
        return None
    return lambda version: request.if_match.contains(str(version))


@blp.route("")
class Tickets(MethodView):
    decorators = [require_oauth(scopes.MANAGE)]

    @blp.doc(security=BEARER)
    @blp.arguments(CreateTicketWebCommandSchema())
    @blp.response(200, TicketSchema, headers={**ETAG_HEADER, "Location": {"schema": {"type": "string"}}})
    def post(self, command):
        """Create a ticket"""
        ticket = current_services().tickets.issue_ticket(current_caller(), command)
        metrics.TICKETS_CREATED.labels(ticket.type.value).inc()
        return ticket, {**etag(ticket), "Location": url_for("tickets.TicketById", ticketId=ticket.id)}

    @blp.doc(security=BEARER)
    @blp.arguments(TicketQueryArgsSchema(), location="query")
    @blp.response(200, TicketSchema(many=True))
    @blp.paginate()
    def get(self, filters, pagination_parameters):
        """List tickets"""
        page = current_services().tickets.list_tickets(
            current_caller(), filters.get("type"), filters.get("status"), filters.get("organizationId"),
            offset=pagination_parameters.first_item, limit=pagination_parameters.page_size,
        )
        pagination_parameters.item_count = page.total
        return page.tickets


@blp.route("/<ticketId>")
class TicketById(MethodView):
    @require_oauth([scopes.MANAGE, scopes.TICKET])
    @blp.doc(security=BEARER_OR_OWN_TICKET)
    @blp.response(200, TicketSchema, headers=ETAG_HEADER)
    def get(self, ticketId):
        """Get a ticket."""
        ticket = current_services().tickets.get_ticket(current_caller(), ticketId)
        return ticket, etag(ticket)

    @require_oauth(scopes.MANAGE)  # outermost: a caller without a token learns nothing from validation
    @blp.doc(security=BEARER, parameters=[IF_MATCH])
    @blp.arguments(UpdateTicketWebCommandSchema())
    @blp.response(200, TicketSchema, headers=ETAG_HEADER)
    @blp.alt_response(412, response="DEFAULT_ERROR", description="If-Match does not match.")
    def put(self, command, ticketId):
        """Update a ticket"""
        ticket = current_services().tickets.update_ticket(current_caller(), ticketId, command, version_check())
        return ticket, etag(ticket)

    @require_oauth(scopes.MANAGE)
    @blp.doc(security=BEARER, parameters=[IF_MATCH])
    @blp.response(204)
    def delete(self, ticketId):
        """Delete a ticket."""
        current_services().tickets.delete_ticket(current_caller(), ticketId, version_check())


def _state_change(name: str, summary: str, operation: str):
    """POST /<id>/<name>: an idempotent state change answering 204."""

    @blp.route(f"/<ticketId>/{name}", methods=["POST"], endpoint=f"ticket_{name}")
    @require_oauth(scopes.MANAGE)
    @blp.doc(security=BEARER, summary=summary)
    @blp.response(204)
    def view(ticketId):
        getattr(current_services().tickets, operation)(current_caller(), ticketId)

    view.__doc__ = summary
    return view


disable = _state_change("disable", "Disable a ticket", "disable_ticket")
enable = _state_change("enable", "Enable a ticket", "enable_ticket")
revoke = _state_change("revoke", "Revoke a ticket", "revoke_ticket")


@blp.route("/<ticketId>/event")
@require_oauth([scopes.MANAGE, scopes.TICKET])
@blp.doc(security=BEARER_OR_OWN_TICKET)
@blp.arguments(EventQueryArgsSchema(), location="query")
@blp.response(200, content_type="text/calendar", description="The iCalendar file.")
@blp.alt_response(302, description="Redirect to the provider's add-event page.")
def ticket_event(args, ticketId):
    """Add to calendar"""
    ticket = current_services().tickets.get_ticket(current_caller(), ticketId)
    link = f"{_join_base()}/t/{ticket.id}"
    choice = args["calendar"]
    if choice == "google":
        return redirect(calendar.google_calendar_url(ticket, link), 302)
    if choice == "outlook":
        return redirect(calendar.outlook_calendar_url(ticket, link), 302)
    # Not JSON, so a Response of its own: flask-smorest passes it through as it is.
    return Response(
        calendar.ticket_event(ticket, link, clock.utcnow()),
        content_type="text/calendar; charset=utf-8",
        headers={"Content-Disposition": f"attachment; filename={ticket.id}.ics"},
    )


def _join_base() -> str:
    """<proto>://<host> of the join link: only a trusted Host, only http or https."""
    proto = request.headers.get("X-Forwarded-Proto", request.scheme).strip().lower()
    if proto not in ("http", "https"):
        abort(400, message="X-Forwarded-Proto must be http or https.")
    return f"{proto}://{request.host}"
