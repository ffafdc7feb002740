"""TicketService (tickets/core/service.py) on the in-memory store: who may do what, state changes, the exchange.

No Flask and no files: the store is tests/memory_store.py, the token issuer a stand-in that records what it
signed, and the time is the `clock` fixture's.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import timedelta

import pytest

from tests.conftest import T0, protocol_mismatches
from tests.memory_store import MemoryTicketStore
from tickets.core import service as service_module
from tickets.core.domain import (
    ExchangeRefused,
    ForeignOrganization,
    InvalidTicket,
    Policy,
    Refusal,
    Ticket,
    TicketNotFound,
    TicketRevoked,
    TicketType,
    VersionConflict,
)
from tickets.core.ports import StorageError, TicketStore, TokenIssuer
from tickets.core.rules import ID_ALPHABET
from tickets.core.service import Caller, Exchange, TicketService
from tickets.oauth.tokens import TokenSigner

POLICY = Policy()  # the defaults: 4 h tickets, 30 min early join, 1 h grace, 7 days retention
RETENTION = timedelta(seconds=POLICY.retention)
CONSUMED_TTL = 3_600  # how long a used single-use ticket's token lives, so how long its record is kept
ORG_A = Caller(client_id="client-a", organization_id="org-a")
ORG_B = Caller(client_id="client-b", organization_id="org-b")
SYSTEM = Caller(client_id="system", organization_id=None)


class StandInTokens:
    """A TokenIssuer that records the tickets it signed for and answers a token naming them.

    `error` makes it fail like a key store that cannot be read; `meanwhile(ticket)`, if set, runs once right
    after signing: another worker acting on the ticket between the signing and the use.
    """

    def __init__(self):
        self.signed: list[Ticket] = []
        self.error: Exception | None = None
        self.meanwhile = None

    def ticket_token(self, ticket: Ticket) -> dict:
        if self.error is not None:
            raise self.error
        self.signed.append(ticket)
        if self.meanwhile is not None:
            hook, self.meanwhile = self.meanwhile, None
            hook(ticket)
        return {"access_token": f"token-{len(self.signed)}", "ticket": ticket.id, "version": ticket.version}

    def ticket_token_length(self, ticket: Ticket) -> int:
        """As if the token were the properties' JSON plus a few hundred characters of claims and signature."""
        return 600 + len(json.dumps(ticket.properties))


class CountingStore(MemoryTicketStore):
    """The in-memory store, counting purges; `purge_error` makes them fail as a full disk would."""

    def __init__(self):
        super().__init__()
        self.purges = 0
        self.purge_error: Exception | None = None

    def remove_expired(self, expired_before, consumed_before) -> int:
        self.purges += 1
        if self.purge_error is not None:
            raise self.purge_error
        return super().remove_expired(expired_before, consumed_before)


class StaleOnce(MemoryTicketStore):
    """The in-memory store whose next get() answers `stale`: a read that an update overtook before the use."""

    def __init__(self):
        super().__init__()
        self.stale: Ticket | None = None

    def get(self, ticket_id: str) -> Ticket:
        if self.stale is not None:
            stale, self.stale = self.stale, None
            return stale
        return super().get(ticket_id)


@pytest.fixture
def store() -> CountingStore:
    """An empty in-memory ticket store."""
    return CountingStore()


@pytest.fixture
def tokens() -> StandInTokens:
    """The stand-in token issuer."""
    return StandInTokens()


@pytest.fixture
def service(store, tokens, clock) -> TicketService:
    """The service on the in-memory store, its clock frozen at T0."""
    return TicketService(store, POLICY, tokens, consumed_ttl=CONSUMED_TTL, purge_interval=60)


@pytest.fixture
def monotonic(monkeypatch):
    """The service's interval clock (tickets.core.clock.monotonic), set by the test: a one-element list."""
    now = [1_000.0]
    monkeypatch.setattr("tickets.core.clock.monotonic", lambda: now[0])
    return now


def issue(service, caller=ORG_A, ticket_type="MULTI_USE_TICKET", properties=None, **fields) -> Ticket:
    """A ticket created through the service, as the API's create command gives it."""
    return service.issue_ticket(caller, {"type": ticket_type, "properties": properties or {}, **fields})


