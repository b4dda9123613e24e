"""The `container-job` flow: one JobSpec run as a Docker container, streamed, archived.

The flow reads as the job's steps: check the job against the pool's policy, resolve its
secrets, image and input checksums (a job refused there never runs), then the task
`run-container` (retried per the job's `retries`), then archiving the result (a step of the
flow, like preparing: no task run). What an outcome means (messages, final state, manifest,
summary) lives in `swarmsync.outcome`; how a container runs in `swarmsync.docker_runner`;
what the worker hands over in `swarmsync.runtime.JobRuntime`.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import time
from collections.abc import Callable
from contextlib import nullcontext
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

import anyio
from prefect import Task, flow, get_run_logger, task
from prefect.artifacts import MarkdownArtifact
from prefect.blocks.system import Secret
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import ArtifactCreate
from prefect.context import FlowRunContext, get_run_context
from prefect.logging.loggers import PrefectLogAdapter
from prefect.states import State

from swarmsync import archive, core_link, job_events, outcome
from swarmsync.archive.core_store import CoreStore
from swarmsync.core_link import CoreLink
from swarmsync.docker_runner import (
    ContainerOutcome,
    ContainerRun,
    JobRefused,
    ResolvedImage,
    docker_client_async,
    input_archive,
    resolve_image,
    start_or_adopt,
    thread_with_context,
)
from swarmsync.errors import Error
from swarmsync.output import Interleaved, OutputCapture
from swarmsync.owners import DEFAULT_PROJECT
from swarmsync.runtime import JobRuntime
from swarmsync.service_group import GroupRun, group_output, start_or_adopt_group
from swarmsync.settings import get_settings
from swarmsync.spec import JobSpec, JobSpecError
from swarmsync.usage import total


class JobFailed(Error, RuntimeError):
    """A container ended with an exit code the job does not allow (retryable)."""

    def __init__(self, result: ContainerOutcome):
        super().__init__(result.message)
        self.outcome = result


def _stream_logger(stream: str) -> logging.LoggerAdapter:
    """Loggers under prefect.flow_runs reach the run log via Prefect's API handler."""
    ctx = FlowRunContext.get()
    extra = {
        "flow_run_id": str(ctx.flow_run.id),
        "flow_run_name": ctx.flow_run.name,
        "flow_name": ctx.flow.name,
    }
    return PrefectLogAdapter(logging.getLogger(f"prefect.flow_runs.{stream}"), extra)


def _worker_name() -> str:
    return os.environ.get("PREFECT__WORKER_NAME") or socket.gethostname()


async def _resolve_secrets(spec: JobSpec) -> dict[str, str]:
    values = {}
    for env_name, block_name in spec.secrets.items():
        try:
            values[env_name] = (await Secret.aload(block_name)).get()
        except ValueError as exc:
            raise JobRefused(f"secret {env_name}: Secret block {block_name!r} not found") from exc
    return values


async def prepare_job(
    spec: JobSpec, runtime: JobRuntime
) -> tuple[ResolvedImage, bytes | None, dict[str, ResolvedImage]]:
    """Resolve the images per pull policy (the main's, and each service's) and verify every input
    file's SHA-256 (a step of the flow, not a task: it costs no task run)."""
    logger = get_run_logger()
    client = await docker_client_async(runtime.engine)  # a first client's round trip: never on the loop
    pull_policy = spec.pull_policy or runtime.pull_policy or get_settings().pull_policy
    login = _registry_login(client, runtime.registry_credentials)
    image = await anyio.to_thread.run_sync(resolve_image, client, spec, pull_policy, login)
    logger.info("image %s resolved to %s", spec.image, image.digest)
    if why := runtime.policy.image_user_refusal(spec.image, image.user, spec.user):
        raise JobRefused(why)
    service_images = {}
    for name, service in spec.services.items():
        as_job = JobSpec(image=service.image, pull_policy=spec.pull_policy)
        resolved = await anyio.to_thread.run_sync(resolve_image, client, as_job, pull_policy, login)
        if why := runtime.policy.image_user_refusal(service.image, resolved.user, service.user):
            raise JobRefused(f"service {name}: {why}")
        service_images[name] = resolved
        logger.info("service %s: image %s resolved to %s", name, service.image, resolved.digest)
    inputs = await anyio.to_thread.run_sync(input_archive, spec)
    if spec.inputs:
        logger.info("%d input file(s) verified by SHA-256", len(spec.inputs))
    return image, inputs, service_images


