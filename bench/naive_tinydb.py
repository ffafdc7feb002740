"""The anchor to beat: naive TinyDB (default JSONStorage, no CachingMiddleware, no lock), in-process.

For each store size it fills a fresh file with that many ticket-shaped records, then times, one
call at a time, lookups by ticket id (`db.get(Query().id == x)`, what a naive user writes) and
inserts of one more ticket (each insert is undone, untimed, so the size stays put). Each
operation runs until `--ops` calls or `--budget` seconds, whichever comes first.

    python bench/naive_tinydb.py --sizes 100,1000,10000 --out bench/out/naive.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import statistics
import time
from datetime import UTC, datetime, timedelta

from tinydb import Query, TinyDB

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"  # the service's unambiguous alphabet
MIN_OPS = 10
CREATED = datetime(2030, 1, 1, tzinfo=UTC)  # any fixed time: the records only need the service's shape


def ticket_record(number: int) -> dict:
    """A record shaped like the service's stored ticket, plus its id as a field."""
    now = CREATED
    return {
        "id": "".join(secrets.choice(ALPHABET) for _ in range(9)),
        "type": "MULTI_USE_TICKET",
        "organizationId": "bench-org",
        "userId": f"user-{number}",
        "properties": {"customer_id": f"c{number}", "conference_id": f"conf-{number}", "title": "Bench"},
        "createdAt": now.isoformat(),
        "expiresAt": (now + timedelta(hours=4)).isoformat(),
        "notBefore": None,
        "ttl": None,
        "disabled": None,
        "revoked": None,
        "version": 0,
        "useCount": 0,
        "lastUsedAt": None,
        "consumedAt": None,
    }


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def summarize(samples: list[float]) -> dict:
    return {
        "ops": len(samples),
        "ops_per_s": len(samples) / sum(samples),
        "p50_ms": percentile(samples, 0.50) * 1000,
        "p99_ms": percentile(samples, 0.99) * 1000,
        "mean_ms": statistics.fmean(samples) * 1000,
    }


def timed_loop(operation, max_ops: int, budget: float) -> list[float]:
    samples: list[float] = []
    started = time.perf_counter()
    while len(samples) < max_ops and (len(samples) < MIN_OPS or time.perf_counter() - started < budget):
        samples.append(operation())
    return samples


def measure(size: int, folder: str, max_ops: int, budget: float) -> dict:
    path = os.path.join(folder, f"tickets_{size}.json")
    if os.path.exists(path):
        os.unlink(path)
    db = TinyDB(path)  # default JSONStorage: every call reads the file, every write rewrites it
    records = [ticket_record(number) for number in range(size)]
    db.insert_multiple(records)
    ids = [record["id"] for record in records]
    ticket = Query()
    rng = random.Random(size)

    def lookup() -> float:
        wanted = rng.choice(ids)
        started = time.perf_counter()
        found = db.get(ticket.id == wanted)
        elapsed = time.perf_counter() - started
        assert found is not None
        return elapsed

    counter = iter(range(size, size + 10 * max_ops))

    def insert() -> float:
        record = ticket_record(next(counter))
        started = time.perf_counter()
        doc_id = db.insert(record)
        elapsed = time.perf_counter() - started
        db.remove(doc_ids=[doc_id])  # untimed: keep the store at `size`
        return elapsed

    result = {
        "size": size,
        "file_bytes": os.path.getsize(path),
        "lookup": summarize(timed_loop(lookup, max_ops, budget)),
        "insert": summarize(timed_loop(insert, max_ops, budget)),
    }
    db.close()
    os.unlink(path)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--ops", type=int, default=300, help="at most this many calls per operation and size")
    parser.add_argument("--budget", type=float, default=4.0, help="seconds per operation and size (at least 10 calls)")
    parser.add_argument("--folder", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "out", "naive"))
    parser.add_argument("--out", default="-")
    args = parser.parse_args()
    os.makedirs(args.folder, exist_ok=True)
    results = [measure(int(size), args.folder, args.ops, args.budget) for size in args.sizes.split(",")]
    text = json.dumps(results, indent=2)
    if args.out == "-":
        print(text)
    else:
        with open(args.out, "w") as handle:
            handle.write(text + "\n")


if __name__ == "__main__":
    main()
