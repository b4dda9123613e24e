"""Scale across hosts: 1, 2 and 3 worker hosts against one server host (infra/hosts.py), with
Prefect as one process and in its high-availability shape (2 API processes behind HAProxy).

    sudo .venv/bin/python bench/scale.py [--jobs 300] [--hosts 1,2,3] [--shapes single,ha] [--limit 20]
                                         [--via core,direct]

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
  Prefect, HAProxy, the SwarmSync API, sshd) from /proc, during the row, divided by N

Each row is printed as soon as it is measured; the hosts are always torn down (also on Ctrl-C).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HOSTS = [sys.executable, str(REPO / "infra" / "hosts.py")]
ROOT = Path(os.environ.get("SS_HOSTS_ROOT", "/var/lib/ss-hosts"))
IMAGE = "swarmsync/busybox:local"


def server_cpu_seconds() -> float:
    """CPU time (user + system, children waited for included) of the server host's processes."""
    pids = subprocess.run(["ip", "netns", "pids", "ss-server"], capture_output=True, text=True).stdout.split()
    ticks = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        ticks += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def measure(n: int, hosts: int, tag: str) -> dict:
    """Submit n jobs to queue n{hosts} (the first `hosts` worker hosts) and follow them to the end."""
    import anyio
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags

    import swarmsync
    from swarmsync.connection import prefect_api
    from swarmsync.routing import queue_for
    from swarmsync.spec import JobSpec

    cpu0 = server_cpu_seconds()
    specs = [JobSpec(image=IMAGE, command=f"echo {i}", tags=[tag]) for i in range(n)]
    t0 = time.time()
    made = [s for s in swarmsync.submit_many(specs, queue=queue_for([f"n{hosts}"]), concurrency=8) if s.job]
    ids = {str(s.job.id) for s in made}

    async def runs() -> list:
        async with get_client() as client:
            out, offset = [], 0
            while True:
                page = await client.read_flow_runs(
                    flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[tag])), limit=200, offset=offset)
                out += page
                offset += len(page)
                if len(page) < 200:
                    return out

    deadline = time.time() + max(600, n * 6)
    with prefect_api():
        while True:
            found = anyio.run(runs)
            done = [r for r in found if r.state and r.state.is_final()]
            if len(done) >= len(ids) or time.time() > deadline:
                break
            time.sleep(2)
    cpu = server_cpu_seconds() - cpu0
    completed = [r for r in done if r.state.is_completed()]
    latencies = sorted((r.state.timestamp - r.created).total_seconds() for r in completed)
    end = max((r.state.timestamp.timestamp() for r in completed), default=time.time())
    return {
        "jobs": n, "hosts": hosts,
        "throughput_per_min": round(len(completed) / max(end - t0, 1e-9) * 60, 1),
        "p50_s": round(statistics.median(latencies), 1) if latencies else None,
        "p95_s": round(latencies[max(0, int(len(latencies) * 0.95) - 1)], 1) if latencies else None,
        "lost": n - len(completed),
        "doubled": sum(1 for r in found if (r.run_count or 0) > 1) + max(0, len(found) - n),
        "server_cpu_ms_per_job": round(cpu / n * 1000),
    }


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
    parser.add_argument("--no-header", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    counts = [int(x) for x in args.hosts.split(",")]
    labels = ";".join(f"ss-w{k}={','.join(f'n{j}' for j in range(k, 4))}" for k in (1, 2, 3))
    header = f"{'shape':<8} {'via':<7} {'hosts':>5} {'jobs':>5} {'jobs/min':>9} {'p50 s':>7} {'p95 s':>7} " \
             f"{'lost':>5} {'doubled':>7} {'server CPU ms/job':>18}"
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
                                "--json", str(rows)], check=False)
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
            row = measure(args.jobs, k, f"bench-scale-{uuid.uuid4().hex[:8]}")
            cells = [row[key] if row[key] is not None else "-" for key in (
                "jobs", "throughput_per_min", "p50_s", "p95_s", "lost", "doubled", "server_cpu_ms_per_job")]
            print(f"{shape:<8} {via:<7} {k:>5} {cells[0]:>5} {cells[1]:>9} {cells[2]:>7} {cells[3]:>7} {cells[4]:>5} "
                  f"{cells[5]:>7} {cells[6]:>18}", flush=True)
            if args.json:
                with open(args.json, "a") as out:
                    out.write(json.dumps({"shape": shape, "via": via, **row}) + "\n")
    finally:
        subprocess.run([*HOSTS, "down"], capture_output=True)


def print_ratios(rows: Path) -> None:
    """Core's endpoint against the direct shape, per shape and host count: throughput and server CPU."""
    if not rows.exists():
        return
    measured = [json.loads(line) for line in rows.read_text().splitlines() if line.strip()]
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
