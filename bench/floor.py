"""Prefect's own floor per job: what a Prefect server spends on one flow run when a client does
nothing but what every SwarmSync job must (issue 29: "each job stays one real Prefect flow run").

    python bench/floor.py [--runs 100] [--threads 4] [--postgres URL] [--swarmsync]

A stock `prefect server start` (SQLite under a temp PREFECT_HOME; `--postgres`: a fresh database on
that PostgreSQL server) and, from this process, `--runs` flow runs made `--threads` at a time, in
two shapes, each measured as the server's user+system CPU over the runs / runs:

- **bare run**: created from a deployment on a `process` pool, then Pending, Running and Completed
  proposed through Prefect's orchestration rules: the least a job that Prefect's UI, CLI and API
  see whole can be;
- **as a SwarmSync job**: the same plus what a SwarmSync job also writes (one task run with its
  Pending/Running/Completed states, one batch of 8 log lines, 1 artifact: `docs/benchmarks.md`,
  "Rows per job").

The server's idle CPU (its background services) over 10 s is printed too: a burst that takes
longer pays more of it per job.

The worker's side of the same floor, in this process: the client CPU of everything but the run's creation
(what a worker must send for a job: the states, and as a SwarmSync job the task run, logs and artifacts;
each thread's own CPU clock around it), and the Docker SDK's CPU for one container as `docker run --rm`
makes it (create, attach, start, wait, remove: docker-py, up to 30 containers one after another): together
the least CPU a worker spends on a job.

Prefect's own flow engine per run, in this process (`engine_cpu`): runs made from the deployment, then each
claimed and run by `run_flow_async` 4 at a time on one event loop, as SwarmSync's worker runs them: a flow that
logs two lines and makes one artifact, with one task that prints one line (a SwarmSync job's flow without the
container, the archive, or SwarmSync's changes to the engine). This process's CPU per run (every thread) plus one
container's docker-py CPU is the least a worker that runs each job as a real Prefect flow run can spend.

`--swarmsync`: also `bench/run.py`'s SwarmSync row (a burst of `--runs` real jobs in containers on its own
stack), so the floors and SwarmSync stand side by side in one run, with the ratio of SwarmSync's server CPU
per job to each server floor and of its worker CPU per job to the worker floor.
"""

from __future__ import annotations

import argparse
import contextvars
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "bench"), str(ROOT)]

import run as bench  # noqa: E402 - bench/run.py: spawn, stop, start_server, cpu_seconds, fresh_pg_database

IDLE_SECONDS = 10


def _client(port: int):
    from prefect.client.orchestration import SyncPrefectClient

    return SyncPrefectClient(f"http://127.0.0.1:{port}/api")


def _deployment(port: int) -> UUID:
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.workers.process import ProcessWorker

    with _client(port) as client:
        client.create_work_pool(WorkPoolCreate(name="floor", type="process",
                                               base_job_template=ProcessWorker.get_default_base_job_template()))
        flow_id = client.create_flow_from_name("floor-job")
        return client.create_deployment(flow_id=flow_id, name="floor", work_pool_name="floor",
                                        entrypoint="floor.py:job", path=str(ROOT))


_WORKER_SIDE: list[float] = []  # client CPU (thread clock) of each run's part after its creation


def _one_run(client, deployment_id: UUID, as_job: bool) -> None:
    from prefect.client.schemas.actions import ArtifactCreate, LogCreate
    from prefect.client.schemas.objects import TaskRun
    from prefect.states import Completed, Pending, Running

    run = client.create_flow_run_from_deployment(deployment_id, parameters={})
    started = time.thread_time()
    for state in (Pending(), Running()):
        client.set_flow_run_state(run.id, state)
    if as_job:
        task: TaskRun = client.create_task_run(task=_task(), flow_run_id=run.id, dynamic_key="0",
                                               state=Pending())
        client.set_task_run_state(task.id, Running())
        now = datetime.now(UTC)
        client.create_logs([LogCreate(name="swarmsync.job", level=20, message=f"line {i}", timestamp=now,
                                      flow_run_id=run.id) for i in range(8)])
        client.set_task_run_state(task.id, Completed())
        # SwarmSync's one artifact per job (two, keyed, before session 20): its summary, no key
        client.create_artifact(ArtifactCreate(type="markdown", data="# summary", flow_run_id=run.id))
    client.set_flow_run_state(run.id, Completed())
    _WORKER_SIDE.append(time.thread_time() - started)


