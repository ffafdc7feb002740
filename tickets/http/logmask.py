"""Ticket ids are secrets: no log line the process writes carries one (SPEC section 11).

A ticket id is 6 to 64 characters of its alphabet (no 0/O, 1/I/L) and is looked up in any case, so
what looks like one is masked to its first two characters: as a path segment or a parameter value in
any case (`/t/k7qw4mzp2`, `ticket=K7QW4MZP2`), and as a word in capitals anywhere (how ids are
written). Every handler of the app's loggers and of gunicorn's (access and error logs, "invalid
request line" messages included) formats through MaskingFormatter.
"""

from __future__ import annotations

import logging
import re

from gunicorn import glogging

ID = "A-HJ-KM-NP-Z2-9"
ANY_CASE = ID + "a-hj-km-np-z"
SEGMENT_END = r"(?=[/?#&\s\"'`;,)\]>|\\]|$)"
IN_PATH_OR_VALUE = re.compile(rf"(?<=[/=])([{ANY_CASE}]{{2}})[{ANY_CASE}]{{4,62}}{SEGMENT_END}")
IN_CAPITALS = re.compile(rf"(?<![A-Za-z0-9_])([{ID}]{{2}})[{ID}]{{4,62}}(?![A-Za-z0-9_])")
MASKED_PATH_KEY = "tickets.masked_path"


def mask_ids(text: str) -> str:
    """'GET /security/ticket/K7QW4MZP2/event' -> 'GET /security/ticket/K7***/event'."""
    return IN_CAPITALS.sub(r"\1***", IN_PATH_OR_VALUE.sub(r"\1***", text))


class MaskingFormatter(logging.Formatter):
    """Formats as the formatter it wraps, then masks ticket ids in the whole line (tracebacks included)."""

    def __init__(self, inner: logging.Formatter | None):
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        return mask_ids(self.inner.format(record))


def mask_handlers(logger: logging.Logger) -> None:
    """Make every handler of `logger` mask what it writes (once)."""
    for handler in logger.handlers:
        if not isinstance(handler.formatter, MaskingFormatter):
            handler.setFormatter(MaskingFormatter(handler.formatter))


def init_log_masking(*loggers: logging.Logger) -> None:
    """Mask the app's loggers; records of library loggers reach the root logger, which gets a handler if it
    has none (else Python's last-resort handler would write them unmasked)."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("[%(process)d] [%(levelname)s] %(name)s: %(message)s"))
        root.addHandler(handler)
    for logger in (root, *loggers):
        mask_handlers(logger)


class MaskingGunicornLogger(glogging.Logger):
    """gunicorn's logger (gunicorn.conf.py: logger_class) whose access and error logs mask ticket ids."""

    def setup(self, cfg):
        super().setup(cfg)
        mask_handlers(self.error_log)
        mask_handlers(self.access_log)


class MaskedPathMiddleware:
    """Puts the masked path (never the query string, where tickets may travel) in the WSGI environ,
    for gunicorn's access log format `%({tickets.masked_path}e)s`."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        environ[MASKED_PATH_KEY] = mask_ids(environ.get("PATH_INFO", ""))
        return self.app(environ, start_response)
