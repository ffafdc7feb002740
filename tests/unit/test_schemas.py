"""TicketSchema builds its answer directly; marshmallow's own dump of the same fields is the oracle."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import Schema, post_dump

from schemas.ticket import TicketSchema, ticket_view
from tickets.core.domain import Ticket, TicketType

NOW = datetime.now(UTC)
times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))
maybe_times = st.none() | times
tickets = st.builds(
    Ticket,
    id=st.text("ABCDEFGHJKLMNPQRSTUVWXYZ23456789", min_size=6, max_size=64),
    type=st.sampled_from(TicketType),
    organization_id=st.text("abc.-_9", min_size=1, max_size=8),
    user_id=st.text(min_size=1, max_size=8),
    properties=st.dictionaries(st.text(max_size=5), st.text(max_size=5) | st.integers(), max_size=3),
    created_at=times,
    expires_at=times.filter(lambda at: abs(at - NOW) > timedelta(minutes=5)),  # `expired` is read at two moments
    not_before=maybe_times,
    disabled=maybe_times,
    revoked=maybe_times,
    version=st.integers(0, 10**6),
    use_count=st.integers(0, 10**6),
    last_used_at=maybe_times,
)


@settings(max_examples=300, deadline=None)
@given(tickets)
def test_a_ticket_is_dumped_as_marshmallow_would(ticket):
    schema = TicketSchema()
    assert schema.dump(ticket) == Schema.dump(schema, ticket)


@settings(max_examples=50, deadline=None)
@given(st.lists(tickets, max_size=5))
def test_a_list_is_dumped_as_marshmallow_would(many):
    schema = TicketSchema(many=True)
    assert schema.dump(many) == Schema.dump(schema, many)
    assert TicketSchema().dump(many, many=True) == Schema.dump(schema, many)


def test_every_declared_field_and_nothing_else():
    ticket = Ticket("ABCDEF", TicketType.MULTI_USE_TICKET, "org", "user", {}, NOW, NOW + timedelta(hours=1))
    assert set(ticket_view(ticket, NOW)) == set(TicketSchema().dump_fields)
    assert TicketSchema(only=["id"]).dump(ticket) == {"id": "ABCDEF"}


def test_the_properties_are_a_copy_and_a_subclass_is_marshmallows():
    ticket = Ticket("ABCDEF", TicketType.MULTI_USE_TICKET, "org", "user", {"a": 1}, NOW, NOW + timedelta(hours=1))
    dumped = TicketSchema().dump(ticket)
    dumped["properties"]["a"] = 2
    assert ticket.properties == {"a": 1}

    class Shouting(TicketSchema):
        @post_dump
        def shout(self, data, **kwargs):
            return {**data, "userId": data["userId"].upper()}

    assert Shouting().dump(ticket)["userId"] == "USER"
