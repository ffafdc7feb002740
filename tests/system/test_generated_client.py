"""A client generated with openapi-python-client from the served document runs the README's walkthrough."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys

import pytest
import requests

from .conftest import BIN

pytestmark = pytest.mark.system


@pytest.fixture
def generated(gunicorn, tmp_path):
    """(server, the generated package): `openapi-python-client generate` on GET /security/openapi.json."""
    server = gunicorn(workers=2)
    document = tmp_path / "openapi.json"
    document.write_bytes(requests.get(f"{server.url}/security/openapi.json", timeout=30).content)
    result = subprocess.run(
        [str(BIN / "openapi-python-client"), "generate", "--path", str(document), "--meta", "none",
         "--output-path", str(tmp_path / "ticket_client")],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}"},  # it formats with ruff
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Warning" not in result.stdout + result.stderr, result.stdout + result.stderr
    sys.path.insert(0, str(tmp_path))
    try:
        yield server, importlib.import_module("ticket_client")
    finally:
        sys.path.remove(str(tmp_path))
        for name in [name for name in sys.modules if name.split(".")[0] == "ticket_client"]:
            del sys.modules[name]


def test_the_walkthrough_through_a_generated_client(generated):
    """Client credentials, create, read, update with If-Match, list, exchange, introspect, the event's bytes,
    disable, delete: each through the function named after its operationId."""
    server, package = generated
    api = importlib.import_module("ticket_client.api")
    models = importlib.import_module("ticket_client.models")
    tickets = importlib.import_module("ticket_client.api.tickets")
    oauth = importlib.import_module("ticket_client.api.oauth")
    for name in ("create_ticket", "list_tickets", "get_ticket", "update_ticket", "delete_ticket", "disable_ticket",
                 "enable_ticket", "revoke_ticket", "get_ticket_event"):
        importlib.import_module(f"ticket_client.api.tickets.{name}")
    for name in ("issue_token", "introspect_token", "revoke_token", "get_jwks", "get_authorization_server_metadata"):
        importlib.import_module(f"ticket_client.api.oauth.{name}")
    assert api and tickets and oauth
    credentials = server.cli("clients", "create", "--name", "generated", "--org", "org-generated")
    anonymous = package.Client(base_url=server.url)

    # 1-2. Client credentials (client_secret_post): a plain Client, no authentication needed to call.
    issued = oauth.issue_token.sync(client=anonymous, body=models.TokenRequest(
        grant_type=models.TokenRequestGrantType.CLIENT_CREDENTIALS,
        client_id=credentials["client_id"], client_secret=credentials["client_secret"],
    ))
    assert isinstance(issued, models.TokenResponse) and issued.token_type == "Bearer", issued
    staff = package.AuthenticatedClient(base_url=server.url, token=issued.access_token)

    # 3. Create.
    body = models.CreateTicketWebCommand(
        type_=models.CreateTicketWebCommandType.MULTI_USE_TICKET,
        properties=models.CreateTicketWebCommandProperties.from_dict({"customer_id": "c-42", "conference_id": "r7"}),
    )
    created = tickets.create_ticket.sync(client=staff, body=body)
    assert isinstance(created, models.Ticket) and created.version == 0, created

    # 4. Read (the ETag), update with If-Match, list with X-Pagination.
    read = tickets.get_ticket.sync_detailed(created.id, client=staff)
    assert read.status_code == 200 and read.headers["ETag"] == '"0"'
    update = models.UpdateTicketWebCommand(
        properties=models.UpdateTicketWebCommandProperties.from_dict({"customer_id": "c-42", "conference_id": "r8"})
    )
    updated = tickets.update_ticket.sync(created.id, client=staff, body=update, if_match='"0"')
    assert isinstance(updated, models.Ticket) and updated.version == 1
    stale = tickets.update_ticket.sync_detailed(created.id, client=staff, body=update, if_match='"0"')
    assert stale.status_code == 412 and isinstance(stale.parsed, models.Error)
    listed = tickets.list_tickets.sync_detailed(
        client=staff, status=models.ListTicketsStatus.ACTIVE, type_=models.ListTicketsType.MULTI_USE_TICKET,
        page=1, page_size=20,
    )
    assert [ticket.id for ticket in listed.parsed] == [created.id]
    assert '"total": 1' in listed.headers["X-Pagination"]

    # 5. The customer's side: exchange (no client authentication), and introspection by staff.
    exchanged = oauth.issue_token.sync(client=anonymous, body=models.TokenRequest(
        grant_type=models.TokenRequestGrantType.TICKET, ticket=created.id,
    ))
    assert isinstance(exchanged, models.TokenResponse) and exchanged.scope == "ticket", exchanged
    introspected = oauth.introspect_token.sync(client=staff, body=models.IntrospectionRequest(
        token=exchanged.access_token,
    ))
    assert introspected.active is True and introspected.ticket == created.id
    refused = oauth.issue_token.sync_detailed(client=anonymous, body=models.TokenRequest(
        grant_type=models.TokenRequestGrantType.TICKET, ticket="ABCDEFGHJ",
    ))
    assert refused.status_code == 400 and refused.parsed.error_description == "NOT_FOUND"

    # 6. The calendar event's bytes, of a scheduled ticket.
    scheduled = tickets.create_ticket.sync(client=staff, body=models.CreateTicketWebCommand(
        type_=models.CreateTicketWebCommandType.SCHEDULE_TICKET,
        properties=models.CreateTicketWebCommandProperties.from_dict(
            {"scheduled_date": "2030-05-04T10:00:00+02:00", "title": "Mortgage advice"}
        ),
    ))
    event = tickets.get_ticket_event.sync_detailed(scheduled.id, client=staff)
    assert event.status_code == 200 and event.headers["content-type"].startswith("text/calendar")
    assert isinstance(event.parsed, str) and event.parsed.startswith("BEGIN:VCALENDAR")
    assert "SUMMARY:Mortgage advice" in event.parsed

    # 7. Disable, delete.
    assert tickets.disable_ticket.sync_detailed(created.id, client=staff).status_code == 204
    assert tickets.delete_ticket.sync_detailed(created.id, client=staff).status_code == 204
    gone = tickets.get_ticket.sync_detailed(created.id, client=staff)
    assert gone.status_code == 404 and isinstance(gone.parsed, models.Error)
