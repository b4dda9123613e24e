"""Where one job's time goes between submit and Completed, step by step, beside raw Docker.

    python bench/timeline.py [--jobs 10]

SwarmSync: a `swarmsync up` stack as `bench/run.py` starts it (temp home, Prefect on SQLite), 3
untimed warm-up jobs, then `--jobs` `echo hi` jobs one after another. Each job's milestones come
from Prefect (its flow run's and task run's state timestamps, its log lines' and artifacts'
timestamps: the server stamps them as requests arrive) and from the worker (`bench/trace/`: a
`sitecustomize` that wraps the worker's Docker calls, state proposals and archive steps and
appends their start and end times to a file; SwarmSync's code is not changed). Server, worker and
this script share one clock. Printed: each milestone's median time after the submit call began,
and each step's median duration.

Raw Docker, broken down the same way with the Docker SDK: create, attach, start, wait, remove of
the same container (`docker run --rm` does the same calls), and `docker run --rm` itself.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import docker

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import ROOT, free_port, load_average, start_swarmsync, stop, stop_all, sync_client  # noqa: E402

TRACE_DIR = Path(__file__).resolve().parent / "trace"
FINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")


def raw_docker(image: str, n: int, options: dict | None = None) -> dict[str, list[float]]:
    """Each Docker call of a `docker run --rm` of `echo hi`, timed through the SDK, with `options` (a
    host config: SwarmSync's, see `swarmsync_options`); and, with none, the CLI's whole run."""
    client = docker.from_env()
    options = dict(options or {})
    network = options.pop("network", None)
    host_config = client.api.create_host_config(**options) if options else None
    steps: dict[str, list[float]] = defaultdict(list)
    for _ in range(n + 2):
        marks = [time.perf_counter()]
        container = client.api.create_container(image, ["echo", "hi"], host_config=host_config,
                                                networking_config=client.api.create_networking_config(
                                                    {network: client.api.create_endpoint_config()})
                                                if network else None)
        marks.append(time.perf_counter())
        sock = client.api.attach(container["Id"], stdout=True, stderr=True, stream=True, logs=False)
        marks.append(time.perf_counter())
        client.api.start(container["Id"])
        marks.append(time.perf_counter())
        client.api.wait(container["Id"])
        marks.append(time.perf_counter())
        b"".join(sock)
        marks.append(time.perf_counter())
        client.api.remove_container(container["Id"], force=True)
        marks.append(time.perf_counter())
        for name, a, b in zip(("create", "attach", "start", "wait (container runs)", "output drained", "remove"),
                              marks[:-1], marks[1:], strict=True):
            steps[name].append(b - a)
        steps["total (SDK)"].append(marks[-1] - marks[0])
        if host_config is not None or network:
            continue
        t = time.perf_counter()
        subprocess.run(["docker", "run", "--rm", image, "echo", "hi"], check=True, capture_output=True)
        steps["docker run --rm (CLI)"].append(time.perf_counter() - t)
    return {name: values[2:] for name, values in steps.items()}  # the first two: warm-up


def swarmsync_options() -> dict:
    """The host config every SwarmSync job container gets under the default policy (`hardened`: init,
    dropped capabilities, no-new-privileges) and its network (`swarmsync-isolated`, a bridge with
    inter-container traffic off), as `create_host_config` keywords plus `network`."""
    from swarmsync.docker_runner import hardened, isolated_network
    from swarmsync.policy import HostPolicy

    options = {k: v for k, v in hardened(HostPolicy()).items() if k not in ("detach", "stdin_open", "tty")}
    return {**options, "network_mode": ISOLATED, "network": isolated_network(docker.from_env())}


ISOLATED = "swarmsync-isolated"


def swarmsync_jobs(image: str, n: int, home: Path) -> list[dict]:
    """`n` serial jobs on a traced stack; each job's milestones as seconds after its submit began."""
    trace = home / "trace.jsonl"
    home.mkdir(parents=True)
    os.environ["SWARMSYNC_TRACE_FILE"] = str(trace)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TRACE_DIR), str(ROOT),
                                                             os.environ.get("PYTHONPATH")]))
    up = start_swarmsync(home / "stack", free_port())
    try:
        import swarmsync
        from swarmsync.settings import get_settings

        get_settings.cache_clear()
        client = sync_client(int(os.environ["SWARMSYNC_PORT"]))
        runs = []
        for i in range(3 + n):
            t0 = time.time()
            job_id = swarmsync.submit(image, ["echo", "hi"]).id
            t1 = time.time()
            while client.read_flow_run(job_id).state.type.value not in FINAL:
                time.sleep(0.01)
            seen = time.time()
            if i >= 3:
                runs.append({"id": job_id, "t0": t0, "submitted": t1, "seen": seen})
        time.sleep(2)  # the last run's artifacts (created after its final state)
        traced = [json.loads(line) for line in trace.read_text().splitlines()]
        return [_milestones(client, run, traced, runs[k + 1]["t0"] if k + 1 < len(runs) else float("inf"))
                for k, run in enumerate(runs)]
    finally:
        stop(up)


