"""Reading results.json and turning it into Markdown tables: the pieces bench/report.py puts together."""

from __future__ import annotations

OPERATIONS = [
    ("get", "GET /ticket/{id}"),
    ("post", "POST /ticket (create)"),
    ("put", "PUT /ticket/{id}"),
    ("exchange_multi", "exchange, multi-use"),
    ("exchange_single", "exchange, single-use"),
    ("token", "client-credentials token"),
    ("list", "list of 20 (`GET /ticket?page_size=20`)"),
]
LABELS = dict(OPERATIONS)
STORES = {"service": "TinyDB", "postgres": "PostgreSQL", "before": "before"}
# What each operation cannot skip beyond the framework: an RS256 signature and/or a durable append.
FLOOR_PARTS = {
    "get": (),
    "post": ("disk",),
    "put": ("disk",),
    "exchange_multi": ("crypto", "disk"),
    "exchange_single": ("crypto", "disk"),
    "token": ("crypto",),
    "list": (),
}


def ms(value: float) -> str:
    """Milliseconds with the precision they deserve."""
    return f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 100 else f"{value:.0f}"


def count(value) -> str:
    """A count with thousands separators, "?" if unknown."""
    return "?" if value is None else f"{value:,}"


def errors(run: dict) -> str:
    """The non-2xx answers of a run, by status."""
    if not run["non2xx"]:
        return "0"
    codes = ", ".join(f"{code}: {n}" for code, n in sorted(run["statuses"].items()))
    return f"**{run['non2xx']}** ({codes})"


def sizes_of(results: dict, store: str = "service") -> list[int]:
    """The sizes measured for `store`: "service" (TinyDB files), "postgres" or "before"."""
    return sorted(int(size) for size in results.get(store, {}).get("sizes", {}))


def phase_of(results: dict, size: int, store: str = "service") -> dict:
    """Everything measured at one size of one store."""
    return results[store]["sizes"][str(size)]


def run_of(results: dict, size: int, operation: str, store: str = "service", key: str = "runs") -> dict | None:
    """One wrk run: of the main pass (key "runs") or of the second pass ("queue"); None if not measured."""
    phase = results.get(store, {}).get("sizes", {}).get(str(size))
    return phase.get(key, {}).get(operation) if phase else None


def naive_at(results: dict, size: int) -> dict | None:
    """The naive TinyDB row of one size."""
    return next((row for row in results.get("naive", []) if row["size"] == size), None)


def share(results: dict, run: dict) -> float:
    """req/s (2xx only) over the ceiling's req/s at the same pass (the second pass has a ceiling of its own)."""
    queued = run["connections"] == results["settings"]["queue_connections"] and "ceiling_queue" in results
    return run["ok_rps"] / results["ceiling_queue" if queued else "ceiling"]["rps"]


def floor_bound(results: dict, operation: str) -> tuple[float, str]:
    """The share of the ceiling an operation could reach if it did only the framework's work and its floors."""
    floors, framework = results["floors"], results["ceiling"]["per_request_ms"]
    parts = FLOOR_PARTS[operation]
    extra = sum(floors[part]["median_ms"] for part in parts)
    what = " + ".join(["framework", *("RS256 signature" if p == "crypto" else "append + fdatasync" for p in parts)])
    return framework / (framework + extra), what


def run_cells(results: dict, run: dict | None) -> str:
    """req/s | p50 | p99 | × ceiling of one run, or dashes."""
    if not run:
        return "– | – | – | –"
    return f"{run['rps']:.0f} | {ms(run['p50_ms'])} | {ms(run['p99_ms'])} | {share(results, run):.2f}"