def _registry_login(client: Any, credentials: Any | None) -> Callable[[], None] | None:
    """Log in with the pool's registry credentials (called only before a pull)."""
    if credentials is None:
        return None
    return partial(
        client.login, username=credentials.username, password=credentials.password.get_secret_value(),
        registry=credentials.registry_url, reauth=credentials.reauth,
    )


async def _watch_cancellation(flow_run_id: str, run: ContainerRun, runtime: JobRuntime, every: float) -> None:
    """Stop the container when the run is cancelled from the UI, CLI or API: told by the
    SwarmSync worker's shared watcher, or (under any other worker) by polling."""
    if runtime.cancel_event is not None:
        await runtime.cancel_event.wait()
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
    service_images: dict[str, ResolvedImage] | None = None,
) -> ContainerOutcome:
    """Start (or, after a worker died, adopt) the container, stream and wait for it; harvest its output folder."""
    runtime = JobRuntime.current()
    settings = get_settings()
    flow_run_id = str(get_run_context().task_run.flow_run_id)
    spool = settings.home_dir / "spool" / flow_run_id
    shutil.rmtree(spool, ignore_errors=True)
    loggers = {s: _stream_logger(s) for s in ("stdout", "stderr", "marker")}
    client = await docker_client_async(runtime.engine)
    await _finish_removals(runtime)  # a retry must not find (and adopt) the previous attempt's container
    run: ContainerRun | GroupRun | None = None
    if spec.services:  # a group: a capture per container, one interleaved output.txt
        captures, interleaved = group_output(
            spool, lambda stream, line: loggers[stream].info(line), settings.log_cap_bytes,
            list(secret_values.values()), runtime.policy.max_output_bytes, spec)
        close_output = partial(_close_group_output, captures, interleaved)
    else:
        capture = OutputCapture(
            spool, lambda stream, line: loggers[stream].info(line), settings.log_cap_bytes,
            secrets=list(secret_values.values()), max_bytes=runtime.policy.max_output_bytes,
        )
        close_output = capture.close
    try:
        if spec.services:
            images = {**(service_images or {}), spec.main_service: image}
            run, remaining, started, adopted = await anyio.to_thread.run_sync(
                start_or_adopt_group, client, spec, images, runtime.policy, flow_run_id, secret_values, captures,
                interleaved, inputs, _worker_name(), runtime.pool,
            )
        else:
            run, remaining, started, adopted = await anyio.to_thread.run_sync(
                start_or_adopt, client, spec, image, runtime.policy, flow_run_id, secret_values, capture, inputs,
                _worker_name(), runtime.pool,
            )
        if adopted:
            get_run_logger().warning(
                "resuming: following container %s left by a previous worker", run.container.short_id
            )
        else:
            _emit(job_events.STARTED, flow_run_id, spec, runtime)
        async with anyio.create_task_group() as tg:
            tg.start_soon(_watch_cancellation, flow_run_id, run, runtime, settings.cancel_poll_seconds)
            exit_code, reason = await anyio.to_thread.run_sync(run.wait, remaining)
            tg.cancel_scope.cancel()
        if spec.output_dir:
            dest = spool / archive.FILES_ARCHIVE
            note = await anyio.to_thread.run_sync(run.harvest, spec.output_dir, dest, runtime.policy.max_files_bytes)
            if run.cap_reason == "files-cap" and reason is None:
                reason = "files-cap"
        if reason is None and outcome.ran_out_of_space(spool, exit_code, spec, runtime.policy):
            reason = "no-space"
        message = outcome.describe(spec, exit_code, reason, runtime.policy)
        if isinstance(run, GroupRun):
            message = run.failure if reason == "service" and run.failure else message
        result = ContainerOutcome(exit_code, reason, message, started, time.time())
        if spec.output_dir:
            result.output_note = note
        if isinstance(run, GroupRun):
            result.extra["containers"] = run.manifest()
            result.extra["usage"] = run.usage(result.finished_at - started).as_dict()
        else:
            result.extra["usage"] = total([run.usage], result.finished_at - started).as_dict()
    finally:
        close_output()
        if run is not None:
            _remove_soon(run, runtime)
    if outcome.is_failure(spec, exit_code, reason):
        raise JobFailed(result)
    return result


