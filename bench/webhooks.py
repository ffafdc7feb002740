"""Issue 15's numbers, at the target size: the multi-use exchange with one healthy webhook endpoint against
without, in alternating runs (the machine drifts; alternation shares the drift), and how long after its
event each message reached the receiver, under that load and at a trickle of 20 exchanges a second.

The receiver (bench/webhook_receiver.py) stands for the back office's server, which would run on another
machine: it runs under SCHED_IDLE, so that it takes only CPU the service leaves.

Each round also has a control run, with no endpoint: a SCHED_IDLE busy loop (bench/idle_load.py) that uses as much
CPU time as the deliverer and the receiver used in that round's run with the endpoint (beyond what the deliverer
used in the run without: it reads the log all the same), in bursts every tenth of a second as the deliverer works.
What the control costs the exchange is what that much CPU costs it on this machine, whatever it is spent on; the
webhooks' cost beyond it is what delivering adds.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import requests
from harness import BENCH, HOST, OUT, flask_cli, free_port, log
from steps import Target, ids_file

# A 5-second run's p99 ranges from 15 to 50 ms on a quiet 2-core machine, with or without an endpoint, and its
# req/s by ±8%: with 3 rounds the median p99 was a coin toss, with 6 it still moved by a third between runs.
ROUNDS = 10
TRICKLE = 200  # exchanges at TRICKLE_RATE a second, one at a time
TRICKLE_RATE = 20


class Receiver:
    def __init__(self):
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}/hook"
        log_file = open(OUT / "webhook-receiver.log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, str(BENCH / "webhook_receiver.py"), str(self.port)],
            stdout=log_file, stderr=subprocess.STDOUT,
        )
        log_file.close()
        self._wait_up()

    def _wait_up(self) -> None:
        for _ in range(100):
            try:
                self.forget()
                return
            except requests.RequestException:
                time.sleep(0.1)
        raise RuntimeError("the webhook receiver did not start")

    def forget(self) -> None:
        requests.delete(f"http://{HOST}:{self.port}/stats", timeout=5)

    def latencies(self) -> list[float]:
        return requests.get(f"http://{HOST}:{self.port}/stats", timeout=30).json()["latencies_ms"]

    def wait_for(self, count: int, seconds: float = 120) -> list[float]:
        """The latencies once `count` messages came (or what came within `seconds`)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            found = self.latencies()
            if len(found) >= count:
                return found
            time.sleep(0.2)
        return self.latencies()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def percentiles(values: list[float]) -> dict:
    ordered = sorted(values)
    if not ordered:
        return {"count": 0}
    at = lambda share: ordered[min(len(ordered) - 1, int(share * len(ordered)))]  # noqa: E731
    return {"count": len(ordered), "p50_ms": at(0.5), "p99_ms": at(0.99), "max_ms": ordered[-1]}


class IdleLoad:
    """bench/idle_load.py using `share` of a core, for as long as the `with` block runs."""

    def __init__(self, share: float):
        self.share = share

    def __enter__(self):
        self.proc = subprocess.Popen([sys.executable, str(BENCH / "idle_load.py"), f"{self.share:.4f}"])
        time.sleep(0.3)  # started, and under SCHED_IDLE
        return self

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def cpu_seconds(pids: list[int]) -> float:
    """The CPU time (user and system, every thread's, finished ones too) the processes used so far."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15 of the whole line
    return total / os.sysconf("SC_CLK_TCK")


def exchange_using(busy: list[int], target: Target, phase: dict, label: str) -> tuple[dict, float]:
    """An exchange run, and the share of a core the processes `busy` used during it."""
    before = cpu_seconds(busy)
    run = exchange_run(target, phase, label)
    return run, (cpu_seconds(busy) - before) / (run["duration_us"] / 1e6)


class Endpoint:
    """One endpoint registered with the CLI for as long as the `with` block runs."""

    def __init__(self, target: Target, url: str):
        self.target, self.url = target, url

    def __enter__(self):
        added = flask_cli(self.target.app_dir, self.target.purge_env, "webhooks", "add", "--url", self.url)
        self.id = json.loads(added)["id"]
        return self

    def __exit__(self, *exc):
        flask_cli(self.target.app_dir, self.target.purge_env, "webhooks", "delete", self.id)


def exchange_run(target: Target, phase: dict, label: str) -> dict:
    return target.wrk.run(
        f"{label}_{phase['size']}", "exchange.lua", f"{target.base}/oauth/token", target.args.duration,
        target.args.connections, BENCH_IDS=ids_file(target, phase), BENCH_MODE="rotate",
    )


def trickle(target: Target, receiver: Receiver) -> list[float]:
    """TRICKLE exchanges, TRICKLE_RATE a second: the messages' latencies when the machine is not busy."""
    receiver.forget()
    with requests.Session() as session:
        for number in range(TRICKLE):
            begun = time.monotonic()
            ticket = target.live[number % len(target.live)]
            answer = session.post(f"{target.base}/oauth/token", data={"grant_type": "ticket", "ticket": ticket},
                                  timeout=30)
            answer.raise_for_status()
            time.sleep(max(0.0, 1 / TRICKLE_RATE - (time.monotonic() - begun)))
    return receiver.wait_for(TRICKLE, seconds=30)


