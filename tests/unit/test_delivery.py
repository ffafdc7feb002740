"""delivery.py, the deliverer as gunicorn runs it (its dirty app)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PRIORITIES = """
import os, sys, time, delivery
app = delivery.WebhookDelivery()
app.init()
settler = next(iter(app.services.deliverer._settler._threads))
deadline = time.monotonic() + 10
while os.sched_getscheduler(app.thread.native_id) == os.SCHED_OTHER and time.monotonic() < deadline:
    time.sleep(0.01)
print(os.sched_getscheduler(0), os.sched_getscheduler(settler.native_id), os.sched_getscheduler(app.thread.native_id),
      sys.getswitchinterval())
app.close()
"""


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="SCHED_IDLE is Linux's")
def test_only_the_sending_runs_when_idle(tmp_path):
    """The delivering thread runs under SCHED_IDLE; the main thread (gunicorn's heartbeat) and the settling
    thread (it holds the log's write lock) keep the workers' policy, and the interpreter lock changes hands
    within a millisecond (the settling thread may wait for it while it holds the log's lock)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("TICKETS_")}
    env["TICKETS_DATA_DIR"] = str(tmp_path / "data")
    done = subprocess.run([sys.executable, "-c", PRIORITIES], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    main, settler, sender, switch = done.stdout.split()[-4:]
    assert (int(main), int(settler), int(sender)) == (os.SCHED_OTHER, os.SCHED_OTHER, os.SCHED_IDLE)
    assert float(switch) == pytest.approx(0.001)