def _close_group_output(captures: dict[str, OutputCapture], interleaved: Interleaved) -> None:
    for capture in captures.values():
        capture.close()
    interleaved.close()


def _remove_soon(run: ContainerRun | GroupRun, runtime: JobRuntime) -> None:
    """Remove the container in the background while the result is archived; the flow waits
    for it before it ends (see `_finish_removals`)."""
    thread = thread_with_context(run.remove)
    thread.start()
    runtime.pending_removals.append(thread)


async def _finish_removals(runtime: JobRuntime) -> None:
    while runtime.pending_removals:
        await anyio.to_thread.run_sync(runtime.pending_removals.pop().join)


async def archive_result(spec: JobSpec, image: ResolvedImage | None, result: ContainerOutcome,
                         state: str) -> dict[str, Any]:
    """Write the archive and its manifest, index it, and link it from the run (the artifacts:
    under the SwarmSync worker, right after the run's final state is set). A step of the flow,
    not a task: a task run costs the Prefect server three state events and four rows per job
    (~15% of its CPU per job, docs/benchmarks.md), and archiving is neither retried nor cached."""
    runtime = JobRuntime.current()
    flow_run_id = str(FlowRunContext.get().flow_run.id)
    spool = get_settings().home_dir / "spool" / flow_run_id
    spool.mkdir(parents=True, exist_ok=True)
    for name in archive.TEXT_FILES:  # a job refused before it ran still gets (empty) .txt files
        (spool / name).touch()
    manifest = {**outcome.build_manifest(spec, image, result, state, _worker_name()),
                "project": runtime.project or DEFAULT_PROJECT, "owner": runtime.submitter,
                "pool": runtime.pool, "due_at": _due_at()}
    link = core_link.current()  # a worker host with a token: the archive goes to Core, which indexes it
    try:
        location, manifest = await _store_archive(flow_run_id, spool, manifest, runtime.archive_block, link)
    except archive.ArchiveStoreError as exc:  # the outcome is kept (indexed); the files stay on this host
        return await _keep_unstored(flow_run_id, spool, manifest, runtime, exc, link)
    shutil.rmtree(spool, ignore_errors=True)  # only now: the store (or Core) confirmed the archive
    ids = {"flow_run_id": FlowRunContext.get().flow_run.id}
    # Prefect's own artifact kind, formatted by Prefect, sent with an explicit run id
    summary = MarkdownArtifact(markdown=outcome.summary_markdown(manifest, location),
                               description="SwarmSync job result")
    artifacts = [ArtifactCreate(type=summary.type, description=summary.description,
                                data=await summary.aformat(), **ids)]
    deferred = runtime.after_final_state
    async with anyio.create_task_group() as tg:  # the index row, and the artifacts unless the worker defers them
        if link is None:  # with a link, Core indexed it when it took the archive
            tg.start_soon(anyio.to_thread.run_sync, archive.index_archive, manifest, location, runtime.archive_block)
        if deferred is None:
            tg.start_soon(create_artifacts, artifacts)
    if deferred is not None:
        deferred.append(partial(create_artifacts, artifacts))
    return manifest


