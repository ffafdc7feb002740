"""The same sizes and operations with the PostgreSQL store, on a throw-away PostgreSQL server."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from api import Api
from harness import HOST, OUT, ROOT, Deadline, Wrk, flask_cli, log
from scenarios import run_sizes


def run_postgres(args: argparse.Namespace, wrk: Wrk, base_env: dict, deadline: Deadline, app_dir: Path) -> dict:
    """The PostgreSQL store on a throw-away server; stopped (and its folder removed) whatever happens."""
    sys.path.insert(0, str(ROOT))  # tests/postgres.py
    sys.path.insert(0, str(app_dir))  # the app's own code, for bench/pg_seed.py
    import pg_seed

    from tests.postgres import TempPostgres, create_database, find_bindir

    bindir = find_bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb)")
    postgres = TempPostgres(bindir)
    try:
        log(f"starting a throw-away PostgreSQL ({bindir}) on {HOST}:{postgres.port}")
        url = create_database(postgres.start())
        version = subprocess.run(
            [os.path.join(bindir, "postgres"), "--version"], capture_output=True, text=True, timeout=30
        ).stdout.strip()
        data_dir = OUT / "pg-data"
        shutil.rmtree(data_dir, ignore_errors=True)
        env = {
            **base_env,
            "TICKETS_DATA_DIR": str(data_dir),
            "TICKETS_DATABASE_URL": url,
            "TICKETS_EXCHANGE_FAILURES_PER_MINUTE": "0",
        }
        client = json.loads(flask_cli(app_dir, env, "clients", "create", "--name", "bench", "--org", "bench-org"))

        def seed_in_process(api: Api, live: list[str], missing: int) -> dict:
            """`missing` multi-use tickets made by the app's own code and COPYed in: 100,000 POSTs take minutes."""
            seeded = pg_seed.seed(url, client["client_id"], "bench-org", missing, len(live), set(live))
            log(
                f"  in-process: built in {seeded['build_s']:.1f} s, COPY in {seeded['copy_s']:.1f} s; "
                f"the store holds {seeded['store_count']:,}"
            )
            return {**seeded, "how": "in-process (TicketService.issue_ticket + COPY)"}

        result = run_sizes(
            args, wrk, deadline, app_dir, env, client, "service-pg", "pg_", args.pg_sizes, seed_in_process
        )
        result["postgres"] = version
        return result
    finally:
        log("stopping PostgreSQL")
        postgres.stop()
