"""Scale across hosts: 1, 2 and 3 worker hosts against one server host (infra/hosts.py), with
one Prefect API process (`single`; with a services process, on PostgreSQL and Redis) and in its
high-availability shape (`ha`: 2 API processes behind HAProxy, and the services process).

    sudo .venv/bin/python bench/scale.py [--jobs 300] [--hosts 1,2,3] [--shapes single,ha] [--limit 20]
                                         [--via core,direct] [--follow count] [--idle 10] [--py-spy DIR]

Worker hosts join `via` Core's one endpoint (a worker token each, behind a firewall: Prefect's calls go
through Core's gateway, output is uploaded to Core) or `direct` (the old shape: each host reaches
Prefect, the database and the store itself); both are measured in the same run, and the ratios of
core to direct (throughput, server CPU per job) are printed at the end.

For each shape the hosts are built once: worker host ss-wK carries the labels nK..n3, so jobs sent
to queue `host:nK` can run on the first K hosts only (ss-w1 has n1, n2, n3; ss-w2 n2, n3; ss-w3 n3).
N trivial jobs (`echo`) are submitted at once through Prefect's API, as a worker host would (with
the server's address and auth string), and followed to the end. Per row:

- throughput: jobs / (last end - first submission), in jobs per minute
- p50 / p95: submission -> Completed, per job
- lost: jobs that did not complete; doubled: jobs whose flow run entered Running more than once
  (both must be 0)
- server CPU per job: user+system CPU of every process of the server host (PostgreSQL, Redis,
  Prefect, HAProxy, the SwarmSync API, sshd) from /proc, during the row, divided by N; then under the
  row the same split by process (bench/cpu_split.py), PostgreSQL's by database (sampled backends), the
  host's idle CPU per second just before the row and its share of the row, and what the bench's own
  follow calls cost (issue 29: why this figure was twice bench/run.py's; docs/benchmarks.md)
- "Prefect ms/job": the Prefect processes alone, what bench/run.py's server column counts

Each row is printed as soon as it is measured; the hosts are always torn down (also on Ctrl-C).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
from cpu_split import PgBackendCpu, classify, cmdline, cpu_by_kind, delta  # noqa: E402

HOSTS = [sys.executable, str(REPO / "infra" / "hosts.py")]
ROOT = Path(os.environ.get("SS_HOSTS_ROOT", "/var/lib/ss-hosts"))
IMAGE = "swarmsync/busybox:local"


def server_pids() -> list[int]:
    return [int(p) for p in subprocess.run(["ip", "netns", "pids", "ss-server"], capture_output=True,
                                           text=True).stdout.split()]


def server_cpu() -> dict[str, float]:
    """CPU seconds so far (user + system, children waited for included) of the server host's processes, per
    kind (bench/cpu_split.py: Prefect API, Prefect services, PostgreSQL, Redis, HAProxy, SwarmSync API, ...)."""
    return cpu_by_kind(server_pids())


def pg_sampler() -> PgBackendCpu:
    """The server host's PostgreSQL backends of Prefect's and SwarmSync's databases (their split of PostgreSQL)."""
    s = json.loads((ROOT / "state.json").read_text())["server"]
    sampler = PgBackendCpu(f"host=10.77.0.2 port=5432 user={s['pg_user']} password={s['pg_password']} "
                           "dbname=postgres", ["prefect", "swarmsync"])
    sampler.start()
    return sampler


FINAL = ["COMPLETED", "FAILED", "CANCELLED", "CRASHED"]


