"""`make bench`: load-test the ticket service on 127.0.0.1 and write bench/results.md and the plot.

One run measures, with wrk and the Lua scripts in bench/lua:
  - the ceiling: a bare Flask endpoint (bench/ceiling.py) under the same gunicorn.conf.py;
  - the peer: oidc-provider's client-credentials token endpoint (bench/peer, Node.js);
  - the service with 100, 1,000 and 10,000 live tickets: GET, POST and PUT /security/ticket,
    the exchange of multi-use and of single-use tickets, and the client-credentials token;
  - resident memory of each gunicorn worker at each size;
  - naive TinyDB doing the same inserts and lookups in-process (bench/naive_tinydb.py);
  - the same operations with the PostgreSQL store (TICKETS_DATABASE_URL) at 1,000, 10,000 and
    100,000 live tickets, on a throw-away PostgreSQL 15 (tests/postgres.py) stopped at the end.
For the TinyDB store, tickets are created through the API only (several threads); only the service
writes its files. For PostgreSQL, the multi-use tickets that make up each size are seeded in-process
through the app's own code (bench/pg_seed.py: TicketService.issue_ticket, ticket_to_record, COPY);
everything else (the client, single-use tickets, POSTs) goes through the CLI and the API as for TinyDB.
Everything listens on 127.0.0.1, every wrk run is bounded by -d and a timeout, and the whole run
by --max-minutes. Raw output goes to bench/out/ (not committed).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import requests

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
OUT = BENCH / "out"
LUA = BENCH / "lua"
VENV_BIN = ROOT / ".venv" / "bin"
APP_DIR = ROOT  # the checkout whose service is measured (--app-dir)
HOST = "127.0.0.1"  # the only address this benchmark ever loads


class Deadline:
    def __init__(self, minutes: float):
        self.end = time.monotonic() + minutes * 60

    def check(self, what: str) -> None:
        if time.monotonic() > self.end:
            raise TimeoutError(f"bench ran past --max-minutes before {what}")

    def left(self) -> float:
        return max(1.0, self.end - time.monotonic())


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def tool(name: str) -> str:
    local = VENV_BIN / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if not found:
        raise SystemExit(f"{name} not found: run `make bench` (it installs what the bench needs)")
    return found


def clean_env(**extra: str) -> dict:
    """The caller's environment without TICKETS_* or gunicorn knobs of its own, plus `extra`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("TICKETS_")}
    for key in ("HOST", "PORT", "GUNICORN_CMD_ARGS"):
        env.pop(key, None)
    env.update(extra)
    return env


class Server:
    """A process we start in its own session, so that stopping it stops exactly what we started."""

    def __init__(self, name: str, argv: list[str], env: dict, health_url: str, cwd: Path):
        self.name, self.argv, self.env, self.health_url, self.cwd = name, argv, env, health_url, cwd
        self.proc: subprocess.Popen | None = None
        self.log_path = OUT / f"{name}.log"

    def start(self, timeout: float = 60) -> None:
        log(f"starting {self.name}")
        log_file = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            self.argv, env=self.env, cwd=self.cwd, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
        )
        log_file.close()
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {self.log_path}")
            try:
                if requests.get(self.health_url, timeout=2).status_code == 200:
                    time.sleep(0.5)  # let every worker finish booting
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not answer {self.health_url} within {timeout:.0f} s")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        log(f"stopping {self.name}")
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def worker_pids(self) -> list[int]:
        """gunicorn's workers: the children of the master we started."""
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return [int(pid) for pid in path.read_text().split()]

    def worker_rss_mb(self) -> list[float]:
        sizes = []
        for pid in self.worker_pids():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("VmRSS:"):
                    sizes.append(int(line.split()[1]) / 1024)
        return sizes


