"""The `swarmsync` Prefect worker type: runs container-job flow runs inside its own
event loop, many at once. The only new process per job is the user's container.

Registered through the `prefect.collections` entry point, so both
`prefect worker start --type swarmsync --pool NAME` and `swarmsync worker start` work.
The pool's base job template carries host policy (see `swarmsync.policy.HostPolicy`).

Crash safety: containers outlive the worker. Each run's infrastructure id is
`HOST:PID:BOOT_ID:START_TICKS:FLOW_RUN_ID`; a worker on the same host that finds runs of
its pool still Running/Pending under a dead worker re-enqueues them (see `recovery.py`), and the job flow
then adopts the container left behind instead of starting another.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import anyio
import anyio.abc
import httpx
from cachetools import TTLCache
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.objects import FlowRun, WorkerMetadata
from prefect.client.schemas.responses import WorkerFlowRunResponse
from prefect.context import AsyncClientContext
from prefect.exceptions import InfrastructureNotFound
from prefect.flow_engine import run_flow_async
from prefect.flows import Flow, load_flow_from_entrypoint
from prefect.settings import get_current_settings
from prefect.workers.base import BaseJobConfiguration, BaseVariables, BaseWorker, BaseWorkerResult
from prefect_docker import DockerHost, DockerRegistryCredentials
from pydantic import BaseModel, Field

from swarmsync import console_logs, core_link, prefect_internals
from swarmsync.claim import claim_run
from swarmsync.db import migrate
from swarmsync.docker_runner import docker_client, find_job_containers
from swarmsync.owners import USER_LABEL, project_of, submitted_by
from swarmsync.policy import HostPolicy
from swarmsync.recovery import (
    docker_host_facts,
    record_telemetry,
    recover_orphaned_runs,
    telemetry_facts,
    worker_identity,
)
from swarmsync.routing import can_take, clean_labels, host_queues, parse_labels
from swarmsync.runtime import JobRuntime
from swarmsync.settings import get_settings
from swarmsync.spec import run_name_of
from swarmsync.start_update import StartUpdates, engine_policy


class PoolPlaces(BaseModel):
    """Where a pool's jobs run (Docker engine), pull from (registry) and archive to."""

    pull_policy: str = Field(
        default="if-not-present", description="Image pull policy: always, if-not-present, never"
    )
    docker_host: DockerHost | None = Field(
        default=None,
        description="Docker engine for this pool's jobs (a Docker Host block); empty: the worker's local engine",
    )
    registry_credentials: DockerRegistryCredentials | None = Field(
        default=None, description="Registry login used before an image is pulled (a Docker Registry Credentials block)"
    )
    archive_block: str | None = Field(
        default=None,
        description="Prefect filesystem block (slug, e.g. remote-file-system/team-archive) for this pool's "
        "archives; empty: the installation's store (SWARMSYNC_ARCHIVE_BLOCK or a local folder)",
    )


class SwarmSyncVariables(BaseVariables, HostPolicy, PoolPlaces):
    """Pool-level settings, editable in the Prefect UI (work pool > base job template)."""


class SwarmSyncJobConfiguration(BaseJobConfiguration, HostPolicy, PoolPlaces):

    def host_policy(self) -> HostPolicy:
        return HostPolicy(**self.model_dump(include=set(HostPolicy.model_fields)))

    @classmethod
    def _base_environment(cls) -> dict[str, str]:
        """Jobs run in the worker's own process: no child environment carrying every Prefect
        setting is needed (building one costs ~10% of the worker's CPU per job)."""
        return {}


class SwarmSyncWorkerResult(BaseWorkerResult):
    """The final state of a job flow run executed in the worker's process."""


