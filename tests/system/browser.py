"""Headless Chromium for the system tests (Swagger UI, the join page), driven by Playwright for Python.

Debian's `chromium` (/usr/bin/chromium) is used, never Playwright's own downloads; `.ci/run` installs it, so
under CI (CI=true) a missing one fails the test instead of skipping it. The browser may reach 127.0.0.1
only: any other request is aborted and recorded (`Loopback.blocked`), and it cannot resolve other hosts.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from .conftest import HOST, REPO

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "test-artifacts"
TIMEOUT_MS = 15_000
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Belt and braces beside the request routing: the browser itself cannot resolve any other host.
    f"--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE {HOST}",
]


def require_browser() -> None:
    """Skip (fail under CI) the calling test module unless Chromium and Playwright are there."""
    if not CHROMIUM.exists():
        _missing(f"{CHROMIUM} is missing (Debian's `chromium` package)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _missing("Playwright for Python is not installed (requirements-dev.txt)")


def _missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; .ci/run installs it, so CI must not skip this test")
    pytest.skip(reason, allow_module_level=True)


class Loopback:
    """A route handler letting requests to 127.0.0.1 through and aborting (and recording) any other."""

    def __init__(self):
        self.blocked: list[str] = []

    def __call__(self, route) -> None:
        if urlsplit(route.request.url).hostname == HOST:
            route.continue_()
        else:
            self.blocked.append(route.request.url)
            route.abort("blockedbyclient")


@contextmanager
def chromium():
    """A launched headless Chromium; yields (browser, loopback) where every context should route `loopback`."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser, Loopback()
        finally:
            browser.close()