def docker_sdk_cpu(runs: int) -> float:
    """docker-py's CPU (this process) for one `echo hi` container, as `docker run --rm` makes it: create,
    attach, start, wait, remove; median of `runs` one after another."""
    import docker

    image = os.environ.get("SWARMSYNC_BENCH_IMAGE", "swarmsync/busybox:local")
    client = docker.from_env()
    samples = []
    for _ in range(runs + 2):
        started = time.process_time()
        container = client.containers.create(image, ["echo", "hi"])
        socket = container.attach_socket(params={"stdout": 1, "stderr": 1, "stream": 1})
        container.start()
        container.wait()
        socket.close()
        container.remove()
        samples.append(time.process_time() - started)
    return statistics.median(samples[2:])  # the first two: imports, connection


def engine_cpu(server_pid: int, deployment_id: UUID, runs: int, concurrency: int) -> tuple[float, float]:
    """Prefect's own flow engine for a job-shaped flow, in this process: CPU per run of this process (every
    thread: the engine, its log and event services) and of the server. Runs are made from the deployment first
    (not counted: a worker does not create them), then each is claimed (Pending) and run by `run_flow_async`,
    `concurrency` at a time on one event loop sharing one client, as SwarmSync's worker runs them. The flow logs
    two lines, prints one from its one task, and makes one artifact: what a SwarmSync job's flow does, with no
    container, no archive and none of SwarmSync's changes to Prefect's engine."""
    import anyio
    from prefect import flow, get_run_logger, task
    from prefect.artifacts import acreate_markdown_artifact
    from prefect.context import AsyncClientContext
    from prefect.flow_engine import run_flow_async
    from prefect.states import Pending

    @task(name="run-container")
    async def run_container() -> None:
        print("hi")

    @flow(name="floor-job", persist_result=False, log_prints=True)
    async def job() -> None:
        logger = get_run_logger()
        logger.info("job: busybox echo hi")
        logger.info("image busybox resolved to sha256:0")
        await run_container()
        await acreate_markdown_artifact("# summary", description="summary")

    async def burst(count: int) -> tuple[float, float]:
        async with AsyncClientContext() as context:
            client = context.client
            made = [await client.create_flow_run_from_deployment(deployment_id, parameters={}) for _ in range(count)]
            limiter = anyio.CapacityLimiter(concurrency)

            async def one(run) -> None:
                async with limiter:
                    await client.set_flow_run_state(run.id, Pending())
                    await run_flow_async(job, flow_run=run, parameters={}, return_type="state")

            cpu, server = time.process_time(), bench.cpu_seconds([server_pid])
            async with anyio.create_task_group() as tg:
                for run in made:
                    tg.start_soon(one, run)
            return (time.process_time() - cpu) / count, (bench.cpu_seconds([server_pid]) - server) / count

    anyio.run(burst, 5)  # warm-up: imports, the flow's first run
    samples = [anyio.run(burst, runs) for _ in range(3)]
    return statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples)



def _task():
    from prefect import task

    @task(name="run-container")
    def run_container() -> None:
        return None

    return run_container


def _burst(port: int, deployment_id: UUID, runs: int, threads: int, as_job: bool) -> None:
    clients = [_client(port) for _ in range(threads)]
    for c in clients:
        c.__enter__()
    try:
        # each run in a copy of this context: Prefect's settings (the server's URL, `measure_floor`) are a context
        # variable, and without them the events a client emits (artifacts, task run states) went to a temporary
        # server Prefect started in this process, not to the measured one (before session 20)
        contexts = [contextvars.copy_context() for _ in range(runs)]  # copied here, where the settings are
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda i: contexts[i].run(_one_run, clients[i % threads], deployment_id, as_job),
                          range(runs)))
    finally:
        for c in clients:
            c.__exit__(None, None, None)


def measure_floor(home: Path, port: int, runs: int, threads: int) -> dict[str, float]:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    server = bench.start_server(home, port)
    # this process's Prefect talks to that server (else a client here would start a server of its own)
    with temporary_settings({PREFECT_API_URL: f"http://127.0.0.1:{port}/api"}):
        try:
            return _measure(server, port, runs, threads)
        finally:
            bench.drain_events()  # the engine's events go to this server; later ones to the next stack's
            bench.stop(server)