DEFINITION_CACHE_SECONDS = 10.0
# job flows never persist results, yet the engine asks for the server's default result storage per run;
# each miss makes a client (an SSL context: ~35 ms of CPU, ~8% of the worker's CPU per job at a 10 s TTL)
RESULT_STORAGE_CACHE_SECONDS = 3600.0
QUEUES_CACHE_SECONDS = 5.0  # how old the list of the pool's queues a poll asks for may be
TOKEN_CHECK_SECONDS = 5.0  # a host with a worker token: how often it checks the token still stands


def _cache_reads(client: PrefectClient, ttl: float) -> None:
    """Deployments and flows change rarely, yet Prefect's worker reads each of them up to
    three times per run. Serve repeated reads from memory for `ttl` seconds."""
    for method in ("read_deployment", "read_flow"):
        setattr(client, method, _ttl_cached(getattr(client, method), ttl))


def _ttl_cached(read: Callable[[UUID], Awaitable[Any]], ttl: float) -> Callable[[UUID], Awaitable[Any]]:
    entries: TTLCache = TTLCache(maxsize=1024, ttl=ttl)

    async def cached(object_id: UUID) -> Any:
        try:
            return entries[object_id]
        except KeyError:
            entries[object_id] = value = await read(object_id)
            return value

    return cached


def _working_directory(pull_steps: list[dict[str, Any]] | None) -> str | None:
    """The folder a `set_working_directory` pull step names (deployments made by
    `prefect deploy` from prefect.yaml carry no `path`, only that step)."""
    for step in pull_steps or []:
        for name, args in step.items():
            if name.endswith("set_working_directory") and isinstance(args, dict):
                return args.get("directory")
    return None


def run_submitter(flow_run: FlowRun) -> str | None:
    """Who submitted the run through the SwarmSync API (only the API sets this; see swarmsync.owners)."""
    return (flow_run.labels or {}).get(USER_LABEL) or submitted_by(flow_run)


def user_membership(username: str, project: str) -> tuple[str | None, str | None]:
    """The user's global role and role in `project` now; (None, None) when there is no such user or it is
    disabled (swarmsync.auth.projects.membership)."""
    from swarmsync.auth.projects import membership

    return membership(username, project)


def infrastructure_id(flow_run_id: UUID | str) -> str:
    """`HOST:PID:BOOT_ID:START_TICKS:FLOW_RUN_ID`: the PID with the machine's boot id and the
    process's start time, so that a reused PID never makes this worker look alive after it
    died (see `recovery.is_orphaned`); the run id is always the last `:` field."""
    return f"{socket.gethostname()}:{worker_identity()}:{flow_run_id}"