def scheduled(hours_from_now: float = 2, **extra) -> dict:
    return {"scheduled_date": (T0 + timedelta(hours=hours_from_now)).isoformat(), **extra}


def ticket_caller(ticket: Ticket) -> Caller:
    """The customer holding the token exchanged from `ticket`."""
    return Caller(client_id=None, organization_id=ticket.organization_id, ticket_id=ticket.id)


def test_the_stand_ins_satisfy_the_protocols():
    """The test doubles have the shape of the seams they stand in for, like the real TokenSigner."""
    assert protocol_mismatches(StandInTokens(), TokenIssuer) == []
    assert protocol_mismatches(TokenSigner(None, "https://issuer.example", 60, 60), TokenIssuer) == []
    assert protocol_mismatches(MemoryTicketStore(), TicketStore) == []


# --- issue -------------------------------------------------------------------------------------------------------


def test_issue_stores_a_ticket_of_the_callers_organization(service, store):
    """An organization's client gets a fresh ticket of its own organization, valid from now for the default ttl."""
    ticket = issue(service, properties={"customer_id": "cust-1", "x": [1]})
    assert ticket.organization_id == "org-a"
    assert ticket.type == TicketType.MULTI_USE_TICKET
    assert ticket.user_id == "cust-1"
    assert ticket.properties == {"customer_id": "cust-1", "x": [1]}
    assert ticket.created_at == T0
    assert ticket.not_before is None
    assert ticket.expires_at == T0 + timedelta(seconds=POLICY.ticket_ttl)
    assert (ticket.version, ticket.use_count, ticket.disabled, ticket.revoked) == (0, 0, None, None)
    assert len(ticket.id) == 9 and set(ticket.id) <= set(ID_ALPHABET)
    assert store.get(ticket.id) == ticket


def test_issue_generates_a_user_id_without_customer_id(service):
    """Without customer_id each ticket gets its own generated userId."""
    first, second = issue(service), issue(service)
    assert first.user_id and second.user_id and first.user_id != second.user_id


@pytest.mark.parametrize("command", [{}, {"organizationId": None}, {"organizationId": ""}])
def test_system_client_must_name_an_organization(service, store, command):
    """A system client that names no organization gets InvalidTicket naming organizationId, and nothing is stored."""
    with pytest.raises(InvalidTicket) as refused:
        service.issue_ticket(SYSTEM, {"type": "MULTI_USE_TICKET", "properties": {}, **command})
    assert set(refused.value.errors) == {"organizationId"}
    assert store.count() == 0


def test_system_client_issues_for_the_named_organization(service):
    """A system client's ticket belongs to the organization it names."""
    assert issue(service, SYSTEM, organizationId="org-b").organization_id == "org-b"


def test_org_client_naming_another_organization_is_foreign(service, store):
    """An organization's client may name only its own organization: ForeignOrganization, nothing stored."""
    with pytest.raises(ForeignOrganization):
        issue(service, ORG_A, organizationId="org-b")
    assert store.count() == 0
    assert issue(service, ORG_A, organizationId="org-a").organization_id == "org-a"


def test_an_id_that_is_taken_is_drawn_again(service, store, monkeypatch):
    """On TicketIdTaken the service draws a new id, and the ticket that had the id is left alone."""
    existing = issue(service)
    drawn = iter([existing.id, existing.id, "NEWTCKT23"])
    monkeypatch.setattr(service_module, "new_ticket_id", lambda length: next(drawn))
    ticket = issue(service, properties={"second": True})
    assert ticket.id == "NEWTCKT23"
    assert store.get(existing.id) == existing
    assert store.count() == 2


def test_no_free_id_is_invalid_length(service, store, monkeypatch):
    """If every draw is taken (a length far too short for the store), the create is refused naming length."""
    existing = issue(service)
    monkeypatch.setattr(service_module, "new_ticket_id", lambda length: existing.id)
    with pytest.raises(InvalidTicket) as refused:
        issue(service, length=6)
    assert set(refused.value.errors) == {"length"}
    assert store.count() == 1


