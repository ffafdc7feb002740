"""`flask --app app webhooks add|list|delete|rotate-secret|test`: they change the endpoints' records, which a
running service rereads (at once on the TinyDB files, within a second on PostgreSQL)."""

from __future__ import annotations

import json
import uuid

import click
from flask.cli import AppGroup

from tickets.context import current_services
from tickets.core import clock
from tickets.webhooks import messages
from tickets.webhooks.endpoints import EndpointNotFound
from tickets.webhooks.sender import Sender

webhooks_cli = AppGroup("webhooks", help="Manage webhook endpoints (Standard Webhooks, signed).")


def emit(value) -> None:
    click.echo(json.dumps(value))


@webhooks_cli.command("add")
@click.option("--url", required=True, help="Where to POST the messages (http or https).")
@click.option("--org", default=None, help="Only this organization's events; without it, every organization's.")
@click.option("--events", default=None, help="Comma-separated event types; without it, all of them.")
def add_endpoint(url, org, events):
    """Register an endpoint; prints it with its secret (shown now and at rotate-secret only)."""
    wanted = [event.strip() for event in events.split(",") if event.strip()] if events is not None else None
    try:
        emit(current_services().webhooks.add(url, org, wanted))
    except ValueError as error:
        raise click.UsageError(str(error)) from None


@webhooks_cli.command("list")
def list_endpoints():
    """Every endpoint (no secret), with its last delivery's outcome and how many messages it is owed."""
    services = current_services()
    backlog = services.storage.outbox.backlog(services.webhooks.targets)
    endpoints = services.webhooks.endpoints()
    emit([
        {**endpoint.public(), **backlog.get(endpoint_id, {"pending": 0, "last": None})}
        for endpoint_id, endpoint in sorted(endpoints.items())
    ])


@webhooks_cli.command("delete")
@click.argument("endpoint_id")
def delete_endpoint(endpoint_id):
    """Delete an endpoint; what it was owed is dropped."""
    try:
        current_services().webhooks.delete(endpoint_id)
    except EndpointNotFound:
        raise click.ClickException(f"no webhook endpoint {endpoint_id}") from None
    emit({"deleted": endpoint_id})


@webhooks_cli.command("rotate-secret")
@click.argument("endpoint_id")
def rotate_secret(endpoint_id):
    """A new secret; for TICKETS_WEBHOOK_SECRET_OVERLAP seconds messages carry both signatures."""
    try:
        emit(current_services().webhooks.rotate_secret(endpoint_id))
    except EndpointNotFound:
        raise click.ClickException(f"no webhook endpoint {endpoint_id}") from None


@webhooks_cli.command("test")
@click.argument("endpoint_id")
def test_endpoint(endpoint_id):
    """Send a webhook.test message now; prints the receiver's status (non-zero exit unless 2xx)."""
    services = current_services()
    try:
        endpoint = services.webhooks.get(endpoint_id)
    except EndpointNotFound:
        raise click.ClickException(f"no webhook endpoint {endpoint_id}") from None
    now = clock.timestamp()
    message_id = f"msg_{uuid.uuid4().hex}"
    payload = messages.encode({"type": "webhook.test", "timestamp": messages.format_time(clock.utcnow()),
                               "data": {"endpoint": endpoint.id}})
    sender = Sender(services.deliverer.timeout)
    status = sender.post(endpoint.id, endpoint.url, payload,
                         messages.headers(message_id, payload, endpoint.signing_secrets(now), now))
    sender.close(endpoint.id)
    emit({"id": endpoint.id, "url": endpoint.url, "webhook-id": message_id, "status": status})
    if status is None or not 200 <= status < 300:
        raise click.ClickException(f"the receiver answered {status if status is not None else 'nothing'}")
