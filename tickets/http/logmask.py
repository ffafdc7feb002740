"""Ticket ids are secrets: what goes into logs shows only their first characters."""

from __future__ import annotations

import re

TICKET_IN_PATH = re.compile(r"(/ticket/)([^/]+)", re.IGNORECASE)
MASKED_PATH_KEY = "tickets.masked_path"


def mask_path(path: str) -> str:
    """'/security/ticket/ABCDEFGHJ/event' -> '/security/ticket/AB***/event'."""
    return TICKET_IN_PATH.sub(lambda match: f"{match.group(1)}{match.group(2)[:2]}***", path)


class MaskedPathMiddleware:
    """Puts the masked path (never the query string, where tickets may travel) in the WSGI environ,
    for gunicorn's access log format `%({tickets.masked_path}e)s`."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        environ[MASKED_PATH_KEY] = mask_path(environ.get("PATH_INFO", ""))
        return self.app(environ, start_response)