def test_disabled_at_creation(service):
    """disabled: true creates the ticket disabled now, at version 0; its exchange is refused DISABLED."""
    ticket = issue(service, disabled=True)
    assert ticket.disabled == T0
    assert ticket.version == 0
    with pytest.raises(ExchangeRefused) as refused:
        service.exchange_ticket(ticket.id)
    assert refused.value.reason == Refusal.DISABLED


def test_ttl_is_kept_and_shapes_the_window(service):
    """A create's ttl is the plain ticket's lifetime, and is kept on the ticket for later reschedules."""
    ticket = issue(service, ttl=600)
    assert ticket.expires_at == T0 + timedelta(seconds=600)
    assert ticket.ttl == 600


def test_scheduled_window_opens_early_and_ends_after_grace(service):
    """A scheduled ticket is valid from start - early join to start + duration + grace."""
    ticket = issue(service, ticket_type="SCHEDULE_TICKET", properties=scheduled(2, duration=45))
    start = T0 + timedelta(hours=2)
    assert ticket.not_before == start - timedelta(seconds=POLICY.early_join)
    assert ticket.expires_at == start + timedelta(minutes=45, seconds=POLICY.schedule_grace)


@pytest.mark.parametrize(
    "ticket_type, properties, fields, field",
    [
        ("SCHEDULE_TICKET", {"title": "x"}, {}, "properties"),
        ("MULTI_USE_TICKET", {"duration": 0}, {}, "properties"),
        ("MULTI_USE_TICKET", {}, {"length": 5}, "length"),
    ],
)
def test_invalid_commands_store_nothing(service, store, ticket_type, properties, fields, field):
    """Bad meaningful properties or a bad length are InvalidTicket naming the field; nothing is stored."""
    with pytest.raises(InvalidTicket) as refused:
        issue(service, ticket_type=ticket_type, properties=properties, **fields)
    assert set(refused.value.errors) == {field}
    assert store.count() == 0


# --- get and list --------------------------------------------------------------------------------------------------


def test_another_organizations_ticket_is_not_found(service):
    """To another organization's client a ticket does not exist; a system client sees it."""
    ticket = issue(service)
    with pytest.raises(TicketNotFound):
        service.get_ticket(ORG_B, ticket.id)
    assert service.list_tickets(ORG_B).tickets == []
    assert service.get_ticket(SYSTEM, ticket.id) == ticket


def test_a_ticket_token_sees_only_its_own_ticket(service):
    """The customer's token reads its own ticket (in any case); every other one, same organization too, is not found."""
    mine, other = issue(service), issue(service)
    caller = ticket_caller(mine)
    assert service.get_ticket(caller, mine.id) == mine
    assert service.get_ticket(caller, mine.id.lower()) == mine
    with pytest.raises(TicketNotFound):
        service.get_ticket(caller, other.id)
    assert service.list_tickets(caller).tickets == [mine]


@pytest.mark.parametrize("ticket_id", ["0O1IL0O1I", "abc", "A" * 65, "ABCDEFGHJ"])
def test_impossible_or_unknown_ids_are_not_found(service, ticket_id):
    """Ids that cannot exist, or do not, are TicketNotFound."""
    with pytest.raises(TicketNotFound):
        service.get_ticket(ORG_A, ticket_id)


def test_expired_ticket_is_readable_until_retention_ends(service, store, clock):
    """An expired ticket stays visible (and listed) for the retention period, then is gone though still stored."""
    ticket = issue(service, ttl=60)
    clock.advance(seconds=60)
    assert service.get_ticket(ORG_A, ticket.id) == ticket
    assert service.list_tickets(ORG_A, status="expired").tickets == [ticket]
    clock.now = ticket.expires_at + RETENTION - timedelta(seconds=1)
    assert service.get_ticket(ORG_A, ticket.id) == ticket
    clock.advance(seconds=1)
    with pytest.raises(TicketNotFound):
        service.get_ticket(ORG_A, ticket.id)
    assert service.list_tickets(ORG_A).tickets == []
    assert store.count() == 1


