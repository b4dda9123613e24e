"""Timestamps of a job's steps inside the SwarmSync worker, for `bench/timeline.py`.

Loaded by Python at start-up (`sitecustomize`) when this folder is on PYTHONPATH; it acts only
in a `swarmsync worker start` process with SWARMSYNC_TRACE_FILE set, and wraps (never changes)
the functions below: each call appends `{"what", "t0", "t1"}` (epoch seconds) to that file.
Nothing of it is in SwarmSync's own code: a trace costs a file append per call.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import sys
import threading
import time

TRACE = os.environ.get("SWARMSYNC_TRACE_FILE")
_lock = threading.Lock()


def _record(what: str, t0: float, t1: float) -> None:
    with _lock, open(TRACE, "a") as out:
        out.write(json.dumps({"what": what, "t0": t0, "t1": t1}) + "\n")


def _wrap(owner, name: str, what: str) -> None:
    original = getattr(owner, name)
    if inspect.iscoroutinefunction(original):
        @functools.wraps(original)
        async def timed(*args, **kwargs):
            t0 = time.time()
            try:
                return await original(*args, **kwargs)
            finally:
                _record(what, t0, time.time())
    else:
        @functools.wraps(original)
        def timed(*args, **kwargs):
            t0 = time.time()
            try:
                return original(*args, **kwargs)
            finally:
                _record(what, t0, time.time())
    setattr(owner, name, timed)


def _install() -> None:
    import docker.api.container
    import docker.models.containers
    import prefect.client.orchestration
    import prefect.flow_engine

    import swarmsync.archive.index
    import swarmsync.archive.writer
    import swarmsync.claim
    import swarmsync.docker_runner as runner
    import swarmsync.usage

    client = prefect.client.orchestration.PrefectClient
    for name in ("set_flow_run_state", "create_artifact", "get_scheduled_flow_runs_for_work_pool",
                 "read_flow_run", "create_task_run", "set_task_run_state"):
        _wrap(client, name, f"api.{name}")
    _wrap(swarmsync.claim, "claim_run", "worker.claim (Pending)")
    _wrap(prefect.flow_engine, "run_flow_async", "engine.run_flow_async")
    api = docker.api.container.ContainerApiMixin
    for name in ("create_container", "start", "wait", "inspect_container", "remove_container", "attach", "stop"):
        _wrap(api, name, f"docker.{name}")
    _wrap(docker.models.containers.ContainerCollection, "list", "docker.list")
    for name in ("find_job_containers", "create_container", "resolve_image", "start_or_adopt"):
        _wrap(runner, name, f"runner.{name}")
    for name in ("start", "wait", "remove"):
        _wrap(runner.ContainerRun, name, f"ContainerRun.{name}")
    _wrap(swarmsync.usage.UsageMeter, "stop", "usage.stop")
    _wrap(swarmsync.archive.writer, "write_archive", "archive.write_archive")
    _wrap(swarmsync.archive, "write_archive", "archive.write_archive")
    _wrap(swarmsync.archive.index, "index_archive", "archive.index_archive")
    _wrap(swarmsync.archive, "index_archive", "archive.index_archive")
    import swarmsync.worker as worker

    _wrap(worker.SwarmSyncWorker, "run", "worker.run")
    _wrap(worker.SwarmSyncWorker, "_after_final_state", "worker.after_final_state")
    _wrap(worker, "user_membership", "worker.user_membership")


if TRACE and any("worker" in arg for arg in sys.argv) and "start" in sys.argv:
    _install()
