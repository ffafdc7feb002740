"""The steps at one store size: fill the store, then load each operation through wrk, in one pass."""

from __future__ import annotations

import argparse
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from api import Api
from harness import OUT, Deadline, Server, Wrk, flask_cli, log, write_ids

# seed_multi(api, live, missing) -> {"ids": [...], "per_s": ..., "how": ...}: `missing` more multi-use tickets
SeedMulti = Callable[[Api, list[str], int], dict]
LIST_SIZE = 20  # the small organization's tickets, and the page size of its list


@dataclass(frozen=True)
class Pass:
    """One pass over the operations: where its runs are kept, and wrk's -c for them."""

    key: str  # "runs" (the main pass) or "queue" (the second pass, with more connections)
    connections: int
    create_connections: int  # -c of POST /ticket
    suffix: str = ""  # of the wrk labels (bench/out/wrk/<label>.txt)


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
    prefix: str  # "" for TinyDB, "pg_" for PostgreSQL, "before_": in wrk labels and file names
    basic: str  # the client's HTTP Basic credentials, for the client-credentials token
    purge_env: dict  # `env` with consumed single-use records purged at once
    operations: tuple[str, ...]  # which operations to load
    small: Api | None = None  # the small organization's client, for the list
    live: list[str] = field(default_factory=list)  # live multi-use tickets, in the order they were made


def measure(
    target: Target, phase: dict, step: Pass, label: str, script: str, url: str, duration: int, **env: str
) -> dict | None:
    """One wrk run at the phase's store size, kept in phase[step.key][label]; None for an operation not loaded."""
    if label not in target.operations:
        return None
    target.deadline.check(label)
    connections = step.create_connections if label == "post" else step.connections
    name = f"{target.prefix}{label}_{phase['size']}{step.suffix}"
    result = target.wrk.run(name, script, url, duration, connections, **env)
    result["live_before"] = result["live_after"] = len(target.live)
    phase.setdefault(step.key, {})[label] = result
    return result


def fill(target: Target, phase: dict, name: str, seed_multi: SeedMulti) -> None:
    """Bring the live multi-use tickets to the phase's size: seed what is missing, delete the newest surplus."""
    size, live = phase["size"], target.live
    missing = size - len(live)
    log(f"{name} size {size}: {len(live)} live tickets; seeding {max(missing, 0)} more")
    seeded = seed_multi(target.api, live, missing) if missing > 0 else {"ids": [], "per_s": 0.0, "how": "-"}
    new, rate = seeded["ids"], seeded["per_s"]
    live.extend(new)
    if missing < 0:  # the last POST runs made more than this size holds: delete the newest
        surplus = live[size:]
        del live[size:]
        target.api.delete_many(surplus, target.args.seed_threads)
        log(f"  deleted {len(surplus)} tickets to come down to {size}")
    phase["seed"] = {"count": max(missing, 0), "per_s": rate, "how": seeded["how"]}
    log(f"  seeded {len(new)} at {rate:.0f}/s ({seeded['how']})")


def prepare_list(target: Target) -> None:
    """The small organization's tickets, made through its own client; its list must show exactly them."""
    target.small.create_many("MULTI_USE_TICKET", LIST_SIZE, target.args.seed_threads, 10**9)
    tickets, pagination = target.small.list_page(LIST_SIZE)
    if len(tickets) != LIST_SIZE or pagination.get("total") != LIST_SIZE:
        raise RuntimeError(f"the small organization's list shows {len(tickets)} of {pagination.get('total')}")


def measure_list(target: Target, phase: dict, step: Pass) -> None:
    """The small organization's list (page_size=20), beside whatever else the store holds."""
    if target.small is None:
        return
    url = f"{target.base}/ticket?page_size={LIST_SIZE}"
    measure(target, phase, step, "list", "list_tickets.lua", url, target.args.duration, BENCH_TOKEN=target.small.token)


