"""--profile: py-spy on one gunicorn worker while wrk drives the multi-use exchange; the top functions."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from collections import Counter, defaultdict

from harness import OUT, log, tool
from steps import Pass, Target, ids_file

TOP_LINES = 15
# A caller that hands all but this share of all samples on to one callee only passes the call on
# (gunicorn's start-up chain, Flask's and flask-smorest's wrappers): it is left out of the table.
PASS_ON = 0.01
PROFILE_SECONDS = 10  # at least: a few thousand samples
RATE = 500  # py-spy samples per second
LINE_NUMBER = re.compile(r":\d+\)$")


def top_functions(raw: str) -> tuple[int, list[dict]]:
    """py-spy's raw stacks -> the samples, and each function's inclusive and own share (largest first)."""
    total, inclusive, own = 0, Counter(), Counter()
    callees: dict[str, Counter] = defaultdict(Counter)
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [LINE_NUMBER.sub(")", frame) for frame in stack.split(";")]  # root first
        total += int(count)
        for frame in set(frames):  # a recursive function counts once per sample
            inclusive[frame] += int(count)
        for caller, callee in set(zip(frames, frames[1:], strict=False)):
            if caller != callee:
                callees[caller][callee] += int(count)
        own[frames[-1]] += int(count)
    rows = []
    for frame, n in inclusive.most_common():
        handed_on = max(callees[frame].values(), default=0)
        if handed_on < n - PASS_ON * total:
            rows.append({"function": frame, "inclusive": n / total, "own": own[frame] / total})
    return total, rows


def profile_exchange(target: Target, phase: dict, step: Pass) -> dict:
    """py-spy record --gil --nonblocking on the first worker during one multi-use exchange run (not a measured one)."""
    size = phase["size"]
    raw_path = OUT / f"{target.prefix}profile_exchange_multi_{size}.txt"
    pid = target.server.worker_pids()[0]
    duration = max(target.args.duration, PROFILE_SECONDS)
    argv = [tool("py-spy"), "record", "--gil", "--nonblocking", "-f", "raw", "-r", str(RATE)]
    argv += ["-d", str(duration + 30), "-p", str(pid), "-o", str(raw_path)]
    log(f"profiling worker {pid} with py-spy during the multi-use exchange at {size:,}")
    with open(OUT / "py-spy.log", "ab") as spy_log:
        spy = subprocess.Popen(argv, stdout=spy_log, stderr=subprocess.STDOUT)
    try:
        time.sleep(1)  # py-spy attaches
        run = target.wrk.run(
            f"{target.prefix}profile_exchange_multi_{size}", "exchange.lua", f"{target.base}/oauth/token", duration,
            step.connections, BENCH_IDS=ids_file(target, phase), BENCH_MODE="rotate",
        )
    finally:
        spy.send_signal(signal.SIGINT)  # py-spy writes what it has and exits
        spy.wait(timeout=60)
    # py-spy copies names out of the process as they are: one that is not UTF-8 must not end the bench
    samples, rows = top_functions(raw_path.read_text(errors="replace") if raw_path.exists() else "")
    top_path = OUT / f"{target.prefix}profile_top_{size}.txt"
    lines = [f"{row['inclusive']:7.1%} {row['own']:7.1%}  {row['function']}" for row in rows[:200]]
    top_path.write_text(f"inclusive    own  function ({samples} samples, worker {pid})\n" + "\n".join(lines) + "\n")
    log(f"  {samples} samples; top functions in {top_path}")
    return {
        "size": size, "pid": pid, "samples": samples, "possible": int(RATE * run["duration_us"] / 1e6), "run": run,
        "top": rows[:TOP_LINES],
        "raw": str(raw_path), "top_file": str(top_path), "command": " ".join(argv[1:6]),
    }
