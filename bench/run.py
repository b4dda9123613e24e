"""One benchmark run: raw `docker run --rm`, stock Prefect (process worker) and SwarmSync,
side by side on the same trivial job (`echo`), on this machine. Prints a table and ratios.

    python bench/run.py [--singles 20] [--burst 100] [--skip-stock]

Each system gets its own Prefect server on SQLite (the embedded default) under a temp
folder; nothing of the user's ~/.swarmsync is touched.
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import quote

import docker
import redis

ROOT = Path(__file__).resolve().parent.parent
# This process talks to the stacks it starts, one after another, and never to a server of Prefect's own making:
# without these, a Prefect call made between two stacks (its events worker outlives a stack) started a
# temporary Prefect server in this process, which tried to send Prefect's telemetry out (only loopback here).
os.environ["PREFECT_SERVER_ALLOW_EPHEMERAL_MODE"] = "false"
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
REDIS_PASSWORD_FILE = Path("/etc/swarmsync/redis.pass")  # written by infra/host-setup.sh
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from cpu_split import HZ, PgBackendCpu  # noqa: E402

STARTED: list[subprocess.Popen] = []  # every process group this run started; stopped whatever happens
GRACE_S = 20  # how long a stopped process group gets before it is killed


def spawn(args: list[str], **kwargs) -> subprocess.Popen:
    """Start a process in a session (process group) of its own and remember it for `stop_all`."""
    proc = subprocess.Popen(args, start_new_session=True, **kwargs)
    STARTED.append(proc)
    return proc


def stop(proc: subprocess.Popen | None, grace: float = GRACE_S) -> None:
    """SIGTERM the process's group, SIGKILL the group after `grace` s (a stock worker can take
    longer than 30 s to stop, or hang); never raises."""
    if proc is None:
        return
    for sig, wait_s in ((signal.SIGTERM, grace), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(wait_s)
        except subprocess.TimeoutExpired:
            continue
        if sig == signal.SIGTERM:  # the leader is gone: its children (server, services) still get killed
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        break
    if proc in STARTED:
        STARTED.remove(proc)


def stop_all() -> None:
    while STARTED:
        stop(STARTED[-1])


atexit.register(stop_all)
HEADER = (f"{'system':<18}{'p50 s':>8}{'p95 s':>8}{'jobs/min':>10}{'submit s':>10}{'idle MB':>9}{'peak MB':>9}"
          f"{'lost/failed':>12}{'worker CPU/job':>16}{'server CPU/job':>16}")


def print_row(name: str, r: dict) -> None:
    """One system's row, printed (and flushed) as soon as it is measured; for SwarmSync a second line with
    the server side's other CPU per job (the SwarmSync API; PostgreSQL's backends for Prefect's database),
    which bench/scale.py counts too, and the load average."""
    print(f"{name:<18}{r['p50']:>8.2f}{r['p95']:>8.2f}{r['per_min']:>10.1f}{r.get('submit_s', 0):>10.1f}"
          f"{r.get('idle_mb', 0):>9.0f}{r.get('peak_mb', 0):>9.0f}{r.get('failed', 0):>12}"
          f"{r.get('worker_cpu', 0):>15.3f}s{r.get('server_cpu', 0):>15.3f}s", flush=True)
    if "cpu_api" in r:
        pg = (f", PostgreSQL (Prefect's database, sampled: {r['cpu_pg_backends'] * r['burst']:.0f} new backends, "
              f"{r['cpu_pg_sessions'] * r['burst']:.0f} sessions) {r['cpu_pg']:.3f} s" if "cpu_pg" in r else "")
        print(f"{'':<18}server side per job: Prefect {r['server_cpu']:.3f} s{pg}, SwarmSync API {r['cpu_api']:.3f} s"
              f"; load {open('/proc/loadavg').read().split()[0]}", flush=True)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    k = max(0, min(len(values) - 1, round(p / 100 * (len(values) - 1))))
    return values[k]


def bench_raw_docker(image: str, n: int) -> dict:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run(["docker", "run", "--rm", image, "echo", "hi"], check=True, capture_output=True)
        times.append(time.perf_counter() - t)
    return {"p50": pct(times, 50), "p95": pct(times, 95), "per_min": 60 / statistics.mean(times)}


RAW_PARALLEL = 8  # `xargs -P8`: how many `docker run --rm` at once in the parallel raw row


def bench_raw_docker_parallel(image: str, n: int, at_once: int = RAW_PARALLEL) -> dict:
    """`n` of the same `docker run --rm`, `at_once` at a time (as `xargs -P8` would run them): the
    throughput Docker itself reaches on this machine, the fair floor for a burst's jobs/min.
    p50/p95 are each run's own time while the others run beside it."""
    times: list[float] = []
    lock = threading.Lock()
    left = iter(range(n))

    def one_runner() -> None:
        while True:
            with lock:
                if next(left, None) is None:
                    return
            t = time.perf_counter()
            subprocess.run(["docker", "run", "--rm", image, "echo", "hi"], check=True, capture_output=True)
            with lock:
                times.append(time.perf_counter() - t)

    t0 = time.perf_counter()
    runners = [threading.Thread(target=one_runner) for _ in range(min(at_once, n))]
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join()
    elapsed = time.perf_counter() - t0
    return {"p50": pct(times, 50), "p95": pct(times, 95), "per_min": n / elapsed * 60}


