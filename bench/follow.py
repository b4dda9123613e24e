"""Following output: how soon after a job ends its output is printed by `submit --wait` (the
Python API's `follow_logs`, which the CLI uses), against raw `docker run` + `docker logs`.

    python bench/follow.py            # (also: python bench/run.py --follow)

Two jobs in the local busybox image: 10,000 short lines (`seq 1 10000`), and 100 MB of
100-byte lines (the run log keeps the first SWARMSYNC_LOG_CAP_BYTES, 1 MB, then a marker;
the archive keeps all of it). For SwarmSync: "after end" is the time from the flow run's end
until every line was printed and the follower returned (when `submit --wait` exits), and
"requests" the log reads the follower made (plus one state read per 0.5 s poll). For raw Docker:
the `docker run` time and then the `docker logs` time. Its own stack on a free port and a
fresh home (Prefect on SQLite, as `swarmsync up` by default).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import docker

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from run import free_port, start_swarmsync, stop  # noqa: E402 - bench/run.py helpers

JOBS = {
    "10,000 lines": "seq 1 10000",
    "100 MB": "yes 012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
              "01234567 | head -c 100000000",
}


def raw_docker(image: str, command: str) -> dict:
    name = f"swarmsync-bench-follow-{uuid.uuid4().hex[:8]}"
    t0 = time.perf_counter()
    subprocess.run(["docker", "run", "--name", name, image, "sh", "-c", command], check=True,
                   stdout=subprocess.DEVNULL)
    ran = time.perf_counter() - t0
    t1 = time.perf_counter()
    out = subprocess.run(["docker", "logs", name], check=True, capture_output=True).stdout
    logs = time.perf_counter() - t1
    subprocess.run(["docker", "rm", "-f", name], capture_output=True)
    return {"run_s": ran, "print_s": logs, "bytes": len(out)}


def swarmsync_follow(image: str, command: str) -> dict:
    import swarmsync
    from swarmsync.log_follow import LogFollower

    calls = {"n": 0}
    original = LogFollower.read

    def counted(self):
        calls["n"] += 1
        return original(self)

    LogFollower.read = counted
    try:
        job = swarmsync.submit(image, command)
        t0 = time.perf_counter()
        printed = 0
        for _ts, name, message in job.follow_logs():
            if name.startswith("prefect.flow_runs.std") or name.endswith("marker"):
                printed += len(message) + 1
        total = time.perf_counter() - t0
        done = datetime.now(UTC)  # everything printed, the follower returned (`submit --wait` would exit)
    finally:
        LogFollower.read = original
    run = job.flow_run()
    after_end = (done - run.end_time).total_seconds() if run.end_time else float("nan")
    return {"after_end_s": after_end, "total_s": total, "bytes": printed, "requests": calls["n"],
            "state": run.state.name}


def run_follow(image: str, home: Path) -> dict:
    results = {}
    for what, command in JOBS.items():
        results[f"raw docker, {what}"] = raw_docker(image, command)
    up = start_swarmsync(home, free_port())
    try:
        from swarmsync.settings import get_settings

        get_settings.cache_clear()
        swarmsync_follow(image, "echo warm-up")
        for what, command in JOBS.items():
            results[f"SwarmSync, {what}"] = swarmsync_follow(image, command)
    finally:
        stop(up)
    return results


def print_follow(results: dict) -> None:
    print(f"\n{'following output':<28}{'job/run s':>10}{'print s':>9}{'after end s':>12}{'printed':>12}{'requests':>9}")
    for name, r in results.items():
        if "after_end_s" in r:
            print(f"{name:<28}{r['total_s']:>10.2f}{'':>9}{r['after_end_s']:>12.2f}{r['bytes']:>12,}"
                  f"{r['requests']:>9}", flush=True)
        else:
            print(f"{name:<28}{r['run_s']:>10.2f}{r['print_s']:>9.2f}{'':>12}{r['bytes']:>12,}{'':>9}", flush=True)


def main() -> None:
    from run import stop_all

    from swarmsync.images import ensure_busybox_image

    image = ensure_busybox_image(docker.from_env())
    try:
        print_follow(run_follow(image, Path(tempfile.mkdtemp(prefix="swarmsync-bench-follow-")) / "home"))
    finally:
        stop_all()


if __name__ == "__main__":
    main()
