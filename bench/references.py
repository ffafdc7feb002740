"""What the service is compared with: the ceiling (bare Flask), the peer (oidc-provider), naive TinyDB."""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import requests
from harness import BENCH, HOST, OUT, Server, Wrk, clean_env, free_port, gunicorn_server


def run_ceiling(
    args: argparse.Namespace, wrk: Wrk, base_env: dict, app_dir: Path, label: str, connections: list[int]
) -> list[dict]:
    """bench/ceiling.py's GET /ping under the measured checkout's gunicorn.conf.py, one run per -c."""
    server = gunicorn_server("ceiling", "ceiling:app", base_env, "/ping", app_dir, ["--pythonpath", str(BENCH)])
    try:
        server.start()
        runs = []
        for count in connections:
            result = wrk.run(f"{label}_c{count}", "ceiling.lua", server.health_url, args.duration, count)
            result["workers"] = len(server.worker_pids())
            result["per_request_ms"] = result["workers"] / result["ok_rps"] * 1000 if result["ok_rps"] else 0.0
            runs.append(result)
        return runs
    finally:
        server.stop()


def run_peer(args: argparse.Namespace, wrk: Wrk) -> dict:
    """oidc-provider's client-credentials token endpoint (bench/peer, one Node.js process)."""
    peer_dir = BENCH / "peer"
    if not (peer_dir / "node_modules" / "oidc-provider").exists():
        raise RuntimeError("bench/peer/node_modules is missing: run `cd bench/peer && npm ci`")
    port = free_port()
    client_id, secret = "bench-peer-client", base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
    env = clean_env(PORT=str(port), CLIENT_ID=client_id, CLIENT_SECRET=secret, NODE_ENV="production")
    server = Server(
        "peer", ["node", "server.js"], env, f"http://{HOST}:{port}/.well-known/openid-configuration", peer_dir
    )
    try:
        server.start()
        basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        # One token by hand first: a peer that refuses the client would otherwise be measured as errors.
        check = requests.post(
            f"http://{HOST}:{port}/token",
            data={"grant_type": "client_credentials", "scope": "global"},
            auth=(client_id, secret),
            timeout=10,
        )
        if check.status_code != 200:
            raise RuntimeError(f"peer token check answered {check.status_code}: {check.text[:300]}")
        url = f"http://{HOST}:{port}/token"
        connections = args.connections
        result = wrk.run("peer_token", "client_credentials.lua", url, args.duration, connections, BENCH_BASIC=basic)
        result["node"] = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
        result["oidc_provider"] = json.loads(
            (peer_dir / "node_modules" / "oidc-provider" / "package.json").read_text()
        )["version"]
        return result
    finally:
        server.stop()


def run_naive(args: argparse.Namespace) -> list[dict]:
    """bench/naive_tinydb.py at the TinyDB sizes, in a process of its own; its rows."""
    out = OUT / "naive.json"
    subprocess.run(
        [
            sys.executable,
            str(BENCH / "naive_tinydb.py"),
            "--sizes",
            ",".join(map(str, args.sizes)),
            "--budget",
            str(args.naive_budget),
            "--out",
            str(out),
        ],
        check=True,
        timeout=600,
    )
    return json.loads(out.read_text())
