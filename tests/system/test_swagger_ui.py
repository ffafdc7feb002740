"""Swagger UI in a real headless Chromium: every operation listed, Authorize by client credentials, create a ticket.

Needs Debian's `chromium` (/usr/bin/chromium) and Playwright for Python; `.ci/run` installs both, so under CI
(CI=true) a missing one fails the test instead of skipping it. Playwright's own browser downloads are never used.
The browser may reach 127.0.0.1 only: any other request is aborted, recorded and fails the test (no CDN).
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest
import requests

from .browser import ARTIFACTS, TIMEOUT_MS, chromium, require_browser
from .conftest import bearer, fetch_token

require_browser()
pytestmark = pytest.mark.system

SCREENSHOT = ARTIFACTS / "swagger-ui.png"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
BODY = {"type": "MULTI_USE_TICKET", "properties": {"customer_id": "swagger"}}


def documented_operations(base_url: str) -> set[tuple[str, str]]:
    """(METHOD, path) of every operation in the OpenAPI document."""
    response = requests.get(f"{base_url}/security/openapi.json", timeout=30)
    assert response.status_code == 200, response.text
    return {
        (method.upper(), path)
        for path, item in response.json()["paths"].items()
        for method in item
        if method in METHODS
    }


def redacted(headers: dict) -> dict:
    """Request headers for a failure message, without the credentials themselves."""
    shown = dict(headers)
    if "authorization" in shown:
        scheme = shown["authorization"].partition(" ")[0]
        shown["authorization"] = f"{scheme} <redacted>"
    return shown


def test_swagger_ui_authorize_and_create_ticket(gunicorn):
    """A developer's path through Swagger UI: list, Authorize (client credentials), Try it out, Execute."""
    server = gunicorn(workers=2)
    credentials = server.cli("clients", "create", "--name", "swagger-ui", "--org", "org-swagger")
    expected = documented_operations(server.url)
    assert ("POST", "/security/ticket") in expected

    exchanges: list[dict] = []  # what the page sent to the token and ticket endpoints, and what came back
    page_errors: list[str] = []
    csp_violations: list[str] = []
    blocked: list[str] = []  # requests to other hosts than 127.0.0.1, aborted

    def on_request(request):
        if request.url.startswith(f"{server.url}/security/oauth/token") or request.url.endswith("/security/ticket"):
            exchanges.append(
                {
                    "request": f"{request.method} {request.url}",
                    "headers": redacted(request.headers),
                    "body": request.post_data,
                    "response": None,
                }
            )

    def on_response(response):
        for entry in reversed(exchanges):
            if entry["request"] == f"{response.request.method} {response.url}" and entry["response"] is None:
                try:
                    body = response.text()
                except Exception as error:  # the body may be gone already; the status still tells
                    body = f"<unreadable: {error}>"
                entry["response"] = {"status": response.status, "headers": response.headers, "body": body}
                break

    def log() -> str:
        return (
            "\nexchanges:\n"
            + json.dumps(exchanges, indent=1, default=str)
            + f"\npage errors: {page_errors}\nblocked: {blocked}\ngunicorn:\n{server.output()[-3000:]}"
        )

    with chromium() as (browser, loopback):
        blocked = loopback.blocked
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(TIMEOUT_MS)
        context.route("**/*", loopback)
        page = context.new_page()
        page.on("request", on_request)
        page.on("response", on_response)
        page.on("pageerror", lambda error: page_errors.append(str(error)))
        page.on(
            "console",
            lambda message: csp_violations.append(message.text)
            if "Content Security Policy" in message.text else None,
        )
        try:
            loaded = page.goto(f"{server.url}/security/swagger-ui", wait_until="load")
            policy = loaded.headers.get("content-security-policy", "")
            assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy, policy
            assert loaded.headers.get("x-content-type-options") == "nosniff"

            # Every documented operation is listed (tags are expanded by default).
            page.wait_for_function(
                "n => document.querySelectorAll('.opblock .opblock-summary-path').length >= n",
                arg=len(expected),
            )
            rendered = page.eval_on_selector_all(
                ".opblock",
                """blocks => blocks.map(block => [
                    block.querySelector('.opblock-summary-method').textContent.trim().toUpperCase(),
                    block.querySelector('.opblock-summary-path').getAttribute('data-path'),
                ])""",
            )
            assert {tuple(operation) for operation in rendered} == expected

            # Authorize: the oauth2 scheme's clientCredentials flow.
            page.locator(".scheme-container button.authorize").click()
            oauth2 = page.locator(".modal-ux .auth-container").filter(has=page.locator("h4", has_text="oauth2"))
            oauth2.locator("#client_id").fill(credentials["client_id"])
            oauth2.locator("#client_secret").fill(credentials["client_secret"])
            with page.expect_response(lambda r: urlsplit(r.url).path == "/security/oauth/token") as token_info:
                oauth2.locator("button.authorize").click()
            token_response = token_info.value
            assert token_response.status == 200, f"the token endpoint refused Swagger UI{log()}"
            # Authorized: the form shows Logout instead of Authorize, and no error.
            oauth2.locator("button.authorize", has_text="Logout").wait_for()
            assert oauth2.locator(".errors").count() == 0, oauth2.inner_text() + log()
            oauth2.locator("button.btn-done").click()
            page.locator(".modal-ux").wait_for(state="detached")
            # The token lives in the page only: nothing in the browser's storage (SPEC section 11).
            stored = page.evaluate("() => JSON.stringify([{...localStorage}, {...sessionStorage}])")
            assert "authorized" not in stored and "eyJ" not in stored, stored

            # Try "POST /security/ticket".
            operation = page.locator(".opblock.opblock-post").filter(
                has=page.locator('.opblock-summary-path[data-path="/security/ticket"]')
            )
            assert "Create a ticket" in operation.locator(".opblock-summary").inner_text()
            operation.locator(".opblock-summary").click()
            operation.locator("button.try-out__btn").click()
            operation.locator("textarea.body-param__text").fill(json.dumps(BODY))
            with page.expect_response(
                lambda r: r.request.method == "POST" and urlsplit(r.url).path == "/security/ticket"
            ) as created_info:
                operation.locator("button.execute").click()
            created_response = created_info.value
            assert created_response.status == 200, log()
            assert created_response.request.headers.get("authorization", "").startswith("Bearer "), log()

            # What the page shows: the live response, code 200, the created ticket.
            live = operation.locator(".live-responses-table .response").first
            live.wait_for()
            assert live.locator(".response-col_status").inner_text().strip() == "200", log()
            shown = live.locator(".response-col_description pre.microlight").first.inner_text()
            ticket = json.loads(shown)
            assert ticket["type"] == "MULTI_USE_TICKET", shown
            assert ticket["properties"] == BODY["properties"], shown
            assert isinstance(ticket.get("id"), str) and ticket["id"], shown
            assert "MULTI_USE_TICKET" in live.inner_text()
            operation.locator(".live-responses-table").scroll_into_view_if_needed()
        finally:
            page.screenshot(path=str(SCREENSHOT), full_page=True)

    assert blocked == [], f"the page tried to reach hosts other than 127.0.0.1: {blocked}"
    assert csp_violations == [], f"the page's own code broke its Content-Security-Policy: {csp_violations}"

    # The ticket exists for the API too.
    token = fetch_token(server.url, credentials)
    fetched = requests.get(f"{server.url}/security/ticket/{ticket['id']}", headers=bearer(token), timeout=30)
    assert fetched.status_code == 200, fetched.text
    assert fetched.json()["id"] == ticket["id"]
    assert fetched.json()["organizationId"] == "org-swagger"
    assert fetched.json()["properties"] == BODY["properties"]
