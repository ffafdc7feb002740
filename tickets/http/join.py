"""GET /t/{ticketId}: the join page (SPEC section 12). Opening it changes nothing; only the page's Join
button exchanges the ticket (static/join.js), so link scanners and chat previews cannot use one up.

A view of an id that does not exist counts as a failed exchange for the throttle, and a throttled address
sees only that it must wait: the page must not tell which ids exist faster than the exchange would.
"""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request, url_for

from tickets.context import current_services
from tickets.core import clock
from tickets.core.domain import Refusal, format_time
from tickets.http.join_words import LANG, WORDS

blp = Blueprint("join", __name__)

STATES = {
    None: "ready",
    Refusal.NOT_YET_VALID: "not_yet",
    Refusal.EXPIRED: "expired",
    Refusal.DISABLED: "disabled",
    Refusal.REVOKED: "revoked",
    Refusal.NOT_FOUND: "not_found",
}


@blp.get("/t/<ticketId>")
def join_page(ticketId: str):  # noqa: N803  (the path's name for it, as in the API and the logs)
    """The ticket's state in plain words, and a Join button when it can be used now."""
    services, address, now = current_services(), request.remote_addr, clock.timestamp()
    wait = services.throttle.retry_after(address, now)
    if wait:
        return page("throttled", 429, {"Retry-After": str(wait)})
    preview = services.tickets.preview_ticket(ticketId)
    if preview.ticket is None:
        services.throttle.record_failure(address, now)
        return page("not_found", 404)
    ticket, state = preview.ticket, STATES[preview.refusal]
    title = ticket.properties.get("title")
    if state != "ready" or not (isinstance(title, str) and title.strip()):
        title = WORDS["default_title"]  # a link that cannot be used now tells nothing of what it was for
    start = ticket.scheduled_start if ticket.type.scheduled else None
    return page(
        state, 200,
        title=title,
        ticket_id=ticket.id,
        start=format_time(start),
        duration=ticket.duration_minutes if start else None,
        opens_at=format_time(ticket.not_before),
    )


def page(state: str, status: int, headers: dict | None = None, **shown):
    html = render_template(
        "join.html", state=state, words=WORDS, lang=LANG, join_url=current_app.config["TICKETS_JOIN_URL"],
        token_url=url_for("oauth.issue_token"), **shown,
    )
    return html, status, headers or {}
