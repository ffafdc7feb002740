"""`make bench`: load-test the ticket service on 127.0.0.1 and write bench/results.md and the plot.

One run measures, with wrk and the Lua scripts in bench/lua:
  - the ceiling: a bare Flask endpoint (bench/ceiling.py) under the same gunicorn.conf.py;
  - the peer: oidc-provider's client-credentials token endpoint (bench/peer, Node.js);
  - the service with 100, 1,000 and 10,000 live tickets: GET, POST and PUT /security/ticket,
    the exchange of multi-use and of single-use tickets, and the client-credentials token;
  - resident memory of each gunicorn worker at each size;
  - naive TinyDB doing the same inserts and lookups in-process (bench/naive_tinydb.py);
  - the same operations with the PostgreSQL store (TICKETS_DATABASE_URL) at 1,000, 10,000 and
    100,000 live tickets, on a throw-away PostgreSQL 15 (tests/postgres.py) stopped at the end.
For the TinyDB store, tickets are created through the API only (several threads); only the service
writes its files. For PostgreSQL, the multi-use tickets that make up each size are seeded in-process
through the app's own code (bench/pg_seed.py: TicketService.issue_ticket, ticket_to_record, COPY);
everything else (the client, single-use tickets, POSTs) goes through the CLI and the API as for TinyDB.
Everything listens on 127.0.0.1, every wrk run is bounded by -d and a timeout, and the whole run
by --max-minutes. Raw output goes to bench/out/ (not committed).

Where each part lives:
  run.py         the arguments and the order of the run; writes bench/out/results.json
  harness.py     paths, the --max-minutes deadline, log lines, the servers it starts and stops, wrk
  api.py         the service's API through requests: making and deleting tickets
  references.py  the ceiling, the peer and naive TinyDB
  scenarios.py   the service at each store size (TinyDB files): seeding, then every operation
  pg.py          the same with the PostgreSQL store, seeded by pg_seed.py
  machine.py     the machine's description, and waiting for other work on it to calm down
  report.py      bench/results.md from results.json;  plot.py  bench/p50_latency.png
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path

# The sibling modules below: Python puts bench/ first on sys.path when run.py runs as a script, but not otherwise.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import BENCH, OUT, ROOT, Deadline, Wrk, clean_env, log  # noqa: E402
from machine import machine, wait_for_quiet  # noqa: E402
from pg import run_postgres  # noqa: E402
from references import run_ceiling, run_naive, run_peer  # noqa: E402
from scenarios import run_service  # noqa: E402


def parse_args() -> argparse.Namespace:
    """The command line; sizes come back as ascending lists, --app-dir as an absolute Path."""
    parser = argparse.ArgumentParser(description="Benchmark the ticket service on 127.0.0.1.")
    parser.add_argument("--sizes", default="100,1000,10000", help="live tickets in the store, ascending")
    parser.add_argument(
        "--pg-sizes", default="1000,10000,100000", help="live tickets in the PostgreSQL store; the first is the base"
    )
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--duration", type=int, default=5, help="seconds of each read/token/PUT/multi-exchange run")
    parser.add_argument(
        "--write-duration",
        type=int,
        default=3,
        help="seconds of the runs that grow the store (POST, single-use exchange)",
    )
    parser.add_argument("--threads", type=int, default=1, help="wrk -t")
    parser.add_argument("--connections", type=int, default=4, help="wrk -c")
    parser.add_argument("--seed-threads", type=int, default=4)
    parser.add_argument("--max-single", type=int, default=5000, help="cap on single-use tickets made per size")
    parser.add_argument("--naive-budget", type=float, default=3.0, help="seconds per naive TinyDB operation and size")
    parser.add_argument("--max-minutes", type=float, default=15.0, help="give up past this")
    parser.add_argument("--skip-peer", action="store_true")
    parser.add_argument("--wait-idle", type=float, default=90, help="seconds to wait for other CPU work to end")
    parser.add_argument("--app-dir", default=str(ROOT), help="measure the service of another checkout (same .venv)")
    args = parser.parse_args()
    args.app_dir = Path(args.app_dir).resolve()
    args.sizes = sorted(int(size) for size in args.sizes.split(","))
    args.pg_sizes = sorted(int(size) for size in args.pg_sizes.split(","))
    return args


def main() -> None:
    """One whole run: ceiling, peer, naive TinyDB, the service on TinyDB then PostgreSQL, ceiling again; report."""
    args = parse_args()
    app_dir = args.app_dir
    # `timeout` (make bench) and kill send SIGTERM: unwind, so that every finally stops what it started.
    signal.signal(signal.SIGTERM, lambda number, frame: sys.exit(128 + number))
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get update && apt-get install -y wrk (make bench does this)")
    deadline = Deadline(args.max_minutes)
    OUT.mkdir(exist_ok=True)
    for stale in list(OUT.glob("*.log")) + list(OUT.glob("*.txt")):
        stale.unlink()
    wrk = Wrk(args.threads, args.connections)
    base_env = clean_env()
    busy_before = wait_for_quiet(args.wait_idle)
    started = time.monotonic()
    results = {
        "machine": {**machine(app_dir), "busy_before": busy_before, "loadavg_start": os.getloadavg()},
        "settings": {
            "wrk": f"-t{args.threads} -c{args.connections}",
            "duration": args.duration,
            "write_duration": args.write_duration,
            "web_concurrency": os.environ.get("WEB_CONCURRENCY") or "unset (one per CPU)",
        },
    }
    log("ceiling: bare Flask under gunicorn.conf.py")
    first_ceiling = run_ceiling(args, wrk, base_env, app_dir, "ceiling_start")
    if not args.skip_peer:
        log("peer: oidc-provider client-credentials token")
        results["peer"] = run_peer(args, wrk)
    log("naive TinyDB, in-process")
    results["naive"] = run_naive(args)
    results["service"] = run_service(args, wrk, base_env, deadline, app_dir)
    failed = None
    if not args.skip_postgres:
        log("the same with the PostgreSQL store")
        try:
            results["postgres"] = run_postgres(args, wrk, base_env, deadline, app_dir)
        except Exception as error:  # keep the TinyDB numbers: the report says what failed
            failed = f"{type(error).__name__}: {error}"
            results["postgres_error"] = failed
            log(f"the PostgreSQL part failed: {failed}")
    log("ceiling again, to see how much other work on the machine moved it")
    last_ceiling = run_ceiling(args, wrk, base_env, app_dir, "ceiling_end")
    # Ratios use the better of the two: the conservative choice for the targets.
    results["ceiling"] = max(first_ceiling, last_ceiling, key=lambda run: run["rps"])
    results["ceiling_runs"] = [first_ceiling, last_ceiling]
    results["elapsed_s"] = time.monotonic() - started
    results["machine"]["loadavg_end"] = os.getloadavg()
    (OUT / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    # Imported only now: matplotlib takes a while to load, and the numbers are safe on disk first.
    import plot
    import report

    (BENCH / "results.md").write_text(report.render(results))
    plot.plot(results, BENCH / "p50_latency.png")
    log(f"wrote bench/results.md and bench/p50_latency.png in {results['elapsed_s'] / 60:.1f} min")
    if failed:
        raise SystemExit(f"the PostgreSQL part failed: {failed}")


if __name__ == "__main__":
    main()