def ids_file(target: Target, phase: dict) -> str:
    """The live multi-use ids in a shuffled order, written for the Lua scripts (the same file for every pass)."""
    ids = random.Random(phase["size"]).sample(target.live, len(target.live))
    return write_ids(OUT / f"{target.prefix}ids_{phase['size']}.txt", ids)


def measure_steady(target: Target, phase: dict, step: Pass) -> dict | None:
    """The runs that leave the store's size as it is: GET, PUT, multi-use exchange, token; returns the exchange."""
    base, duration = target.base, target.args.duration
    common = {"BENCH_TOKEN": target.api.token, "BENCH_IDS": ids_file(target, phase)}
    measure(target, phase, step, "get", "get_ticket.lua", f"{base}/ticket", duration, **common)
    measure(target, phase, step, "put", "put_ticket.lua", f"{base}/ticket", duration, **common)
    token_url = f"{base}/oauth/token"
    multi = measure(
        target, phase, step, "exchange_multi", "exchange.lua", token_url, duration,
        BENCH_IDS=common["BENCH_IDS"], BENCH_MODE="rotate",
    )
    measure(target, phase, step, "token", "client_credentials.lua", token_url, duration, BENCH_BASIC=target.basic)
    return multi


def measure_single_use(target: Target, phase: dict, step: Pass, multi: dict | None) -> None:
    """The single-use exchange, on fresh tickets made for it and removed after it."""
    if "exchange_single" not in target.operations:
        return
    args, api, live, size = target.args, target.api, target.live, phase["size"]
    # Enough fresh tickets for the whole run, each exchanged at most once. The number is a
    # guess from the multi-use rate; a run that ran out is done again with more.
    rate = multi["ok_rps"] if multi else 100
    wanted = int(max(rate, 500) * args.write_duration * 1.6) + 8 * step.connections
    for attempt in (1, 2):
        wanted = max(50, min(args.max_single, wanted))
        target.deadline.check("single-use tickets")
        # Numbered apart from the multi-use tickets and from other runs: no customer_id (user id) repeats.
        number = len(live) + 10**6 * (size + attempt) + 10**5 * step.connections
        single, made_per_s = api.create_many("SINGLE_USE_TICKET", wanted, args.seed_threads, number)
        log(f"  made {wanted} single-use tickets at {made_per_s:.0f}/s")
        one_shot = measure(
            target, phase, step, "exchange_single", "exchange.lua", f"{target.base}/oauth/token",
            args.write_duration, BENCH_MODE="walk",
            BENCH_IDS=write_ids(OUT / f"{target.prefix}single_{size}{step.suffix}.txt", single),
        )
        one_shot["single_prepared"] = wanted
        one_shot["live_before"] = len(live) + len(single)
        used = one_shot["requests"] - one_shot["exhausted"]
        one_shot["live_after"] = len(live) + max(0, len(single) - used)
        api.delete_many(single, args.seed_threads)  # used ones answer 404; the rest are deleted
        flask_cli(target.app_dir, target.purge_env, "tickets", "purge")
        if not one_shot["exhausted"] or wanted >= args.max_single:
            break
        log(f"  {one_shot['exhausted']} requests found no fresh ticket left: again with more")
        wanted = int(one_shot["requests"] * 1.5)


def measure_post(target: Target, phase: dict, step: Pass) -> None:
    """POST /ticket; the tickets it makes stay live and count toward the next size."""
    if "post" not in target.operations:
        return
    created_file = OUT / f"{target.prefix}created_{phase['size']}{step.suffix}.txt"
    created_file.unlink(missing_ok=True)
    post = measure(
        target, phase, step, "post", "post_ticket.lua", f"{target.base}/ticket", target.args.write_duration,
        BENCH_TOKEN=target.api.token, BENCH_CREATED_OUT=str(created_file),
    )
    created = [line for line in created_file.read_text().split() if line] if created_file.exists() else []
    target.live.extend(created)
    post["live_after"] = len(target.live)
