"""The machine the numbers come from: what it is, and how busy other work keeps it."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path

from harness import ROOT, log


def cpu_busy(seconds: float = 2.0) -> float:
    """The share of all CPUs busy over `seconds` (from /proc/stat), before this bench loads anything."""

    def sample() -> tuple[int, int]:
        """(all jiffies, idle jiffies) since boot, summed over the CPUs."""
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        return sum(fields), idle

    total_1, idle_1 = sample()
    time.sleep(seconds)
    total_2, idle_2 = sample()
    return 1 - (idle_2 - idle_1) / max(1, total_2 - total_1)


def wait_for_quiet(limit: float) -> float:
    """Wait up to `limit` seconds for other work on the machine to calm down; returns the busy share."""
    end = time.monotonic() + limit
    busy = cpu_busy()
    while busy > 0.25 and time.monotonic() < end:
        log(f"the machine is {busy:.0%} busy with other work; waiting (up to --wait-idle {limit:.0f} s)")
        time.sleep(8)
        busy = cpu_busy()
    if busy > 0.25:
        log(f"warning: the machine is {busy:.0%} busy with other work: numbers will be low and noisy")
    return busy


def revision(folder: Path) -> str:
    """The git revision of a checkout (read-only git), and whether its tracked files were changed."""
    try:
        head = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        )
        if head.returncode != 0:
            return "not a git checkout"
        dirty = subprocess.run(
            ["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return head.stdout.strip() + (" with uncommitted changes" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine(app_dir: Path) -> dict:
    """CPU, cores, Python, wrk, the git revision measured (read-only git), and the date, for the report."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    revision_now = revision(ROOT)
    if app_dir != ROOT:
        revision_now = f"the service in {app_dir} (working tree at {revision_now})"
    wrk_version = (
        subprocess.run(["wrk", "-v"], capture_output=True, text=True)
        .stdout.split("\n")[0]
        .split(" Copyright")[0]
        .strip()
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "wrk": wrk_version,
        "revision": revision_now,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
