"""bench/results.md from the numbers bench/run.py gathered (bench/out/results.json).

python bench/report.py [bench/out/results.json]   # rewrites bench/results.md
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tables import (
    OPERATIONS,
    errors,
    floor_bound,
    list_table,
    ms,
    naive_section,
    phase_of,
    queue_table,
    run_of,
    seed_table,
    share,
    size_table,
    sizes_of,
)
from targets import earlier_targets, targets, webhook_rows


def header(results: dict) -> list[str]:
    """Where, when and how the numbers were made."""
    m, s, ceiling = results["machine"], results["settings"], results["ceiling"]
    return [
        "# Benchmark results",
        "",
        f"Made by `make bench` (bench/run.py) on {m['date']}, revision {m['revision']}: {m['cores']} cores "
        f"({m['cpu']}), Python {m['python']}, {m['wrk']}. Everything ran on 127.0.0.1. wrk with "
        f"{s['threads']} threads and {s['connections']} connections ({s['create_connections']} for POST /ticket), "
        f"then a second pass at {s['queue_connections']} connections; {s['duration']} s per run "
        f"({s['write_duration']} s for the runs that grow the store: POST and single-use exchange). Every gunicorn "
        f"(service and ceiling) runs with gunicorn.conf.py and WEB_CONCURRENCY={s['web_concurrency']} sync workers, "
        "the default request log (`TICKETS_REQUEST_LOG=json`, no access log). PostgreSQL runs with **fsync on**. "
        'Latencies are wrk\'s, in milliseconds. "× ceiling" is req/s (2xx only) over the req/s of a bare Flask '
        f"endpoint under the same gunicorn settings in this run: {ceiling['rps']:.0f} req/s at "
        f"-c{ceiling['connections']} (the better of two runs), and its own run at -c{s['queue_connections']} for "
        f"the second pass. Whole run: {results['elapsed_s'] / 60:.1f} min. One machine, one run; no test asserts "
        "these numbers.",
        "",
        f"Other work on the machine: CPUs {m.get('busy_before', 0):.0%} busy just before the run; load average "
        f"(1 min) {m.get('loadavg_start', [0])[0]:.2f} at the start, {m.get('loadavg_end', [0])[0]:.2f} at the end "
        "(the bench itself keeps about 2 busy). Anything else running skews every number here.",
        "",
        "![p50 latency against store size](p50_latency.png)",
        "",
    ]


def target_table(rows: list[dict]) -> list[str]:
    """| target | measured | required | met |."""
    lines = ["| target | measured | required | met |", "| --- | --- | --- | --- |"]
    for line in rows:
        met = "yes" if line["met"] else "**no**"
        lines.append(f"| {line['target']} | {line['measured']} | {line['required']} | {met} |")
    return lines


def floors_section(results: dict) -> list[str]:
    """The floors, then before, after and the floor of each operation as shares of the ceiling."""
    floors, ceiling, size = results["floors"], results["ceiling"], results["settings"]["target_size"]
    disk, crypto = floors["disk"], floors["crypto"]
    lines = [
        "## Floors, before and after, as ratios from this run",
        "",
        "| floor | min ms | median ms | p99 ms | how |",
        "| --- | ---: | ---: | ---: | --- |",
        f"| disk: append of a {disk['record_bytes']}-byte record + `fdatasync` | {ms(disk['min_ms'])} | "
        f"{ms(disk['median_ms'])} | {ms(disk['p99_ms'])} | {disk['count']} appends to one file in bench/out "
        f"({disk['file_system']}), the file system of the service's data folder |",
        f"| crypto: one RS256 JWT signature | {ms(crypto['min_ms'])} | {ms(crypto['median_ms'])} | "
        f"{ms(crypto['p99_ms'])} | {crypto['count']} signatures, {crypto['what']}, in-process |",
        f"| framework: the ceiling, per request | – | {ms(ceiling['per_request_ms'])} | – | "
        f"{ceiling['workers']} workers ÷ {ceiling['rps']:.0f} req/s (bare Flask, -c{ceiling['connections']}) |",
        "",
        '"floor" is the share of the ceiling an operation would reach if a worker did only the framework\'s work '
        "plus the floors it cannot skip: framework ÷ (framework + median signature and/or median append + "
        "fdatasync). With group commit, workers may share one `fdatasync`, so for writes it is a lower estimate.",
        "",
    ]
    before = results.get("before")
    if before:
        lines += [
            f"Before: the service in `{before['dir']}` ({before['revision']}), measured in this run at {size:,} live "
            "tickets, same .venv, same wrk settings, its own gunicorn.conf.py.",
            "",
        ]
    lines += [
        f"| operation at {size:,} | before × ceiling | after × ceiling | after ÷ before | floor × ceiling | "
        "floor counts | before p50 / p99 ms | after p50 / p99 ms |",
        "| --- | ---: | ---: | ---: | ---: | --- | --- | --- |",
    ]
    for operation, label in OPERATIONS:
        after = run_of(results, size, operation)
        first = run_of(results, size, operation, "before")
        bound, what = floor_bound(results, operation)
        cells = [
            f"{share(results, first):.2f}" if first else "–",
            f"{share(results, after):.2f}" if after else "–",
            f"{after['ok_rps'] / first['ok_rps']:.2f}×" if first and after and first["ok_rps"] else "–",
            f"{bound:.2f}",
            what,
            f"{ms(first['p50_ms'])} / {ms(first['p99_ms'])}" if first else "–",
            f"{ms(after['p50_ms'])} / {ms(after['p99_ms'])}" if after else "–",
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines + [""]


def references_section(results: dict) -> list[str]:
    """The ceiling runs and the peer."""
    lines = ["## Reference points", "", "| what | wrk -c | req/s | p50 ms | p99 ms | non-2xx |"]
    lines.append("| --- | ---: | ---: | ---: | ---: | --- |")
    ceiling = results["ceiling"]
    runs = [(when, run) for when, run in zip(("at the start", "at the end"), results["ceiling_runs"], strict=False)]
    if results.get("ceiling_queue"):
        runs.append(("at the start, second pass", results["ceiling_queue"]))
    for when, run in runs:
        chosen = ", the one used for × ceiling" if run == ceiling else ""
        lines.append(
            f'| ceiling {when}{chosen}: bare Flask `GET /ping` → `{{"status":"ok"}}`, same gunicorn settings '
            f"| {run['connections']} | {run['rps']:.0f} | {ms(run['p50_ms'])} | {ms(run['p99_ms'])} | {errors(run)} |"
        )
    peer = results.get("peer")
    if peer:
        lines.append(
            f"| peer: oidc-provider {peer['oidc_provider']} client-credentials token, RS256 JWT, one Node.js "
            f"{peer['node']} process | {peer['connections']} | {peer['rps']:.0f} | {ms(peer['p50_ms'])} | "
            f"{ms(peer['p99_ms'])} | {errors(peer)} |"
        )
    return lines + [""]


def postgres_section(results: dict) -> list[str]:
    """The PostgreSQL store: how it ran, then its per-size table."""
    lines = ["## PostgreSQL (fsync on)", ""]
    if results.get("postgres_error"):
        lines += [f"**The PostgreSQL part failed:** `{results['postgres_error']}`", ""]
    pg = results.get("postgres")
    if not pg:
        return lines + ([] if results.get("postgres_error") else ["Not measured in this run (`--skip-postgres`).", ""])
    shown = ", ".join(f"`{name}` = {value}" for name, value in pg.get("settings", {}).items())
    lines += [
        f"The same service and operations with `TICKETS_DATABASE_URL` set: a throw-away {pg.get('postgres', '')} "
        f"on 127.0.0.1 started by bench/pg.py in {pg.get('cluster', '?')} with **fsync on** ({shown}, as `SHOW` "
        "answered in this run), default settings otherwise, a fresh database, the same gunicorn settings "
        "(each worker with the store's pool of up to 4 connections). The multi-use tickets that make up each size "
        "are seeded in-process through the app's own code (bench/pg_seed.py: `TicketService.issue_ticket` builds "
        "them, `ticket_to_record` and COPY write them, then `ANALYZE tickets`); the clients come from "
        "`flask clients create`, and single-use tickets, POSTs and deletions go through the API and "
        "`flask tickets purge` as for TinyDB.",
        "",
    ]
    return lines + size_table(results, "postgres") + ["", *seed_table(results, "postgres"), ""]


def profile_section(results: dict) -> list[str]:
    """--profile: the top functions of one worker during a multi-use exchange run."""
    profiles = [phase["profile"] for phase in results["service"]["sizes"].values() if phase.get("profile")]
    if not profiles:
        return []
    profile = profiles[0]
    run = profile["run"]
    lines = [
        f"## Profile: multi-use exchange at {profile['size']:,} (TinyDB)",
        "",
        f"`py-spy {profile['command']}` on worker {profile['pid']} (one of the two) while wrk drove the multi-use "
        f"exchange at -c{run['connections']} ({run['rps']:.0f} req/s, p50 {ms(run['p50_ms'])} ms during "
        f"profiling; not one of the measured runs). With `--gil`, py-spy samples the worker only while it holds "
        f"the GIL: {profile['samples']:,} samples of about {profile['possible']:,} it could take "
        f"({profile['samples'] / max(1, profile['possible']):.0%}; the rest the worker waited: for a connection, "
        "the disk, a lock or the CPU). Inclusive: the share of samples with the function anywhere on the stack; "
        "own: at the top. A caller that hands nearly all its samples to one callee is left out (it only passes "
        f"the call on). All functions: bench/out/{Path(profile['top_file']).name}; raw stacks: "
        f"bench/out/{Path(profile['raw']).name}.",
        "",
        "| # | inclusive | own | function (file) |",
        "| ---: | ---: | ---: | --- |",
    ]
    for number, line in enumerate(profile["top"], 1):
        function = line["function"].replace("|", "\\|")
        lines.append(f"| {number} | {line['inclusive']:.1%} | {line['own']:.1%} | `{function}` |")
    return lines + [""]


def webhooks_section(results: dict) -> list[str]:
    """The alternating runs, and how long after its event each message arrived."""
    size = results["settings"]["target_size"]
    hooks = phase_of(results, size).get("webhooks") if size in sizes_of(results) else None
    if not hooks:
        return []
    lines = ["", "| round | without: req/s | p99 ms | with one endpoint: req/s | p99 ms | with ÷ without: req/s | p99 "
             "| all delivered after |", "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for number, (off, on, drain) in enumerate(zip(hooks["without"], hooks["with"], hooks["drain_s"], strict=True), 1):
        lines.append(f"| {number} | {off['rps']:.0f} | {ms(off['p99_ms'])} | {on['rps']:.0f} | {ms(on['p99_ms'])} "
                     f"| {on['rps'] / off['rps']:.2f}× | {on['p99_ms'] / off['p99_ms']:.2f}× | {drain:.1f} s |")
    paired = hooks.get("paired")
    if paired:
        spread = {key: "{:.2f}× (from {:.2f}× to {:.2f}×)".format(paired[f"{key}_ratio"], *paired[f"{key}_range"])
                  for key in ("rps", "p99")}
        lines += ["", f"Each round's own ratio (its two runs back to back), median over the rounds: req/s "
                      f"{spread['rps']}, p99 {spread['p99']}. The targets above take the ratio of the medians."]
    lines += control_lines(hooks)
    lines.append("")
    for key, when in (("load_latency", "under that load"), ("trickle_latency", "at 20 exchanges a second")):
        got = hooks.get(key) or {}
        if got.get("count"):
            lines.append(f"- Messages {when}: {got['count']:,}, from the event to the receiver p50 "
                         f"{got['p50_ms']:.0f} ms, p99 {got['p99_ms']:.0f} ms, max {got['max_ms']:.0f} ms.")
    rss = hooks.get("deliverer_rss_mb") or []
    if rss:
        lines.append(f"- The deliverer process (gunicorn's dirty worker): VmRSS {max(rss):.1f} MB.")
    return lines + [""]


def control_lines(hooks: dict) -> list[str]:
    """The control runs: an idle-class busy loop of the webhooks' CPU, no endpoint (bench/idle_load.py)."""
    if not hooks.get("control"):
        return []
    lines = ["", "The control: each round's third run, with no endpoint, beside a SCHED_IDLE busy loop "
             "(bench/idle_load.py) using the CPU time that the deliverer and the receiver used in its run with the "
             "endpoint, beyond the deliverer's in its run without.", "",
             "| round | busy loop: share of a core | req/s | p99 ms | control ÷ without: req/s | p99 |",
             "| ---: | ---: | ---: | ---: | ---: | ---: |"]
    for number, (off, control, busy) in enumerate(zip(hooks["without"], hooks["control"], hooks["busy_share"],
                                                      strict=True), 1):
        lines.append(f"| {number} | {busy:.1%} | {control['rps']:.0f} | {ms(control['p99_ms'])} "
                     f"| {control['rps'] / off['rps']:.2f}× | {control['p99_ms'] / off['p99_ms']:.2f}× |")
    medians = hooks["control_median"]
    lines += ["", f"Medians: the control {medians['rps']:.0f} req/s, p99 {ms(medians['p99_ms'])} ms: "
                  f"{hooks['control_rps_ratio']:.2f}× the req/s and {hooks['control_p99_ratio']:.2f}× the p99 of the "
                  f"runs without (the endpoint's: {hooks['rps_ratio']:.2f}× and {hooks['p99_ratio']:.2f}×)."]
    return lines