def measure_webhooks(target: Target, phase: dict) -> dict:
    """Alternating exchange runs without and with one endpoint; the messages' latencies; the deliverer's RSS."""
    target.deadline.check("webhooks")
    log(f"webhooks at {phase['size']:,}: the exchange without and with one healthy endpoint, {ROUNDS} rounds")
    receiver = Receiver()
    result: dict = {"without": [], "with": [], "control": [], "load_latency": [], "drain_s": [], "busy_share": []}
    busy = [*target.server.deliverer_pids(), receiver.proc.pid]
    try:
        for number in range(ROUNDS):
            # the deliverer reads the log with or without an endpoint: the control takes only what it adds
            run, already = exchange_using(busy, target, phase, f"exchange_nohook{number}")
            result["without"].append(run)
            receiver.forget()
            with Endpoint(target, receiver.url):
                run, used = exchange_using(busy, target, phase, f"exchange_hook{number}")
                share = max(0.0, used - already)
                ended = time.monotonic()
                sent = run["requests"] - run["non2xx"]
                result["load_latency"] += receiver.wait_for(sent)
                result["drain_s"].append(time.monotonic() - ended)
                result["with"].append(run)
            result["busy_share"].append(share)
            with IdleLoad(share):
                result["control"].append(exchange_run(target, phase, f"exchange_idle_load{number}"))
        with Endpoint(target, receiver.url):
            result["trickle_latency"] = percentiles(trickle(target, receiver))
            result["deliverer_rss_mb"] = target.server.worker_rss_mb(target.server.deliverer_pids())
    finally:
        receiver.stop()
    result["load_latency"] = percentiles(result["load_latency"])
    summarize(result)
    return result


def summarize(result: dict) -> None:
    for key in ("without", "with", "control"):
        runs = result[key]
        result[f"{key}_median"] = {
            "rps": statistics.median(run["rps"] for run in runs),
            "p99_ms": statistics.median(run["p99_ms"] for run in runs),
        }
    result["rps_ratio"] = result["with_median"]["rps"] / result["without_median"]["rps"]
    result["p99_ratio"] = result["with_median"]["p99_ms"] / result["without_median"]["p99_ms"]
    result["control_rps_ratio"] = result["control_median"]["rps"] / result["without_median"]["rps"]
    result["control_p99_ratio"] = result["control_median"]["p99_ms"] / result["without_median"]["p99_ms"]
    pairs = list(zip(result["without"], result["with"], strict=True))
    result["paired"] = {}
    for key in ("rps", "p99_ms"):
        ratios = [on[key] / off[key] for off, on in pairs]
        name = key.removesuffix("_ms")
        result["paired"][f"{name}_ratio"] = statistics.median(ratios)
        result["paired"][f"{name}_range"] = (min(ratios), max(ratios))
    load, quiet = result["load_latency"], result["trickle_latency"]
    log(f"  control (idle load of {statistics.median(result['busy_share']):.1%} of a core)/without: "
        f"{result['control_rps_ratio']:.3f} of the throughput, {result['control_p99_ratio']:.2f}x the p99")
    log(f"  with/without: {result['rps_ratio']:.3f} of the throughput, {result['p99_ratio']:.2f}x the p99; "
        f"messages p50/p99 {load.get('p50_ms', 0):.0f}/{load.get('p99_ms', 0):.0f} ms under load, "
        f"{quiet.get('p50_ms', 0):.0f}/{quiet.get('p99_ms', 0):.0f} ms at {TRICKLE_RATE}/s")