class Wrk:
    def __init__(self, threads: int, connections: int):
        self.threads, self.connections = threads, connections
        self.folder = OUT / "wrk"
        self.folder.mkdir(parents=True, exist_ok=True)

    def run(self, label: str, script: str, url: str, duration: int, **env: str) -> dict:
        argv = [
            "wrk",
            f"-t{self.threads}",
            f"-c{self.connections}",
            f"-d{duration}s",
            "--timeout",
            "5s",
            "-s",
            str(LUA / script),
            url,
        ]
        run_env = {**os.environ, "BENCH_THREADS": str(self.threads), **env}
        done = subprocess.run(argv, env=run_env, capture_output=True, text=True, timeout=duration + 60)
        (self.folder / f"{label}.txt").write_text(done.stdout + done.stderr)
        line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
        if done.returncode != 0 or line is None:
            raise RuntimeError(f"wrk {label} failed ({done.returncode}): {done.stderr.strip()[:500]}")
        result = json.loads(line[len("BENCH_JSON ") :])
        seconds = result["duration_us"] / 1e6
        result["rps"] = result["requests"] / seconds if seconds else 0.0
        result["ok_rps"] = (result["requests"] - result["non2xx"]) / seconds if seconds else 0.0
        result["p50_ms"] = result["p50_us"] / 1000
        result["p99_ms"] = result["p99_us"] / 1000
        note = f", {result['non2xx']} non-2xx {result['statuses']}" if result["non2xx"] else ""
        log(f"  {label}: {result['rps']:.0f} req/s, p50 {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms{note}")
        return result


class Api:
    """The service's API through requests, from several threads (tickets are made only this way)."""

    def __init__(self, base: str, client: dict):
        self.base = base
        self.client = client
        self.local = threading.local()
        self.token = self.client_token()

    def session(self) -> requests.Session:
        if not hasattr(self.local, "session"):
            self.local.session = requests.Session()
        return self.local.session

    def client_token(self) -> str:
        answer = requests.post(
            f"{self.base}/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(self.client["client_id"], self.client["client_secret"]),
            timeout=30,
        )
        answer.raise_for_status()
        return answer.json()["access_token"]

    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"}

    def create(self, ticket_type: str, number: int) -> str:
        body = {
            "type": ticket_type,
            "properties": {"customer_id": f"bench-{number}", "conference_id": f"conf-{number}", "title": "Bench"},
        }
        answer = self.session().post(f"{self.base}/ticket", json=body, headers=self.headers(), timeout=60)
        if answer.status_code != 200:
            raise RuntimeError(f"POST /ticket answered {answer.status_code}: {answer.text[:300]}")
        return answer.json()["id"]

    def delete(self, ticket_id: str) -> None:
        answer = self.session().delete(f"{self.base}/ticket/{ticket_id}", headers=self.headers(), timeout=60)
        if answer.status_code not in (204, 404):  # 404: a single-use ticket already used
            raise RuntimeError(f"DELETE /ticket answered {answer.status_code}: {answer.text[:300]}")

    def create_many(self, ticket_type: str, count: int, workers: int, start: int = 0) -> tuple[list[str], float]:
        """`count` new tickets, made in parallel; returns their ids and the tickets per second."""
        if count <= 0:
            return [], 0.0
        started = time.monotonic()
        with ThreadPoolExecutor(workers) as pool:
            ids = list(pool.map(lambda n: self.create(ticket_type, n), range(start, start + count)))
        return ids, count / (time.monotonic() - started)

    def delete_many(self, ids: list[str], workers: int) -> None:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(self.delete, ids))


