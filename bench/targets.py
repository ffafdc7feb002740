"""The targets of issue 12 (and the earlier ones still worth a row): measured, required, met."""

from __future__ import annotations

from tables import LABELS, OPERATIONS, ms, naive_at, phase_of, run_of, share, sizes_of

GROWTH_LIMIT = 1.5  # p50 at the largest size over p50 at the smallest; also the list beside a big organization
RSS_LIMIT_MB = 150


def row(target: str, measured: str, required: str, met: bool, **extra) -> dict:
    """One line of the targets table (`extra`: what other rows need from it)."""
    return {"target": target, "measured": measured, "required": required, "met": met, **extra}


def throughput_rows(results: dict) -> list[dict]:
    """At the target size (TinyDB): writes ≥ 30% of the ceiling with p99 ≤ 25 ms, GET ≥ 55%, token ≥ 1.1× peer."""
    size, ceiling, rows = results["settings"]["target_size"], results["ceiling"]["rps"], []
    for operation in ("exchange_multi", "exchange_single", "post"):
        run = run_of(results, size, operation)
        if run:
            measured = f"{share(results, run):.2f}× ({run['ok_rps']:.0f} of {ceiling:.0f} req/s)"
            rows.append(row(f"{LABELS[operation]} at {size:,}: req/s", measured, "≥ 0.30×", share(results, run) >= 0.3))
            rows.append(
                row(
                    f"{LABELS[operation]} at {size:,}: p99 at -c{run['connections']}",
                    f"{ms(run['p99_ms'])} ms",
                    "≤ 25 ms",
                    run["p99_ms"] <= 25,
                )
            )
    get = run_of(results, size, "get")
    if get:
        measured = f"{share(results, get):.2f}× ({get['ok_rps']:.0f} of {ceiling:.0f} req/s)"
        rows.append(row(f"GET /ticket/{{id}} at {size:,}: req/s", measured, "≥ 0.55×", share(results, get) >= 0.55))
    token, peer = run_of(results, size, "token"), results.get("peer")
    if token and peer:
        ratio = token["ok_rps"] / peer["ok_rps"]
        measured = f"{ratio:.2f}× ({token['ok_rps']:.0f} vs {peer['ok_rps']:.0f} req/s)"
        rows.append(row("client-credentials token ÷ node oidc-provider (both RS256)", measured, "≥ 1.1×", ratio >= 1.1))
    return rows


def growth_rows(results: dict, store: str, name: str, limit: float) -> list[dict]:
    """Every operation's p50 at the largest size over its p50 at the smallest."""
    sizes = sizes_of(results, store)
    if len(sizes) < 2:
        return []
    small, large, rows = sizes[0], sizes[-1], []
    for operation, label in OPERATIONS:
        first, last = run_of(results, small, operation, store), run_of(results, large, operation, store)
        if first and last:
            growth = last["p50_ms"] / first["p50_ms"]
            measured = f"{growth:.2f}× ({ms(first['p50_ms'])} → {ms(last['p50_ms'])} ms)"
            target = f"{name} {label}: p50 at {large:,} ÷ p50 at {small:,}"
            rows.append(row(target, measured, f"≤ {limit:g}×", growth <= limit, growth=growth, label=label))
    return rows


def list_rows(results: dict) -> list[dict]:
    """The small organization's list beside the largest size of another organization, over it on an empty store."""
    rows = []
    for store, name in (("service", "TinyDB"), ("postgres", "PostgreSQL")):
        empty, sizes = results.get(store, {}).get("list_empty"), sizes_of(results, store)
        beside = run_of(results, sizes[-1], "list", store) if sizes else None
        if empty and beside:
            growth = beside["p50_ms"] / empty["p50_ms"]
            target = f"{name}: list of 20 beside {sizes[-1]:,} of another organization ÷ on an empty store (p50)"
            measured = f"{growth:.2f}× ({ms(empty['p50_ms'])} → {ms(beside['p50_ms'])} ms)"
            rows.append(row(target, measured, f"≤ {GROWTH_LIMIT:g}×", growth <= GROWTH_LIMIT))
    return rows