def process_tree(root_pids: list[int], pid_ppid: list[tuple[int, int]]) -> set[int]:
    """The given processes and all their descendants, from (pid, ppid) pairs."""
    children: dict[int, list[int]] = {}
    for pid, ppid in pid_ppid:
        children.setdefault(ppid, []).append(pid)
    seen, stack = set(), list(root_pids)
    while stack:
        pid = stack.pop()
        if pid not in seen:
            seen.add(pid)
            stack.extend(children.get(pid, []))
    return seen


class RssSampler(threading.Thread):
    """Peak summed RSS (MB) of the given process trees while running."""

    def __init__(self, pids_fn):
        super().__init__(daemon=True)
        self.pids_fn, self.peak, self.stop_flag, self.baseline = pids_fn, 0.0, False, None

    @staticmethod
    def tree_rss(root_pids: list[int]) -> tuple[float, int]:
        out = subprocess.run(["ps", "-eo", "pid,ppid,rss,comm"], capture_output=True, text=True).stdout
        rows = [line.split(None, 3) for line in out.splitlines()[1:]]
        rss = {int(pid): int(kb) for pid, _, kb, _ in rows}
        seen = process_tree(root_pids, [(int(pid), int(ppid)) for pid, ppid, _, _ in rows])
        return sum(rss.get(p, 0) for p in seen) / 1024, len(seen)

    def run(self):
        while not self.stop_flag:
            mb, _ = self.tree_rss(self.pids_fn())
            self.peak = max(self.peak, mb)
            time.sleep(0.2)


def fresh_pg_database(admin_url: str) -> str:
    """An empty database on the PostgreSQL server at `admin_url`; returns its URL."""
    import uuid

    import psycopg
    from sqlalchemy.engine import make_url

    u = make_url(admin_url)
    name = f"swarmsync_bench_{uuid.uuid4().hex[:8]}"
    conninfo = f"host={u.host} port={u.port or 5432} user={u.username} password={u.password} dbname={u.database}"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return u.set(database=name).render_as_string(hide_password=False)


