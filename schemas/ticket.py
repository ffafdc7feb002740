"""Schemas of the Ticket v1.0 API, named after its documented models."""

from marshmallow import EXCLUDE, RAISE, Schema, fields, validate

from tickets.core import clock
from tickets.core.domain import TicketStatus, TicketType, format_time
from tickets.core.rules import MAX_TTL, MIN_TTL, ORGANIZATION_ID, ORGANIZATION_ID_RULE

TICKET_TYPES = [ticket_type.value for ticket_type in TicketType]
CALENDARS = ["ics", "google", "outlook"]


ORGANIZATION = validate.Regexp(ORGANIZATION_ID, error=f"Must be {ORGANIZATION_ID_RULE}.")


class UTCDateTime(fields.DateTime):
    """RFC 3339 in UTC with a Z (marshmallow's default writes +00:00)."""

    def _serialize(self, value, attr, obj, **kwargs):
        return format_time(value)


class TicketSchema(Schema):
    """A ticket as the API shows it."""

    createdAt = UTCDateTime(attribute="created_at", dump_only=True)
    disabled = UTCDateTime(allow_none=True, dump_only=True, metadata={"description": "When it was disabled, or null."})
    expired = fields.Function(
        lambda ticket: ticket.expired(clock.utcnow()), dump_only=True, metadata={"type": "boolean"}
    )
    expiresAt = UTCDateTime(attribute="expires_at", dump_only=True)
    id = fields.String(dump_only=True)
    organizationId = fields.String(attribute="organization_id", dump_only=True)
    properties = fields.Dict(dump_only=True)
    revoked = UTCDateTime(allow_none=True, dump_only=True, metadata={"description": "When it was revoked, or null."})
    type = fields.String(dump_only=True, validate=validate.OneOf(TICKET_TYPES))
    userId = fields.String(attribute="user_id", dump_only=True)
    version = fields.Integer(dump_only=True)
    notBefore = UTCDateTime(
        attribute="not_before",
        allow_none=True,
        dump_only=True,
        metadata={"description": "Scheduled tickets: when the join window opens (scheduled_date - early join)."},
    )
    useCount = fields.Integer(attribute="use_count", dump_only=True)
    lastUsedAt = UTCDateTime(attribute="last_used_at", allow_none=True, dump_only=True)

    def dump(self, obj, *, many=None):
        """What marshmallow's own dump gives for these fields (tests/unit/test_schemas.py compares the two),
        built directly: a ticket is dumped for every answer about it, every item of a list and every webhook
        message, and marshmallow took 12 µs for it where this takes 3.5 µs."""
        if self.only or self.exclude or type(self) is not TicketSchema:  # a subclass may add fields or hooks
            return super().dump(obj, many=many)
        if self.many if many is None else many:
            now = clock.utcnow()
            return [ticket_view(ticket, now) for ticket in obj]
        return ticket_view(obj, clock.utcnow())


def ticket_view(ticket, now) -> dict:
    """A ticket as the API shows it, `expired` as of `now`."""
    return {
        "createdAt": format_time(ticket.created_at),
        "disabled": format_time(ticket.disabled),
        "expired": ticket.expired(now),
        "expiresAt": format_time(ticket.expires_at),
        "id": ticket.id,
        "organizationId": ticket.organization_id,
        "properties": dict(ticket.properties),  # a copy, as marshmallow's Dict gives
        "revoked": format_time(ticket.revoked),
        "type": ticket.type.value,
        "userId": ticket.user_id,
        "version": ticket.version,
        "notBefore": format_time(ticket.not_before),
        "useCount": ticket.use_count,
        "lastUsedAt": format_time(ticket.last_used_at),
    }


class CreateTicketWebCommandSchema(Schema):
    """The create command; unknown fields are refused."""

    class Meta:
        unknown = RAISE

    disabled = fields.Boolean(load_default=False, metadata={"description": "Create it disabled."})
    length = fields.Integer(
        strict=True,
        allow_none=True,
        metadata={"description": "Id length: 0 or absent for 9, otherwise 6 to 64."},
    )
    organizationId = fields.String(
        allow_none=True, validate=ORGANIZATION,
        metadata={"description": "Required for a system client; an organization's client may only name its own."},
    )
    properties = fields.Dict(
        keys=fields.String(),
        required=True,
        metadata={
            "description": "Free-form; customer_id, scheduled_date, duration, title and description mean something."
        },
    )
    type = fields.String(required=True, validate=validate.OneOf(TICKET_TYPES))
    ttl = fields.Integer(
        strict=True,
        validate=validate.Range(MIN_TTL, MAX_TTL),
        metadata={"description": "Lifetime in seconds (default TICKETS_TICKET_TTL; scheduled: from scheduled_date)."},
    )


class UpdateTicketWebCommandSchema(Schema):
    """The update command: properties are replaced whole."""

    class Meta:
        unknown = RAISE

    organizationId = fields.String(
        allow_none=True, validate=ORGANIZATION, metadata={"description": "Only a system client may move a ticket."}
    )
    properties = fields.Dict(keys=fields.String(), required=True)


class TicketQueryArgsSchema(Schema):
    """Filters of the ticket list."""

    class Meta:
        unknown = EXCLUDE

    type = fields.String(validate=validate.OneOf(TICKET_TYPES))
    status = fields.String(validate=validate.OneOf([status.value for status in TicketStatus]))
    organizationId = fields.String(
        validate=ORGANIZATION, metadata={"description": "System clients only: one organization's tickets."}
    )


class EventQueryArgsSchema(Schema):
    """Which calendar the event is for."""

    class Meta:
        unknown = EXCLUDE

    calendar = fields.String(load_default="ics", validate=validate.OneOf(CALENDARS))
