"""A throw-away PostgreSQL server on 127.0.0.1 for the tests (Debian's postgresql package)."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid

import psycopg


def find_bindir() -> str | None:
    """Where initdb and pg_ctl are, if PostgreSQL is installed."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    return next((folder for folder in candidates if os.path.exists(os.path.join(folder, "initdb"))), None)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _as_postgres(args: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the postgres user then."""
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


class TempPostgres:
    """initdb into a temporary folder, pg_ctl start on a free loopback port, stop and remove at the end."""

    def __init__(self, bindir: str):
        self.bindir = bindir
        self.folder = tempfile.mkdtemp(prefix="tickets-pg-")
        self.port = _free_port()
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        self.data = os.path.join(self.folder, "data")

    def start(self) -> str:
        tool = lambda name: os.path.join(self.bindir, name)  # noqa: E731
        subprocess.run(
            _as_postgres([tool("initdb"), "-D", self.data, "-A", "trust", "-U", "postgres", "--no-sync"]),
            check=True, capture_output=True, timeout=120,
        )
        options = f"-h 127.0.0.1 -p {self.port} -k {self.folder} -F -c max_connections=200"
        subprocess.run(
            _as_postgres([tool("pg_ctl"), "-D", self.data, "-o", options, "-l", os.path.join(self.folder, "log"),
                          "-w", "-t", "60", "start"]),
            check=True, capture_output=True, timeout=90,
        )
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        subprocess.run(
            _as_postgres([os.path.join(self.bindir, "pg_ctl"), "-D", self.data, "-m", "immediate", "stop"]),
            capture_output=True, timeout=60,
        )
        shutil.rmtree(self.folder, ignore_errors=True)


def create_database(admin_url: str) -> str:
    """A new empty database on the server; returns its URL."""
    name = f"tickets_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin_url.rsplit("/", 1)[0] + f"/{name}"