def _measure(server, port: int, runs: int, threads: int) -> dict[str, float]:
    deployment_id = _deployment(port)
    _burst(port, deployment_id, 5, threads, as_job=True)  # warm-up: imports, caches, first rows
    out: dict[str, float] = {}
    before = bench.cpu_seconds([server.pid])
    time.sleep(IDLE_SECONDS)
    out["idle CPU per second"] = (bench.cpu_seconds([server.pid]) - before) / IDLE_SECONDS
    for name, as_job in (("bare run", False), ("as a SwarmSync job", True)):
        samples = []
        _WORKER_SIDE.clear()
        for _ in range(3):
            cpu0, t0 = bench.cpu_seconds([server.pid]), time.monotonic()
            _burst(port, deployment_id, runs, threads, as_job)
            samples.append(((bench.cpu_seconds([server.pid]) - cpu0) / runs, (time.monotonic() - t0) / runs))
        out[name] = statistics.median(s[0] for s in samples)
        out[f"{name} wall"] = statistics.median(s[1] for s in samples)
        out[f"{name} client"] = statistics.median(_WORKER_SIDE)
    out["engine client"], out["engine"] = engine_cpu(server.pid, deployment_id, runs, threads)
    return out




def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--postgres", default=None, help="PostgreSQL admin URL: Prefect on a fresh database there")
    parser.add_argument("--swarmsync", action="store_true", help="also bench/run.py's SwarmSync burst, same run")
    args = parser.parse_args()
    import atexit

    atexit.register(bench.stop_all)
    with tempfile.TemporaryDirectory(prefix="swarmsync-floor-") as tmp_name:
        tmp = Path(tmp_name)
        if args.postgres:
            os.environ["PREFECT_API_DATABASE_CONNECTION_URL"] = bench.fresh_pg_database(args.postgres).replace(
                "+psycopg", "+asyncpg")
        floor = measure_floor(tmp / "prefect", bench.free_port(), args.runs, args.threads)
        print(f"Prefect server {'on PostgreSQL' if args.postgres else 'on SQLite'}, {args.runs} runs "
              f"{args.threads} at a time (median of 3 bursts):")
        print(f"  idle (background services): {floor['idle CPU per second']:.3f} CPU-s per second")
        for name in ("bare run", "as a SwarmSync job"):
            print(f"  {name:<20} server CPU per run {floor[name]:.3f} s   wall per run {floor[name + ' wall']:.3f} s"
                  f"   worker-side client CPU per run {floor[name + ' client']:.3f} s")
        print(f"  {'Prefect flow engine':<20} server CPU per run {floor['engine']:.3f} s   in-process engine CPU per "
              f"run {floor['engine client']:.3f} s (a job-shaped flow run by Prefect's engine, no container)")
        docker_cpu = docker_sdk_cpu(min(args.runs, 30))
        worker_floor = floor["as a SwarmSync job client"] + docker_cpu
        print(f"  Docker SDK CPU per container (create, attach, start, wait, remove): {docker_cpu:.3f} s")
        print(f"  worker floor per job (a SwarmSync job's client side + one container): {worker_floor:.3f} s")
        engine_floor = floor["engine client"] + docker_cpu
        print(f"  worker floor with Prefect's engine (the engine's CPU per run + one container): {engine_floor:.3f} s")
        if args.swarmsync:
            os.environ.pop("PREFECT_API_DATABASE_CONNECTION_URL", None)
            image = os.environ.get("SWARMSYNC_BENCH_IMAGE", "swarmsync/busybox:local")
            result = bench.bench_swarmsync(image, 3, args.runs, tmp / "swarmsync", bench.free_port())
            server = result["server_cpu"]
            print(f"  {'SwarmSync (real jobs)':<20} server CPU per job {server:.3f} s (on SQLite), worker CPU per job "
                  f"{result['worker_cpu']:.3f} s ({result['worker_cpu'] / worker_floor:.2f}x the worker floor, "
                  f"{result['worker_cpu'] / engine_floor:.2f}x the floor with Prefect's engine)")
            for name in ("bare run", "as a SwarmSync job"):
                print(f"SwarmSync server CPU per job / {name}: {server / floor[name]:.2f}x")


if __name__ == "__main__":
    main()