def start_server(home: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    proc = spawn([sys.executable, "-m", "prefect", "server", "start", "--port", str(port)],
                 env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    import httpx

    for _ in range(240):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    stop(proc)
    raise RuntimeError("prefect server did not start")


def children(pid: int, pattern: str) -> list[int]:
    """The pids of `pid`'s children whose command line matches `pattern` (pgrep -f)."""
    found = subprocess.run(["pgrep", "-P", str(pid), "-f", pattern], capture_output=True, text=True)
    return [int(p) for p in found.stdout.split()]


def cpu_seconds(root_pids: list[int]) -> float:
    """User+system CPU seconds used so far by these processes and their children (live and reaped)."""
    total = 0.0
    hz = os.sysconf("SC_CLK_TCK")
    out = subprocess.run(["ps", "-eo", "pid,ppid"], capture_output=True, text=True).stdout
    pairs = [(int(a), int(b)) for a, b in (line.split() for line in out.splitlines()[1:])]
    for pid in process_tree(root_pids, pairs):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(x) for x in fields[11:15]) / hz
    return total


WARMUP = 3  # untimed single runs before the timed ones, for every system alike


def measure_runs(create_run, read_state, read_states, singles: int, burst: int, rss_pids, create_many=None,
                 server_pids=lambda: [], more_cpu: dict | None = None) -> dict:
    """Latency of serial single runs (after WARMUP untimed ones: a just-started server is slower for
    its first minute), then throughput, RSS and CPU per job for a burst submitted at once. `more_cpu`:
    name -> a reader of cumulative CPU seconds of more server-side processes (the SwarmSync API, the
    PostgreSQL backends of Prefect's database), each reported per burst job as `cpu_<name>`."""
    more_cpu = more_cpu or {}
    lat = []
    for n in range(WARMUP + singles):
        t = time.perf_counter()
        run_id = create_run()
        while read_state(run_id) not in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            time.sleep(0.05)
        if n >= WARMUP:
            lat.append(time.perf_counter() - t)
    idle_mb, _ = RssSampler.tree_rss(rss_pids())
    cpu_before = cpu_seconds(rss_pids()), cpu_seconds(server_pids())
    more_before = {name: read() for name, read in more_cpu.items()}
    sampler = RssSampler(rss_pids)
    sampler.start()
    t0 = time.perf_counter()
    ids, lock, lost = [], threading.Lock(), [0]

    def submit_one():
        try:
            rid = create_run()
        except Exception:  # noqa: BLE001 - e.g. 503 from a busy server: the job is lost
            with lock:
                lost[0] += 1
            return
        with lock:
            ids.append(rid)

    if create_many:
        ids = create_many(burst)
        lost[0] = burst - len(ids)
    else:
        threads = [threading.Thread(target=submit_one) for _ in range(burst)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    submitted_in = time.perf_counter() - t0
    pending = set(ids)
    failed = lost[0]
    while pending:  # one request per poll for all runs, so the benchmark does not load the server
        for rid, state in read_states(pending).items():
            if state in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
                pending.discard(rid)
                failed += state != "COMPLETED"
        time.sleep(0.5)
    elapsed = time.perf_counter() - t0
    sampler.stop_flag = True
    sampler.join()
    worker_cpu = (cpu_seconds(rss_pids()) - cpu_before[0]) / burst
    server_cpu = (cpu_seconds(server_pids()) - cpu_before[1]) / burst
    more = {f"cpu_{name}": (read() - more_before[name]) / burst for name, read in more_cpu.items()}
    return {**more,"p50": pct(lat, 50), "p95": pct(lat, 95), "per_min": burst / elapsed * 60,
            "idle_mb": idle_mb, "peak_mb": sampler.peak, "failed": failed,
            "worker_cpu": worker_cpu, "server_cpu": server_cpu, "submit_s": submitted_in, "burst": burst}


def states_reader(client):
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    def read_states(ids) -> dict:
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=list(ids))),
                                     limit=len(ids))
        return {str(r.id): r.state.type.value for r in runs}

    return read_states


def sync_client(port: int):
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    ctx = temporary_settings({PREFECT_API_URL: f"http://127.0.0.1:{port}/api"})
    ctx.__enter__()
    return get_client(sync_client=True)