def _due_at() -> str | None:
    """When the run was due to start (its expected start time), for the queue-wait metric."""
    ctx = FlowRunContext.get()
    due = ctx.flow_run.expected_start_time if ctx else None
    return due.isoformat() if due else None


async def _store_archive(job_id: str, spool: Path, manifest: dict[str, Any],
                         block: str | None, link: CoreLink | None = None) -> tuple[str, dict[str, Any]]:
    """Write the archive, trying SWARMSYNC_ARCHIVE_WRITE_ATTEMPTS times (2, 4, ... s apart) when
    its store cannot be loaded or reached; the last failure is raised as ArchiveStoreError.
    With a `link` (a worker host with a token), upload it to Core instead: chunks resumed at Core's
    size through cuts of up to SWARMSYNC_CORE_UPLOAD_PATIENCE_SECONDS, then committed (Core writes
    it into its store, the pool's block, and indexes it); `block` is Core's to choose then."""
    if link is not None:
        return await archive.write_archive(job_id, spool, manifest, CoreStore(link))
    attempts = get_settings().archive_write_attempts
    for attempt in range(1, attempts + 1):
        try:
            try:
                store = await anyio.to_thread.run_sync(archive.store_for, block)
            except Exception as exc:  # noqa: BLE001 - a deleted block, Prefect unreachable, ...
                raise archive.ArchiveStoreError(
                    f"archive store {block or 'SWARMSYNC_ARCHIVE_BLOCK'} cannot be loaded: "
                    f"{type(exc).__name__}: {str(exc)[:300]}") from None
            return await archive.write_archive(job_id, spool, manifest, store)
        except archive.ArchiveStoreError as exc:
            if attempt == attempts:
                raise
            logging.getLogger("swarmsync.archive").warning("archive of job %s: %s; trying again", job_id, exc)
            await anyio.sleep(2 * attempt)
    raise AssertionError("unreachable")


async def _keep_unstored(job_id: str, spool: Path, manifest: dict[str, Any], runtime: JobRuntime,
                         exc: Exception, link: CoreLink | None = None) -> dict[str, Any]:
    """The store stayed unreachable: index the outcome with no location (downloads then say why),
    keep the files and manifest.json in the spool on this worker host, and say so in the run's message.
    With a `link`, Core indexes it (if Core cannot be told either, the run's message still says it)."""
    manifest = await anyio.to_thread.run_sync(archive.spool_manifest, job_id, spool, manifest)
    note = f"archive not stored ({exc}); its files are kept on worker host {socket.gethostname()} in {spool}"
    get_run_logger().error(note)
    indexed = {**manifest, "message": f"{manifest.get('message') or ''}; {note}".lstrip("; ")}
    if link is not None:
        try:
            await anyio.to_thread.run_sync(CoreStore(link).report_unstored, job_id, indexed)
        except archive.ArchiveStoreError as report:
            get_run_logger().error("the outcome of job %s is not indexed either: %s", job_id, report)
        return {**manifest, "archive_error": note}
    await anyio.to_thread.run_sync(archive.index_archive, indexed, "", runtime.archive_block)
    return {**manifest, "archive_error": note}


async def create_artifacts(artifacts: list[ArtifactCreate]) -> None:
    """The run's artifacts (its summary), one after the other through one connection of the worker's client
    (sent at once, a second opened a new connection for most jobs of a burst); they are sent after the final
    state, so nobody waits for them."""
    async with get_client() as client:
        for artifact in artifacts:
            await client.create_artifact(artifact)




