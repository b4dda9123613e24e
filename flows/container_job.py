"""The `container-job` flow: one JobSpec run as a Docker container, streamed, archived.

Before the tasks, the flow resolves secrets, the image and the input checksums (a job
refused there never runs). Tasks: `run-container` (retried per the job's `retries`) and
`archive-result`. The flow's final state is Completed when the
exit code is allowed, Failed (with exit code and reason) otherwise, Cancelled when
cancelled; in every case the output is archived and the container removed.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

import anyio
from prefect import flow, get_run_logger, task
from prefect.artifacts import LinkArtifact, MarkdownArtifact
from prefect.blocks.system import Secret
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import ArtifactCreate
from prefect.context import FlowRunContext, get_run_context
from prefect.logging.loggers import PrefectLogAdapter
from prefect.states import Cancelled, Completed, Failed, State

from swarmsync import archive, runtime
from swarmsync.docker_runner import (
    ContainerOutcome,
    ContainerRun,
    JobRefused,
    ResolvedImage,
    create_container,
    docker_client,
    find_job_containers,
    input_archive,
    resolve_image,
    thread_with_context,
)
from swarmsync.output import OutputCapture
from swarmsync.policy import HostPolicy
from swarmsync.settings import get_settings
from swarmsync.spec import JobSpec, JobSpecError

REASON_TEXT = {
    "oom": "killed: out of memory",
    "timeout": "timed out",
    "cancelled": "cancelled",
    "refused": "refused",
}


class JobFailed(RuntimeError):
    """A container ended with an exit code the job does not allow (retryable)."""

    def __init__(self, outcome: ContainerOutcome):
        super().__init__(outcome.message)
        self.outcome = outcome


def _stream_logger(stream: str) -> logging.LoggerAdapter:
    """Loggers under prefect.flow_runs reach the run log via Prefect's API handler."""
    ctx = FlowRunContext.get()
    extra = {
        "flow_run_id": str(ctx.flow_run.id),
        "flow_run_name": ctx.flow_run.name,
        "flow_name": ctx.flow.name,
    }
    return PrefectLogAdapter(logging.getLogger(f"prefect.flow_runs.{stream}"), extra)


async def _resolve_secrets(spec: JobSpec) -> dict[str, str]:
    values = {}
    for env_name, block_name in spec.secrets.items():
        try:
            values[env_name] = (await Secret.aload(block_name)).get()
        except ValueError as exc:
            raise JobRefused(f"secret {env_name}: Secret block {block_name!r} not found") from exc
    return values


async def prepare_job(spec: JobSpec) -> tuple[ResolvedImage, bytes | None]:
    """Resolve the image per pull policy and verify every input file's SHA-256."""
    logger = get_run_logger()
    client = docker_client()
    pull_policy = spec.pull_policy or runtime.current_pull_policy.get() or get_settings().pull_policy
    image = await anyio.to_thread.run_sync(resolve_image, client, spec, pull_policy, _registry_login(client))
    logger.info("image %s resolved to %s", spec.image, image.digest)
    inputs = await anyio.to_thread.run_sync(input_archive, spec)
    if spec.inputs:
        logger.info("%d input file(s) verified by SHA-256", len(spec.inputs))
    return image, inputs


def _registry_login(client: Any) -> Callable[[], None] | None:
    """Log in with the pool's registry credentials (called only before a pull)."""
    credentials = runtime.current_registry_credentials.get()
    if credentials is None:
        return None
    return partial(
        client.login, username=credentials.username, password=credentials.password.get_secret_value(),
        registry=credentials.registry_url, reauth=credentials.reauth,
    )


async def _watch_cancellation(flow_run_id: str, run: ContainerRun, every: float) -> None:
    """Stop the container when the run is cancelled from the UI, CLI or API: told by the
    SwarmSync worker's shared watcher, or (under any other worker) by polling."""
    cancelled = runtime.current_cancel_event.get()
    if cancelled is not None:
        await cancelled.wait()
    else:
        async with get_client() as client:
            while True:
                await anyio.sleep(every)
                state = (await client.read_flow_run(flow_run_id)).state
                if state and (state.is_cancelling() or state.is_cancelled()):
                    break
    run.cancel_requested.set()
    await anyio.to_thread.run_sync(run.stop)