def postgres_rows(results: dict) -> list[dict]:
    """PostgreSQL with fsync on, at its largest size: every operation ≥ 25% of the ceiling."""
    pg, sizes = results.get("postgres"), sizes_of(results, "postgres")
    if not pg or not sizes:
        return []
    fsync = pg.get("settings", {}).get("fsync", "?")
    rows = [row("PostgreSQL runs with fsync on (`SHOW fsync`)", fsync, "on", fsync == "on")]
    for operation, label in OPERATIONS:
        run = run_of(results, sizes[-1], operation, "postgres")
        if run:
            measured = f"{share(results, run):.2f}× ({run['ok_rps']:.0f} req/s)"
            target = f"PostgreSQL {label} at {sizes[-1]:,}: req/s"
            rows.append(row(target, measured, "≥ 0.25×", share(results, run) >= 0.25))
    return rows


def webhook_rows(results: dict) -> list[dict]:
    """Issue 15: the exchange with one healthy webhook endpoint within 10% of without (medians of alternating runs)."""
    size = results["settings"]["target_size"]
    hooks = phase_of(results, size).get("webhooks") if size in sizes_of(results) else None
    if not hooks:
        return []
    without, with_ = hooks["without_median"], hooks["with_median"]
    return [
        row(f"exchange at {size:,} with one webhook endpoint ÷ without: req/s",
            f"{hooks['rps_ratio']:.2f}× ({with_['rps']:.0f} vs {without['rps']:.0f})", "≥ 0.90×",
            hooks["rps_ratio"] >= 0.9),
        row(f"exchange at {size:,} with one webhook endpoint ÷ without: p99",
            f"{hooks['p99_ratio']:.2f}× ({ms(with_['p99_ms'])} vs {ms(without['p99_ms'])} ms)", "≤ 1.10×",
            hooks["p99_ratio"] <= 1.1),
    ]


def targets(results: dict) -> list[dict]:
    """Issue 12's targets, in its order."""
    sizes = sizes_of(results)
    rows = throughput_rows(results) + growth_rows(results, "service", "TinyDB", GROWTH_LIMIT)
    if sizes:
        phase = phase_of(results, sizes[-1])
        rss = (phase.get("rss_mb") or []) + (phase.get("rss_end_mb") or [])
        if rss:
            target = f"TinyDB at {sizes[-1]:,}: VmRSS of each gunicorn worker"
            rows.append(row(target, f"max {max(rss):.1f} MB", f"≤ {RSS_LIMIT_MB} MB", max(rss) <= RSS_LIMIT_MB))
    return rows + list_rows(results) + postgres_rows(results)


def earlier_targets(results: dict) -> list[dict]:
    """Targets of earlier issues, kept as rows: token share, POST vs naive TinyDB, RSS, PostgreSQL p50 growth."""
    sizes, size, rows = sizes_of(results), results["settings"]["target_size"], []
    token = run_of(results, size, "token")
    if token:
        ratio = share(results, token)
        rows.append(row(f"client-credentials token at {size:,}: req/s", f"{ratio:.2f}×", "≥ 0.40×", ratio >= 0.4))
    post, naive = (run_of(results, sizes[-1], "post"), naive_at(results, sizes[-1])) if sizes else (None, None)
    if post and naive:
        speedup = post["ok_rps"] / naive["insert"]["ops_per_s"]
        measured = f"{speedup:.0f}× ({post['ok_rps']:.0f} vs {naive['insert']['ops_per_s']:.1f} per s)"
        rows.append(row(f"POST /ticket at {sizes[-1]:,} ÷ naive TinyDB inserts", measured, "≥ 10×", speedup >= 10))
    if size in sizes:
        rss = phase_of(results, size).get("rss_mb") or []
        if rss:
            target = f"TinyDB at {size:,}: VmRSS per worker"
            rows.append(row(target, f"max {max(rss):.1f} MB", "≤ 100 MB", max(rss) <= 100))
    growth = growth_rows(results, "postgres", "PostgreSQL", GROWTH_LIMIT)
    if growth:
        worst = max(growth, key=lambda line: line["growth"])
        measured = f"worst: {worst['label']}, {worst['measured']}"
        every = "PostgreSQL: every operation's p50 at the largest size ÷ at the smallest"
        rows.append(row(every, measured, f"≤ {GROWTH_LIMIT:g}×", all(line["met"] for line in growth)))
    return rows
