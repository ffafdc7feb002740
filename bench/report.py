"""bench/results.md from the numbers bench/run.py gathered (bench/out/results.json).

python bench/report.py [bench/out/results.json]   # rewrites bench/results.md
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

OPERATIONS = [
    ("get", "GET /ticket/{id}"),
    ("post", "POST /ticket"),
    ("put", "PUT /ticket/{id}"),
    ("exchange_multi", "exchange, multi-use"),
    ("exchange_single", "exchange, single-use"),
    ("token", "client-credentials token"),
]
WRITE_OPERATIONS = ("post", "put", "exchange_multi", "exchange_single")
LABELS = dict(OPERATIONS)


def ms(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 100 else f"{value:.0f}"


def count(value) -> str:
    return "?" if value is None else f"{value:,}"


def errors(run: dict) -> str:
    if not run["non2xx"]:
        return "0"
    codes = ", ".join(f"{code}: {n}" for code, n in sorted(run["statuses"].items()))
    return f"**{run['non2xx']}** ({codes})"


PG_GROWTH_LIMIT = 1.5  # PostgreSQL: p50 at the largest size ≤ this × p50 at the smallest, every operation


def sizes_of(results: dict, store: str = "service") -> list[int]:
    """The sizes measured for `store`: "service" (TinyDB files) or "postgres"."""
    return sorted(int(size) for size in results.get(store, {}).get("sizes", {}))


def run_of(results: dict, size: int, operation: str, store: str = "service") -> dict | None:
    sizes = results.get(store, {}).get("sizes", {})
    phase = sizes.get(str(size)) or sizes.get(size)
    return phase["runs"].get(operation) if phase else None


def phase_of(results: dict, size: int, store: str = "service") -> dict:
    return results[store]["sizes"].get(str(size)) or results[store]["sizes"][size]


def naive_at(results: dict, size: int) -> dict | None:
    return next((row for row in results.get("naive", []) if row["size"] == size), None)


def targets(results: dict) -> list[tuple[str, str, bool]]:
    """(target, measured, met) for each target of the issue, at the largest size."""
    sizes = sizes_of(results)
    small, large = sizes[0], sizes[-1]
    ceiling = results["ceiling"]["rps"]
    rows = []
    get = run_of(results, large, "get")
    if get:
        share = get["ok_rps"] / ceiling
        rows.append(
            (
                f"GET at {large:,} ≥ 50% of ceiling req/s",
                f"{share:.0%} ({get['ok_rps']:.0f} of {ceiling:.0f})",
                share >= 0.5,
            )
        )
    token = run_of(results, large, "token")
    if token:
        share = token["ok_rps"] / ceiling
        rows.append(
            ("client-credentials token ≥ 40% of ceiling", f"{share:.0%} ({token['ok_rps']:.0f} req/s)", share >= 0.4)
        )
        peer = results.get("peer")
        if peer:
            rows.append(
                (
                    "client-credentials token ≥ oidc-provider peer",
                    f"{token['ok_rps']:.0f} vs {peer['ok_rps']:.0f} req/s ({token['ok_rps'] / peer['ok_rps']:.2f}×)",
                    token["ok_rps"] >= peer["ok_rps"],
                )
            )
    for operation in WRITE_OPERATIONS:
        first, last = run_of(results, small, operation), run_of(results, large, operation)
        if first and last:
            growth = last["p50_ms"] / first["p50_ms"]
            rows.append(
                (
                    f"{LABELS[operation]}: p50 at {large:,} ≤ 3× p50 at {small:,}",
                    f"{growth:.1f}× ({ms(first['p50_ms'])} → {ms(last['p50_ms'])} ms)",
                    growth <= 3,
                )
            )
    post, naive = run_of(results, large, "post"), naive_at(results, large)
    if post and naive:
        speedup = post["ok_rps"] / naive["insert"]["ops_per_s"]
        rows.append(
            (
                f"writes (POST) at {large:,} ≥ 10× naive TinyDB inserts",
                f"{speedup:.1f}× ({post['ok_rps']:.1f} vs {naive['insert']['ops_per_s']:.1f} per s)",
                speedup >= 10,
            )
        )
    rss = phase_of(results, large).get("rss_mb") or []
    if rss:
        rows.append((f"≤ 100 MB RSS per worker at {large:,}", f"max {max(rss):.1f} MB", max(rss) <= 100))
    return rows + pg_targets(results)


def pg_targets(results: dict) -> list[tuple[str, str, bool]]:
    """PostgreSQL: p50 at the largest size ≤ 1.5× p50 at the smallest, for every operation."""
    sizes = sizes_of(results, "postgres")
    if len(sizes) < 2:
        return []
    small, large = sizes[0], sizes[-1]
    rows = []
    for operation, label in OPERATIONS:
        first, last = run_of(results, small, operation, "postgres"), run_of(results, large, operation, "postgres")
        if first and last:
            growth = last["p50_ms"] / first["p50_ms"]
            rows.append(
                (
                    f"PostgreSQL {label}: p50 at {large:,} ≤ {PG_GROWTH_LIMIT:g}× p50 at {small:,}",
                    f"{growth:.2f}× ({ms(first['p50_ms'])} → {ms(last['p50_ms'])} ms)",
                    growth <= PG_GROWTH_LIMIT,
                )
            )
    return rows


def size_table(results: dict, store: str, ceiling: dict) -> list[str]:
    """The per-size table of one store: every operation at every size."""
    lines = [
        "| live tickets | operation | live tickets (start → end) | req/s | p50 ms | p99 ms | × ceiling | non-2xx |",
        "| ---: | --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for size in sizes_of(results, store):
        for operation, label in OPERATIONS:
            run = run_of(results, size, operation, store)
            if not run:
                continue
            lines.append(
                f"| {size:,} | {label} | {count(run.get('live_before'))} → {count(run.get('live_after'))} | "
                f"{run['rps']:.0f} | {ms(run['p50_ms'])} | {ms(run['p99_ms'])} | "
                f"{run['ok_rps'] / ceiling['rps']:.2f} | {errors(run)} |"
            )
    return lines


def postgres_section(results: dict, ceiling: dict) -> list[str]:
    lines = ["", "## PostgreSQL", ""]
    if results.get("postgres_error"):
        lines += [f"**The PostgreSQL part failed:** `{results['postgres_error']}`", ""]
    pg = results.get("postgres")
    if not pg:
        if not results.get("postgres_error"):
            lines += ["Not measured in this run (`--skip-postgres`).", ""]
        return lines
    sizes = sizes_of(results, "postgres")
    lines += [
        f"The same service and operations with `TICKETS_DATABASE_URL` set: a throw-away {pg.get('postgres', '')} "
        f"on 127.0.0.1 (tests/postgres.py: `initdb`, `fsync` off, default settings otherwise), a fresh database, "
        f"gunicorn.conf.py with {pg['workers']} sync workers (each with the store's pool of up to 4 connections). "
        "The multi-use tickets that make up each size are seeded in-process through the app's own code "
        "(bench/pg_seed.py: `TicketService.issue_ticket` builds them, `ticket_to_record` and COPY write them, "
        "then `ANALYZE tickets`); the client comes from `flask clients create`, and single-use tickets, POSTs and "
        "deletions go through the API and `flask tickets purge` as above.",
        "",
    ]
    lines += size_table(results, "postgres", ceiling)
    lines += [
        "",
        "| live tickets | seeded | how | tickets/s | VmRSS per worker, MB |",
        "| ---: | ---: | --- | ---: | --- |",
    ]
    for size in sizes:
        phase = phase_of(results, size, "postgres")
        seed, rss = phase.get("seed", {}), phase.get("rss_mb") or []
        lines.append(
            f"| {size:,} | {seed.get('count', 0):,} | {seed.get('how', '')} | {seed.get('per_s', 0):.0f} | "
            f"{', '.join(f'{mb:.1f}' for mb in rss)} |"
        )
    return lines


def render(results: dict) -> str:
    m, s = results["machine"], results["settings"]
    ceiling = results["ceiling"]
    sizes = sizes_of(results)
    lines = [
        "# Benchmark results",
        "",
        f"Made by `make bench` (bench/run.py) on {m['date']}, revision {m['revision']}: {m['cores']} cores "
        f"({m['cpu']}), Python {m['python']}, {m['wrk']}. Everything ran on 127.0.0.1. "
        f"wrk `{s['wrk']}`, {s['duration']} s per run ({s['write_duration']} s for the runs that grow the store: "
        f"POST and single-use exchange); gunicorn.conf.py with {results['service']['workers']} sync workers "
        f"(WEB_CONCURRENCY {s['web_concurrency']}). Latencies are wrk's, in milliseconds; "
        '"× ceiling" is req/s over the ceiling\'s req/s (the better of the two ceiling runs). Whole run: '
        f"{results['elapsed_s'] / 60:.1f} min. These numbers come from one machine and one run; "
        "no test asserts them.",
        "",
        f"Other work on the machine: CPUs {m.get('busy_before', 0):.0%} busy just before the run; load average "
        f"(1 min) {m.get('loadavg_start', [0])[0]:.2f} at the start, {m.get('loadavg_end', [0])[0]:.2f} at the end "
        "(the bench itself keeps about 2 busy). Anything else running skews every number here.",
        "",
        "![p50 latency against store size](p50_latency.png)",
        "",
        "## Targets",
        "",
        "| target | measured | met |",
        "| --- | --- | --- |",
    ]
    for target, measured, met in targets(results):
        lines.append(f"| {target} | {measured} | {'yes' if met else '**no**'} |")
    lines += [
        "",
        "## Reference points",
        "",
        "| what | req/s | p50 ms | p99 ms | non-2xx |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    runs = results.get("ceiling_runs") or [ceiling]
    for when, run in zip(("at the start", "at the end"), runs, strict=False):
        chosen = ", the one used for × ceiling" if run == ceiling and len(runs) > 1 else ""
        lines.append(
            f'| ceiling {when}{chosen}: bare Flask `GET /ping` → `{{"status":"ok"}}`, same gunicorn.conf.py '
            f"| {run['rps']:.0f} | {ms(run['p50_ms'])} | {ms(run['p99_ms'])} | {errors(run)} |"
        )
    peer = results.get("peer")
    if peer:
        lines.append(
            f"| peer: oidc-provider {peer['oidc_provider']} client-credentials token, RS256 JWT, one Node.js "
            f"{peer['node']} process | {peer['rps']:.0f} | {ms(peer['p50_ms'])} | {ms(peer['p99_ms'])} | "
            f"{errors(peer)} |"
        )
    lines += [
        "",
        "## The service by store size (TinyDB files, the default store)",
        "",
        '"live tickets" is how many the store held when the run started → when it ended (POST adds '
        "tickets; the single-use run starts with its fresh single-use tickets added, and its used ones "
        "are purged afterwards).",
        "",
    ]
    lines += size_table(results, "service", ceiling)
    lines += postgres_section(results, ceiling)
    lines += [
        "",
        "## Naive TinyDB (default JSONStorage, no cache, no lock), in-process, one call at a time",
        "",
        "| tickets | file | lookup/s | lookup p50 ms | lookup p99 ms | insert/s | insert p50 ms | insert p99 ms "
        "| service POST/s ÷ naive insert/s |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in results.get("naive", []):
        post = run_of(results, row["size"], "post")
        ratio = f"{post['ok_rps'] / row['insert']['ops_per_s']:.1f}×" if post else "–"
        lookup, insert = row["lookup"], row["insert"]
        lines.append(
            f"| {row['size']:,} | {row['file_bytes'] / 1e6:.2f} MB | {lookup['ops_per_s']:.0f} | "
            f"{ms(lookup['p50_ms'])} | {ms(lookup['p99_ms'])} | {insert['ops_per_s']:.1f} | "
            f"{ms(insert['p50_ms'])} | {ms(insert['p99_ms'])} | {ratio} |"
        )
    lines += [
        "",
        "## Resident memory per gunicorn worker (VmRSS, after the reads, PUTs, exchanges and tokens at that size)",
        "",
        "| live tickets | VmRSS per worker, MB |",
        "| ---: | --- |",
    ]
    for size in sizes:
        rss = phase_of(results, size).get("rss_mb") or []
        lines.append(f"| {size:,} | {', '.join(f'{mb:.1f}' for mb in rss)} |")
    lines += [
        "",
        "## Seeding through the API (TinyDB files)",
        "",
        "| to | new multi-use tickets | tickets/s (parallel POSTs) |",
        "| ---: | ---: | ---: |",
    ]
    for size in sizes:
        seed = phase_of(results, size).get("seed", {})
        lines.append(f"| {size:,} | {seed.get('count', 0):,} | {seed.get('per_s', 0):.0f} |")
    lines += [
        "",
        "## How it was measured",
        "",
        "- Every server listens on 127.0.0.1 only; each wrk run has `-d` and `--timeout 5s`; the whole run "
        "stops past `--max-minutes`.",
        "- The service runs as `gunicorn -c gunicorn.conf.py wsgi:app` on a fresh data folder "
        "(bench/out/data) with `TICKETS_EXCHANGE_FAILURES_PER_MINUTE=0`; the ceiling runs under the "
        "same gunicorn.conf.py. Every TinyDB ticket is made through the API (parallel POSTs): nothing but the "
        "service writes its files.",
        "- Lua scripts (bench/lua) rotate over the live ticket ids for GET, PUT and the multi-use exchange, "
        "walk fresh single-use tickets (one id per request, disjoint per wrk thread) for the single-use "
        "exchange, and count every non-2xx answer, shown above so that a run that only measured errors is "
        "visible.",
        "- The ceiling runs first and again last; the gap between the two shows how much other work on "
        "the machine moved the numbers.",
        "- Sizes run in ascending order; tickets made by the POST run stay and count toward the next size "
        "(any above it are deleted through the API).",
        "- Used single-use tickets stay in the store as records while their tokens may be introspected; "
        "after each single-use run, the leftovers are deleted through the API and the used ones purged "
        "with `flask tickets purge` (its consumed-record lifetime set to 0 for that call).",
        "- gunicorn's sync workers close the connection after every response; Node.js keeps it open, "
        "so the peer saves a TCP handshake per request.",
        "- PostgreSQL runs after the TinyDB sizes (before the last ceiling run) with the same wrk scripts, "
        "durations and steps per size; its multi-use tickets are seeded in-process (bench/pg_seed.py), since "
        "100,000 POSTs would take minutes. The server is stopped and its folder removed at the end, also when "
        "the run fails or is interrupted.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    bench = Path(__file__).resolve().parent
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else bench / "out" / "results.json"
    (bench / "results.md").write_text(render(json.loads(source.read_text())))


if __name__ == "__main__":
    main()