@flow(name="container-job", persist_result=False, log_prints=True)
async def container_job(job: JobSpec) -> State:
    """Run `job` in a container on this worker's Docker engine and archive the result."""
    logger = get_run_logger()
    runtime = JobRuntime.get()
    with nullcontext(runtime) if runtime else JobRuntime() as runtime:
        logger.info("job: %s %s", job.image, job.display_command())
        flow_run_id = str(FlowRunContext.get().flow_run.id)
        # A run SwarmSync's worker claimed from a waiting state never ran (swarmsync/claim.py), and
        # one sent back to AwaitingRetry (the Prefect UI's Retry) is to run again: no lookup on that
        # path. A run resumed after its worker died (maybe past archiving), or run by another worker
        # type, returns its archived outcome, if it has one, instead of starting a second container.
        if runtime.claimed_from in (None, "Resuming") and (
            done := await anyio.to_thread.run_sync(_archived_outcome, flow_run_id)
        ):
            logger.warning("job %s already ran to %s; not running it again", flow_run_id, done[0])
            return outcome.final_state(done[0], done[1])
        try:
            return await _run_job(job, runtime, logger)
        finally:
            await _finish_removals(runtime)


def _archived_outcome(flow_run_id: str) -> tuple[str, str | None] | None:
    """The run's archived outcome: from Core on a worker host with a token, else from the index."""
    link = core_link.current()
    return link.run_outcome(flow_run_id) if link is not None else archive.indexed_outcome(flow_run_id)


def _retry_unless_refused(_task: Any, _run: Any, state: State) -> bool:
    return not _refused(state)


@lru_cache(maxsize=64)
def _runner(retries: int, retry_delay: float) -> Task:
    """The container task with the job's retries: made once per (retries, delay), not per job (a Task is a
    definition, and making one costs ~1 ms of the worker's CPU)."""
    return run_container.with_options(retries=retries, retry_delay_seconds=retry_delay,
                                      retry_condition_fn=_retry_unless_refused)


async def _run_job(spec: JobSpec, runtime: JobRuntime, logger: Any) -> State:
    started = time.time()
    image: ResolvedImage | None = None
    try:
        spec = runtime.check(spec)  # who may use the pool, and the job as it runs: before anything is pulled
        secret_values = await _resolve_secrets(spec)
        image, inputs, service_images = await prepare_job(spec, runtime)
        runner = _runner(spec.retries, spec.retry_delay)
        result = await runner(spec, image, inputs, secret_values, service_images or None)
    except JobFailed as exc:
        result = exc.outcome
    except (JobRefused, JobSpecError) as exc:
        logger.error("job refused: %s", exc)
        result = ContainerOutcome(None, "refused", f"refused: {exc}", started, time.time())
    except Exception as exc:  # noqa: BLE001 - archive what happened, whatever it was
        logger.exception("job error")
        result = ContainerOutcome(None, "error", f"error: {type(exc).__name__}: {exc}", started, time.time())
    final = outcome.final_state_type(spec, result.exit_code, result.reason)
    flow_run_id = str(FlowRunContext.get().flow_run.id)
    reason = result.reason or ("exit-code" if final == "FAILED" else None)  # a plain failure: its exit code
    facts = {"outcome": final, "exit_code": result.exit_code, "reason": reason, "message": result.message}
    _emit(job_events.final_event(result.reason), flow_run_id, spec, runtime, **facts)
    manifest = await archive_result(spec, image, result, final)
    _emit(job_events.ARCHIVED, flow_run_id, spec, runtime, **facts)
    message = f"{result.message}; {manifest['archive_error']}" if manifest.get("archive_error") else result.message
    return outcome.final_state(final, message, outcome.summary(manifest))


def _emit(event: str, flow_run_id: str, spec: JobSpec, runtime: JobRuntime, **facts: Any) -> None:
    """A lifecycle event of this job (swarmsync.job_events: fire and forget, never raises)."""
    job_events.emit(event, flow_run_id, user=runtime.submitter, project=runtime.project or DEFAULT_PROJECT,
                    pool=runtime.pool or get_settings().work_pool, host=_worker_name(), image=spec.image, **facts)


def _refused(state: State) -> bool:
    try:
        state.result(raise_on_failure=True)
    except (JobRefused, JobSpecError):
        return True
    except Exception:  # noqa: BLE001
        return False
    return False
