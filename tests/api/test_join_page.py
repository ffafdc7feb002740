"""GET /t/{ticketId}, the join page (SPEC section 12), through the test client: it changes nothing, shows the
state in plain words and nothing else of the ticket, counts unknown ids for the throttle, and carries its
headers. The browser side (the Join button) is in tests/system/test_join_page.py."""

from __future__ import annotations

from datetime import timedelta
from html.parser import HTMLParser

import pytest

from app import create_app
from tests.conftest import bearer, exchange, fetch_token, make_client
from tickets.config import ConfigError
from tickets.core import clock as real_clock
from tickets.http.join_words import WORDS

BUTTON = 'id="join-button"'
REQUIRED_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
}


class Markup(HTMLParser):
    """What a page's HTML holds that CSP would have to stop: inline scripts, styles and handlers."""

    def __init__(self, html: str):
        super().__init__()
        self.inline: list[str] = []
        self.scripts: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "script":
            self.scripts.append(attributes.get("src") or "")
        if tag == "style" or "style" in attributes or any(name.startswith("on") for name in attributes):
            self.inline.append(f"<{tag} {attrs}>")

    def handle_data(self, data):
        if self.lasttag == "script" and data.strip():
            self.inline.append(data.strip()[:40])


def page(test_client, ticket_id: str, method: str = "get"):
    return getattr(test_client, method)(f"/t/{ticket_id}")


def use_count(test_client, auth, ticket_id: str) -> int:
    return test_client.get(f"/security/ticket/{ticket_id}", headers=auth).json["useCount"]


def test_opening_the_link_uses_nothing(test_client, auth, create_ticket):
    ticket = create_ticket("SINGLE_USE_TICKET", {"title": "Support call", "customer_id": "c-secret-42"})
    for method in ("get", "head", "get"):
        assert page(test_client, ticket["id"], method).status_code == 200
    assert use_count(test_client, auth, ticket["id"]) == 0
    assert exchange(test_client, ticket["id"]).status_code == 200  # still there for the person who clicks


def test_a_ready_ticket_shows_its_title_and_a_join_button_and_nothing_else(test_client, create_ticket):
    ticket = create_ticket("MULTI_USE_TICKET", {"title": "Support call", "customer_id": "c-secret-42"})
    answer = page(test_client, ticket["id"].lower())  # ids are case-insensitive, as everywhere
    html = answer.get_data(as_text=True)
    assert answer.status_code == 200 and answer.mimetype == "text/html"
    assert "Support call" in html and BUTTON in html and WORDS["ready"] in html
    for word in ("joining", "joined", "joined_until", "token_label", "copy_token", "error", "throttled"):
        assert WORDS[word] in html, word  # what the script shows after the click is in the page already
    assert "c-secret-42" not in html and "org-a" not in html  # no properties, no organization
    assert f'data-ticket="{ticket["id"]}"' in html and 'data-token-url="/security/oauth/token"' in html
    assert '<html lang="en">' in html


def test_every_header_of_the_spec(test_client, create_ticket):
    for ticket_id in (create_ticket()["id"], "NOSUCHID9"):
        answer = page(test_client, ticket_id)
        for name, value in REQUIRED_HEADERS.items():
            assert answer.headers[name] == value, (ticket_id, name)
        policy = answer.headers["Content-Security-Policy"]
        assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy and "unsafe" not in policy


def test_no_inline_script_style_or_handler_and_every_asset_is_ours(test_client, create_ticket):
    ticket = create_ticket(properties={"title": "<script>alert(1)</script><b onclick=x()>t</b>"})
    html = page(test_client, ticket["id"]).get_data(as_text=True)
    markup = Markup(html)
    assert markup.inline == [] and markup.scripts == ["/static/join.js"]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # the title is text
    for asset in ("/static/join.js", "/static/join.css"):
        served = test_client.get(asset)
        assert served.status_code == 200 and served.headers["X-Content-Type-Options"] == "nosniff"
        assert b"http://" not in served.data and b"https://" not in served.data  # nothing fetched from elsewhere


