"""`make lint`: the three OpenAPI linters against the document the app serves; any error or warning fails.

    .venv/bin/python tools/openapi/lint.py

openapi-spec-validator (Python), @redocly/cli lint with its recommended rules and @stoplight/spectral-cli
with spectral:oas (Node, pinned in tools/openapi/package-lock.json; `make lint` runs `npm ci` first).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))


def served_document() -> dict:
    """GET /security/openapi.json of an app on a throw-away data folder."""
    from app import create_app

    with tempfile.TemporaryDirectory() as data:
        app = create_app({"TESTING": True, "TICKETS_DATA_DIR": data, "TICKETS_REQUEST_LOG": "off"})
        response = app.test_client().get("/security/openapi.json")
        app.extensions["tickets"].storage.close()
    assert response.status_code == 200, response.status
    return response.json


def run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=HERE, capture_output=True, text=True, timeout=300)


def openapi_spec_validator(path: Path) -> list[str]:
    from openapi_spec_validator import validate
    from openapi_spec_validator.readers import read_from_filename

    try:
        validate(read_from_filename(str(path))[0])
    except Exception as error:  # noqa: BLE001  (every validation error is a problem to report)
        return [str(error)]
    return []


def redocly(path: Path) -> list[str]:
    result = run("npx", "--no-install", "redocly", "lint", "--config", "redocly.yaml", "--format", "json", str(path))
    report = json.loads(result.stdout[result.stdout.index("{"):]) if "{" in result.stdout else None
    if report is None:
        return [f"redocly did not run: {result.stderr[-2000:]}"]
    return [
        f"{p['severity']} {p['ruleId']}: {p['message']} at {p['location'][0]['pointer']}" for p in report["problems"]
    ]


def spectral(path: Path) -> list[str]:
    result = run("npx", "--no-install", "spectral", "lint", "--ruleset", ".spectral.yaml", "--format", "json",
                 "--quiet", str(path))
    if not result.stdout.strip().startswith("["):
        return [f"spectral did not run: {result.stdout[-1000:]} {result.stderr[-1000:]}"]
    severity = {0: "error", 1: "warning", 2: "info", 3: "hint"}
    return [
        f"{severity[p['severity']]} {p['code']}: {p['message']} at {'.'.join(map(str, p['path']))}"
        for p in json.loads(result.stdout)
    ]


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "openapi.json"
        path.write_text(json.dumps(served_document(), indent=1))
        problems = {
            "openapi-spec-validator": openapi_spec_validator(path),
            "@redocly/cli lint (recommended)": redocly(path),
            "@stoplight/spectral-cli lint (spectral:oas)": spectral(path),
        }
    for linter, found in problems.items():
        print(f"{linter}: {len(found)} problem(s)")
        for problem in found:
            print(f"  {problem}")
    return 1 if any(problems.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
