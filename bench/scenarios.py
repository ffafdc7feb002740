"""The service under load at each store size: seed it, then run every operation through wrk."""

from __future__ import annotations

import argparse
import base64
import json
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from api import Api
from harness import OUT, Deadline, Server, Wrk, flask_cli, gunicorn_server, log, write_ids

# seed_multi(api, live, missing) -> {"ids": [...], "per_s": ..., "how": ...}: `missing` more multi-use tickets
SeedMulti = Callable[[Api, list[str], int], dict]


@dataclass
class Target:
    """One running service, and what every step at every size needs to load it."""

    args: argparse.Namespace
    wrk: Wrk
    deadline: Deadline
    app_dir: Path
    server: Server
    api: Api
    base: str  # http://127.0.0.1:<port>/security
    prefix: str  # "" for TinyDB, "pg_" for PostgreSQL: in wrk labels and file names
    basic: str  # the client's HTTP Basic credentials, for the client-credentials token
    purge_env: dict  # `env` with consumed single-use records purged at once
    live: list[str] = field(default_factory=list)  # live multi-use tickets, in the order they were made


def measure(
    target: Target, phase: dict, label: str, script: str, url: str, duration: int, live_before: int, **env: str
) -> dict:
    """One wrk run at the phase's store size, kept in phase["runs"][label]."""
    target.deadline.check(label)
    result = target.wrk.run(f"{target.prefix}{label}_{phase['size']}", script, url, duration, **env)
    result["live_before"] = live_before
    phase["runs"][label] = result
    return result


def fill(target: Target, phase: dict, name: str, seed_multi: SeedMulti) -> None:
    """Bring the live multi-use tickets to the phase's size: seed what is missing, delete the newest surplus."""
    size, live = phase["size"], target.live
    missing = size - len(live)
    log(f"{name} size {size}: {len(live)} live tickets; seeding {max(missing, 0)} more")
    seeded = seed_multi(target.api, live, missing) if missing > 0 else {"ids": [], "per_s": 0.0, "how": "-"}
    new, rate = seeded["ids"], seeded["per_s"]
    live.extend(new)
    if missing < 0:  # the last POST run made more than this size holds: delete the newest
        surplus = live[size:]
        del live[size:]
        target.api.delete_many(surplus, target.args.seed_threads)
        log(f"  deleted {len(surplus)} tickets to come down to {size}")
    phase["seed"] = {"count": max(missing, 0), "per_s": rate, "how": seeded["how"]}
    log(f"  seeded {len(new)} at {rate:.0f}/s ({seeded['how']})")


def measure_steady(target: Target, phase: dict) -> dict:
    """The runs that leave the store's size as it is: GET, PUT, multi-use exchange, token; returns the exchange."""
    args, base, live = target.args, target.base, target.live
    ids = random.Random(phase["size"]).sample(live, len(live))
    ids_file = write_ids(OUT / f"{target.prefix}ids_{phase['size']}.txt", ids)
    common = {"BENCH_TOKEN": target.api.token, "BENCH_IDS": ids_file}
    measure(target, phase, "get", "get_ticket.lua", f"{base}/ticket", args.duration, len(live), **common)
    measure(target, phase, "put", "put_ticket.lua", f"{base}/ticket", args.duration, len(live), **common)
    multi = measure(
        target,
        phase,
        "exchange_multi",
        "exchange.lua",
        f"{base}/oauth/token",
        args.duration,
        len(live),
        BENCH_IDS=ids_file,
        BENCH_MODE="rotate",
    )
    for run in phase["runs"].values():
        run["live_after"] = len(live)
    token = measure(
        target,
        phase,
        "token",
        "client_credentials.lua",
        f"{base}/oauth/token",
        args.duration,
        len(live),
        BENCH_BASIC=target.basic,
    )
    token["live_after"] = len(live)
    return multi