def start_swarmsync(home: Path, port: int) -> subprocess.Popen:
    """`swarmsync up` under `home` on `port`, in its own session; returns once it is up."""
    os.environ.update({"SWARMSYNC_HOME": str(home), "SWARMSYNC_PORT": str(port),  # API and dashboard: free ports
                       "SWARMSYNC_API_PORT": str(free_port()), "SWARMSYNC_DASHBOARD_PORT": str(free_port())})
    os.environ.pop("PREFECT_API_URL", None)
    up = spawn([sys.executable, "-m", "swarmsync.cli.main", "up"], stdout=subprocess.PIPE,
               stderr=subprocess.STDOUT)
    said = []
    for line in iter(up.stdout.readline, b""):
        said.append(line.decode(errors="replace"))
        if b"SwarmSync is up" in line:
            break
    else:
        stop(up)
        raise RuntimeError("swarmsync up failed:\n" + "".join(said[-20:]))
    threading.Thread(target=lambda: [None for _ in iter(up.stdout.readline, b"")], daemon=True).start()
    return up


def bench_swarmsync(image: str, singles: int, burst: int, home: Path, port: int) -> dict:
    up = start_swarmsync(home, port)
    try:
        return _bench_swarmsync(up, image, singles, burst, port)
    finally:
        drain_events()
        stop(up)


def drain_events() -> None:
    """Send this process's queued Prefect events (the submissions' `swarmsync.job.submitted`) to the stack that is
    about to stop, and let the next stack get a new events worker: Prefect's keeps the API URL it was started
    with, and the next stack's events went to this one's closed port (minutes of retries at exit)."""
    worker = sys.modules.get("prefect.events.worker")
    if worker is not None:
        worker.EventsWorker.drain_all(timeout=30, at_exit=False)


def _bench_swarmsync(up: subprocess.Popen, image: str, singles: int, burst: int, port: int) -> dict:
    import swarmsync
    from swarmsync.settings import get_settings

    get_settings.cache_clear()
    client = sync_client(port)

    def create_run():
        return swarmsync.submit(image, ["echo", "hi"]).id

    def read_state(rid):
        return client.read_flow_run(rid).state.type.value

    def create_many(n):
        spec = swarmsync.JobSpec(image=image, command=["echo", "hi"])
        entries = swarmsync.submit_many([spec] * n)
        for entry in entries:
            if entry.error:
                print(f"submission {entry.index} failed: {entry.error}", file=sys.stderr)
        return [str(e.job.id) for e in entries if e.job]

    # this stack's job worker (`swarmsync worker start`), not the pipeline pool's Prefect process worker
    worker_pid = children(up.pid, "cli.main worker start")[0]
    server_pids = children(up.pid, "prefect[_ ]server")  # + services
    # counted as bench/scale.py counts the server host (issue 29): the SwarmSync API, and on PostgreSQL the
    # backends serving Prefect's database (sampled: bench/cpu_split.py)
    api_pids = children(up.pid, "cli.main api")
    more_cpu = {"api": lambda: cpu_seconds(api_pids)}
    pg = None
    if (db_url := os.environ.get("PREFECT_API_DATABASE_CONNECTION_URL", "")).startswith("postgresql"):
        from sqlalchemy.engine import make_url

        u = make_url(db_url)
        pg = PgBackendCpu(f"host={u.host} port={u.port or 5432} user={u.username} password={u.password} "
                          f"dbname={u.database}", [u.database])
        pg.start()
        more_cpu["pg"] = lambda: sum(t for _, t in pg.mark()["seen"].values()) / HZ
        more_cpu["pg_sessions"] = lambda: sum(pg.mark()["sessions"].values())
        more_cpu["pg_backends"] = lambda: len(pg.mark()["seen"])
    try:
        return measure_runs(create_run, read_state, states_reader(client), singles, burst, lambda: [worker_pid],
                            create_many, server_pids=lambda: server_pids, more_cpu=more_cpu)
    finally:
        if pg is not None:
            pg.stop()