def test_a_used_single_use_ticket_is_gone_for_readers(service, store):
    """After its exchange a single-use ticket is not found nor listed, while its record is kept for introspection."""
    ticket = issue(service, ticket_type="SINGLE_USE_TICKET")
    service.exchange_ticket(ticket.id)
    with pytest.raises(TicketNotFound):
        service.get_ticket(ORG_A, ticket.id)
    assert service.list_tickets(ORG_A).tickets == []
    assert store.get(ticket.id).consumed_at == T0


def test_list_filters_and_orders_oldest_first(service, clock):
    """list_tickets filters by type, status and (for a system client) organization, oldest first."""
    first = issue(service)
    clock.advance(seconds=1)
    single = issue(service, ticket_type="SINGLE_USE_TICKET")
    clock.advance(seconds=1)
    disabled = issue(service, disabled=True)
    clock.advance(seconds=1)
    foreign = issue(service, ORG_B)
    assert service.list_tickets(ORG_A).tickets == [first, single, disabled]
    assert service.list_tickets(ORG_A, ticket_type="SINGLE_USE_TICKET").tickets == [single]
    assert service.list_tickets(ORG_A, status="disabled").tickets == [disabled]
    assert service.list_tickets(ORG_A, status="active").tickets == [first, single]
    assert service.list_tickets(SYSTEM).tickets == [first, single, disabled, foreign]
    assert service.list_tickets(SYSTEM, organization_id="org-b").tickets == [foreign]
    assert service.list_tickets(ORG_A, organization_id="org-b").tickets == [first, single, disabled]  # its own, always


def test_list_pages_and_counts(service, clock):
    """A page is `limit` tickets from `offset`, oldest first; total counts every match."""
    made = []
    for _ in range(5):
        made.append(issue(service))
        clock.advance(seconds=1)
    page = service.list_tickets(ORG_A, offset=1, limit=2)
    assert page.tickets == made[1:3]
    assert page.total == 5
    assert service.list_tickets(ORG_A, offset=4, limit=2).tickets == made[4:]
    beyond = service.list_tickets(ORG_A, offset=10, limit=2)
    assert (beyond.tickets, beyond.total) == ([], 5)


# --- update --------------------------------------------------------------------------------------------------------


def test_update_replaces_properties_and_adds_one_to_version(service, store):
    """PUT replaces properties whole and bumps version; userId and createdAt stay."""
    ticket = issue(service, properties={"customer_id": "first", "keep": "no"})
    updated = service.update_ticket(ORG_A, ticket.id, {"properties": {"customer_id": "second"}})
    assert updated.properties == {"customer_id": "second"}
    assert updated.version == 1
    assert updated.user_id == "first"
    assert updated.created_at == ticket.created_at
    assert store.get(ticket.id) == updated


def test_update_recomputes_the_window_and_keeps_the_creation_ttl(service):
    """A reschedule moves notBefore and expiresAt; a ttl given at creation applies again."""
    ticket = issue(service, ticket_type="SCHEDULE_TICKET", properties=scheduled(2), ttl=900)
    moved = service.update_ticket(ORG_A, ticket.id, {"properties": scheduled(26)})
    start = T0 + timedelta(hours=26)
    assert moved.not_before == start - timedelta(seconds=POLICY.early_join)
    assert moved.expires_at == start + timedelta(seconds=900)
    plain = issue(service, ttl=600)
    assert service.update_ticket(ORG_A, plain.id, {"properties": {"x": 1}}).expires_at == plain.expires_at


def test_update_of_a_revoked_ticket_is_refused(service, store):
    """A revoked ticket cannot be updated: TicketRevoked, nothing changed."""
    ticket = issue(service)
    revoked = service.revoke_ticket(ORG_A, ticket.id)
    with pytest.raises(TicketRevoked):
        service.update_ticket(ORG_A, ticket.id, {"properties": {"x": 1}})
    assert store.get(ticket.id) == revoked


