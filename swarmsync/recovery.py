"""What a worker does at every heartbeat besides Prefect's own sync: report its Docker
host's telemetry, and recover runs whose worker on this host died.

A run is orphaned when it is Running or Pending on this pool, its infrastructure id
names this host, and the worker it names is no longer alive: its PID is gone, or the PID
now belongs to another process (the id also records the machine's boot id and the
process's start time, so a PID reused after a reboot does not keep a dead worker alive;
old ids `HOST:PID:RUN_ID` are judged by the PID alone). Then:

- its container still exists -> the run is re-enqueued (Scheduled "Resuming"); the
  worker that wins the Pending transition (Prefect allows one) runs the flow again, and
  the flow adopts the container instead of starting a new one;
- it never started (Pending) -> re-enqueued as it was;
- its container is gone -> Crashed, then AwaitingRetry while the job has retries left.

Runs of a lost *other* host are Core's to crash and retry (`swarmsync.lost_hosts`, in the
SwarmSync API), not a worker's.

Containers (and the private networks of jobs with services) whose run already ended (e.g.
removal interrupted by the crash) are removed,
and so are those whose run the server says does not exist (`ObjectNotFound`). Any other
error reading a run (a 503, a timeout) leaves its container alone until the next heartbeat:
a transient fault never removes a running job.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import anyio
import docker.errors
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
    WorkPoolFilter,
    WorkPoolFilterName,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.exceptions import ObjectNotFound
from prefect.states import Scheduled

from swarmsync.connection import api_url
from swarmsync.db import WorkerTelemetry, session_scope, upsert
from swarmsync.docker_runner import (
    LABEL_FLOW_RUN,
    LABEL_INSTANCE,
    LABEL_JOB,
    docker_client,
    docker_client_async,
    find_job_containers,
    list_containers,
)
from swarmsync.lost_hosts import crash_run

logger = logging.getLogger("swarmsync.recovery")


def docker_host_facts(engine: Any | None = None) -> dict:
    """Docker version, cpus, memory and running containers of this worker's engine."""
    try:
        info = docker_client(engine).info()
    except Exception as exc:  # noqa: BLE001 - report the engine as down, keep heartbeating
        return {"hostname": socket.gethostname(), "docker_error": str(exc)[:300]}
    return {
        # the Docker host's name (the engine's), not the container's when the worker runs in one
        "hostname": info.get("Name") or socket.gethostname(),
        "docker_version": info.get("ServerVersion"),
        "cpus": info.get("NCPU"),
        "memory_bytes": info.get("MemTotal"),
        "containers_running": info.get("ContainersRunning"),
    }


def telemetry_facts(worker_name: str, running_jobs: int, started_at: datetime,
                    engine: Any | None = None) -> dict[str, Any]:
    """What a worker reports of its host at each heartbeat."""
    facts = docker_host_facts(engine)
    return dict(worker_name=worker_name, hostname=facts["hostname"], pid=os.getpid(),
                docker_version=facts.get("docker_version"), cpus=facts.get("cpus"),
                memory_bytes=facts.get("memory_bytes"), containers_running=facts.get("containers_running"),
                docker_error=facts.get("docker_error"), running_jobs=running_jobs, started_at=started_at)


def record_telemetry(worker_name: str, pool: str, running_jobs: int, started_at: datetime,
                     engine: Any | None = None) -> None:
    store_telemetry(pool=pool, **telemetry_facts(worker_name, running_jobs, started_at, engine))


def store_telemetry(**facts: Any) -> None:
    """One telemetry row (by the worker itself with the database, or by Core for a worker with a token)."""
    try:
        with session_scope() as session:
            upsert(session, WorkerTelemetry, **facts, heartbeat_at=datetime.now(UTC))
    except Exception:  # noqa: BLE001 - telemetry must never stop a worker
        logger.exception("could not record worker telemetry")


BOOT_ID_FILE = Path("/proc/sys/kernel/random/boot_id")


def boot_id() -> str:
    """This machine's boot id (changes at every reboot); "" where /proc does not have it."""
    try:
        return BOOT_ID_FILE.read_text().strip()
    except OSError:
        return ""