class SwarmSyncWorker(BaseWorker[SwarmSyncJobConfiguration, SwarmSyncVariables, SwarmSyncWorkerResult]):
    type = "swarmsync"
    job_configuration = SwarmSyncJobConfiguration
    job_configuration_variables = SwarmSyncVariables
    _description = (
        "SwarmSync: runs container jobs in the worker's own event loop, many at once, "
        "each in an isolated Docker container with limits."
    )
    _display_name = "SwarmSync"
    _documentation_url = "https://github.com/swarmsync/swarmsync"

    def __init__(self, *args: Any, labels: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # host labels (swarmsync.routing): `worker start --label`, else SWARMSYNC_WORKER_LABELS
        self.labels: list[str] = (
            clean_labels(labels) if labels is not None else parse_labels(get_settings().worker_labels)
        )
        self._flows: dict[UUID, Flow] = {}
        self._running: set[UUID] = set()
        self._cancel_events: dict[UUID, anyio.Event] = {}
        self._job_cancellation: Any | None = None  # Prefect's FlowRunCancellingObserver
        self._started_at = datetime.now(UTC)
        self._wake: anyio.abc.ObjectSendStream[None] | None = None
        self._client_context: AsyncClientContext | None = None
        # what runs use (the API client, the cancellation watcher): closed after Prefect's teardown
        # has waited for the runs in flight, not before them as Prefect's own exit stack would
        self._for_runs = AsyncExitStack()
        self._engine: DockerHost | None = None  # the pool's Docker engine (its docker_host block); None: local
        self._queues_created = False
        self._core: core_link.CoreLink | None = None
        self._refused: core_link.CoreRefused | None = None  # Core refused this host's token: stop
        self._pool_queues: tuple[float, list[str]] | None = None  # (read at, the pool's queues it can take)
        self._run_scopes: dict[UUID, anyio.CancelScope] = {}
        self._fenced: dict[UUID, str] = {}  # runs this host stopped because it lost Core: why
        self._start_updates = StartUpdates()

    async def setup(self) -> None:
        self._core = core_link.current()  # a worker host with a token: Core, never the database
        if self._core is None:
            await anyio.to_thread.run_sync(migrate)
        await super().setup()
        _cache_reads(self.client, ttl=DEFINITION_CACHE_SECONDS)
        # one API client for every job run in this process (Prefect's engine otherwise opens
        # a new client, connection and CSRF handshake per run)
        self._client_context = await self._for_runs.enter_async_context(AsyncClientContext())
        # a run's start is one PATCH of it, not the worker's and then the flow engine's (swarmsync.start_update)
        for client in {id(c): c for c in (self.client, self._client_context.client)}.values():
            self._start_updates.install(client)
        console_logs.plain_when_not_a_terminal()
        prefect_internals.skip_suspension_watch()
        prefect_internals.share_tls_contexts()
        prefect_internals.remember_parameter_models()
        prefect_internals.remember_tag_resources()
        prefect_internals.heartbeats_on_the_event_loop()
        prefect_internals.cache_default_result_storage(ttl=RESULT_STORAGE_CACHE_SECONDS)
        # one watcher for all running jobs (websocket events, polling fallback) instead of one poll per job
        self._job_cancellation = await self._for_runs.enter_async_context(
            prefect_internals.flow_run_cancelling_observer()(
                on_cancelling=self._on_job_cancelling,
                polling_interval=get_current_settings().worker.cancellation_poll_seconds,
            )
        )

    async def teardown(self, *exc_info: Any) -> None:
        """Prefect's teardown (it waits for the runs in flight), then what those runs used."""
        try:
            await super().teardown(*exc_info)
        finally:
            await self._for_runs.__aexit__(*exc_info)

    async def start(self, *args: Any, **kwargs: Any) -> None:
        """Prefect's polling loops, plus a wake-up on new runs so pickup is not a poll away."""
        async with anyio.create_task_group() as tg:
            self._stop_scope = tg.cancel_scope
            tg.start_soon(self._wake_on_new_runs)
            if core_link.current() is not None:
                tg.start_soon(self._watch_token)
            try:
                await super().start(*args, **kwargs)
            finally:
                tg.cancel_scope.cancel()
        if self._refused is not None:
            raise self._refused

    def _poll_soon(self) -> None:
        """Ask for an immediate poll; requests made while one is due coalesce into it."""
        if self._wake is not None:
            try:
                self._wake.send_nowait(None)
            except anyio.WouldBlock:
                pass

    async def _wake_on_new_runs(self) -> None:
        """Subscribe to 'flow run Scheduled' events of this pool; each burst of them triggers
        one immediate poll (so does a finished run, which frees a slot). Polling stays the
        fallback if the event stream is unavailable."""
        from prefect.events.clients import get_events_subscriber
        from prefect.events.filters import EventFilter, EventNameFilter, EventRelatedFilter

        while not getattr(self, "is_setup", False) or self._work_pool is None:
            await anyio.sleep(0.2)
        # runs submitted from here share the worker's API client, as those from Prefect's loops do
        prefect_internals.enter_client_context(self._client_context)
        self._wake, wake_recv = anyio.create_memory_object_stream[None](1)
        event_filter = EventFilter(
            event=EventNameFilter(name=["prefect.flow-run.Scheduled"]),
            related=EventRelatedFilter(id=[f"prefect.work-pool.{self._work_pool.id}"]),
        )

        async def listen() -> None:
            async with get_events_subscriber(filter=event_filter) as subscriber:
                async for _event in subscriber:
                    self._poll_soon()

        async def poll_on_wake() -> None:
            async for _ in wake_recv:
                if self.is_setup:
                    await self.get_and_submit_flow_runs()

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(poll_on_wake)
                await listen()
        except Exception as exc:  # noqa: BLE001 - polling still picks runs up
            self._logger.warning("event wake-up unavailable (%s); relying on polling", exc)

    def _on_job_cancelling(self, flow_run_id: UUID) -> None:
        if event := self._cancel_events.get(flow_run_id):
            event.set()

    async def _load_flow(self, flow_run: FlowRun) -> Flow:
        """The deployment's flow, loaded once per deployment from its entrypoint."""
        if flow_run.deployment_id in self._flows:
            return self._flows[flow_run.deployment_id]
        deployment = await self.client.read_deployment(flow_run.deployment_id)
        if not deployment.entrypoint:
            raise ValueError(f"deployment {deployment.name!r} has no entrypoint")
        entrypoint = deployment.entrypoint
        file_part = entrypoint.rsplit(":", 1)[0]
        base = deployment.path or _working_directory(deployment.pull_steps)
        if file_part.endswith(".py") and not os.path.isabs(file_part) and base:
            entrypoint = str(Path(base) / entrypoint)
        flow = await anyio.to_thread.run_sync(load_flow_from_entrypoint, entrypoint)
        self._flows[flow_run.deployment_id] = flow
        return flow

    async def run(
        self,
        flow_run: FlowRun,
        configuration: SwarmSyncJobConfiguration,
        task_status: anyio.abc.TaskStatus[str] | None = None,
    ) -> SwarmSyncWorkerResult:
        identifier = infrastructure_id(flow_run.id)
        # the flow engine and the run's artifacts use the worker's API client, not a new one (a new
        # client costs an SSL context, ~35 ms of CPU, and a connection): this task may have been
        # started where the worker's client context is not current (Prefect's loops, its observers)
        prefect_internals.enter_client_context(self._client_context)
        flow = await self._load_flow(flow_run)
        # what Prefect's worker (infrastructure_pid, once started) and flow engine (at its start) write of the run
        self._start_updates.expect(flow_run.id, infrastructure_pid=identifier, flow_version=flow.version,
                                   empirical_policy=engine_policy(flow_run, flow))
        try:  # from here on, what the run registered is let go in `finally`, whatever fails
            if task_status:
                task_status.started(identifier)
            cancelled = self._cancel_events[flow_run.id] = anyio.Event()
            policy = self._pool_policy(flow_run, configuration)
            # who submitted the run (or owns its schedule) may have left its project or the pool since: their
            # roles now (a database query; runs made without the API have no submitter and need none)
            submitter, project = run_submitter(flow_run), project_of(flow_run)
            role, project_role = await self._owner_roles(flow_run, submitter, project)
            runtime = JobRuntime(
                policy=policy, submitter=submitter, submitter_role=role, project=project,
                submitter_project_role=project_role,
                pull_policy=configuration.pull_policy,
                pool=self._work_pool_name, engine=configuration.docker_host,
                registry_credentials=configuration.registry_credentials, archive_block=configuration.archive_block,
                claimed_from=flow_run.state.name if flow_run.state else None, cancel_event=cancelled,
                after_final_state=[],
            )
            if self._job_cancellation:
                self._job_cancellation.add_in_flight_flow_run_id(flow_run.id)
            self._running.add(flow_run.id)
            if not await self._wait_for_start(flow_run, cancelled):
                await self._mark_flow_run_as_cancelled(flow_run, {"message": "cancelled before it started"})
                return SwarmSyncWorkerResult(identifier=identifier, status_code=0)
            await self._in_background(self._name_after_job(flow_run))
            state = None
            with anyio.CancelScope() as scope:  # cancelled when the host fences the run (lease, token refused)
                self._run_scopes[flow_run.id] = scope
                try:
                    with runtime:
                        state = await run_flow_async(
                            flow, flow_run=flow_run, parameters=flow_run.parameters, return_type="state"
                        )
                finally:
                    await self._after_final_state(flow_run, runtime.after_final_state or [])
        finally:
            self._start_updates.forget(flow_run.id)
            self._running.discard(flow_run.id)
            self._run_scopes.pop(flow_run.id, None)
            self._cancel_events.pop(flow_run.id, None)
            if self._job_cancellation:
                self._job_cancellation.remove_in_flight_flow_run_id(flow_run.id)
            if self._limiter and self._limiter.borrowed_tokens >= self._limiter.total_tokens:
                self._poll_soon()  # the worker was full: runs waiting for this slot need not wait for a poll
        return SwarmSyncWorkerResult(identifier=identifier, status_code=0 if state else 1)

    async def _owner_roles(self, flow_run: FlowRun, submitter: str | None,
                           project: str | None) -> tuple[str | None, str | None]:
        """The submitter's global and project roles now: from the database, or asked of Core by a host with a
        token (Core reads the run's owner itself; the host's word about it counts for nothing)."""
        if not submitter:
            return None, None
        if self._core is not None:
            owner = await anyio.to_thread.run_sync(self._core.run_owner, str(flow_run.id))
            return owner["role"], owner["project_role"]
        return await anyio.to_thread.run_sync(user_membership, submitter, project)

    def _pool_policy(self, flow_run: FlowRun, configuration: SwarmSyncJobConfiguration) -> HostPolicy:
        """The pool's policy from its base job template alone. Prefect merges a deployment's and a
        run's job variables into `configuration`; those may not loosen (or change) policy: ignored, logged."""
        if self._work_pool is None:  # the pool not read (yet): fail closed, never on job variables
            self._logger.warning("flow run %s: the pool's policy is not known yet: the secure defaults apply",
                                 flow_run.id)
            return HostPolicy()
        policy = HostPolicy.from_template(self._work_pool.base_job_template)
        asked = configuration.host_policy()
        ignored = sorted(k for k in HostPolicy.model_fields if getattr(asked, k) != getattr(policy, k))
        if ignored:
            self.get_flow_run_logger(flow_run).warning(
                "job variables cannot change the pool's policy: ignored %s (the pool's own values apply)",
                ", ".join(ignored))
        return policy

    async def _after_final_state(self, flow_run: FlowRun, steps: list[Callable[[], Awaitable[None]]]) -> None:
        """What the run left to do once its final state was set (its Prefect artifacts): the
        final state, which clients wait for, comes ~0.1 s sooner. A failure is logged, not raised."""
        for step in steps:
            try:
                await step()
            except Exception as exc:  # noqa: BLE001 - the run and its archive are complete already
                self.get_flow_run_logger(flow_run).warning("after the run ended: %s", exc)

    async def _wait_for_start(self, flow_run: FlowRun, cancelled: anyio.Event) -> bool:
        """Hold a prefetched delayed run until its scheduled time; False if it was cancelled
        meanwhile (told by the cancellation watcher, or seen in its state at the end).

        Prefect's server also delays an early start, but in whole seconds (rounded), so a
        run could start up to half a second before its time; this wait is exact."""
        details = flow_run.state.state_details if flow_run.state else None
        scheduled = (details.scheduled_time if details else None) or flow_run.next_scheduled_start_time
        delay = (scheduled - datetime.now(UTC)).total_seconds() if scheduled else 0
        if delay <= 0:
            return True
        with anyio.move_on_after(delay):
            await cancelled.wait()
            return False
        state = (await self.client.read_flow_run(flow_run.id)).state
        return not (state and (state.is_cancelling() or state.is_cancelled()))

    async def _give_worker_labels_to_flow_run(self, flow_run_id: UUID) -> None:
        """Worker labels on the run are informative only: they are written in the background
        (the job does not wait for them), and a busy server (e.g. a 503 from SQLite under a
        burst) must not turn into a crashed, never-run job."""

        async def label() -> None:
            try:
                await super(SwarmSyncWorker, self)._give_worker_labels_to_flow_run(flow_run_id)
            except Exception as exc:  # noqa: BLE001
                self._logger.warning("could not label flow run %s with this worker: %s", flow_run_id, exc)

        await self._in_background(label())

    async def _name_after_job(self, flow_run: FlowRun) -> None:
        """Name the run after its job in the Prefect UI (image and command; a schedule's name
        first) when it was created elsewhere (a schedule, `prefect deployment run`): SwarmSync's
        submit names its runs at creation, so they cost no request here. A failure is logged."""
        try:
            name = run_name_of(flow_run.parameters, flow_run.tags)
            if name != flow_run.name:
                await self.client.set_flow_run_name(flow_run.id, name)
        except Exception as exc:  # noqa: BLE001 - a name is never worth failing a job
            self._logger.warning("could not name flow run %s after its job: %s", flow_run.id, exc)

    async def _in_background(self, work: Awaitable[None]) -> None:
        """Run `work` beside the job (in the runs' task group, not waited for); at once without one."""

        async def run() -> None:
            await work

        if self._runs_task_group is not None:
            self._runs_task_group.start_soon(run)
        else:
            await work

    async def _propose_pending_state(self, flow_run: FlowRun) -> bool:
        """Prefect's claim, refusing runs that already ran elsewhere (see `swarmsync.claim`)."""
        return await claim_run(self.client, flow_run, self.get_flow_run_logger(flow_run))

    async def _propose_submitting_state(self, flow_run: FlowRun) -> None:
        """No 'Submitting' sub-state: the run starts in this process right away (Pending is
        followed directly by Running), which saves a state transition per job."""

    async def kill_infrastructure(
        self, infrastructure_pid: str, configuration: SwarmSyncJobConfiguration, grace_seconds: int = 30
    ) -> None:
        """Stop a run's container (used for runs cancelled before the flow started). The Docker
        calls block, so they run in a thread, as prefect-docker's worker does."""
        flow_run_id = infrastructure_pid.rsplit(":", 1)[-1]

        def stop() -> None:
            containers = find_job_containers(docker_client(configuration.docker_host), flow_run_id)
            if not containers:
                raise InfrastructureNotFound(f"no container of flow run {flow_run_id} on this engine")
            for container in containers:
                container.stop(timeout=min(grace_seconds, 10))

        await anyio.to_thread.run_sync(stop)

    async def sync_with_backend(self) -> None:
        try:
            await super().sync_with_backend()
        except httpx.HTTPStatusError as exc:
            if self._core is not None and exc.response.status_code == 401:  # the token: revoked or expired
                return  # the token check (`_watch_token`) stops the worker
            raise
        await self._create_work_queues()
        await self._use_pool_docker_host()
        await self._report_telemetry()
        try:
            await recover_orphaned_runs(self.client, self._work_pool_name, self.get_flow_run_logger, self._engine)
        except Exception:  # noqa: BLE001 - recovery is retried at the next heartbeat; never stop the worker
            self._logger.exception("recovery of orphaned runs failed; retrying at the next heartbeat")

    async def _report_telemetry(self) -> None:
        """The host's facts: into the database, or to Core for a host with a token. Core refusing the token
        (revoked, expired) stops this worker: its jobs' containers are stopped first (Core hands the runs back)."""
        if self._core is None:
            await anyio.to_thread.run_sync(
                record_telemetry, self.name, self._work_pool_name, len(self._running), self._started_at, self._engine)
            return
        facts = await anyio.to_thread.run_sync(
            telemetry_facts, self.name, len(self._running), self._started_at, self._engine)
        try:
            await anyio.to_thread.run_sync(self._core.telemetry, facts)
        except core_link.CoreRefused:
            pass  # the token check (`_watch_token`) stops the worker
        except Exception as exc:  # noqa: BLE001 - Core unreachable: telemetry is retried at the next heartbeat
            self._logger.warning("telemetry not sent to Core: %s", exc)

    async def _watch_token(self) -> None:
        """A host with a token asks Core every TOKEN_CHECK_SECONDS whether its token still stands (Prefect's
        own loops back off on errors, up to a minute): a revoked or expired token stops its jobs within that.
        Its lease: a host that has not reached Core for SWARMSYNC_HOST_LEASE_SECONDS stops its jobs (fences
        them: Core crashes and retries them elsewhere once its bound passes); back in touch, it crashes and
        retries those Core has not handled yet, and runs nothing of them again."""
        link = core_link.current()
        lease = get_settings().host_lease_seconds
        last_ok = time.monotonic()
        while link is not None:
            await anyio.sleep(TOKEN_CHECK_SECONDS if time.monotonic() - last_ok < TOKEN_CHECK_SECONDS * 2 else 1.0)
            try:
                await anyio.to_thread.run_sync(link.whoami)
            except core_link.CoreRefused as exc:
                await self._fence(str(exc))
                self._refused = exc
                self._logger.error("%s: this worker stops", exc)
                if getattr(self, "_stop_scope", None) is not None:
                    self._stop_scope.cancel()
                return
            except Exception as exc:  # noqa: BLE001 - Core unreachable: its jobs go on until the lease ends
                silent = time.monotonic() - last_ok
                self._logger.debug("token check: Core does not answer for %.0f s (%s)", silent, exc)
                if silent > lease and self._running.difference(self._fenced):
                    await self._fence(f"host {self.name} could not reach Core for {silent:.0f} s "
                                      f"(its lease, SWARMSYNC_HOST_LEASE_SECONDS={lease:g})")
                continue
            last_ok = time.monotonic()
            if self._fenced:
                await self._hand_fenced_back()

    async def _fence(self, why: str) -> None:
        """Stop this host's running jobs: their containers stopped, their flows ended without a report (Core
        decides what becomes of the runs), their partial output kept in the spool and marked superseded."""
        running = [run_id for run_id in list(self._running) if run_id not in self._fenced]
        self._logger.error("%s: stopping %d running job(s)", why, len(running))
        home = get_settings().home_dir

        def stop_all() -> None:
            client = docker_client(self._engine)
            for run_id in running:
                for container in find_job_containers(client, str(run_id)):
                    try:
                        container.stop(timeout=5)
                    except Exception:  # noqa: BLE001 - gone already
                        pass
                spool = home / "spool" / str(run_id)
                if spool.is_dir():
                    (spool / "SUPERSEDED").write_text(why + "\n")

        for run_id in running:
            self._fenced[run_id] = why
            if scope := self._run_scopes.get(run_id):
                scope.cancel()
        await anyio.to_thread.run_sync(stop_all)

    async def _hand_fenced_back(self) -> None:
        """In touch with Core again: the fenced runs this host still holds are crashed and retried (Core's
        gateway refuses this for runs Core has crashed and handed on meanwhile)."""
        from swarmsync.lost_hosts import crash_run

        for run_id, why in list(self._fenced.items()):
            try:
                run = await self.client.read_flow_run(run_id)
                await crash_run(self.client, run, why)
            except Exception as exc:  # noqa: BLE001 - not this host's any more: Core handled it
                self._logger.info("fenced run %s: left to Core (%s)", run_id, exc)
            self._fenced.pop(run_id, None)

    async def _get_scheduled_flow_runs(self) -> list[Any]:
        """Prefect's poll, asking only for the queues this host can serve: a `host:` queue requiring labels
        it lacks is never asked for (swarmsync.routing), so a backlog there (500 jobs for a label no host has)
        cannot fill the page of runs Prefect answers a poll with. Runs of other queues stay Scheduled for a
        host that has their labels."""
        from prefect.types._datetime import now

        queues = await self._queues_to_poll()
        if queues == []:
            return []
        body: dict[str, Any] = {"scheduled_before": str(now("UTC") + timedelta(seconds=int(self._prefetch_seconds)))}
        if queues is not None:
            body["work_queue_names"] = queues
        # Prefect's get_scheduled_flow_runs_for_work_pool, but only the runs this worker would submit are
        # validated: those it is submitting stay Scheduled until their Pending is set, and came back in
        # every poll of a burst (3 validations per job, ~5% of the worker's CPU in Prefect's DateTime type)
        try:
            response = await self.client.request("POST", "/work_pools/{name}/get_scheduled_flow_runs",
                                                 path_params={"name": self._work_pool_name}, json=body)
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code == 404:
                return []
            raise
        busy = {str(run_id) for run_id in (*self._submitting_flow_run_ids, *self._running)}
        return WorkerFlowRunResponse.model_validate_list([
            entry for entry in response.json()
            if entry["flow_run"]["id"] not in busy and can_take(entry["flow_run"].get("work_queue_name"), self.labels)
        ])

    async def _queues_to_poll(self) -> list[str] | None:
        """The worker's own queues (`--queue`, which include those of its labels), else the pool's queues
        this host can take, read at most every QUEUES_CACHE_SECONDS (None: the pool's, not read yet)."""
        if self._work_queues:
            return sorted(self._work_queues)
        fresh = self._pool_queues is not None and time.monotonic() - self._pool_queues[0] < QUEUES_CACHE_SECONDS
        if not fresh:
            try:
                found = await self.client.read_work_queues(work_pool_name=self._work_pool_name)
            except Exception as exc:  # noqa: BLE001 - keep polling with what was known (or the whole pool)
                self._logger.debug("could not list the pool's queues: %s", exc)
                return self._pool_queues[1] if self._pool_queues else None
            self._pool_queues = (time.monotonic(), sorted(q.name for q in found if can_take(q.name, self.labels)))
        return self._pool_queues[1]

    async def _create_work_queues(self) -> None:
        """Create the queues this worker polls and those of its host labels once: Prefect answers a
        poll naming a queue that does not exist yet with 404, and the worker would take no run at all."""
        wanted = set(self._work_queues or ()) | set(host_queues(self.labels))
        if self._queues_created or not wanted or self._work_pool is None:
            return
        from prefect.exceptions import ObjectAlreadyExists

        for name in sorted(wanted):
            try:
                await self.client.create_work_queue(name=name, work_pool_name=self._work_pool_name)
            except ObjectAlreadyExists:
                pass
        self._queues_created = True

    async def _use_pool_docker_host(self) -> None:
        """Telemetry and recovery look at the pool's Docker engine (its `docker_host` block)."""
        if self._work_pool is None:
            return
        try:
            defaults = await self.job_configuration.from_template_and_values(
                self._work_pool.base_job_template, {}, client=self.client
            )
        except Exception as exc:  # noqa: BLE001 - e.g. a deleted block: report, keep the local engine
            self._logger.warning("pool's docker_host could not be resolved (%s); using the local engine", exc)
            return
        self._engine = defaults.docker_host

    async def _worker_metadata(self) -> WorkerMetadata | None:
        metadata = await super()._worker_metadata()
        facts = await anyio.to_thread.run_sync(docker_host_facts, self._engine)
        if metadata is None:
            return WorkerMetadata(integrations=[], swarmsync=facts)
        return WorkerMetadata(**metadata.model_dump(), swarmsync=facts)