def measure(n: int, hosts: int, tag: str, follow: str = "count", idle_s: float = 10, profile: Path | None = None
            ) -> dict:
    """Submit n jobs to queue n{hosts} (the first `hosts` worker hosts) and follow them to the end.

    follow="count": one count of the row's runs in a final state per second (Prefect's count endpoint),
    every run read once after the server CPU is taken; "every-run": every run of the row read every 2 s
    (what this benchmark did before issue 29: its own reads were in the server's CPU per job)."""
    import anyio
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
        FlowRunFilterTags,
    )
    from prefect.client.schemas.objects import StateType

    import swarmsync
    from swarmsync.connection import prefect_api
    from swarmsync.routing import queue_for
    from swarmsync.spec import JobSpec

    tagged = FlowRunFilter(tags=FlowRunFilterTags(all_=[tag]))
    finished = FlowRunFilter(tags=FlowRunFilterTags(all_=[tag]), state=FlowRunFilterState(
        type=FlowRunFilterStateType(any_=[StateType(s) for s in FINAL])))

    async def runs() -> list:
        async with get_client() as client:
            out, offset = [], 0
            while True:
                page = await client.read_flow_runs(flow_run_filter=tagged, limit=200, offset=offset)
                out += page
                offset += len(page)
                if len(page) < 200:
                    return out

    async def count_done() -> int:
        async with get_client() as client:
            return await client.count_flow_runs(flow_run_filter=finished)

    pg = pg_sampler()
    idle0, pg_idle0, i0 = server_cpu(), pg.mark(), time.time()
    time.sleep(idle_s)  # the server host's background CPU per second, with nothing submitted
    idle = {k: v / (time.time() - i0) for k, v in delta(server_cpu(), idle0).items()}
    pg_idle = PgBackendCpu.between(pg_idle0, pg.mark())
    spies = start_profilers(profile) if profile else []
    cpu0, pg0 = server_cpu(), pg.mark()
    specs = [JobSpec(image=IMAGE, command=f"echo {i}", tags=[tag]) for i in range(n)]
    t0 = time.time()
    made = [s for s in swarmsync.submit_many(specs, queue=queue_for([f"n{hosts}"]), concurrency=8) if s.job]
    ids = {str(s.job.id) for s in made}

    deadline = time.time() + max(600, n * 6)
    with prefect_api():
        while True:
            if follow == "every-run":
                found = anyio.run(runs)
                done = sum(1 for r in found if r.state and r.state.is_final())
            else:
                done = anyio.run(count_done)
            if done >= len(ids) or time.time() > deadline:
                break
            time.sleep(2 if follow == "every-run" else 1)
        cpu, pg1, t1 = delta(server_cpu(), cpu0), pg.mark(), time.time()
        stop_profilers(spies)
        found = anyio.run(runs)  # once, after the CPU was taken
        # what one follow call costs the server host, the row's runs all final: 10 of each, less the idle rate
        per_call = {}
        for name, call in (("every-run", runs), ("count", count_done)):
            c0, c_t0 = server_cpu(), time.time()
            for _ in range(10):
                anyio.run(call)
            per_call[name] = max(0.0, (sum(delta(server_cpu(), c0).values())
                                       - sum(idle.values()) * (time.time() - c_t0)) / 10)
        calls = (t1 - t0) / (2 if follow == "every-run" else 1)  # about that many follow calls in the row
    pg.stop()
    pg_row = PgBackendCpu.between(pg0, pg1)
    cpu["PostgreSQL"] = cpu.get("PostgreSQL", 0.0) - pg_row["own"]  # the sampler's own backend is the bench's
    done = [r for r in found if r.state and r.state.is_final()]
    completed = [r for r in done if r.state.is_completed()]
    latencies = sorted((r.state.timestamp - r.created).total_seconds() for r in completed)
    end = max((r.state.timestamp.timestamp() for r in completed), default=time.time())
    window = t1 - t0
    total = sum(cpu.values())
    return {
        "jobs": n, "hosts": hosts, "follow": follow,
        "throughput_per_min": round(len(completed) / max(end - t0, 1e-9) * 60, 1),
        "p50_s": round(statistics.median(latencies), 1) if latencies else None,
        "p95_s": round(latencies[max(0, int(len(latencies) * 0.95) - 1)], 1) if latencies else None,
        "lost": n - len(completed),
        "doubled": sum(1 for r in found if (r.run_count or 0) > 1) + max(0, len(found) - n),
        "server_cpu_ms_per_job": round(total / n * 1000),
        "prefect_cpu_ms_per_job": round(sum(v for k, v in cpu.items() if k.startswith("Prefect")) / n * 1000),
        "split_ms_per_job": {k: round(v / n * 1000) for k, v in sorted(cpu.items(), key=lambda kv: -kv[1])},
        "pg_db_ms_per_job": {db: round(v / n * 1000) for db, v in pg_row["cpu"].items()},
        "pg_backends_new": pg_row["new_backends"], "pg_sessions": pg_row["sessions"],
        "window_s": round(window, 1),
        "idle_ms_per_s": {k: round(v * 1000, 1) for k, v in sorted(idle.items(), key=lambda kv: -kv[1])},
        "idle_ms_per_job": round(sum(idle.values()) * window / n * 1000),
        "pg_idle_db_ms_per_s": {db: round(v / idle_s * 1000, 1) for db, v in pg_idle["cpu"].items()},
        "follow_ms_per_call": {k: round(v * 1000, 1) for k, v in per_call.items()},
        "follow_ms_per_job": round(per_call[follow] * calls / n * 1000),
        "load": Path("/proc/loadavg").read_text().split()[0],
    }