def flask_cli(env: dict, *args: str) -> str:
    done = subprocess.run(
        [tool("flask"), "--app", "app", *args], cwd=APP_DIR, env=env, capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        raise RuntimeError(f"flask {' '.join(args)} failed: {done.stderr.strip()[-500:]}")
    return done.stdout


def write_ids(path: Path, ids: list[str]) -> str:
    path.write_text("".join(f"{ticket_id}\n" for ticket_id in ids))
    return str(path)


def gunicorn_server(name: str, app_spec: str, env: dict, health_path: str, extra: list[str] = ()) -> Server:
    port = free_port()
    env = {**env, "HOST": HOST, "PORT": str(port)}
    argv = [tool("gunicorn"), "-c", "gunicorn.conf.py", *extra, app_spec]
    return Server(name, argv, env, f"http://{HOST}:{port}{health_path}", APP_DIR)


def run_ceiling(args, wrk: Wrk, base_env: dict, label: str) -> dict:
    server = gunicorn_server("ceiling", "ceiling:app", base_env, "/ping", ["--pythonpath", str(BENCH)])
    try:
        server.start()
        result = wrk.run(label, "ceiling.lua", server.health_url, args.duration)
        result["workers"] = len(server.worker_pids())
        return result
    finally:
        server.stop()


def run_peer(args, wrk: Wrk) -> dict:
    peer_dir = BENCH / "peer"
    if not (peer_dir / "node_modules" / "oidc-provider").exists():
        raise RuntimeError("bench/peer/node_modules is missing: run `cd bench/peer && npm ci`")
    port = free_port()
    client_id, secret = "bench-peer-client", base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
    env = clean_env(PORT=str(port), CLIENT_ID=client_id, CLIENT_SECRET=secret, NODE_ENV="production")
    server = Server(
        "peer", ["node", "server.js"], env, f"http://{HOST}:{port}/.well-known/openid-configuration", peer_dir
    )
    try:
        server.start()
        basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        check = requests.post(
            f"http://{HOST}:{port}/token",
            data={"grant_type": "client_credentials", "scope": "global"},
            auth=(client_id, secret),
            timeout=10,
        )
        if check.status_code != 200:
            raise RuntimeError(f"peer token check answered {check.status_code}: {check.text[:300]}")
        result = wrk.run(
            "peer_token", "client_credentials.lua", f"http://{HOST}:{port}/token", args.duration, BENCH_BASIC=basic
        )
        result["node"] = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
        result["oidc_provider"] = json.loads(
            (peer_dir / "node_modules" / "oidc-provider" / "package.json").read_text()
        )["version"]
        return result
    finally:
        server.stop()


def measure(
    phase: dict,
    wrk: Wrk,
    deadline: Deadline,
    label: str,
    script: str,
    url: str,
    duration: int,
    live_before: int,
    **env: str,
) -> dict:
    """One wrk run at the phase's store size, kept in phase["runs"][label]."""
    deadline.check(label)
    result = wrk.run(f"{phase.get('prefix', '')}{label}_{phase['size']}", script, url, duration, **env)
    result["live_before"] = live_before
    phase["runs"][label] = result
    return result


def run_service(args, wrk: Wrk, base_env: dict, deadline: Deadline) -> dict:
    """The default store (TinyDB files), every ticket made through the API."""
    data_dir = OUT / "data"
    shutil.rmtree(data_dir, ignore_errors=True)
    env = {**base_env, "TICKETS_DATA_DIR": str(data_dir), "TICKETS_EXCHANGE_FAILURES_PER_MINUTE": "0"}
    client = json.loads(flask_cli(env, "clients", "create", "--name", "bench", "--org", "bench-org"))

    def seed_api(api: Api, live: list[str], missing: int) -> dict:
        new, rate = api.create_many("MULTI_USE_TICKET", missing, args.seed_threads, len(live))
        return {"ids": new, "per_s": rate, "how": "through the API"}

    return run_sizes(args, wrk, deadline, env, client, "service", "", args.sizes, seed_api)


def run_postgres(args, wrk: Wrk, base_env: dict, deadline: Deadline) -> dict:
    """The PostgreSQL store on a throw-away server; stopped (and its folder removed) whatever happens."""
    sys.path.insert(0, str(ROOT))  # tests/postgres.py
    sys.path.insert(0, str(APP_DIR))  # the app's own code, for bench/pg_seed.py
    import pg_seed

    from tests.postgres import TempPostgres, create_database, find_bindir

    bindir = find_bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb)")
    postgres = TempPostgres(bindir)
    try:
        log(f"starting a throw-away PostgreSQL ({bindir}) on {HOST}:{postgres.port}")
        url = create_database(postgres.start())
        version = subprocess.run(
            [os.path.join(bindir, "postgres"), "--version"], capture_output=True, text=True, timeout=30
        ).stdout.strip()
        data_dir = OUT / "pg-data"
        shutil.rmtree(data_dir, ignore_errors=True)
        env = {
            **base_env,
            "TICKETS_DATA_DIR": str(data_dir),
            "TICKETS_DATABASE_URL": url,
            "TICKETS_EXCHANGE_FAILURES_PER_MINUTE": "0",
        }
        client = json.loads(flask_cli(env, "clients", "create", "--name", "bench", "--org", "bench-org"))

        def seed_in_process(api: Api, live: list[str], missing: int) -> dict:
            seeded = pg_seed.seed(url, client["client_id"], "bench-org", missing, len(live), set(live))
            log(
                f"  in-process: built in {seeded['build_s']:.1f} s, COPY in {seeded['copy_s']:.1f} s; "
                f"the store holds {seeded['store_count']:,}"
            )
            return {**seeded, "how": "in-process (TicketService.issue_ticket + COPY)"}

        result = run_sizes(args, wrk, deadline, env, client, "service-pg", "pg_", args.pg_sizes, seed_in_process)
        result["postgres"] = version
        return result
    finally:
        log("stopping PostgreSQL")
        postgres.stop()


