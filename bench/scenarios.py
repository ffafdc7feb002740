"""The service at each store size: seed it, then every operation through wrk, in each pass."""

from __future__ import annotations

import argparse
import base64
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from api import Api
from harness import OUT, Deadline, Wrk, flask_cli, gunicorn_server, log
from machine import revision
from profiling import profile_exchange
from steps import (
    Pass,
    SeedMulti,
    Target,
    fill,
    measure_list,
    measure_post,
    measure_single_use,
    measure_steady,
    prepare_list,
)
from webhooks import measure_webhooks

OPERATIONS = ("get", "post", "put", "exchange_multi", "exchange_single", "token", "list")
BEFORE_OPERATIONS = ("get", "post", "exchange_multi", "token")


@dataclass
class Plan:
    """What to measure on one service: the sizes, and at which size the second pass and the profile run."""

    name: str  # of the gunicorn log, bench/out/<name>.log
    prefix: str
    sizes: list[int]
    operations: tuple[str, ...] = OPERATIONS
    queue_size: int | None = None  # the size of the second pass (more connections)
    profile_size: int | None = None  # the size of the py-spy run, if any
    small_client: dict | None = None  # the small organization's client: the list is measured only with one
    webhooks_size: int | None = None  # the size of the exchange with and without a webhook endpoint, if any


def passes(args: argparse.Namespace) -> tuple[Pass, Pass]:
    """The main pass (e.g. 16 connections, 8 for create) and the queueing pass (e.g. 64 for all)."""
    main = Pass("runs", args.connections, args.create_connections)
    queue = Pass("queue", args.queue_connections, args.queue_connections, f"_c{args.queue_connections}")
    return main, queue


def measure_size(target: Target, phase: dict, plan: Plan, seed_multi: SeedMulti) -> None:
    """One size: fill the store, the list, the steady runs (both passes), the profile, then the runs that grow it."""
    main, queue = passes(target.args)
    size = phase["size"]
    queueing = size == plan.queue_size
    fill(target, phase, plan.name, seed_multi)
    measure_list(target, phase, main)
    multi = measure_steady(target, phase, main)
    phase["rss_mb"] = target.server.worker_rss_mb()
    log(f"  worker RSS at {size}: {', '.join(f'{mb:.1f}' for mb in phase['rss_mb'])} MB")
    multi_queued = measure_steady(target, phase, queue) if queueing else None
    if size == plan.webhooks_size:
        phase["webhooks"] = measure_webhooks(target, phase)
    if size == plan.profile_size:
        phase["profile"] = profile_exchange(target, phase, main)
    measure_single_use(target, phase, main, multi)
    if queueing:
        measure_single_use(target, phase, queue, multi_queued)
    measure_post(target, phase, main)
    if queueing:
        measure_post(target, phase, queue)
    phase["rss_end_mb"] = target.server.worker_rss_mb()


def run_sizes(
    args: argparse.Namespace, wrk: Wrk, deadline: Deadline, app_dir: Path, env: dict, client: dict, plan: Plan,
    seed_multi: SeedMulti,
) -> dict:
    """One service (gunicorn, `env`) measured at each size of the plan, ascending; `seed_multi` fills it up."""
    server = gunicorn_server(plan.name, "wsgi:app", env, "/security/health", app_dir)
    base = server.health_url.rsplit("/", 1)[0]
    # Used single-use tickets stay in the store as records while their tokens live; the CLI
    # drops them between runs (its own consumed-record lifetime set to 0), so each size starts clean.
    purge_env = {**env, "TICKETS_TICKET_TOKEN_TTL": "0"}
    basic = base64.b64encode(f"{client['client_id']}:{client['client_secret']}".encode()).decode()
    result: dict = {"sizes": {}}
    try:
        server.start()
        small = Api(base, plan.small_client) if plan.small_client else None
        target = Target(
            args, wrk, deadline, app_dir, server, Api(base, client), base, plan.prefix, basic, purge_env,
            plan.operations, small,
        )
        result["workers"] = len(server.worker_pids())
        if small:  # the list on a store that holds nothing but the small organization's tickets
            prepare_list(target)
            empty: dict = {"size": 0}
            measure_list(target, empty, passes(args)[0])
            result["list_empty"] = empty["runs"]["list"]
        for size in plan.sizes:
            deadline.check(f"{plan.name} size {size}")
            phase: dict = {"size": size, "runs": {}}
            result["sizes"][size] = phase
            measure_size(target, phase, plan, seed_multi)
        return result
    finally:
        server.stop()


def api_seeder(args: argparse.Namespace) -> SeedMulti:
    """Seeding through the API: `missing` multi-use tickets by parallel POSTs, numbered after the live ones."""

    def seed_api(api: Api, live: list[str], missing: int) -> dict:
        """`missing` more multi-use tickets, numbered after the live ones."""
        new, rate = api.create_many("MULTI_USE_TICKET", missing, args.seed_threads, len(live))
        return {"ids": new, "per_s": rate, "how": "through the API"}

    return seed_api


def fresh_env(base_env: dict, data_dir: Path, **extra: str) -> dict:
    """The service's environment on an empty data folder, the exchange throttle off."""
    shutil.rmtree(data_dir, ignore_errors=True)
    return {**base_env, "TICKETS_DATA_DIR": str(data_dir), "TICKETS_EXCHANGE_FAILURES_PER_MINUTE": "0", **extra}


def new_client(app_dir: Path, env: dict, name: str, org: str) -> dict:
    """`flask clients create` in the measured checkout: the client's JSON."""
    return json.loads(flask_cli(app_dir, env, "clients", "create", "--name", name, "--org", org))


def run_service(args: argparse.Namespace, wrk: Wrk, base_env: dict, deadline: Deadline, app_dir: Path) -> dict:
    """The default store (TinyDB files), every ticket made through the API."""
    env = fresh_env(base_env, OUT / "data")
    client = new_client(app_dir, env, "bench", "bench-org")
    small = new_client(app_dir, env, "small", "small-org")
    plan = Plan("service", "", args.sizes, OPERATIONS, args.target_size, None, small, args.target_size)
    if args.profile:
        plan.profile_size = args.target_size
    return run_sizes(args, wrk, deadline, app_dir, env, client, plan, api_seeder(args))


def run_before(args: argparse.Namespace, wrk: Wrk, base_env: dict, deadline: Deadline) -> dict:
    """--before DIR: another checkout's service at the target size, for GET, create, multi-use exchange, token."""
    env = fresh_env(base_env, OUT / "before-data")
    client = new_client(args.before, env, "bench", "bench-org")
    plan = Plan("service-before", "before_", [args.target_size], BEFORE_OPERATIONS)
    result = run_sizes(args, wrk, deadline, args.before, env, client, plan, api_seeder(args))
    result["dir"], result["revision"] = str(args.before), revision(args.before)
    return result
