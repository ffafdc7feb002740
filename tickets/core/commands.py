"""Checks of what a caller asks for (a create or an update) that need the policy or the token issuer."""

from __future__ import annotations

from datetime import datetime

from tickets.core.domain import ForeignOrganization, InvalidTicket, Policy, Ticket, TicketType
from tickets.core.ports import TokenIssuer
from tickets.core.rules import (
    AUTHORIZATION_PREFIX,
    MAX_AUTHORIZATION_LINE,
    check_json_value,
    check_properties,
    validity_window,
)


def organization_for_create(caller_organization: str | None, requested: str | None) -> str:
    """The organization a new ticket belongs to: a system client must name one; another client only its own."""
    if caller_organization is None:
        if not requested:
            raise InvalidTicket({"organizationId": ["Required for a system client (one without an organization)."]})
        return requested
    if requested and requested != caller_organization:
        raise ForeignOrganization(requested)
    return caller_organization


def window(policy: Policy, ticket_type: TicketType, properties: dict, created_at: datetime, ttl: int | None):
    """(not_before, expires_at), or a 422 for a date the windows cannot reach."""
    try:
        return validity_window(ticket_type, properties, created_at, ttl, policy)
    except OverflowError:  # only with absurd settings: the dates themselves are bounded
        raise InvalidTicket({"properties": {"scheduled_date": ["Too far in the future."]}}) from None


def check_token_fits(tokens: TokenIssuer, ticket: Ticket) -> None:
    """Properties that would make the ticket's token too long for an Authorization header are a 422."""
    length = AUTHORIZATION_PREFIX + tokens.ticket_token_length(ticket)
    if length > MAX_AUTHORIZATION_LINE:
        raise InvalidTicket({"properties": {"_schema": [
            f"Too large: the ticket's token would make an Authorization header of {length} bytes, over the "
            f"{MAX_AUTHORIZATION_LINE} a server accepts; make the properties smaller."
        ]}})


def check_command_properties(properties: dict, ticket_type: TicketType, errors: dict | None = None) -> None:
    """The properties' shape and meaningful keys (with other field errors already found); InvalidTicket if any."""
    errors = dict(errors or {})
    problem = check_json_value(properties)
    field_errors = {"_schema": [problem]} if problem else check_properties(properties, ticket_type)
    if field_errors:
        errors["properties"] = field_errors
    if errors:
        raise InvalidTicket(errors)
