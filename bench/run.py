"""`make bench`: load-test the ticket service on 127.0.0.1 and write bench/results.md and the plot.

One run measures, with wrk (2 threads; 16 connections, 8 for create; a second pass at 64) and bench/lua:
  - the floors: an append plus fdatasync in bench/out, one RS256 signature (bench/floors.py);
  - the ceiling: a bare Flask endpoint (bench/ceiling.py) under the same gunicorn.conf.py;
  - the peer: oidc-provider's client-credentials token endpoint (bench/peer, Node.js);
  - naive TinyDB doing the same inserts and lookups in-process (bench/naive_tinydb.py);
  - the service with 1,000, 10,000 and 50,000 live tickets (TinyDB files): GET, POST and PUT
    /security/ticket, the exchange of multi-use and of single-use tickets, the client-credentials
    token, and the list of a small organization's 20 tickets (also on a store holding only those);
    the resident memory of each gunicorn worker; the second pass at 10,000; with --profile, py-spy;
  - with --before DIR, another checkout's service at 10,000 live tickets;
  - the same with the PostgreSQL store (fsync on) at 1,000, 10,000 and 100,000 live tickets.
For TinyDB, tickets are made through the API only (several threads); only the service writes its files.
For PostgreSQL, the multi-use tickets that make up each size are seeded in-process through the app's own
code (bench/pg_seed.py); everything else goes through the CLI and the API as for TinyDB. Every wrk run is
bounded by -d and a timeout, and the whole run by --max-minutes. Raw output goes to bench/out/.

Where each part lives:
  run.py         the arguments and the order of the run; writes bench/out/results.json
  harness.py     paths, the --max-minutes deadline, log lines, the servers it starts and stops, wrk
  api.py         the service's API through requests: making, listing and deleting tickets
  floors.py      the disk and crypto floors;  references.py  the ceiling, the peer and naive TinyDB
  steps.py       one step at one store size (fill, list, steady runs, single-use, POST)
  scenarios.py   the service at each store size (TinyDB files), and --before
  profiling.py   --profile: py-spy on a worker, the top functions
  pg.py          the same with the PostgreSQL store, seeded by pg_seed.py
  machine.py     the machine's description, and waiting for other work on it to calm down
  report.py      bench/results.md from results.json, with tables.py and targets.py;  plot.py  the plot
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

from floors import crypto_floor, disk_floor  # noqa: E402
from harness import BENCH, OUT, ROOT, Deadline, Wrk, clean_env, log  # noqa: E402
from machine import machine, wait_for_quiet  # noqa: E402
from pg import run_postgres  # noqa: E402
from references import run_ceiling, run_naive, run_peer  # noqa: E402
from scenarios import run_before, run_service  # noqa: E402


def sizes(text: str) -> list[int]:
    """"1000,10000" -> [1000, 10000], ascending."""
    return sorted(int(size) for size in text.split(","))


def parse_args() -> argparse.Namespace:
    """The command line; sizes come back as ascending lists, folders as absolute Paths."""
    parser = argparse.ArgumentParser(description="Benchmark the ticket service on 127.0.0.1.")
    add = parser.add_argument
    add("--sizes", type=sizes, default="1000,10000,50000", help="live tickets in the TinyDB store")
    add("--pg-sizes", type=sizes, default="1000,10000,100000", help="live tickets in the PostgreSQL store")
    add("--target-size", type=int, default=10000, help="the size of the targets, the second pass and --before")
    add("--skip-postgres", action="store_true")
    add("--duration", type=int, default=5, help="seconds of each read/token/PUT/multi-exchange/list run")
    add("--write-duration", type=int, default=3, help="seconds of the runs that grow the store (POST, single-use)")
    add("--threads", type=int, default=2, help="wrk -t")
    add("--connections", type=int, default=16, help="wrk -c of the main pass")
    add("--create-connections", type=int, default=8, help="wrk -c of POST /ticket in the main pass")
    add("--queue-connections", type=int, default=64, help="wrk -c of the second pass, every operation")
    add("--workers", type=int, default=2, help="WEB_CONCURRENCY of every gunicorn (service and ceiling)")
    add("--seed-threads", type=int, default=8)
    add("--max-single", type=int, default=20000, help="cap on single-use tickets made per run")
    add("--naive-budget", type=float, default=3.0, help="seconds per naive TinyDB operation and size")
    add("--max-minutes", type=float, default=30.0, help="give up past this")
    add("--skip-peer", action="store_true")
    add("--wait-idle", type=float, default=90, help="seconds to wait for other CPU work to end")
    add("--app-dir", type=Path, default=ROOT, help="measure the service of another checkout (same .venv)")
    add("--before", type=Path, default=None, help="also measure this checkout's service at the target size")
    add("--profile", action="store_true", help="py-spy one worker during a multi-use exchange at the target size")
    args = parser.parse_args()
    args.app_dir = args.app_dir.resolve()
    args.before = args.before.resolve() if args.before else None
    # The targets' size: the largest measured size not above --target-size (else the smallest).
    args.target_size = max((size for size in args.sizes if size <= args.target_size), default=args.sizes[0])
    return args


def settings(args: argparse.Namespace) -> dict:
    """What the report says about how the run was made."""
    return {
        "wrk": f"-t{args.threads} -c{args.connections}",
        "threads": args.threads,
        "connections": args.connections,
        "create_connections": args.create_connections,
        "queue_connections": args.queue_connections,
        "duration": args.duration,
        "write_duration": args.write_duration,
        "web_concurrency": str(args.workers),
        "target_size": args.target_size,
        "before": str(args.before) if args.before else None,
        "profile": args.profile,
    }


def main() -> None:
    """One whole run: floors, ceiling, peer, naive TinyDB, the service on TinyDB, before, PostgreSQL; report."""
    args = parse_args()
    app_dir = args.app_dir
    # `timeout` (make bench) and kill send SIGTERM: unwind, so that every finally stops what it started.
    signal.signal(signal.SIGTERM, lambda number, frame: sys.exit(128 + number))
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get update && apt-get install -y wrk (make bench does this)")
    deadline = Deadline(args.max_minutes)
    OUT.mkdir(exist_ok=True)
    for stale in list(OUT.glob("*.log")) + list(OUT.glob("*.txt")) + list((OUT / "wrk").glob("*.txt")):
        stale.unlink()
    wrk = Wrk(args.threads)
    base_env = clean_env(WEB_CONCURRENCY=str(args.workers))
    busy_before = wait_for_quiet(args.wait_idle)
    started = time.monotonic()
    results = {
        "machine": {**machine(app_dir), "busy_before": busy_before, "loadavg_start": os.getloadavg()},
        "settings": settings(args),
    }
    log("floors: append + fdatasync in bench/out, one RS256 signature")
    results["floors"] = {"disk": disk_floor(OUT), "crypto": crypto_floor()}
    log("ceiling: bare Flask under gunicorn.conf.py")
    counts = [args.connections, args.queue_connections]
    first, queued = run_ceiling(args, wrk, base_env, app_dir, "ceiling_start", counts)
    if not args.skip_peer:
        log("peer: oidc-provider client-credentials token")
        results["peer"] = run_peer(args, wrk)
    log("naive TinyDB, in-process")
    results["naive"] = run_naive(args)
    results["service"] = run_service(args, wrk, base_env, deadline, app_dir)
    if args.before:
        log(f"before: the service in {args.before} at {args.target_size:,}")
        results["before"] = run_before(args, wrk, base_env, deadline)
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
    (last,) = run_ceiling(args, wrk, base_env, app_dir, "ceiling_end", [args.connections])
    # Ratios use the better of the two: the conservative choice for the targets.
    results["ceiling"] = max(first, last, key=lambda run: run["rps"])
    results["ceiling_runs"] = [first, last]
    results["ceiling_queue"] = queued
    results["elapsed_s"] = time.monotonic() - started
    results["machine"]["loadavg_end"] = os.getloadavg()
    text = json.dumps(results, indent=2) + "\n"
    (OUT / "results.json").write_text(text)
    # Imported only now: matplotlib takes a while to load, and the numbers are safe on disk first.
    import plot
    import report

    results = json.loads(text)  # the report reads what results.json holds (sizes as strings)
    (BENCH / "results.md").write_text(report.render(results))
    plot.plot(results, BENCH / "p50_latency.png")
    log(f"wrote bench/results.md and bench/p50_latency.png in {results['elapsed_s'] / 60:.1f} min")
    if failed:
        raise SystemExit(f"the PostgreSQL part failed: {failed}")


if __name__ == "__main__":
    main()
