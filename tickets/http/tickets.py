"""The Ticket v1.0 management API under /security/ticket: views parse, call the service, return the object."""

from __future__ import annotations

import json

from flask import Response, current_app, redirect, request, url_for
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
from tickets.http.docs import STAFF, STAFF_OR_OWN_TICKET, errors
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
        # The header's value is a JSON object: said with `content`, so a client parses it as JSON.
        resp_doc.setdefault("headers", {})[self.PAGINATION_HEADER_NAME] = {
            "description": "The page's place: total, total_pages, first_page, last_page, page, previous_page, "
            "next_page.",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PaginationMetadata"}}},
        }


blp = TicketBlueprint(
    "tickets",
    __name__,
    url_prefix="/security/ticket",
    description="Manage tickets, which give customers safe, short-lived API access.",
)
ETAG_HEADER = {"ETag": {"description": "The ticket's version, for If-Match.", "schema": {"type": "string"}}}
LOCATION = {"description": "Where the ticket lives.", "schema": {"type": "string", "format": "uri-reference"}}
IF_MATCH = {
    "in": "header",
    "name": "If-Match",
    "required": False,
    "schema": {"type": "string"},
    "description": "Apply only if the ticket's ETag still matches (412 otherwise); `*` matches any version.",
}
CALENDAR_FILE = {"type": "string", "description": "An RFC 5545 VCALENDAR with one VEVENT (UTF-8 text)."}
REDIRECT = {
    "Location": {"description": "The provider's add-event page.", "schema": {"type": "string", "format": "uri"}}
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

    @blp.doc(operationId="createTicket", security=STAFF)
    @blp.arguments(CreateTicketWebCommandSchema())
    @blp.response(200, TicketSchema, headers={**ETAG_HEADER, "Location": LOCATION})
    @errors(blp, 400, 401, 403, 413, 503, e403="The token lacks scope global, or names another organization.")
    def post(self, command):
        """Create a ticket

        A system client names the organization; an organization's client creates in its own. The answer is
        the ticket with its id, the code the customer exchanges.
        """
        ticket = current_services().tickets.issue_ticket(current_caller(), command)
        metrics.TICKETS_CREATED.labels(ticket.type.value).inc()
        return ticket, {**etag(ticket), "Location": url_for("tickets.TicketById", ticketId=ticket.id)}

    @blp.doc(operationId="listTickets", security=STAFF)
    @blp.arguments(TicketQueryArgsSchema(), location="query")
    @blp.response(200, TicketSchema(many=True))
    @blp.paginate()
    @errors(blp, 401, 403, 503, e403="The token lacks scope global.")
    def get(self, filters, pagination_parameters):
        """List tickets

        The caller's organization's tickets (a system client: every organization's, or one named), oldest
        first, filtered by type and status; paged, with X-Pagination.
        """
        page = current_services().tickets.list_tickets(
            current_caller(), filters.get("type"), filters.get("status"), filters.get("organizationId"),
            offset=pagination_parameters.first_item, limit=pagination_parameters.page_size,
        )
        pagination_parameters.item_count = page.total
        return page.tickets


@blp.route("/<ticketId>")
class TicketById(MethodView):
    @require_oauth([scopes.MANAGE, scopes.TICKET])
    @blp.doc(operationId="getTicket", security=STAFF_OR_OWN_TICKET)
    @blp.response(200, TicketSchema, headers=ETAG_HEADER)
    @errors(blp, 401, 403, 404, 503, e403="The token lacks scope global (or is not this ticket's own token).")
    def get(self, ticketId):
        """Get a ticket

        Staff read any ticket of their organization; a customer's token reads its own ticket only.
        """
        ticket = current_services().tickets.get_ticket(current_caller(), ticketId)
        return ticket, etag(ticket)

    @require_oauth(scopes.MANAGE)  # outermost: a caller without a token learns nothing from validation
    @blp.doc(operationId="updateTicket", security=STAFF, parameters=[IF_MATCH])
    @blp.arguments(UpdateTicketWebCommandSchema())
    @blp.response(200, TicketSchema, headers=ETAG_HEADER)
    @errors(blp, 400, 401, 403, 404, 409, 412, 413, 503, e409="The ticket is revoked: it cannot change.")
    def put(self, command, ticketId):
        """Update a ticket

        Replaces the properties (a system client may also move the ticket to another organization) and
        recomputes the validity window; the version grows by one.
        """
        ticket = current_services().tickets.update_ticket(current_caller(), ticketId, command, version_check())
        return ticket, etag(ticket)

    @require_oauth(scopes.MANAGE)
    @blp.doc(operationId="deleteTicket", security=STAFF, parameters=[IF_MATCH])
    @blp.response(204, description="Deleted.")
    @errors(blp, 401, 403, 404, 412, 503)
    def delete(self, ticketId):
        """Delete a ticket

        From now on the ticket is gone for every reader, and tokens exchanged from it stop working.
        """
        current_services().tickets.delete_ticket(current_caller(), ticketId, version_check())


def _state_change(name: str, operation_id: str, summary: str, description: str, operation: str, *statuses):
    """POST /<id>/<name>: an idempotent state change answering 204."""

    def view(ticketId):
        getattr(current_services().tickets, operation)(current_caller(), ticketId)

    view.__doc__ = f"{summary}\n\n{description}"  # before the decorators: the summary is read from it
    view.__name__ = f"ticket_{name}"
    for decorate in (
        errors(blp, *statuses, e409="The ticket is revoked: it cannot be enabled."),
        blp.response(204, description="Done, or nothing to do (a repeat changes nothing)."),
        blp.doc(operationId=operation_id, security=STAFF),
        require_oauth(scopes.MANAGE),
        blp.route(f"/<ticketId>/{name}", methods=["POST"], endpoint=f"ticket_{name}"),
    ):
        view = decorate(view)
    return view


disable = _state_change(
    "disable", "disableTicket", "Disable a ticket",
    "It cannot be exchanged, and its tokens stop working, until it is enabled (tokens issued before stay void).",
    "disable_ticket", 401, 403, 404, 503,
)
enable = _state_change(
    "enable", "enableTicket", "Enable a ticket", "A disabled ticket can be exchanged again.",
    "enable_ticket", 401, 403, 404, 409, 503,
)
revoke = _state_change(
    "revoke", "revokeTicket", "Revoke a ticket", "For good: it cannot be exchanged, enabled or changed again.",
    "revoke_ticket", 401, 403, 404, 503,
)


@blp.route("/<ticketId>/event")
@require_oauth([scopes.MANAGE, scopes.TICKET])
@blp.doc(operationId="getTicketEvent", security=STAFF_OR_OWN_TICKET)
@blp.arguments(EventQueryArgsSchema(), location="query")
@blp.response(200, CALENDAR_FILE, content_type="text/calendar", description="The invite, as a file to save.")
@blp.alt_response(302, description="Redirect to the provider's add-event page.", headers=REDIRECT)
@errors(blp, 400, 401, 403, 404, 409, 503, e400="X-Forwarded-Proto is neither http nor https.",
        e409="The ticket is not a scheduled one: it has no event.")
def ticket_event(args, ticketId):
    """Add to calendar

    A scheduled ticket's appointment: the iCalendar invite (calendar=ics), or a redirect to Google's or
    Outlook's add-event page, with the join link in it.
    """
    ticket = current_services().tickets.get_ticket(current_caller(), ticketId)
    link = f"{_join_base()}/t/{ticket.id}"
    choice = args["calendar"]
    if choice == "google":
        return redirect(calendar.google_calendar_url(ticket, link), 302)
    if choice == "outlook":
        return redirect(calendar.outlook_calendar_url(ticket, link), 302)
    # Not JSON, so a Response of its own: flask-smorest passes it through as it is.
    return Response(
        calendar.ticket_event(ticket, link, clock.utcnow(), current_app.config["TICKETS_CALENDAR_ORGANIZER"]),
        content_type="text/calendar; charset=utf-8",
        headers={"Content-Disposition": f"attachment; filename={ticket.id}.ics"},
    )


def _join_base() -> str:
    """<proto>://<host> of the join link: only a trusted Host, only http or https."""
    proto = request.headers.get("X-Forwarded-Proto", request.scheme).strip().lower()
    if proto not in ("http", "https"):
        abort(400, message="X-Forwarded-Proto must be http or https.")
    return f"{proto}://{request.host}"