def start_profilers(folder: Path) -> list[subprocess.Popen]:
    """py-spy (raw collapsed stacks, 50 Hz, non-blocking) on the SwarmSync API and every Prefect process of
    the server host, for the row; py-spy is outside the host's namespace, so its CPU is not counted."""
    folder.mkdir(parents=True, exist_ok=True)
    spy = Path(sys.executable).with_name("py-spy")
    procs = []
    for pid in server_pids():
        kind = classify(cmdline(pid))
        if kind.startswith(("Prefect", "SwarmSync")):
            out = folder / f"{kind.replace(' ', '-').replace('+', '-')}-{pid}.txt"
            procs.append(subprocess.Popen([str(spy), "record", "--pid", str(pid), "--rate", "50", "--format", "raw",
                                           "--nonblocking", "-o", str(out)], stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL))
    return procs


def stop_profilers(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        proc.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
    for proc in procs:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def hosts_cmd(*args: str) -> None:
    subprocess.run([*HOSTS, *args], check=True, env={k: v for k, v in os.environ.items()
                                                      if not k.startswith(("SWARMSYNC_", "PREFECT_"))})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--hosts", default="1,2,3")
    parser.add_argument("--shapes", default="single,ha")
    parser.add_argument("--limit", type=int, default=20, help="jobs at once per worker host")
    parser.add_argument("--via", default="core,direct", help="how worker hosts reach the server: core, direct")
    parser.add_argument("--json", type=Path, help="also append each row to this file (JSON lines)")
    parser.add_argument("--follow", default="count",
                        help="how the bench sees the row's end: count (final runs counted each second), every-run "
                        "(every run read every 2 s, as before issue 29); both: count,every-run (each a row)")
    parser.add_argument("--idle", type=float, default=10, help="seconds of idle server CPU measured before each row")
    parser.add_argument("--py-spy", type=Path, help="also one profiled row at the end (py-spy on the SwarmSync API "
                        "and the Prefect processes of the server host, raw stacks into this folder; not counted)")
    parser.add_argument("--no-header", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    counts = [int(x) for x in args.hosts.split(",")]
    labels = ";".join(f"ss-w{k}={','.join(f'n{j}' for j in range(k, 4))}" for k in (1, 2, 3))
    header = f"{'shape':<8} {'via':<7} {'hosts':>5} {'jobs':>5} {'jobs/min':>9} {'p50 s':>7} {'p95 s':>7} " \
             f"{'lost':>5} {'doubled':>7} {'server CPU ms/job':>18} {'Prefect ms/job':>15} {'follow':>9} {'load':>5}"
    if not args.no_header:
        print(header, flush=True)
    shapes, vias = args.shapes.split(","), args.via.split(",")
    if len(shapes) > 1 or len(vias) > 1:  # each build in a process of its own: Prefect keeps the first
        # server's settings (address, auth string) for the life of a process, and each build has new ones
        rows = args.json or Path(f"/tmp/bench-scale-{uuid.uuid4().hex[:8]}.jsonl")
        for shape in shapes:
            for via in vias:
                subprocess.run([sys.executable, __file__, "--jobs", str(args.jobs), "--hosts", args.hosts,
                                "--shapes", shape, "--via", via, "--limit", str(args.limit), "--no-header",
                                "--json", str(rows), "--follow", args.follow, "--idle", str(args.idle),
                                *(["--py-spy", str(args.py_spy / f"{shape}-{via}")] if args.py_spy else [])],
                               check=False)
        print_ratios(rows)
        return
    shape, via = shapes[0], vias[0]
    ha = "2" if shape == "ha" else "1"
    try:
        hosts_cmd("up", "--workers", str(max(counts)), "--ha", ha, "--labels", labels, "--limit", str(args.limit),
                  "--worker-mode", via)
        env = json.loads(subprocess.run([*HOSTS, "env", "--json"], capture_output=True, text=True,
                                        check=True).stdout)
        os.environ.update(env)
        from swarmsync.settings import get_settings

        get_settings.cache_clear()
        for k in counts:
            for follow in args.follow.split(","):
                row = measure(args.jobs, k, f"bench-scale-{uuid.uuid4().hex[:8]}", follow, args.idle)
                print_row(shape, via, k, row)
                if args.json:
                    with open(args.json, "a") as out:
                        out.write(json.dumps({"shape": shape, "via": via, **row}) + "\n")
        if args.py_spy:
            row = measure(args.jobs, max(counts), f"bench-scale-{uuid.uuid4().hex[:8]}", "count", args.idle,
                          profile=args.py_spy)
            print(f"(profiled row, py-spy stacks in {args.py_spy}; py-spy's sampling slows the machine)")
            print_row(shape, via, max(counts), row)
    finally:
        subprocess.run([*HOSTS, "down"], capture_output=True)


def print_row(shape: str, via: str, hosts: int, row: dict) -> None:
    """The row, then its server CPU per job by process, the idle rate and the PostgreSQL split by database."""
    cells = [row[key] if row[key] is not None else "-" for key in (
        "jobs", "throughput_per_min", "p50_s", "p95_s", "lost", "doubled", "server_cpu_ms_per_job",
        "prefect_cpu_ms_per_job", "follow", "load")]
    print(f"{shape:<8} {via:<7} {hosts:>5} {cells[0]:>5} {cells[1]:>9} {cells[2]:>7} {cells[3]:>7} {cells[4]:>5} "
          f"{cells[5]:>7} {cells[6]:>18} {cells[7]:>15} {cells[8]:>9} {cells[9]:>5}", flush=True)
    split = ", ".join(f"{k} {v}" for k, v in row["split_ms_per_job"].items() if v)
    dbs = ", ".join(f"{db} {v}" for db, v in sorted(row["pg_db_ms_per_job"].items()))
    idle = ", ".join(f"{k} {v}" for k, v in row["idle_ms_per_s"].items() if v)
    print(f"    ms/job by process: {split}\n    PostgreSQL by database (sampled: {row['pg_backends_new']} new "
          f"backends, {row['pg_sessions']} sessions): {dbs}\n    idle before the row, ms/s: {idle}; over the "
          f"{row['window_s']} s row that is {row['idle_ms_per_job']} ms/job\n    the bench's own follow calls: "
          f"{row['follow_ms_per_job']} ms/job (server CPU per call, measured after the row: "
          + ", ".join(f"{k} {v} ms" for k, v in row["follow_ms_per_call"].items()) + ")", flush=True)


def print_ratios(rows: Path) -> None:
    """Core's endpoint against the direct shape, per shape and host count: throughput and server CPU."""
    if not rows.exists():
        return
    measured = [r for r in (json.loads(line) for line in rows.read_text().splitlines() if line.strip())
                if r.get("follow", "count") == "count"]
    by = {(r["shape"], r.get("via", "direct"), r["hosts"]): r for r in measured}
    print("\nthrough Core's endpoint vs direct (same run):")
    for (shape, via, hosts), row in sorted(by.items()):
        direct = by.get((shape, "direct", hosts))
        if via != "core" or not direct or not direct["throughput_per_min"]:
            continue
        ratio = row["throughput_per_min"] / direct["throughput_per_min"]
        cpu = row["server_cpu_ms_per_job"] / max(direct["server_cpu_ms_per_job"], 1)
        print(f"  {shape:<8} {hosts} host(s): jobs/min x{ratio:.2f} ({1 - ratio:+.0%} cost), "
              f"server CPU/job x{cpu:.2f}")


if __name__ == "__main__":
    main()
