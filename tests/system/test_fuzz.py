"""Schemathesis against a running gunicorn (2 workers), driven by the service's own OpenAPI document."""

from __future__ import annotations

import json
import os
import zlib
from collections import Counter

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    allow_header_conformance,
    content_type_conformance,
    ignored_auth,
    missing_required_header,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from .conftest import bearer, fetch_token
from .reporting import record

pytestmark = pytest.mark.system

# Cases per operation in the fuzzing phase; the examples and coverage phases add their own, bounded,
# deterministic cases (about 1,100 in all with the default, in ~15 s on 2 cores).
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
SEED = int(os.environ.get("FUZZ_SEED", "20261128"))
ORG = "org-fuzz"

# Every response must pass these: no 5xx, and status code, content type, body and headers as documented.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    # Also on, because they hold: invalid input is refused, undocumented methods get 405 with Allow,
    # and an operation that declares auth refuses a request without it or with a forged token.
    negative_data_rejection,
    missing_required_header,
    unsupported_method,
    allow_header_conformance,
    ignored_auth,
]
# Left out:
# - positive_data_acceptance: the document cannot say that the scheduled types need
#   properties.scheduled_date (a PUT of `{"properties": {}}` on a SCHEDULE_TICKET is rightly 422),
#   nor that an If-Match naming another version is refused (rightly 412).
# - use_after_free, ensure_resource_availability, object_level_authorization: they judge sequences of
#   calls recorded by schemathesis' stateful phase, which `parametrize()` does not run.
# - max_response_time: off unless given a limit; latency is not this test's business.
CASES: Counter = Counter()


class FuzzTarget:
    """The running server, an organization client and a system client with their tokens, and a source of tickets."""

    def __init__(self, server):
        self.server = server
        self.session = requests.Session()
        self.credentials = {
            "org": server.cli("clients", "create", "--name", "fuzz-org", "--org", ORG),
            "system": server.cli("clients", "create", "--name", "fuzz-system"),
        }
        self.tokens = {who: fetch_token(server.url, creds) for who, creds in self.credentials.items()}
        self.created: set[str] = set()  # every ticket id made during the run, searched for in the logs after

    def fresh_ticket(self, who: str, ticket_type: str) -> str:
        """A new ticket of `ticket_type`, created by `who` in ORG."""
        properties = {"customer_id": "fuzz", "title": "Fuzz"}
        if "SCHEDULE" in ticket_type:
            properties["scheduled_date"] = "2030-01-01T10:00:00+01:00"
        body = {"type": ticket_type, "properties": properties, "organizationId": ORG}
        response = self.session.post(
            f"{self.server.url}/security/ticket", json=body, headers=bearer(self.tokens[who]), timeout=30
        )
        assert response.status_code == 200, response.text
        self.created.add(response.json()["id"])
        return response.json()["id"]

    def aim(self, case, who: str) -> None:
        """Half the cases, chosen by their content (so that a replay while shrinking aims the same way),
        point at something that exists: a real ticket, the caller's own token, real client credentials.
        Random ids alone would only ever reach the 404 branch."""
        digest = zlib.crc32(
            json.dumps([case.path_parameters, case.query, case.body], default=repr, sort_keys=True).encode()
        )
        if digest % 2:
            return
        kind = ("MULTI_USE_TICKET", "SCHEDULE_TICKET", "SINGLE_USE_TICKET")[(digest // 2) % 3]
        if case.path_parameters and "ticketId" in case.path_parameters:
            case.path_parameters["ticketId"] = self.fresh_ticket(who, kind)
        if not isinstance(case.body, dict):
            return
        if case.path.endswith("/oauth/introspect") and "token" in case.body:
            case.body["token"] = self.tokens[who]
            if "token_type_hint" in case.body:  # authlib refuses a hint it does not know (401) before looking
                case.body["token_type_hint"] = "access_token"
        if case.path.endswith("/oauth/token"):
            if case.body.get("grant_type") == "ticket":
                case.body["ticket"] = self.fresh_ticket(who, kind)
            elif "client_id" in case.body or "client_secret" in case.body:
                case.body["client_id"] = self.credentials[who]["client_id"]
                case.body["client_secret"] = self.credentials[who]["client_secret"]


@pytest.fixture
def fuzz_target(gunicorn):
    """A fresh gunicorn with 2 workers, with an organization client and a system client; afterwards, no
    ticket id made during the run may appear in any line the service or gunicorn wrote (SPEC section 11)."""
    target = FuzzTarget(gunicorn(workers=2, TICKETS_REQUEST_LOG="json"))
    yield target
    assert target.created, "the run made no ticket: there was nothing to search the logs for"
    logs = target.server.output()
    leaked = sorted(ticket_id for ticket_id in target.created if ticket_id.lower() in logs.lower())
    assert not leaked, f"{len(leaked)} of {len(target.created)} ticket ids made reached the logs: {leaked[:5]}"


@pytest.fixture
def fuzz_schema(fuzz_target):
    """The OpenAPI document as the running server serves it."""
    config = schemathesis.Config.from_dict({"seed": SEED, "generation": {"max-examples": EXAMPLES}})
    return schemathesis.openapi.from_url(f"{fuzz_target.server.url}/security/openapi.json", config=config)


@pytest.fixture(autouse=True)
def _pytest9_node_id(request):
    """schemathesis 4.32.5's from_fixture() reads and rewrites `node._nodeid`, which pytest 9.2 no longer has."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


@pytest.fixture(scope="module", autouse=True)
def _report_cases(request):
    """After the module: how many inputs were sent, per client and operation."""
    yield
    if CASES:
        total = sum(CASES.values())
        per_operation = {f"{who} {label}": n for (who, label), n in sorted(CASES.items())}
        summary = f"{total} inputs tried on {len(CASES)} operation/client pairs, seed {SEED}, {EXAMPLES} examples"
        record(request.config, "fuzz", summary, {"total": total, "seed": SEED, "per_operation": per_operation})


def run_case(case, target: FuzzTarget, who: str) -> None:
    """Send one case with `who`'s bearer token (on the operations that take one) and check the response."""
    target.aim(case, who)
    CASES[(who, case.operation.label)] += 1
    headers = None
    if case.path.startswith("/security/ticket") or case.path.endswith("/oauth/introspect"):
        headers = bearer(target.tokens[who])
    response = case.call_and_validate(session=target.session, headers=headers, checks=CHECKS, timeout=30)
    if case.method == "POST" and case.path == "/security/ticket" and response.status_code == 200:
        target.created.add(response.json()["id"])


HYPOTHESIS = settings(deadline=None, suppress_health_check=list(HealthCheck), database=None)
schema = schemathesis.pytest.from_fixture("fuzz_schema")


@schema.parametrize()
@HYPOTHESIS
def test_every_operation_as_an_organization_client(case, fuzz_target):
    """Every documented operation with an organization client's token: no 5xx, every response as documented."""
    run_case(case, fuzz_target, "org")


@schema.include(path_regex=r"^/security/ticket").parametrize()
@HYPOTHESIS
def test_ticket_operations_as_a_system_client(case, fuzz_target):
    """The ticket operations with a system client's token: no 5xx, every response as documented."""
    run_case(case, fuzz_target, "system")
