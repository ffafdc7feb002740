"""`flask --app app clients|keys|tickets ...`: they change the data files, which a running service rereads."""

from __future__ import annotations

import json

import click
from flask import Flask
from flask.cli import AppGroup

from tickets.context import current_services
from tickets.core.rules import ORGANIZATION_ID_RULE, is_organization_id
from tickets.oauth.clients import ClientNotFound
from tickets.storage import StorageError, TicketIdTaken, open_storage
from tickets.webhook_cli import webhooks_cli

clients_cli = AppGroup("clients", help="Manage OAuth2 clients.")
keys_cli = AppGroup("keys", help="Manage JWT signing keys.")
tickets_cli = AppGroup("tickets", help="Maintain the ticket store.")
store_cli = AppGroup("store", help="Move the data between stores.")


def emit(value) -> None:
    click.echo(json.dumps(value))


def organization_option(ctx, param, value):
    """--org, checked as the API checks organizationId: an empty or odd one must not make a system client."""
    if value is not None and not is_organization_id(value):
        raise click.BadParameter(f"must be {ORGANIZATION_ID_RULE} (got {value!r})")
    return value


@clients_cli.command("create")
@click.option("--name", required=True, help="A label for people.")
@click.option(
    "--org", default=None, callback=organization_option,
    help="Organization; without it, a system client acting on every organization.",
)
@click.option("--scope", default="global", show_default=True, help="Space-separated scopes.")
def create_client(name, org, scope):
    """Register a client; prints its credentials once as JSON."""
    try:
        emit(current_services().clients.create(name, org, scope))
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--scope") from None


@clients_cli.command("list")
def list_clients():
    """Print every client (never a secret) as a JSON array."""
    emit(current_services().clients.list())


@clients_cli.command("delete")
@click.argument("client_id")
def delete_client(client_id):
    """Delete a client; its tokens stop working at once."""
    try:
        current_services().clients.delete(client_id)
    except ClientNotFound:
        raise click.ClickException(f"no client {client_id}") from None
    emit({"deleted": client_id})


@clients_cli.command("rotate-secret")
@click.argument("client_id")
def rotate_secret(client_id):
    """Give a client a new secret; prints its credentials once as JSON."""
    try:
        emit(current_services().clients.rotate_secret(client_id))
    except ClientNotFound:
        raise click.ClickException(f"no client {client_id}") from None


@keys_cli.command("rotate")
def rotate_keys():
    """Sign with a new key from now on; old public keys stay published until their tokens expire."""
    emit({"kid": current_services().keys.rotate()})


@tickets_cli.command("purge")
def purge_tickets():
    """Remove tickets past retention now (the service also does this by itself)."""
    emit({"purged": current_services().tickets.purge()})


@store_cli.command("copy")
@click.option("--to", "target_url", required=True, help="postgresql://... of the database to copy into.")
def copy_store(target_url):
    """Copy every ticket, client, signing key and webhook endpoint of this install into PostgreSQL (existing
    ids are kept); webhook messages still owed are not copied."""
    if not target_url.startswith(("postgresql://", "postgres://")):
        raise click.BadParameter("must be a postgresql:// URL", param_hint="--to")
    try:
        target = open_storage("", target_url)
    except StorageError as error:
        raise click.ClickException(str(error)) from None
    try:
        emit(copy_everything(current_services().storage, target))
    finally:
        target.close()


def copy_everything(source, target) -> dict:
    """Tickets (used-up single-use records too), clients, keys and webhook endpoints; how many of each."""
    copied = {"tickets": 0, "tickets_already_there": 0, "clients": 0, "keys": 0, "webhooks": 0}
    for ticket in source.tickets.all():
        try:
            target.tickets.add(ticket)
            copied["tickets"] += 1
        except TicketIdTaken:
            copied["tickets_already_there"] += 1
    for kind in ("clients", "keys", "webhooks"):
        for record_id, record in source_records(getattr(source, kind)).items():
            getattr(target, kind).put(record_id, record)
            copied[kind] += 1
    return copied


def source_records(repository) -> dict:
    return {record_id: dict(record) for record_id, record in repository.all().items()}


def init_app(app: Flask) -> None:
    for group in (clients_cli, keys_cli, tickets_cli, store_cli, webhooks_cli):
        app.cli.add_command(group)
