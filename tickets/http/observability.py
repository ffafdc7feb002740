"""What operators see: one JSON log line per request with its X-Request-ID, and the /metrics endpoint."""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import sys
import time
import uuid

from flask import Flask, Response, g, request
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess

from tickets.core import clock
from tickets.metrics import HTTP_LATENCY, HTTP_REQUESTS

REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
request_log = logging.getLogger("tickets.requests")


def init_observability(app: Flask) -> None:
    """Request ids, the JSON request log (unless TICKETS_REQUEST_LOG says otherwise) and the /metrics endpoint."""
    if not request_log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        request_log.addHandler(handler)
        request_log.propagate = False
    request_log.setLevel(logging.INFO if app.config["TICKETS_REQUEST_LOG"] == "json" else logging.WARNING)
    app.before_request(_start_request)
    app.after_request(_finish_request)
    app.add_url_rule("/metrics", "metrics", _metrics)


def _start_request() -> None:
    incoming = request.headers.get("X-Request-ID", "")
    g.request_id = incoming if REQUEST_ID.match(incoming) else uuid.uuid4().hex
    g.started = time.perf_counter()


def _finish_request(response: Response) -> Response:
    request_id = g.get("request_id") or uuid.uuid4().hex
    response.headers["X-Request-ID"] = request_id
    duration = time.perf_counter() - g.get("started", time.perf_counter())
    # The URL rule, never the path: paths carry ticket ids, which are secrets.
    endpoint = request.url_rule.rule if request.url_rule else "<unmatched>"
    if endpoint != "/metrics":
        method = request.method if request.method in KNOWN_METHODS else "other"  # made-up methods: one label
        _count(endpoint, method, response.status_code, duration)
    if request_log.isEnabledFor(logging.INFO):
        _log_line(request_id, endpoint, response.status_code, duration)
    return response


@functools.cache
def _children(endpoint: str, method: str, status: int):
    """The metric series of one (endpoint, method, status): looked up once, not on every request."""
    return HTTP_REQUESTS.labels(endpoint, method, str(status)), HTTP_LATENCY.labels(endpoint, method)


def _count(endpoint: str, method: str, status: int, duration: float) -> None:
    requests, latency = _children(endpoint, method, status)
    requests.inc()
    latency.observe(duration)


def _log_line(request_id: str, endpoint: str, status: int, duration: float) -> None:
    token = g.get("authlib_server_oauth2_token") or {}
    request_log.info(json.dumps({
        "time": clock.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"),
        "request_id": request_id,
        "method": request.method,
        "path": endpoint,
        "status": status,
        "duration_ms": round(duration * 1000, 2),
        "client_id": token.get("client_id") or g.get("client_id"),
        "organization": token.get("org") or g.get("organization"),
    }))


def _metrics():
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