@task(name="run-container", persist_result=False)
async def run_container(
    spec: JobSpec, image: ResolvedImage, inputs: bytes | None, secret_values: dict[str, str],
    policy: HostPolicy,
) -> ContainerOutcome:
    """Create, start, stream and wait for the container; harvest its output folder."""
    settings = get_settings()
    flow_run_id = str(get_run_context().task_run.flow_run_id)
    spool = settings.home_dir / "spool" / flow_run_id
    shutil.rmtree(spool, ignore_errors=True)
    loggers = {s: _stream_logger(s) for s in ("stdout", "stderr", "marker")}
    capture = OutputCapture(
        spool, lambda stream, line: loggers[stream].info(line), settings.log_cap_bytes,
        secrets=list(secret_values.values()),
    )
    client = docker_client()
    worker = os.environ.get("PREFECT__WORKER_NAME") or socket.gethostname()
    await _finish_removals()  # a retry must not find (and adopt) the previous attempt's container
    existing = await anyio.to_thread.run_sync(find_job_containers, client, flow_run_id)
    run: ContainerRun | None = None
    try:
        if existing:  # this run's worker died mid-job: take its container over, never start another
            get_run_logger().warning(
                "resuming: following container %s left by a previous worker", existing[0].short_id
            )
            run = ContainerRun(client, existing[0], capture)
            await anyio.to_thread.run_sync(run.adopt)
            remaining = max(spec.timeout - run.elapsed(), 0.001) if spec.timeout else None
            started = time.time() - run.elapsed()
        else:
            container = await anyio.to_thread.run_sync(
                create_container, client, spec, image, policy, flow_run_id, secret_values, worker,
                runtime.current_pool.get(),
            )
            run = ContainerRun(client, container, capture)
            await anyio.to_thread.run_sync(run.start, inputs)
            remaining, started = spec.timeout, time.time()
        async with anyio.create_task_group() as tg:
            tg.start_soon(_watch_cancellation, flow_run_id, run, settings.cancel_poll_seconds)
            exit_code, reason = await anyio.to_thread.run_sync(run.wait, remaining)
            tg.cancel_scope.cancel()
        outcome = ContainerOutcome(
            exit_code, reason, describe(spec, exit_code, reason), started, time.time()
        )
        if spec.output_dir:
            dest = spool / archive.FILES_ARCHIVE
            outcome.output_note = await anyio.to_thread.run_sync(run.harvest, spec.output_dir, dest)
    finally:
        capture.close()
        if run is not None:
            _remove_soon(run)
    if reason != "cancelled" and (reason or exit_code not in spec.allowed_exit_codes):
        raise JobFailed(outcome)
    return outcome


def _remove_soon(run: ContainerRun) -> None:
    """Remove the container in the background while the result is archived; the flow waits
    for it before it ends (see `_removals`). Outside a job flow, remove at once."""
    pending = runtime.pending_removals.get()
    if pending is None:
        run.remove()
        return
    thread = thread_with_context(run.remove)
    thread.start()
    pending.append(thread)


def describe(spec: JobSpec, exit_code: int | None, reason: str | None) -> str:
    if reason == "timeout":
        return f"timed out after {spec.timeout:g} s (exit code {exit_code})"
    if reason == "oom":
        return f"killed: out of memory (limit {spec.memory or 'pool default'}, exit code {exit_code})"
    if reason == "cancelled":
        return f"cancelled (exit code {exit_code})"
    if exit_code in spec.allowed_exit_codes:
        return f"exit code {exit_code}"
    return f"exit code {exit_code} (allowed: {', '.join(map(str, spec.allowed_exit_codes))})"


@task(name="archive-result", persist_result=False)
async def archive_result(spec: JobSpec, image: ResolvedImage | None, outcome: ContainerOutcome,
                         state: str) -> dict[str, Any]:
    """Write the archive and its manifest, index it, and link it from the run (the artifacts:
    under the SwarmSync worker, right after the run's final state is set)."""
    ctx = get_run_context()
    flow_run_id = str(ctx.task_run.flow_run_id)
    spool = get_settings().home_dir / "spool" / flow_run_id
    spool.mkdir(parents=True, exist_ok=True)
    for name in archive.TEXT_FILES:  # a job refused before it ran still gets (empty) .txt files
        (spool / name).touch()
    manifest = {
        "spec": spec.public_dict(),
        "image_digest": image.digest if image else None,
        "image_id": image.image_id if image else None,
        "state": state,
        "exit_code": outcome.exit_code,
        "reason": outcome.reason,
        "message": outcome.message,
        "output_note": outcome.output_note,
        "started_at": _iso(outcome.started_at),
        "finished_at": _iso(outcome.finished_at),
        "duration_seconds": round(outcome.finished_at - outcome.started_at, 3),
        "worker": os.environ.get("PREFECT__WORKER_NAME") or socket.gethostname(),
    }
    block = runtime.current_archive_block.get()
    store = await anyio.to_thread.run_sync(archive.get_archive_store, block)
    location, manifest = await archive.write_archive(flow_run_id, spool, manifest, store)
    shutil.rmtree(spool, ignore_errors=True)
    link = f"file://{location}" if location.startswith("/") else location
    ids = {"flow_run_id": ctx.task_run.flow_run_id, "task_run_id": ctx.task_run.id}
    artifacts = [  # Prefect's own artifact kinds, formatted by Prefect, sent with explicit run ids
        ArtifactCreate(type=kind.type, description=kind.description, data=await kind.aformat(), **ids)
        for kind in (
            MarkdownArtifact(markdown=_summary_markdown(manifest, location), description="SwarmSync job result"),
            LinkArtifact(link=link, link_text="archived result", description="SwarmSync archive"),
        )
    ]
    deferred = runtime.after_final_state.get()
    async with anyio.create_task_group() as tg:  # the index row, and the artifacts unless the worker defers them
        tg.start_soon(anyio.to_thread.run_sync, archive.index_archive, manifest, location, block)
        if deferred is None:
            tg.start_soon(create_artifacts, artifacts)
    if deferred is not None:
        deferred.append(partial(create_artifacts, artifacts))
    return manifest


