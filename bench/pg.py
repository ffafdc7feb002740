"""The same sizes and operations with the PostgreSQL store, on a throw-away PostgreSQL server with fsync on."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from api import Api
from floors import file_system
from harness import HOST, OUT, ROOT, Deadline, Wrk, free_port, log
from scenarios import Plan, fresh_env, new_client, run_sizes


def as_postgres(argv: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the postgres user then."""
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


class DurablePostgres:
    """A throw-away server like tests/postgres.py's, but with fsync on (the tests' runs with -F, fsync off)."""

    def __init__(self, bindir: str):
        self.bindir = bindir
        self.folder = OUT / "pg-cluster"  # on the file system of the bench's data folders, not a tmpfs
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
            if subprocess.run(as_postgres(["test", "-w", str(self.folder)])).returncode != 0:
                log(f"the postgres user cannot reach {self.folder}: the cluster goes to a temporary folder")
                shutil.rmtree(self.folder)
                self.folder = Path(tempfile.mkdtemp(prefix="bench-pg-"))
                shutil.chown(self.folder, "postgres", "postgres")
        self.data = self.folder / "data"
        self.port = free_port()

    def run(self, tool: str, *args: str) -> None:
        """One PostgreSQL tool (initdb, pg_ctl) as the postgres user if we are root."""
        argv = as_postgres([os.path.join(self.bindir, tool), *args])
        subprocess.run(argv, check=True, capture_output=True, timeout=120)

    def start(self) -> str:
        """A fresh cluster, started; its admin URL."""
        self.run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        options = f"-h {HOST} -p {self.port} -k {self.folder} -c max_connections=200 -c fsync=on"
        log_file = str(self.folder / "log")
        self.run("pg_ctl", "-D", str(self.data), "-o", options, "-l", log_file, "-w", "-t", "60", "start")
        return f"postgresql://postgres@{HOST}:{self.port}/postgres"

    def stop(self) -> None:
        """Stop it (if it runs) and remove its folder."""
        if self.data.exists():
            argv = as_postgres([os.path.join(self.bindir, "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"])
            subprocess.run(argv, capture_output=True, timeout=60)
        shutil.rmtree(self.folder, ignore_errors=True)


def durability(url: str) -> dict:
    """SHOW fsync, synchronous_commit and wal_sync_method: what the server was really measured with."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        names = ("fsync", "synchronous_commit", "wal_sync_method", "full_page_writes")
        return {name: conn.execute(f"SHOW {name}").fetchone()[0] for name in names}


def run_postgres(args: argparse.Namespace, wrk: Wrk, base_env: dict, deadline: Deadline, app_dir: Path) -> dict:
    """The PostgreSQL store on a throw-away server; stopped (and its folder removed) whatever happens."""
    sys.path.insert(0, str(ROOT))  # tests/postgres.py
    sys.path.insert(0, str(app_dir))  # the app's own code, for bench/pg_seed.py
    import pg_seed

    from tests.postgres import create_database, find_bindir

    bindir = find_bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb)")
    postgres = DurablePostgres(bindir)
    try:
        log(f"starting a throw-away PostgreSQL ({bindir}) on {HOST}:{postgres.port}, fsync on")
        admin_url = postgres.start()
        settings = durability(admin_url)
        log(f"  SHOW fsync: {settings['fsync']}, synchronous_commit: {settings['synchronous_commit']}")
        url = create_database(admin_url)
        version = subprocess.run(
            [os.path.join(bindir, "postgres"), "--version"], capture_output=True, text=True, timeout=30
        ).stdout.strip()
        env = fresh_env(base_env, OUT / "pg-data", TICKETS_DATABASE_URL=url)
        client = new_client(app_dir, env, "bench", "bench-org")
        small = new_client(app_dir, env, "small", "small-org")

        def seed_in_process(api: Api, live: list[str], missing: int) -> dict:
            """`missing` multi-use tickets made by the app's own code and COPYed in: 100,000 POSTs take minutes."""
            seeded = pg_seed.seed(url, client["client_id"], "bench-org", missing, len(live), set(live))
            log(
                f"  in-process: built in {seeded['build_s']:.1f} s, COPY in {seeded['copy_s']:.1f} s; "
                f"the store holds {seeded['store_count']:,}"
            )
            return {**seeded, "how": "in-process (TicketService.issue_ticket + COPY)"}

        plan = Plan("service-pg", "pg_", args.pg_sizes, queue_size=args.pg_sizes[-1], small_client=small)
        result = run_sizes(args, wrk, deadline, app_dir, env, client, plan, seed_in_process)
        result["postgres"] = version
        result["settings"] = settings
        result["cluster"] = f"{postgres.folder} ({file_system(postgres.folder)})"
        return result
    finally:
        log("stopping PostgreSQL")
        postgres.stop()