def start_stock_worker(client, home: Path, port: int):
    """A `process` pool, the stock job deployment and a stock Prefect worker; returns (deployment id, worker)."""
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.workers.process import ProcessWorker

    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_API_URL": f"http://127.0.0.1:{port}/api"}
    client.create_work_pool(WorkPoolCreate(name="stock", type="process",
                                           base_job_template=ProcessWorker.get_default_base_job_template()))
    flow_id = client.create_flow_from_name("stock-container-job")
    dep_id = client.create_deployment(
        flow_id=flow_id, name="stock", work_pool_name="stock",
        entrypoint="bench/stock_flow.py:stock_container_job", path=str(ROOT),
        pull_steps=[{"prefect.deployments.steps.set_working_directory": {"directory": str(ROOT)}}],
    )
    worker = spawn([sys.executable, "-m", "prefect", "worker", "start", "--pool", "stock",
                    "--type", "process"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    while not any(w.status and w.status.value == "ONLINE" for w in client.read_workers_for_work_pool("stock")):
        time.sleep(0.5)
    return dep_id, worker


def bench_stock(image: str, singles: int, burst: int, home: Path, port: int) -> dict:
    server = start_server(home, port)
    worker = None
    try:
        client = sync_client(port)
        dep_id, worker = start_stock_worker(client, home, port)

        def create_run():
            return client.create_flow_run_from_deployment(
                dep_id, parameters={"image": image, "command": ["echo", "hi"]}).id.__str__()

        def read_state(rid):
            return client.read_flow_run(rid).state.type.value

        return measure_runs(create_run, read_state, states_reader(client), singles, burst, lambda: [worker.pid],
                            server_pids=lambda: [server.pid])
    finally:
        stop(worker)  # the stock worker may hang on SIGTERM: its group is killed after the grace
        stop(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--singles", type=int, default=20)
    parser.add_argument("--burst", type=int, default=100)
    parser.add_argument("--stock-burst", type=int, default=20,
                        help="burst size for stock Prefect (it manages ~13 jobs/min here; 100 takes ~8 min)")
    parser.add_argument("--raw-burst", type=int, default=None,
                        help=f"jobs in the raw `docker run` row run {RAW_PARALLEL} at once (default: --burst)")
    parser.add_argument("--skip-stock", action="store_true")
    parser.add_argument("--follow", action="store_true",
                        help="also time following output: 10,000 lines and 100 MB (follow.py), vs docker logs")
    parser.add_argument("--lateness", action="store_true", help="also start lateness of 20 delayed jobs (lateness.py)")
    parser.add_argument(
        "--postgres", default=os.environ.get("SWARMSYNC_TEST_PG"),
        help="PostgreSQL admin URL (postgresql+psycopg://...): also run SwarmSync with Prefect on PostgreSQL",
    )
    parser.add_argument(
        "--prefect-redis", default=os.environ.get("SWARMSYNC_BENCH_PREFECT_REDIS"),
        help="with --postgres: also run Prefect as separate API + services processes on this Redis database "
        "(it is flushed first; '' skips). Default: database 9 of the Redis infra/host-setup.sh starts, with "
        f"its password ({REDIS_PASSWORD_FILE})",
    )
    args = parser.parse_args()
    if args.postgres and args.prefect_redis is None:
        try:
            password = REDIS_PASSWORD_FILE.read_text().strip()
        except OSError as exc:
            parser.error(f"cannot read {REDIS_PASSWORD_FILE} ({exc.strerror}): run `sudo bash infra/host-setup.sh "
                         "test`, or pass --prefect-redis URL ('' skips the split-server run)")
        args.prefect_redis = f"redis://:{quote(password, safe='')}@127.0.0.1:6379/9"
    from swarmsync.images import ensure_busybox_image

    image = ensure_busybox_image(docker.from_env())
    tmp = Path(tempfile.mkdtemp(prefix="swarmsync-bench-"))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # finally blocks and atexit run on a plain kill too
    results: dict[str, dict] = {}

    def measured(name: str, measure) -> None:
        try:
            results[name] = measure()
        except Exception as exc:  # noqa: BLE001 - one system failing keeps the rows of the others
            print(f"{name:<18}failed: {type(exc).__name__}: {exc}", flush=True)
            return
        print_row(name, results[name])

    print(f"load average at the start: {load_average()}", flush=True)
    print(HEADER, flush=True)
    try:
        measured("raw docker run", lambda: bench_raw_docker(image, max(args.singles, 10)))
        measured(f"raw docker -P{RAW_PARALLEL}", lambda: bench_raw_docker_parallel(image, args.raw_burst or args.burst))
        measured("SwarmSync", lambda: bench_swarmsync(image, args.singles, args.burst, tmp / "swarmsync", 4411))
        if args.postgres:
            pg_url = fresh_pg_database(args.postgres)
            os.environ["PREFECT_API_DATABASE_CONNECTION_URL"] = pg_url.replace("+psycopg", "+asyncpg")
            measured("SwarmSync (PG)", lambda: bench_swarmsync(image, args.singles, args.burst,
                                                               tmp / "swarmsync-pg", 4413))
            if args.prefect_redis:  # the same, with Prefect as separate API and services processes
                os.environ["PREFECT_API_DATABASE_CONNECTION_URL"] = fresh_pg_database(args.postgres).replace(
                    "+psycopg", "+asyncpg")
                redis.Redis.from_url(args.prefect_redis).flushdb()
                os.environ["SWARMSYNC_PREFECT_REDIS_URL"] = args.prefect_redis
                measured("SwarmSync (PG+R)", lambda: bench_swarmsync(image, args.singles, args.burst,
                                                                     tmp / "swarmsync-pg-redis", 4414))
                os.environ.pop("SWARMSYNC_PREFECT_REDIS_URL")
            os.environ.pop("PREFECT_API_DATABASE_CONNECTION_URL")
        if not args.skip_stock:
            measured("stock Prefect", lambda: bench_stock(image, args.singles, args.stock_burst, tmp / "stock", 4412))
        if args.follow:
            from follow import print_follow, run_follow

            print_follow(run_follow(image, tmp / "follow"))
        if args.lateness:
            from lateness import print_lateness, run_lateness

            print_lateness(run_lateness(image, tmp, stock=not args.skip_stock, postgres=args.postgres), 20)
    finally:
        stop_all()
        if os.environ.get("SWARMSYNC_BENCH_KEEP"):
            print(f"logs kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print_ratios(results, args.burst)
    print(f"load average at the end: {load_average()}")


def load_average() -> str:
    """The 1, 5 and 15 minute load averages and the cores: every figure is printed with the machine's load."""
    return f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} cores)"


def print_ratios(results: dict[str, dict], burst: int) -> None:
    raw, ss = results.get("raw docker run"), results.get("SwarmSync")
    if not raw or not ss:
        return
    if "SwarmSync (PG)" in results:
        pg = results["SwarmSync (PG)"]
        print(f"SwarmSync with Prefect on PostgreSQL vs SQLite: throughput {pg['per_min'] / ss['per_min']:.1f}x")
        if "SwarmSync (PG+R)" in results:
            split = results["SwarmSync (PG+R)"]
            print(f"Prefect as API + services processes (Redis) vs one process, both on PostgreSQL: throughput "
                  f"{split['per_min'] / pg['per_min']:.2f}x, p50 {split['p50'] / pg['p50']:.2f}x")
    print(f"\nSwarmSync vs raw docker: p50 {ss['p50'] / raw['p50']:.1f}x, throughput "
          f"{ss['per_min'] / raw['per_min']:.2f}x")
    print(f"SwarmSync p50 / raw serial docker run p50: {ss['p50'] / raw['p50']:.2f}x (target: at most 1.5x)")
    if parallel := results.get(f"raw docker -P{RAW_PARALLEL}"):
        print(f"SwarmSync burst / raw docker run, {RAW_PARALLEL} at once: {ss['per_min'] / parallel['per_min']:.2f}x "
              "(target: at least 0.6x)")
    if "stock Prefect" in results:
        st = results["stock Prefect"]
        print(f"SwarmSync vs stock Prefect: p50 {st['p50'] / ss['p50']:.1f}x faster, throughput "
              f"{ss['per_min'] / st['per_min']:.1f}x, peak RSS {st['peak_mb'] / max(ss['peak_mb'], 1):.1f}x less")
    if ss["peak_mb"]:
        print(f"SwarmSync worker RSS growth under burst: {(ss['peak_mb'] - ss['idle_mb']):.0f} MB "
              f"for up to {burst} jobs")


if __name__ == "__main__":
    main()
