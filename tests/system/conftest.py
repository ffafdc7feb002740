"""System-test helpers: real gunicorn processes on 127.0.0.1 and the real `flask` CLI, on a temporary data folder."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
GUNICORN = BIN / "gunicorn"
FLASK = BIN / "flask"
HOST = "127.0.0.1"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
CLI_TIMEOUT = 60.0
# Variables of the parent's environment that must not leak into the service under test.
SCRUBBED = ("HOST", "PORT", "WEB_CONCURRENCY", "GUNICORN_CMD_ARGS", "FLASK_APP", "AUTHLIB_INSECURE_TRANSPORT")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def service_env(data_dir, extra: dict | None = None) -> dict:
    """The parent's environment without TICKETS_* and server settings, plus the data folder and `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKETS_") and k not in SCRUBBED}
    env["TICKETS_DATA_DIR"] = str(data_dir)
    env.update({key: str(value) for key, value in (extra or {}).items()})
    return env


def cli(data_dir, *args, env: dict | None = None, check: bool = True):
    """Run `flask --app app <args>` on `data_dir`; returns the parsed JSON of stdout."""
    result = subprocess.run(
        [str(FLASK), "--app", "app", *args],
        cwd=REPO,
        env=service_env(data_dir, env),
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
    )
    if check:
        assert result.returncode == 0, f"flask {' '.join(args)} failed ({result.returncode}):\n{result.stderr}"
        return json.loads(result.stdout)
    return result


class Gunicorn:
    """One real `gunicorn -c gunicorn.conf.py wsgi:app`, in its own process group, restartable on the same data."""

    def __init__(self, data_dir, log_dir, workers: int = 2, env: dict | None = None):
        self.data_dir = Path(data_dir)
        self.log_dir = Path(log_dir)
        self.workers = workers
        self.extra_env = dict(env or {})
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.starts = 0
        self._logs = []

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def env(self) -> dict:
        return service_env(
            self.data_dir,
            {"HOST": HOST, "PORT": self.port, "WEB_CONCURRENCY": self.workers, **self.extra_env},
        )

    def cli(self, *args, check: bool = True):
        """The flask CLI on this server's data folder and settings."""
        return cli(self.data_dir, *args, env=self.extra_env, check=check)

    def spawn(self) -> subprocess.Popen:
        """Start gunicorn without waiting for it; stdout and stderr go to files (a pipe could fill and block it)."""
        assert self.process is None or self.process.poll() is not None, "gunicorn is already running"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        out = open(self.log_dir / f"gunicorn-{self.starts}.out", "wb")
        err = open(self.log_dir / f"gunicorn-{self.starts}.err", "wb")
        self._logs = [out, err]
        self.process = subprocess.Popen(
            [str(GUNICORN), "-c", "gunicorn.conf.py", "wsgi:app"],
            cwd=REPO,
            env=self.env(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
        return self.process

    def output(self) -> str:
        """What the latest run wrote on stdout and stderr."""
        texts = []
        for name in (f"gunicorn-{self.starts}.out", f"gunicorn-{self.starts}.err"):
            path = self.log_dir / name
            if path.exists():
                texts.append(path.read_text(errors="replace"))
        return "\n".join(texts)

    def start(self) -> Gunicorn:
        """Start and wait until GET /security/health answers 200."""
        process = self.spawn()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"gunicorn exited with {process.returncode} while starting:\n{self.output()}")
            try:
                if requests.get(f"{self.url}/security/health", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        pytest.fail(f"gunicorn not healthy within {START_TIMEOUT} s:\n{self.output()}")

    def wait_exit(self, timeout: float = START_TIMEOUT) -> int | None:
        """The exit code if the process ends within `timeout`, else None (it keeps running)."""
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        """SIGTERM to the process group, SIGKILL after STOP_TIMEOUT."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                process.wait(timeout=STOP_TIMEOUT)
        # Workers left behind by a master that died on its own.
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        for handle in self._logs:
            handle.close()
        self._logs = []

    def restart(self) -> Gunicorn:
        """Stop, then start again on the same data folder, port and settings."""
        self.stop()
        return self.start()


@pytest.fixture
def gunicorn(tmp_path):
    """A factory: `gunicorn(workers=3, TICKETS_X=...)` starts a server on a fresh data folder; all stop at teardown."""
    servers = []

    def start(workers: int = 2, data_dir=None, started: bool = True, **env) -> Gunicorn:
        index = len(servers)
        server = Gunicorn(data_dir or tmp_path / f"data{index}", tmp_path / f"logs{index}", workers, env)
        servers.append(server)
        return server.start() if started else server

    yield start
    for server in servers:
        server.stop()


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def fetch_token(base_url: str, credentials: dict, session=None) -> str:
    """A client-credentials token by client_secret_basic."""
    response = (session or requests).post(
        f"{base_url}/security/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(credentials["client_id"], credentials["client_secret"]),
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def create_ticket(base_url: str, token: str, ticket_type="MULTI_USE_TICKET", properties=None, session=None) -> dict:
    """POST /security/ticket; returns the created Ticket."""
    body = {"type": ticket_type, "properties": properties if properties is not None else {}}
    response = (session or requests).post(f"{base_url}/security/ticket", json=body, headers=bearer(token), timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def exchange(base_url: str, ticket_id: str, session=None) -> requests.Response:
    """The ticket grant, form-encoded; without a session, on a new connection."""
    return (session or requests).post(
        f"{base_url}/security/oauth/token", data={"grant_type": "ticket", "ticket": ticket_id}, timeout=30
    )


def race_exchanges(urls: list[str], ticket_id: str, racers: int, round_number: int) -> None:
    """`racers` threads released together exchange one single-use ticket, spread over `urls`:
    asserts exactly one token and NOT_FOUND for every other."""
    barrier = threading.Barrier(racers)
    results: list = [None] * racers

    def race(slot: int) -> None:
        with requests.Session() as session:
            barrier.wait(timeout=30)
            try:
                response = exchange(urls[slot % len(urls)], ticket_id, session=session)
                results[slot] = (response.status_code, response.json())
            except requests.RequestException as error:
                results[slot] = ("error", repr(error))

    threads = [threading.Thread(target=race, args=(slot,), daemon=True) for slot in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), f"round {round_number}: a request hung"

    winners = [body for status, body in results if status == 200]
    losers = [(status, body) for status, body in results if status != 200]
    assert len(winners) == 1, f"round {round_number}: {len(winners)} winners; others {Counter(map(repr, losers))}"
    assert winners[0]["token_type"].lower() == "bearer" and winners[0]["access_token"]
    assert losers == [(400, {"error": "invalid_grant", "error_description": "NOT_FOUND"})] * (racers - 1)
