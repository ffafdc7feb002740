"""Numbers the system tests measured: written to test-artifacts/<name>.json and shown on the terminal."""

from __future__ import annotations

import json

from .conftest import REPO

ARTIFACTS = REPO / "test-artifacts"


def record(config, name: str, summary: str, data: dict) -> None:
    """Write `data` to test-artifacts/<name>.json and print `summary` past pytest's output capture."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    line = f"[{name}] {summary} ({path.relative_to(REPO)})"
    capture = config.pluginmanager.getplugin("capturemanager")
    reporter = config.pluginmanager.getplugin("terminalreporter")
    if capture is None or reporter is None:
        print(line)
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line("")
        reporter.write_line(line)