def process_start_ticks(pid: int) -> str:
    """When process `pid` started (clock ticks since boot, /proc/PID/stat field 22); "" if unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    # the command name (field 2) is in parentheses and may hold spaces or ')': split after the last ')'
    fields = stat[stat.rfind(")") + 2:].split()
    return fields[19] if len(fields) > 19 else ""


def worker_identity(pid: int | None = None) -> str:
    """`PID:BOOT_ID:START_TICKS` of a process (default: this one), for its infrastructure ids."""
    pid = os.getpid() if pid is None else pid
    return f"{pid}:{boot_id()}:{process_start_ticks(pid)}"


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _worker_alive(pid: int, boot: str | None, started: str | None) -> bool:
    """The worker process named by an infrastructure id still runs: same boot, PID alive, and
    that PID started when the worker did (else it is another process that reused the PID)."""
    if boot and boot_id() and boot != boot_id():
        return False  # the machine rebooted since: no process of that boot is alive
    if not _pid_alive(pid):
        return False
    if started:
        now = process_start_ticks(pid)
        if now and now != started:
            return False
    return True


def is_orphaned(run: FlowRun, hostname: str | None = None) -> bool:
    """Its infrastructure id names this host and a worker that is no longer alive.

    Ids are `HOST:PID:BOOT_ID:START_TICKS:RUN_ID` (old ones `HOST:PID:RUN_ID`)."""
    parts = (run.infrastructure_pid or "").split(":")
    if len(parts) not in (3, 5) or parts[0] != (hostname or socket.gethostname()):
        return False
    try:
        pid = int(parts[1])
    except ValueError:
        return False
    boot, started = (parts[2], parts[3]) if len(parts) == 5 else (None, None)
    return not _worker_alive(pid, boot, started)


async def recover_orphaned_runs(
    client: PrefectClient, pool: str, run_logger: Callable[[FlowRun], logging.LoggerAdapter],
    engine: Any | None = None,
) -> int:
    """Re-enqueue, crash or retry this host's orphaned runs; returns how many were handled."""
    runs = await client.read_flow_runs(
        work_pool_filter=WorkPoolFilter(name=WorkPoolFilterName(any_=[pool])),
        flow_run_filter=FlowRunFilter(
            state=FlowRunFilterState(
                type=FlowRunFilterStateType(any_=[StateType.RUNNING, StateType.PENDING])
            )
        ),
        limit=200,
    )
    handled = 0
    engine = await docker_client_async(engine)  # the Docker calls below run in threads, never on the loop
    for run in runs:
        if not is_orphaned(run):
            continue
        handled += 1
        log = run_logger(run)
        has_container = bool(await anyio.to_thread.run_sync(find_job_containers, engine, str(run.id)))
        if has_container or run.state.type == StateType.PENDING:
            log.warning("worker of this run died; re-enqueued to resume it")
            await client.set_flow_run_state(
                run.id, Scheduled(name="Resuming", message="worker died; resuming"), force=True
            )
            continue
        if await crash_run(client, run, "container lost while its worker was down"):
            log.warning("container lost while its worker was down: crashed (retried if the job has retries left)")
    await _remove_finished_containers(client, engine)
    return handled


async def _remove_finished_containers(client: PrefectClient, engine) -> None:
    """Remove this installation's containers whose runs are final, or that the server says do
    not exist (deleted from Prefect); other installations sharing the Docker host keep theirs.

    Only `ObjectNotFound` means deleted: any other error (a 503, a timeout, a refused
    connection) may be a passing fault, so the container stays until a later heartbeat can
    read its run."""
    mine = {"label": [LABEL_JOB, f"{LABEL_INSTANCE}={api_url()}"]}
    for container in await anyio.to_thread.run_sync(list_containers, engine, mine["label"]):
        run_id = container.labels.get(LABEL_FLOW_RUN)
        try:
            run = await client.read_flow_run(UUID(str(run_id)))
        except (ObjectNotFound, ValueError):  # deleted from Prefect, or a label that names no run: litter
            run = None
        except Exception as exc:  # noqa: BLE001 - a transient fault: never remove a container over it
            logger.warning("could not read flow run %s (%s); its container is kept", run_id, exc)
            continue
        if run is None or (run.state and run.state.is_final()):
            await anyio.to_thread.run_sync(_remove_container, container)
    await _remove_finished_networks(client, engine, mine["label"])


def _remove_container(container) -> None:
    try:
        container.remove(force=True, v=True)
    except docker.errors.NotFound:
        pass  # removed meanwhile by its flow or another worker
    except docker.errors.APIError as exc:  # e.g. its removal is already in progress
        logger.warning("could not remove container %s: %s", container.name, exc)


async def _remove_finished_networks(client: PrefectClient, engine, labels: list[str]) -> None:
    """The private networks of jobs with services, once their runs are final (or deleted) and
    their containers gone; the same rules as for containers."""
    networks = await anyio.to_thread.run_sync(lambda: engine.networks.list(filters={"label": labels}))
    for network in networks:
        run_id = (network.attrs.get("Labels") or {}).get(LABEL_FLOW_RUN)
        try:
            run = await client.read_flow_run(UUID(str(run_id)))
        except (ObjectNotFound, ValueError):
            run = None
        except Exception:  # noqa: BLE001 - a transient fault: keep it until a later heartbeat
            continue
        if run is None or (run.state and run.state.is_final()):
            await anyio.to_thread.run_sync(_remove_network, network)


def _remove_network(network) -> None:
    try:
        network.remove()
    except docker.errors.APIError:
        pass  # removed meanwhile, or a container still attached: the next heartbeat tries again