def size_table(results: dict, store: str) -> list[str]:
    """The main pass of one store: every operation at every size."""
    lines = [
        "| live tickets | operation | wrk -c | live tickets (start → end) | req/s | p50 ms | p99 ms | × ceiling "
        "| non-2xx |",
        "| ---: | --- | ---: | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for size in sizes_of(results, store):
        for operation, label in OPERATIONS:
            run = run_of(results, size, operation, store)
            if run:
                lines.append(
                    f"| {size:,} | {label} | {run['connections']} | {count(run.get('live_before'))} → "
                    f"{count(run.get('live_after'))} | {run_cells(results, run)} | {errors(run)} |"
                )
    return lines


def queue_table(results: dict, store: str) -> list[str]:
    """The second pass beside the main one, at the size it ran: how latency grows with queueing."""
    main, queued = results["settings"]["connections"], results["settings"]["queue_connections"]
    lines = []
    for size in sizes_of(results, store):
        if not phase_of(results, size, store).get("queue"):
            continue
        lines += [
            f"At {size:,} live tickets ({STORES[store]}):",
            "",
            f"| operation | -c{main} req/s | p50 ms | p99 ms | × ceiling | -c{queued} req/s | p50 ms | p99 ms "
            "| × ceiling | non-2xx at -c" + str(queued) + " |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
        ]
        for operation, label in OPERATIONS:
            first, second = run_of(results, size, operation, store), run_of(results, size, operation, store, "queue")
            if second:
                lines.append(
                    f"| {label} | {run_cells(results, first)} | {run_cells(results, second)} | {errors(second)} |"
                )
        lines.append("")
    return lines


def list_table(results: dict) -> list[str]:
    """The small organization's list beside 0 and then each size of another organization, on both stores."""
    lines = [
        "| store | the other organization's live tickets | req/s | p50 ms | p99 ms | × ceiling | p50 ÷ p50 beside 0 "
        "| non-2xx |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for store in ("service", "postgres"):
        empty = results.get(store, {}).get("list_empty")
        if not empty:
            continue
        rows = [(0, empty)] + [(size, run_of(results, size, "list", store)) for size in sizes_of(results, store)]
        for size, run in rows:
            if run:
                lines.append(
                    f"| {STORES[store]} | {size:,} | {run_cells(results, run)} | "
                    f"{run['p50_ms'] / empty['p50_ms']:.2f}× | {errors(run)} |"
                )
    return lines


def seed_table(results: dict, store: str) -> list[str]:
    """How each size was filled, and each worker's resident memory after the steady runs and at the end."""
    lines = [
        "| live tickets | seeded | how | tickets/s | VmRSS per worker after the steady runs, MB "
        "| at the end of the size |",
        "| ---: | ---: | --- | ---: | --- | --- |",
    ]
    for size in sizes_of(results, store):
        phase = phase_of(results, size, store)
        seed = phase.get("seed", {})
        rss = ", ".join(f"{mb:.1f}" for mb in phase.get("rss_mb") or [])
        rss_end = ", ".join(f"{mb:.1f}" for mb in phase.get("rss_end_mb") or [])
        lines.append(
            f"| {size:,} | {seed.get('count', 0):,} | {seed.get('how', '')} | {seed.get('per_s', 0):.0f} | "
            f"{rss} | {rss_end} |"
        )
    return lines


def naive_section(results: dict) -> list[str]:
    """Naive TinyDB in-process, next to the service's POST."""
    lines = [
        "## Naive TinyDB (default JSONStorage, no cache, no lock), in-process, one call at a time",
        "",
        "| tickets | file | lookup/s | lookup p50 ms | lookup p99 ms | insert/s | insert p50 ms | insert p99 ms "
        "| service POST/s ÷ naive insert/s |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for line in results.get("naive", []):
        post = run_of(results, line["size"], "post")
        ratio = f"{post['ok_rps'] / line['insert']['ops_per_s']:.1f}×" if post else "–"
        lookup, insert = line["lookup"], line["insert"]
        lines.append(
            f"| {line['size']:,} | {line['file_bytes'] / 1e6:.2f} MB | {lookup['ops_per_s']:.0f} | "
            f"{ms(lookup['p50_ms'])} | {ms(lookup['p99_ms'])} | {insert['ops_per_s']:.1f} | "
            f"{ms(insert['p50_ms'])} | {ms(insert['p99_ms'])} | {ratio} |"
        )
    return lines + [""]