def test_update_revalidates_properties(service, store):
    """The meaningful keys are checked again on update; a bad one changes nothing."""
    ticket = issue(service, ticket_type="SCHEDULE_TICKET", properties=scheduled(2))
    with pytest.raises(InvalidTicket) as refused:
        service.update_ticket(ORG_A, ticket.id, {"properties": {"title": "no date"}})
    assert set(refused.value.errors["properties"]) == {"scheduled_date"}
    assert store.get(ticket.id) == ticket


def test_update_applies_only_when_the_version_check_passes(service, store):
    """The If-Match predicate sees the stored version: true applies the change, false is VersionConflict."""
    ticket = issue(service)
    seen = []
    updated = service.update_ticket(ORG_A, ticket.id, {"properties": {"v": 1}}, lambda v: seen.append(v) or v == 0)
    assert seen == [0]
    assert updated.version == 1
    with pytest.raises(VersionConflict):
        service.update_ticket(ORG_A, ticket.id, {"properties": {"v": 2}}, lambda version: version == 0)
    assert store.get(ticket.id) == updated


def test_only_a_system_client_moves_a_ticket(service, store):
    """An organization's client may not move its ticket elsewhere (ForeignOrganization); a system client may."""
    ticket = issue(service)
    with pytest.raises(ForeignOrganization):
        service.update_ticket(ORG_A, ticket.id, {"properties": {}, "organizationId": "org-b"})
    assert store.get(ticket.id) == ticket
    assert service.update_ticket(ORG_A, ticket.id, {"properties": {}, "organizationId": "org-a"}).version == 1
    moved = service.update_ticket(SYSTEM, ticket.id, {"properties": {}, "organizationId": "org-b"})
    assert moved.organization_id == "org-b"
    with pytest.raises(TicketNotFound):
        service.get_ticket(ORG_A, ticket.id)
    assert service.get_ticket(ORG_B, ticket.id) == moved


@pytest.mark.parametrize("operation", ["update", "disable", "enable", "revoke", "delete"])
def test_changes_to_another_organizations_ticket_are_not_found(service, store, operation):
    """Every change of another organization's ticket is TicketNotFound, and leaves it as it was."""
    ticket = issue(service)
    with pytest.raises(TicketNotFound):
        if operation == "update":
            service.update_ticket(ORG_B, ticket.id, {"properties": {"x": 1}})
        else:
            getattr(service, f"{operation}_ticket")(ORG_B, ticket.id)
    assert store.get(ticket.id) == ticket


# --- disable, enable, revoke ---------------------------------------------------------------------------------------


def test_disable_stamps_once_and_a_repeat_changes_nothing(service, store, clock):
    """disable sets disabled and last_disabled to now and bumps version; a later repeat changes neither."""
    ticket = issue(service)
    clock.advance(seconds=10)
    disabled = service.disable_ticket(ORG_A, ticket.id)
    assert disabled.disabled == disabled.last_disabled == T0 + timedelta(seconds=10)
    assert disabled.version == 1
    clock.advance(seconds=10)
    assert service.disable_ticket(ORG_A, ticket.id) == disabled
    assert store.get(ticket.id) == disabled


def test_enable_clears_once_and_a_repeat_changes_nothing(service, store, clock):
    """enable clears disabled (last_disabled stays), bumps version; a repeat or enabling an enabled one: no change."""
    ticket = issue(service)
    assert service.enable_ticket(ORG_A, ticket.id) == ticket
    clock.advance(seconds=10)
    service.disable_ticket(ORG_A, ticket.id)
    enabled = service.enable_ticket(ORG_A, ticket.id)
    assert enabled.disabled is None
    assert enabled.last_disabled == T0 + timedelta(seconds=10)
    assert enabled.version == 2
    clock.advance(seconds=10)
    assert service.enable_ticket(ORG_A, ticket.id) == enabled
    assert store.get(ticket.id) == enabled


