"""The Prometheus metrics, defined once; every layer counts here, and /metrics (tickets.http.observability) reads.

Metrics use prometheus-client's multiprocess mode when PROMETHEUS_MULTIPROC_DIR is set (gunicorn.conf.py
sets it), so the counts of every gunicorn worker add up in one scrape.
"""

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter(
    "tickets_http_requests_total", "HTTP requests by endpoint template, method and status.",
    ["endpoint", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "tickets_http_request_duration_seconds", "HTTP request latency by endpoint template and method.",
    ["endpoint", "method"],
)
TICKETS_CREATED = Counter("tickets_created_total", "Tickets created, by type.", ["type"])
EXCHANGES = Counter(
    "tickets_exchanges_total", "Ticket exchanges by ticket type and outcome (success or the refusal).",
    ["type", "outcome"],
)
THROTTLED = Counter("tickets_throttled_total", "Ticket exchanges refused with 429 because of earlier failures.")
TOKENS_ISSUED = Counter("tickets_tokens_issued_total", "Access tokens issued, by grant type.", ["grant"])
WEBHOOK_DELIVERIES = Counter(
    "tickets_webhook_deliveries_total",
    "Webhook messages by event type and outcome: delivered, failed (to be retried), gave_up, gone (410).",
    ["type", "outcome"],
)
WEBHOOK_ATTEMPTS = Counter("tickets_webhook_attempts_total", "Webhook delivery attempts.")
WEBHOOK_PENDING = Gauge(
    "tickets_webhook_pending", "Webhook deliveries owed (to all endpoints).", multiprocess_mode="livemax"
)
WEBHOOK_OLDEST = Gauge(
    "tickets_webhook_oldest_pending_seconds", "Age of the oldest event still owed to an endpoint.",
    multiprocess_mode="livemax",
)