def run_sizes(
    args,
    wrk: Wrk,
    deadline: Deadline,
    env: dict,
    client: dict,
    name: str,
    prefix: str,
    store_sizes: list[int],
    seed_multi,
) -> dict:
    """One service (gunicorn, `env`) measured at each size; `seed_multi(api, live, missing)` fills it up."""
    server = gunicorn_server(name, "wsgi:app", env, "/security/health")
    base = server.health_url.rsplit("/", 1)[0]
    # Used single-use tickets stay in the store as records while their tokens live; the CLI
    # drops them between runs (its own consumed-record lifetime set to 0), so each size starts clean.
    purge_env = {**env, "TICKETS_TICKET_TOKEN_TTL": "0"}
    basic = base64.b64encode(f"{client['client_id']}:{client['client_secret']}".encode()).decode()
    sizes: dict[int, dict] = {}
    live: list[str] = []  # live multi-use tickets, in the order they were made
    try:
        server.start()
        api = Api(base, client)
        workers = len(server.worker_pids())
        for size in store_sizes:
            deadline.check(f"{name} size {size}")
            phase: dict = {"size": size, "runs": {}, "prefix": prefix}
            sizes[size] = phase
            missing = size - len(live)
            log(f"{name} size {size}: {len(live)} live tickets; seeding {max(missing, 0)} more")
            seeded = seed_multi(api, live, missing) if missing > 0 else {"ids": [], "per_s": 0.0, "how": "-"}
            new, rate = seeded["ids"], seeded["per_s"]
            live.extend(new)
            if missing < 0:  # the last POST run made more than this size holds: delete the newest
                surplus, live = live[size:], live[:size]
                api.delete_many(surplus, args.seed_threads)
                log(f"  deleted {len(surplus)} tickets to come down to {size}")
            phase["seed"] = {"count": max(missing, 0), "per_s": rate, "how": seeded["how"]}
            log(f"  seeded {len(new)} at {rate:.0f}/s ({seeded['how']})")
            ids_file = write_ids(OUT / f"{prefix}ids_{size}.txt", random.Random(size).sample(live, len(live)))
            common = {"BENCH_TOKEN": api.token, "BENCH_IDS": ids_file}
            at = (phase, wrk, deadline)

            measure(*at, "get", "get_ticket.lua", f"{base}/ticket", args.duration, len(live), **common)
            measure(*at, "put", "put_ticket.lua", f"{base}/ticket", args.duration, len(live), **common)
            multi = measure(
                *at,
                "exchange_multi",
                "exchange.lua",
                f"{base}/oauth/token",
                args.duration,
                len(live),
                BENCH_IDS=ids_file,
                BENCH_MODE="rotate",
            )
            for run in phase["runs"].values():
                run["live_after"] = len(live)
            token = measure(
                *at,
                "token",
                "client_credentials.lua",
                f"{base}/oauth/token",
                args.duration,
                len(live),
                BENCH_BASIC=basic,
            )
            token["live_after"] = len(live)
            phase["rss_mb"] = server.worker_rss_mb()
            log(f"  worker RSS at {size}: {', '.join(f'{mb:.1f}' for mb in phase['rss_mb'])} MB")

            # Single-use: enough fresh tickets for the whole run, each exchanged at most once. The
            # number is a guess from the multi-use rate; a run that ran out is done again with more.
            wanted = int(max(multi["ok_rps"], 100) * args.write_duration * 1.3) + 8 * args.connections
            for attempt in (1, 2):
                wanted = max(50, min(args.max_single, wanted))
                deadline.check("single-use tickets")
                single, rate = api.create_many(
                    "SINGLE_USE_TICKET", wanted, args.seed_threads, len(live) + 10**6 * (size + attempt)
                )
                log(f"  made {wanted} single-use tickets at {rate:.0f}/s")
                one_shot = measure(
                    *at,
                    "exchange_single",
                    "exchange.lua",
                    f"{base}/oauth/token",
                    args.write_duration,
                    len(live) + len(single),
                    BENCH_IDS=write_ids(OUT / f"{prefix}single_{size}.txt", single),
                    BENCH_MODE="walk",
                )
                one_shot["single_prepared"] = wanted
                used = one_shot["requests"] - one_shot["exhausted"]
                one_shot["live_after"] = len(live) + max(0, len(single) - used)
                api.delete_many(single, args.seed_threads)  # used ones answer 404; the rest are deleted
                flask_cli(purge_env, "tickets", "purge")
                if not one_shot["exhausted"] or wanted >= args.max_single:
                    break
                log(f"  {one_shot['exhausted']} requests found no fresh ticket left: again with more")
                wanted = int(one_shot["requests"] * 1.5)

            created_file = OUT / f"{prefix}created_{size}.txt"
            created_file.unlink(missing_ok=True)
            post = measure(
                *at,
                "post",
                "post_ticket.lua",
                f"{base}/ticket",
                args.write_duration,
                len(live),
                BENCH_TOKEN=api.token,
                BENCH_CREATED_OUT=str(created_file),
            )
            created = [line for line in created_file.read_text().split() if line] if created_file.exists() else []
            live.extend(created)  # they count toward the next size's seed
            post["live_after"] = len(live)
        return {"sizes": sizes, "workers": workers}
    finally:
        server.stop()