def test_revoke_is_idempotent_and_permanent(service, store, clock):
    """revoke stamps the time once; a repeat or a disable changes nothing; enable and update are TicketRevoked."""
    ticket = issue(service)
    clock.advance(seconds=5)
    revoked = service.revoke_ticket(ORG_A, ticket.id)
    assert revoked.revoked == T0 + timedelta(seconds=5)
    assert revoked.version == 1
    clock.advance(seconds=5)
    assert service.revoke_ticket(ORG_A, ticket.id) == revoked
    assert service.disable_ticket(ORG_A, ticket.id) == revoked
    with pytest.raises(TicketRevoked):
        service.enable_ticket(ORG_A, ticket.id)
    assert store.get(ticket.id) == revoked


# --- delete --------------------------------------------------------------------------------------------------------


def test_delete_removes_the_ticket(service, store):
    """A deleted ticket is gone from the store, for readers, for another delete and for the exchange."""
    ticket = issue(service)
    assert service.delete_ticket(ORG_A, ticket.id) is None
    assert store.count() == 0
    with pytest.raises(TicketNotFound):
        service.get_ticket(ORG_A, ticket.id)
    with pytest.raises(TicketNotFound):
        service.delete_ticket(ORG_A, ticket.id)
    with pytest.raises(ExchangeRefused) as refused:
        service.exchange_ticket(ticket.id)
    assert refused.value.reason == Refusal.NOT_FOUND


def test_delete_with_a_stale_version_conflicts(service, store):
    """A delete whose version check fails is VersionConflict and deletes nothing."""
    ticket = issue(service)
    with pytest.raises(VersionConflict):
        service.delete_ticket(ORG_A, ticket.id, lambda version: version == 7)
    assert store.get(ticket.id) == ticket
    service.delete_ticket(ORG_A, ticket.id, lambda version: version == 0)
    assert store.count() == 0


# --- exchange ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ticket_type", [t.value for t in TicketType if t.single_use and not t.scheduled])
def test_a_single_use_ticket_is_exchanged_once(service, store, tokens, ticket_type):
    """The first exchange uses the ticket up and returns the issuer's token; the next one is NOT_FOUND."""
    ticket = issue(service, ticket_type=ticket_type)
    exchange = service.exchange_ticket(ticket.id)
    assert isinstance(exchange, Exchange)
    assert exchange.token == {"access_token": "token-1", "ticket": ticket.id, "version": 0}
    assert tokens.signed == [ticket]
    assert (exchange.ticket.use_count, exchange.ticket.last_used_at, exchange.ticket.consumed_at) == (1, T0, T0)
    assert exchange.ticket.version == 0
    assert store.get(ticket.id) == exchange.ticket
    with pytest.raises(ExchangeRefused) as refused:
        service.exchange_ticket(ticket.id)
    assert refused.value.reason == Refusal.NOT_FOUND
    assert refused.value.ticket_type is None
    assert len(tokens.signed) == 1