def measure_single_use(target: Target, phase: dict, multi: dict) -> None:
    """The single-use exchange, on fresh tickets made for it and removed after it."""
    args, api, live, size = target.args, target.api, target.live, phase["size"]
    # Enough fresh tickets for the whole run, each exchanged at most once. The number is a
    # guess from the multi-use rate; a run that ran out is done again with more.
    wanted = int(max(multi["ok_rps"], 100) * args.write_duration * 1.3) + 8 * args.connections
    for attempt in (1, 2):
        wanted = max(50, min(args.max_single, wanted))
        target.deadline.check("single-use tickets")
        # Numbered apart from the multi-use tickets and from the other attempt: no customer_id (user id) repeats.
        single, rate = api.create_many(
            "SINGLE_USE_TICKET", wanted, args.seed_threads, len(live) + 10**6 * (size + attempt)
        )
        log(f"  made {wanted} single-use tickets at {rate:.0f}/s")
        one_shot = measure(
            target,
            phase,
            "exchange_single",
            "exchange.lua",
            f"{target.base}/oauth/token",
            args.write_duration,
            len(live) + len(single),
            BENCH_IDS=write_ids(OUT / f"{target.prefix}single_{size}.txt", single),
            BENCH_MODE="walk",
        )
        one_shot["single_prepared"] = wanted
        used = one_shot["requests"] - one_shot["exhausted"]
        one_shot["live_after"] = len(live) + max(0, len(single) - used)
        api.delete_many(single, args.seed_threads)  # used ones answer 404; the rest are deleted
        flask_cli(target.app_dir, target.purge_env, "tickets", "purge")
        if not one_shot["exhausted"] or wanted >= args.max_single:
            break
        log(f"  {one_shot['exhausted']} requests found no fresh ticket left: again with more")
        wanted = int(one_shot["requests"] * 1.5)


def measure_post(target: Target, phase: dict) -> None:
    """POST /ticket; the tickets it makes stay live and count toward the next size."""
    created_file = OUT / f"{target.prefix}created_{phase['size']}.txt"
    created_file.unlink(missing_ok=True)
    post = measure(
        target,
        phase,
        "post",
        "post_ticket.lua",
        f"{target.base}/ticket",
        target.args.write_duration,
        len(target.live),
        BENCH_TOKEN=target.api.token,
        BENCH_CREATED_OUT=str(created_file),
    )
    created = [line for line in created_file.read_text().split() if line] if created_file.exists() else []
    target.live.extend(created)
    post["live_after"] = len(target.live)


def run_sizes(
    args: argparse.Namespace,
    wrk: Wrk,
    deadline: Deadline,
    app_dir: Path,
    env: dict,
    client: dict,
    name: str,
    prefix: str,
    store_sizes: list[int],
    seed_multi: SeedMulti,
) -> dict:
    """One service (gunicorn, `env`) measured at each size, ascending; `seed_multi` fills it up."""
    server = gunicorn_server(name, "wsgi:app", env, "/security/health", app_dir)
    base = server.health_url.rsplit("/", 1)[0]
    # Used single-use tickets stay in the store as records while their tokens live; the CLI
    # drops them between runs (its own consumed-record lifetime set to 0), so each size starts clean.
    purge_env = {**env, "TICKETS_TICKET_TOKEN_TTL": "0"}
    basic = base64.b64encode(f"{client['client_id']}:{client['client_secret']}".encode()).decode()
    sizes: dict[int, dict] = {}
    try:
        server.start()
        target = Target(args, wrk, deadline, app_dir, server, Api(base, client), base, prefix, basic, purge_env)
        workers = len(server.worker_pids())
        for size in store_sizes:
            deadline.check(f"{name} size {size}")
            phase: dict = {"size": size, "runs": {}, "prefix": prefix}
            sizes[size] = phase
            fill(target, phase, name, seed_multi)
            multi = measure_steady(target, phase)
            phase["rss_mb"] = server.worker_rss_mb()
            log(f"  worker RSS at {size}: {', '.join(f'{mb:.1f}' for mb in phase['rss_mb'])} MB")
            measure_single_use(target, phase, multi)
            measure_post(target, phase)
        return {"sizes": sizes, "workers": workers}
    finally:
        server.stop()


def run_service(args: argparse.Namespace, wrk: Wrk, base_env: dict, deadline: Deadline, app_dir: Path) -> dict:
    """The default store (TinyDB files), every ticket made through the API."""
    data_dir = OUT / "data"
    shutil.rmtree(data_dir, ignore_errors=True)
    env = {**base_env, "TICKETS_DATA_DIR": str(data_dir), "TICKETS_EXCHANGE_FAILURES_PER_MINUTE": "0"}
    client = json.loads(flask_cli(app_dir, env, "clients", "create", "--name", "bench", "--org", "bench-org"))

    def seed_api(api: Api, live: list[str], missing: int) -> dict:
        """`missing` multi-use tickets through parallel POSTs, numbered after the live ones."""
        new, rate = api.create_many("MULTI_USE_TICKET", missing, args.seed_threads, len(live))
        return {"ids": new, "per_s": rate, "how": "through the API"}

    return run_sizes(args, wrk, deadline, app_dir, env, client, "service", "", args.sizes, seed_api)