def _milestones(client, run: dict, traced: list[dict], next_t0: float) -> dict:
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, LogFilter, LogFilterFlowRunId

    t0 = run["t0"]
    out: dict[str, float] = {"submit call returned": run["submitted"] - t0, "client saw Completed": run["seen"] - t0}
    for state in client.read_flow_run_states(run["id"]):
        out[f"flow run {state.name}"] = state.timestamp.timestamp() - t0
    for task_run in client.read_task_runs():
        if str(task_run.flow_run_id) == str(run["id"]):
            for state in client.read_task_run_states(task_run.id):
                out[f"task run {state.name}"] = state.timestamp.timestamp() - t0
    logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run["id"]])))
    for log in sorted(logs, key=lambda x: x.timestamp):
        key = f"log: {log.message.split()[0][:24]}"
        out.setdefault(key, log.timestamp.timestamp() - t0)
    for artifact in client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[run["id"]]))):
        out[f"artifact {artifact.type} created"] = artifact.created.timestamp() - t0
    seen: dict[str, int] = defaultdict(int)
    for row in sorted(traced, key=lambda r: r["t0"]):
        if t0 <= row["t0"] < next_t0:
            seen[row["what"]] += 1
            name = row["what"] if seen[row["what"]] == 1 else f"{row['what']} #{seen[row['what']]}"
            out[f"{name} begins"] = row["t0"] - t0
            out[f"{name} ends"] = row["t1"] - t0
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=10)
    parser.add_argument("--json", help="write every job's milestones to this file")
    args = parser.parse_args()
    from swarmsync.images import ensure_busybox_image

    image = ensure_busybox_image(docker.from_env())
    print(f"load average at the start: {load_average()}", flush=True)
    for title, options in (("", None), (" with SwarmSync's container options (isolated network, init, caps)",
                                         swarmsync_options())):
        raw = raw_docker(image, args.jobs, options)
        print(f"\nraw Docker{title} ({args.jobs} runs, medians):")
        for name, values in raw.items():
            print(f"  {name:<28}{statistics.median(values) * 1000:8.0f} ms")
    tmp = Path(tempfile.mkdtemp(prefix="swarmsync-timeline-"))
    try:
        jobs = swarmsync_jobs(image, args.jobs, tmp / "swarmsync")
    finally:
        stop_all()
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(jobs, indent=1))
    keys = {k for job in jobs for k in job}
    medians = {k: statistics.median([job[k] for job in jobs if k in job]) for k in keys}
    counts = {k: sum(k in job for job in jobs) for k in keys}
    print(f"\nSwarmSync, one `echo hi` job ({len(jobs)} serial jobs, median ms after the submit call began; "
          "n = jobs that had it):")
    for k in sorted(keys, key=lambda k: medians[k]):
        print(f"  {medians[k] * 1000:8.0f}  {k}" + (f"  (n={counts[k]})" if counts[k] != len(jobs) else ""))
    print(f"\nload average at the end: {load_average()}")


if __name__ == "__main__":
    main()