def test_concurrent_exchanges_of_a_single_use_ticket_have_one_winner(service, store):
    """Twenty threads exchange one single-use ticket at once: exactly one gets a token, the rest NOT_FOUND."""
    ticket = issue(service, ticket_type="SINGLE_USE_TICKET")
    start = threading.Barrier(20)
    outcomes = []

    def race():
        start.wait(timeout=10)
        try:
            service.exchange_ticket(ticket.id)
            outcomes.append("token")
        except ExchangeRefused as refused:
            outcomes.append(refused.reason.value)

    threads = [threading.Thread(target=race, daemon=True) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["NOT_FOUND"] * 19 + ["token"]
    assert store.get(ticket.id).use_count == 1


def test_a_multi_use_exchange_counts_uses_not_versions(service, store, clock):
    """Each exchange adds one to useCount and sets lastUsedAt; Exchange.ticket shows the new count; version stays."""
    ticket = issue(service)
    clock.advance(seconds=30)
    first = service.exchange_ticket(ticket.id)
    clock.advance(seconds=30)
    second = service.exchange_ticket(ticket.id.lower())
    assert first.ticket.use_count == 1
    assert second.ticket.use_count == 2
    assert second.ticket.last_used_at == T0 + timedelta(seconds=60)
    assert second.ticket.version == 0 and second.ticket.consumed_at is None
    assert store.get(ticket.id) == second.ticket
    assert second.token["access_token"] == "token-2"


def disabled_ticket(service, clock):
    return issue(service, disabled=True)


def revoked_ticket(service, clock):
    return service.revoke_ticket(ORG_A, issue(service).id)


def expired_ticket(service, clock):
    ticket = issue(service, ttl=60)
    clock.advance(seconds=60)
    return ticket


def not_yet_valid_ticket(service, clock):
    return issue(service, ticket_type="SCHEDULE_TICKET", properties=scheduled(2))


@pytest.mark.parametrize(
    "make, reason",
    [
        (disabled_ticket, Refusal.DISABLED),
        (revoked_ticket, Refusal.REVOKED),
        (expired_ticket, Refusal.EXPIRED),
        (not_yet_valid_ticket, Refusal.NOT_YET_VALID),
    ],
)
def test_refusals_name_the_reason_and_the_ticket_type(service, store, tokens, clock, make, reason):
    """A ticket that cannot be exchanged now is refused with its reason and type; no token is made, no use counted."""
    ticket = make(service, clock)
    with pytest.raises(ExchangeRefused) as refused:
        service.exchange_ticket(ticket.id)
    assert refused.value.reason == reason
    assert refused.value.ticket_type == ticket.type
    assert tokens.signed == []
    assert store.get(ticket.id).use_count == 0


@pytest.mark.parametrize("ticket_id", ["ABCDEFGHJ", "0O1IL", "", None])
def test_unknown_or_impossible_tickets_are_not_found(service, tokens, ticket_id):
    """An unknown, impossible or missing id is NOT_FOUND, with no ticket type."""
    with pytest.raises(ExchangeRefused) as refused:
        service.exchange_ticket(ticket_id)
    assert refused.value.reason == Refusal.NOT_FOUND
    assert refused.value.ticket_type is None
    assert tokens.signed == []


def test_a_token_that_cannot_be_made_leaves_the_ticket_unused(service, store, tokens):
    """If the issuer fails, the error reaches the caller and the single-use ticket is still there to exchange."""
    ticket = issue(service, ticket_type="SINGLE_USE_TICKET")
    tokens.error = StorageError("keys.json unreadable")
    with pytest.raises(StorageError):
        service.exchange_ticket(ticket.id)
    assert store.get(ticket.id) == ticket
    tokens.error = None
    assert service.exchange_ticket(ticket.id).ticket.use_count == 1


def test_a_ticket_changed_between_signing_and_use_is_signed_again(service, store, tokens):
    """If another worker updates the ticket after its token was signed, the token is made again for the new version."""
    ticket = issue(service, properties={"v": 1})
    tokens.meanwhile = lambda signed: service.update_ticket(ORG_A, signed.id, {"properties": {"v": 2}})
    exchange = service.exchange_ticket(ticket.id)
    assert [(signed.version, signed.properties) for signed in tokens.signed] == [(0, {"v": 1}), (1, {"v": 2})]
    assert exchange.token == {"access_token": "token-2", "ticket": ticket.id, "version": 1}
    assert (exchange.ticket.version, exchange.ticket.use_count) == (1, 1)
    assert store.get(ticket.id) == exchange.ticket


def test_a_stale_read_is_signed_again_for_what_change_sees(clock, tokens):
    """A read that is older than what the locked change finds (another worker's update in between) is not used."""
    store = StaleOnce()
    service = TicketService(store, POLICY, tokens, consumed_ttl=CONSUMED_TTL)
    ticket = issue(service, ticket_type="SINGLE_USE_TICKET", properties={"v": 1})
    current = service.update_ticket(ORG_A, ticket.id, {"properties": {"v": 2}})
    store.stale = ticket
    exchange = service.exchange_ticket(ticket.id)
    assert [signed.version for signed in tokens.signed] == [0, 1]
    assert exchange.token["version"] == 1
    assert exchange.ticket == current.replace(use_count=1, last_used_at=T0, consumed_at=T0)


def test_a_ticket_disabled_between_signing_and_use_is_refused(service, store, tokens):
    """If the ticket is disabled after its token was signed, the exchange is refused and the token is dropped."""
    ticket = issue(service, ticket_type="SINGLE_USE_TICKET")
    tokens.meanwhile = lambda signed: service.disable_ticket(ORG_A, signed.id)
    with pytest.raises(ExchangeRefused) as refused:
        service.exchange_ticket(ticket.id)
    assert refused.value.reason == Refusal.DISABLED
    stored = store.get(ticket.id)
    assert (stored.use_count, stored.consumed_at) == (0, None)


# --- tokens of tickets ---------------------------------------------------------------------------------------------


def test_a_ticket_token_stands_until_its_ticket_is_withdrawn(service, clock):
    """A token stands while its ticket is neither revoked, disabled nor deleted, nor disabled since it was made."""
    ticket = issue(service)
    issued_at = T0.timestamp()
    assert service.ticket_token_active(ticket.id, issued_at) is True
    clock.advance(seconds=10)
    service.disable_ticket(ORG_A, ticket.id)
    assert service.ticket_token_active(ticket.id, issued_at) is False
    service.enable_ticket(ORG_A, ticket.id)
    assert service.ticket_token_active(ticket.id, issued_at) is False  # made before the disable: void for good
    assert service.ticket_token_active(ticket.id, issued_at + 11) is True  # made after it
    service.revoke_ticket(ORG_A, ticket.id)
    assert service.ticket_token_active(ticket.id, issued_at + 11) is False
    other = issue(service)
    service.delete_ticket(ORG_A, other.id)
    assert service.ticket_token_active(other.id, issued_at) is False
    assert service.ticket_token_active("NOSUCHONE", issued_at) is False


def test_a_used_single_use_tickets_token_stands(service):
    """The token a single-use ticket yielded stands although the ticket is used up."""
    ticket = issue(service, ticket_type="SINGLE_USE_TICKET")
    service.exchange_ticket(ticket.id)
    assert service.ticket_token_active(ticket.id, T0.timestamp()) is True


# --- purge ---------------------------------------------------------------------------------------------------------


def test_purge_removes_tickets_once_retention_has_passed(service, store, clock):
    """purge() keeps an expired ticket until expiresAt + retention, then removes it; it returns how many."""
    expiring = issue(service, ttl=60)
    live = issue(service, ttl=2_592_000)
    clock.now = expiring.expires_at + RETENTION - timedelta(seconds=1)
    assert service.purge() == 0
    clock.advance(seconds=1)
    assert service.purge() == 1
    assert [ticket.id for ticket in store.all()] == [live.id]


def test_purge_removes_used_single_use_records_once_their_token_has_expired(service, store, clock):
    """A used single-use record is kept while the token it yielded may live (consumed_ttl), then removed."""
    ticket = issue(service, ticket_type="SINGLE_USE_TICKET")
    service.exchange_ticket(ticket.id)
    clock.advance(seconds=CONSUMED_TTL - 1)
    assert service.purge() == 0
    assert store.count() == 1
    clock.advance(seconds=1)
    assert service.purge() == 1
    assert store.count() == 0
    assert service.ticket_token_active(ticket.id, T0.timestamp()) is False


def test_purge_if_due_runs_at_most_once_per_interval(service, store, monotonic):
    """Purges piggyback on writes, at most once per purge_interval of the process's monotonic clock."""
    service.purge_if_due()
    assert store.purges == 1
    service.purge_if_due()
    monotonic[0] += 59.9
    issue(service)
    assert store.purges == 1
    monotonic[0] += 0.1
    issue(service)
    assert store.purges == 2
    monotonic[0] += 60
    ticket = issue(service)
    monotonic[0] += 60
    service.exchange_ticket(ticket.id)
    assert store.purges == 4


def test_a_failed_purge_is_logged_and_the_write_stands(service, store, monotonic, caplog):
    """A purge that fails (StorageError) does not fail the write it follows; the next due write tries again."""
    store.purge_error = StorageError("disk full")
    with caplog.at_level(logging.WARNING, logger="tickets.core.service"):
        ticket = issue(service)
    assert store.get(ticket.id) == ticket
    assert "purge failed, will retry: disk full" in caplog.text
    store.purge_error = None
    monotonic[0] += 60
    issue(service)
    assert store.purges == 2