def render(results: dict) -> str:
    """The whole of bench/results.md."""
    s = results["settings"]
    lines = header(results) + ["## Targets (issue 12)", "", *target_table(targets(results)), ""]
    lines += ["## Targets (issue 15)", "", *target_table(webhook_rows(results)), *webhooks_section(results)]
    lines += ["Earlier targets, kept:", "", *target_table(earlier_targets(results)), ""]
    lines += floors_section(results) + references_section(results)
    lines += [
        "## The service by store size (TinyDB files, the default store)",
        "",
        '"live tickets" is how many the store held when the run started → when it ended (POST adds tickets; '
        "the single-use run starts with its fresh single-use tickets added, and its used ones are purged "
        "afterwards). The list is the small organization's (20 tickets, its own client) beside the others.",
        "",
        *size_table(results, "service"),
        "",
        *seed_table(results, "service"),
        "",
        f"## Queueing: the second pass at {s['queue_connections']} connections",
        "",
        *queue_table(results, "service"),
        *queue_table(results, "postgres"),
        "## A list beside another organization",
        "",
        "An organization with 20 tickets lists them (`page_size=20`, its own client) on a store that holds "
        "nothing else (0), then beside each size of another organization.",
        "",
        *list_table(results),
        "",
    ]
    if results.get("before"):
        lines += ["## Before: the other checkout's runs", "", *size_table(results, "before"), ""]
    lines += postgres_section(results) + profile_section(results) + naive_section(results)
    lines += Path(__file__).with_name("method.md").read_text().splitlines()
    return "\n".join(lines) + "\n"


def main() -> None:
    """Rewrite bench/results.md from a results.json."""
    bench = Path(__file__).resolve().parent
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else bench / "out" / "results.json"
    (bench / "results.md").write_text(render(json.loads(source.read_text())))


if __name__ == "__main__":
    main()