def run_naive(args) -> list[dict]:
    out = OUT / "naive.json"
    subprocess.run(
        [
            sys.executable,
            str(BENCH / "naive_tinydb.py"),
            "--sizes",
            ",".join(map(str, args.sizes)),
            "--budget",
            str(args.naive_budget),
            "--out",
            str(out),
        ],
        check=True,
        timeout=600,
    )
    return json.loads(out.read_text())


def cpu_busy(seconds: float = 2.0) -> float:
    """The share of all CPUs busy over `seconds` (from /proc/stat), before this bench loads anything."""

    def sample() -> tuple[int, int]:
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


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    revision = "unknown"
    try:  # read-only
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        revision = head + (" with uncommitted changes" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    if APP_DIR != ROOT:
        revision = f"the service in {APP_DIR} (working tree at {revision})"
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
        "revision": revision,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmark the ticket service on 127.0.0.1.")
    parser.add_argument("--sizes", default="100,1000,10000", help="live tickets in the store, ascending")
    parser.add_argument(
        "--pg-sizes", default="1000,10000,100000", help="live tickets in the PostgreSQL store; the first is the base"
    )
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--duration", type=int, default=5, help="seconds of each read/token/PUT/multi-exchange run")
    parser.add_argument(
        "--write-duration",
        type=int,
        default=3,
        help="seconds of the runs that grow the store (POST, single-use exchange)",
    )
    parser.add_argument("--threads", type=int, default=1, help="wrk -t")
    parser.add_argument("--connections", type=int, default=4, help="wrk -c")
    parser.add_argument("--seed-threads", type=int, default=4)
    parser.add_argument("--max-single", type=int, default=5000, help="cap on single-use tickets made per size")
    parser.add_argument("--naive-budget", type=float, default=3.0, help="seconds per naive TinyDB operation and size")
    parser.add_argument("--max-minutes", type=float, default=15.0, help="give up past this")
    parser.add_argument("--skip-peer", action="store_true")
    parser.add_argument("--wait-idle", type=float, default=90, help="seconds to wait for other CPU work to end")
    parser.add_argument("--app-dir", default=str(ROOT), help="measure the service of another checkout (same .venv)")
    args = parser.parse_args()
    global APP_DIR
    APP_DIR = Path(args.app_dir).resolve()
    args.sizes = sorted(int(size) for size in args.sizes.split(","))
    args.pg_sizes = sorted(int(size) for size in args.pg_sizes.split(","))
    # `timeout` (make bench) and kill send SIGTERM: unwind, so that every finally stops what it started.
    signal.signal(signal.SIGTERM, lambda number, frame: sys.exit(128 + number))
    sys.path.insert(0, str(BENCH))
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get update && apt-get install -y wrk (make bench does this)")
    deadline = Deadline(args.max_minutes)
    OUT.mkdir(exist_ok=True)
    for stale in list(OUT.glob("*.log")) + list(OUT.glob("*.txt")):
        stale.unlink()
    wrk = Wrk(args.threads, args.connections)
    base_env = clean_env()
    busy_before = wait_for_quiet(args.wait_idle)
    started = time.monotonic()
    results = {
        "machine": {**machine(), "busy_before": busy_before, "loadavg_start": os.getloadavg()},
        "settings": {
            "wrk": f"-t{args.threads} -c{args.connections}",
            "duration": args.duration,
            "write_duration": args.write_duration,
            "web_concurrency": os.environ.get("WEB_CONCURRENCY") or "unset (one per CPU)",
        },
    }
    log("ceiling: bare Flask under gunicorn.conf.py")
    first_ceiling = run_ceiling(args, wrk, base_env, "ceiling_start")
    if not args.skip_peer:
        log("peer: oidc-provider client-credentials token")
        results["peer"] = run_peer(args, wrk)
    log("naive TinyDB, in-process")
    results["naive"] = run_naive(args)
    results["service"] = run_service(args, wrk, base_env, deadline)
    failed = None
    if not args.skip_postgres:
        log("the same with the PostgreSQL store")
        try:
            results["postgres"] = run_postgres(args, wrk, base_env, deadline)
        except Exception as error:  # keep the TinyDB numbers: the report says what failed
            failed = f"{type(error).__name__}: {error}"
            results["postgres_error"] = failed
            log(f"the PostgreSQL part failed: {failed}")
    log("ceiling again, to see how much other work on the machine moved it")
    last_ceiling = run_ceiling(args, wrk, base_env, "ceiling_end")
    # Ratios use the better of the two: the conservative choice for the targets.
    results["ceiling"] = max(first_ceiling, last_ceiling, key=lambda run: run["rps"])
    results["ceiling_runs"] = [first_ceiling, last_ceiling]
    results["elapsed_s"] = time.monotonic() - started
    results["machine"]["loadavg_end"] = os.getloadavg()
    (OUT / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    import plot  # noqa: E402  (bench/plot.py, matplotlib)
    import report  # noqa: E402

    (BENCH / "results.md").write_text(report.render(results))
    plot.plot(results, BENCH / "p50_latency.png")
    log(f"wrote bench/results.md and bench/p50_latency.png in {results['elapsed_s'] / 60:.1f} min")
    if failed:
        raise SystemExit(f"the PostgreSQL part failed: {failed}")


if __name__ == "__main__":
    main()