@pytest.mark.parametrize("change, words", [
    ("disable", WORDS["disabled"]),
    ("revoke", WORDS["revoked"]),
])
def test_a_switched_off_ticket_says_so(test_client, auth, create_ticket, change, words):
    """...and not what it was for: the title is shown only while the ticket can be used (SPEC section 12)."""
    ticket = create_ticket(properties={"title": "Quarterly review"})
    assert test_client.post(f"/security/ticket/{ticket['id']}/{change}", headers=auth).status_code == 204
    answer = page(test_client, ticket["id"])
    html = answer.get_data(as_text=True)
    assert answer.status_code == 200 and words in html and BUTTON not in html
    assert "Quarterly review" not in html and WORDS["default_title"] in html


def test_an_expired_ticket_says_so(test_client, create_ticket, clock):
    ticket = create_ticket(properties={"title": "Quarterly review"}, ttl=60)
    clock.advance(seconds=61)
    html = page(test_client, ticket["id"]).get_data(as_text=True)
    assert WORDS["expired"] in html and BUTTON not in html and "Quarterly review" not in html


def test_a_scheduled_ticket_not_open_yet_says_when_it_opens(test_client, create_ticket):
    start = (real_clock.utcnow() + timedelta(hours=3)).replace(microsecond=0)
    ticket = create_ticket("SCHEDULE_TICKET", {"scheduled_date": start.isoformat(), "duration": 45, "title": "Demo"})
    html = page(test_client, ticket["id"]).get_data(as_text=True)
    opens = (start - timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%S")
    assert WORDS["not_yet"] in html and f'datetime="{opens}.000Z"' in html and BUTTON not in html
    assert "Demo" not in html and WORDS["default_title"] in html


def test_a_scheduled_ticket_that_is_open_shows_its_time_and_length(test_client, create_ticket):
    start = (real_clock.utcnow() + timedelta(minutes=10)).replace(microsecond=0)
    ticket = create_ticket("SCHEDULE_TICKET", {"scheduled_date": start.isoformat(), "duration": 45})
    html = page(test_client, ticket["id"]).get_data(as_text=True)
    assert f'datetime="{start.strftime("%Y-%m-%dT%H:%M:%S")}.000Z"' in html and "45 minutes" in html
    assert WORDS["default_title"] in html and BUTTON in html


def test_unknown_and_used_up_ids_are_404(test_client, create_ticket):
    used = create_ticket("SINGLE_USE_TICKET")
    assert exchange(test_client, used["id"]).status_code == 200
    for ticket_id in ("NOSUCHID9", used["id"], "not-an-id!", "x" * 300):
        answer = page(test_client, ticket_id)
        assert answer.status_code == 404 and WORDS["not_found"] in answer.get_data(as_text=True), ticket_id


def test_unknown_ids_count_for_the_throttle(test_client, create_ticket):
    ticket = create_ticket()
    for number in range(10):
        assert page(test_client, f"NOSUCH{number:03d}").status_code == 404
    refused = page(test_client, ticket["id"])  # the 11th look in a minute, even at a real ticket
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert WORDS["throttled"] in refused.get_data(as_text=True)
    assert exchange(test_client, ticket["id"]).status_code == 429  # one budget for the page and the exchange


def test_the_page_can_be_turned_off(make_app, tmp_path):
    app = make_app(tmp_path / "data", TICKETS_JOIN_PAGE=0)
    answer = app.test_client().get("/t/ABCDEFGHJ")
    assert answer.status_code == 404 and answer.is_json


def test_the_join_url_is_handed_to_the_page(make_app, tmp_path):
    app = make_app(tmp_path / "data", TICKETS_JOIN_URL="https://app.example.com/join?room=1")
    test_client = app.test_client()
    token = fetch_token(test_client, make_client(app))
    ticket = test_client.post("/security/ticket", json={"type": "MULTI_USE_TICKET", "properties": {}},
                              headers=bearer(token)).json
    html = test_client.get(f"/t/{ticket['id']}").get_data(as_text=True)
    assert 'data-join-url="https://app.example.com/join?room=1"' in html


@pytest.mark.parametrize("url", ["ftp://app.example.com/", "https://app.example.com/#x", "/relative", "https://"])
def test_a_join_url_that_could_not_take_the_token_is_refused(tmp_path, url):
    with pytest.raises(ConfigError, match="TICKETS_JOIN_URL"):
        create_app({"TICKETS_DATA_DIR": str(tmp_path / "data"), "TICKETS_JOIN_URL": url})