async def create_artifacts(artifacts: list[ArtifactCreate]) -> None:
    """The run's summary and its link to the archive, created at once."""
    async with get_client() as client, anyio.create_task_group() as tg:
        for artifact in artifacts:
            tg.start_soon(client.create_artifact, artifact)


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat() if ts else None


def _summary_markdown(manifest: dict[str, Any], location: str) -> str:
    rows = "\n".join(
        f"| `{name}` | {meta['size']} | `{meta['sha256']}` |"
        for name, meta in manifest["files"].items()
    )
    return (
        f"### Job {manifest['job_id']}: {manifest['state']}\n\n"
        f"- image: `{manifest['spec']['image']}` ({manifest['image_digest']})\n"
        f"- result: {manifest['message']}\n- archive: `{location}`\n\n"
        f"| file | bytes | sha256 |\n|---|---|---|\n{rows}\n"
    )


@flow(name="container-job", persist_result=False, log_prints=True)
async def container_job(job: JobSpec) -> State:
    """Run `job` in a container on this worker's Docker engine and archive the result."""
    logger = get_run_logger()
    spec = job
    policy = runtime.current_policy.get() or HostPolicy()
    started = time.time()
    logger.info("job: %s %s", spec.image, spec.display_command())
    flow_run_id = str(FlowRunContext.get().flow_run.id)
    # A run SwarmSync's worker claimed from a waiting state never ran (swarmsync/claim.py), and
    # one sent back to AwaitingRetry (the Prefect UI's Retry) is to run again: no lookup on that
    # path. A run resumed after its worker died (maybe past archiving), or run by another worker
    # type, returns its archived outcome, if it has one, instead of starting a second container.
    claimed = runtime.claimed_from.get()
    if claimed in (None, "Resuming") and (done := await anyio.to_thread.run_sync(archive.indexed_outcome, flow_run_id)):
        logger.warning("job %s already ran to %s; not running it again", flow_run_id, done[0])
        state_type = {"COMPLETED": Completed, "CANCELLED": Cancelled}.get(done[0], Failed)
        return state_type(message=done[1])
    removals = runtime.pending_removals.set([])
    try:
        return await _run_job(spec, policy, logger, started)
    finally:
        await _finish_removals()
        runtime.pending_removals.reset(removals)


async def _finish_removals() -> None:
    pending = runtime.pending_removals.get() or []
    while pending:
        await anyio.to_thread.run_sync(pending.pop().join)


async def _run_job(spec: JobSpec, policy: HostPolicy, logger: Any, started: float) -> State:
    image: ResolvedImage | None = None
    try:
        secret_values = await _resolve_secrets(spec)
        image, inputs = await prepare_job(spec)
        runner = run_container.with_options(
            retries=spec.retries, retry_delay_seconds=spec.retry_delay,
            retry_condition_fn=lambda _t, _r, state: not _refused(state),
        )
        outcome = await runner(spec, image, inputs, secret_values, policy)
    except JobFailed as exc:
        outcome = exc.outcome
    except (JobRefused, JobSpecError) as exc:
        logger.error("job refused: %s", exc)
        outcome = ContainerOutcome(None, "refused", f"refused: {exc}", started, time.time())
    except Exception as exc:  # noqa: BLE001 - archive what happened, whatever it was
        logger.exception("job error")
        outcome = ContainerOutcome(None, "error", f"error: {type(exc).__name__}: {exc}", started, time.time())
    if outcome.reason == "cancelled":
        final = "CANCELLED"
    elif outcome.reason is None and outcome.exit_code in spec.allowed_exit_codes:
        final = "COMPLETED"
    else:
        final = "FAILED"
    manifest = await archive_result(spec, image, outcome, final)
    summary = {k: manifest.get(k) for k in ("job_id", "exit_code", "reason", "message", "files")}
    state_type = {"COMPLETED": Completed, "FAILED": Failed, "CANCELLED": Cancelled}[final]
    return state_type(message=outcome.message, data=summary)


def _refused(state: State) -> bool:
    try:
        state.result(raise_on_failure=True)
    except (JobRefused, JobSpecError):
        return True
    except Exception:  # noqa: BLE001
        return False
    return False
