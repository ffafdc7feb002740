"""The bench's plumbing: paths, the time budget, logging, servers it starts and stops, and wrk runs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import requests

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
OUT = BENCH / "out"
LUA = BENCH / "lua"
VENV_BIN = ROOT / ".venv" / "bin"
HOST = "127.0.0.1"  # the only address this benchmark ever loads


class Deadline:
    """The whole run's budget (--max-minutes), checked before each step that takes time."""

    def __init__(self, minutes: float):
        self.end = time.monotonic() + minutes * 60

    def check(self, what: str) -> None:
        """Raise TimeoutError if the budget is spent before `what`."""
        if time.monotonic() > self.end:
            raise TimeoutError(f"bench ran past --max-minutes before {what}")


def log(message: str) -> None:
    """One timestamped progress line on stdout."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def free_port() -> int:
    """A port on HOST that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def tool(name: str) -> str:
    """The path of a command, the checkout's .venv first."""
    local = VENV_BIN / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if not found:
        raise SystemExit(f"{name} not found: run `make bench` (it installs what the bench needs)")
    return found


def clean_env(**extra: str) -> dict:
    """The caller's environment without TICKETS_* or gunicorn knobs of its own, plus `extra`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("TICKETS_")}
    for key in ("HOST", "PORT", "GUNICORN_CMD_ARGS"):
        env.pop(key, None)
    env.update(extra)
    return env


class Server:
    """A process we start in its own session, so that stopping it stops exactly what we started."""

    def __init__(self, name: str, argv: list[str], env: dict, health_url: str, cwd: Path):
        self.name, self.argv, self.env, self.health_url, self.cwd = name, argv, env, health_url, cwd
        self.proc: subprocess.Popen | None = None
        self.log_path = OUT / f"{name}.log"

    def start(self, timeout: float = 60) -> None:
        """Start it (output to bench/out/<name>.log) and wait until its health URL answers 200."""
        log(f"starting {self.name}")
        log_file = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            self.argv, env=self.env, cwd=self.cwd, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
        )
        log_file.close()
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {self.log_path}")
            try:
                if requests.get(self.health_url, timeout=2).status_code == 200:
                    time.sleep(0.5)  # let every worker finish booting
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not answer {self.health_url} within {timeout:.0f} s")

    def stop(self) -> None:
        """SIGTERM its process group, SIGKILL if it lingers; nothing if it is not running."""
        if self.proc is None or self.proc.poll() is not None:
            return
        log(f"stopping {self.name}")
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def worker_pids(self) -> list[int]:
        """gunicorn's HTTP workers: the children of the master we started but the dirty arbiter (the only one
        with children of its own: the webhook deliverer)."""
        return [pid for pid in _children(self.proc.pid) if not _children(pid)]

    def deliverer_pids(self) -> list[int]:
        """The webhook deliverer: the dirty arbiter's child (none for a checkout without webhooks)."""
        return [child for pid in _children(self.proc.pid) for child in _children(pid)]

    def worker_rss_mb(self, pids: list[int] | None = None) -> list[float]:
        """Each worker's (or each of `pids`') resident memory (VmRSS), in MB."""
        sizes = []
        for pid in self.worker_pids() if pids is None else pids:
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("VmRSS:"):
                    sizes.append(int(line.split()[1]) / 1024)
        return sizes


def _children(pid: int) -> list[int]:
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


class Wrk:
    """wrk with the run's -t; each run's output is kept in bench/out/wrk/<label>.txt."""

    def __init__(self, threads: int):
        self.threads = threads
        self.folder = OUT / "wrk"
        self.folder.mkdir(parents=True, exist_ok=True)

    def run(self, label: str, script: str, url: str, duration: int, connections: int, **env: str) -> dict:
        """One wrk run of bench/lua/<script> against `url`; the numbers its BENCH_JSON line reports, plus rates."""
        argv = ["wrk", f"-t{self.threads}", f"-c{connections}", f"-d{duration}s", "--timeout", "5s"]
        argv += ["-s", str(LUA / script), url]
        run_env = {**os.environ, "BENCH_THREADS": str(self.threads), **env}
        done = subprocess.run(argv, env=run_env, capture_output=True, text=True, timeout=duration + 60)
        (self.folder / f"{label}.txt").write_text(done.stdout + done.stderr)
        line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
        if done.returncode != 0 or line is None:
            raise RuntimeError(f"wrk {label} failed ({done.returncode}): {done.stderr.strip()[:500]}")
        result = json.loads(line[len("BENCH_JSON ") :])
        seconds = result["duration_us"] / 1e6
        result["connections"] = connections
        result["rps"] = result["requests"] / seconds if seconds else 0.0
        result["ok_rps"] = (result["requests"] - result["non2xx"]) / seconds if seconds else 0.0
        result["p50_ms"] = result["p50_us"] / 1000
        result["p99_ms"] = result["p99_us"] / 1000
        note = f", {result['non2xx']} non-2xx {result['statuses']}" if result["non2xx"] else ""
        log(
            f"  {label} (-c{connections}): {result['rps']:.0f} req/s, p50 {result['p50_ms']:.2f} ms, "
            f"p99 {result['p99_ms']:.2f} ms{note}"
        )
        return result


def flask_cli(app_dir: Path, env: dict, *args: str) -> str:
    """`flask --app app <args>` in the measured checkout; its stdout."""
    done = subprocess.run(
        [tool("flask"), "--app", "app", *args], cwd=app_dir, env=env, capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        raise RuntimeError(f"flask {' '.join(args)} failed: {done.stderr.strip()[-500:]}")
    return done.stdout


def write_ids(path: Path, ids: list[str]) -> str:
    """Ticket ids, one a line, for a Lua script's BENCH_IDS; returns the path."""
    path.write_text("".join(f"{ticket_id}\n" for ticket_id in ids))
    return str(path)


def gunicorn_server(
    name: str, app_spec: str, env: dict, health_path: str, app_dir: Path, extra: list[str] = ()
) -> Server:
    """`gunicorn -c gunicorn.conf.py <app_spec>` in the measured checkout, on a free port of HOST (not started)."""
    port = free_port()
    env = {**env, "HOST": HOST, "PORT": str(port)}
    argv = [tool("gunicorn"), "-c", "gunicorn.conf.py", *extra, app_spec]
    return Server(name, argv, env, f"http://{HOST}:{port}{health_path}", app_dir)
