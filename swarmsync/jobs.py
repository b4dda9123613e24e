"""The public Python API for jobs: submit, find, wait, fetch results, cancel.

A job's id is its Prefect flow-run id, so every job is also visible in the Prefect UI
and API. The CLI (and later the dashboard and HTTP API) call these same functions.
"""

from __future__ import annotations

import functools
import inspect
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from prefect.blocks.system import Secret
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowFilter,
    FlowFilterName,
    LogFilter,
    LogFilterTimestamp,
)
from prefect.client.schemas.objects import FlowRun
from prefect.client.schemas.sorting import LogSort
from prefect.exceptions import ObjectNotFound
from prefect.states import Cancelled, Cancelling, Scheduled
from pydantic import ConfigDict, TypeAdapter

from swarmsync import archive, job_events
from swarmsync.auth import secret_owners
from swarmsync.connection import api_url, uses_prefect_api
from swarmsync.job_errors import JobNotFound
from swarmsync.job_handle import JobHandle, Submission
from swarmsync.job_pages import DUE, LATER, TICK, JobCursor, JobPage, page_after, page_at_offset, section_filter
from swarmsync.job_rows import JobResult, JobSummary, described
from swarmsync.log_follow import LOG_BATCH, LogEntry
from swarmsync.owners import (
    owner_labels,
    owner_tags,
    project_of,
    project_tag,
    submitted_by,
    user_tag,
    without_user_tags,
)
from swarmsync.routing import labels_of_queue
from swarmsync.schedule_rows import JOB_FLOW_NAME
from swarmsync.settings import get_settings
from swarmsync.spec import JobSpec, JobSpecError, job_run_name
from swarmsync.timing import start_time


@dataclass(kw_only=True)
class JobRow(JobSummary):
    """One job as listings show it (CLI, dashboard, `GET /jobs`): the same fields everywhere."""

    __pydantic_config__ = ConfigDict(json_schema_extra=described)  # the fields' descriptions in the API's schema

    flow_run: FlowRun = field(metadata={"description": "The Prefect flow run behind the job"})

    @classmethod
    def from_api(cls, body: dict[str, Any]) -> JobRow:
        """A row from the API's JSON, its flow run with it (validated by pydantic, as the API wrote it)."""
        return _row_adapter().validate_python(body)

    @classmethod
    def from_flow_run(cls, run: FlowRun) -> JobRow:
        job = dict((run.parameters or {}).get("job") or {})
        command = job.get("command")
        duration = (run.end_time - run.start_time).total_seconds() if run.start_time and run.end_time else None
        return cls(
            id=str(run.id), state=run.state.name if run.state else None,
            state_type=run.state.type.value if run.state else None,
            final=bool(run.state and run.state.is_final()), message=run.state.message if run.state else None,
            user=submitted_by(run), project=project_of(run), image=job.get("image", ""),
            command=" ".join(command) if isinstance(command, list) else (command or ""),
            tags=list(run.tags or []), queue=run.work_queue_name, created=run.created,
            scheduled=run.expected_start_time, started=run.start_time, ended=run.end_time, duration_s=duration,
            exit_code=_exit_code(run.state.message if run.state and run.state.is_final() else None), flow_run=run,
        )


@functools.cache
def _row_adapter() -> TypeAdapter[JobRow]:
    return TypeAdapter(JobRow)


def _exit_code(message: str | None) -> int | None:
    """The exit code a final state's message names ('exit code 3', '... (exit code 137)'; swarmsync.outcome)."""
    found = re.search(r"exit code (-?\d+)", message or "")
    return int(found.group(1)) if found else None


class Job(JobHandle):
    """A handle on one submitted job, asking Prefect (on the server host)."""

    @uses_prefect_api
    def flow_run(self) -> FlowRun:
        self._flow_run = self._read_flow_run()
        return self._flow_run

    def result(self) -> JobResult:
        """The archived result; ArchiveNotFound while the job has not finished."""
        manifest = archive.read_manifest(self.id)
        return JobResult(
            job_id=self.id,
            state=manifest["state"],
            exit_code=manifest.get("exit_code"),
            reason=manifest.get("reason"),
            message=manifest.get("message"),
            manifest=manifest,
            archive_location=archive.archive_location(archive.store_for_job(self.id), self.id),
        )

    @uses_prefect_api
    def states(self) -> list[tuple[datetime, str, str, str | None]]:
        """The run's state history, oldest first: (timestamp, type, name, message)."""
        with get_client(sync_client=True) as client:
            try:
                states = client.read_flow_run_states(UUID(self.id))
            except ObjectNotFound:
                raise JobNotFound(f"no job with id {self.id}") from None
        states.sort(key=lambda st: st.timestamp)
        return [(st.timestamp, st.type.value, st.name or st.type.value.title(), st.message) for st in states]

    @uses_prefect_api
    def cancel(self) -> None:
        """Ask the job to stop: its container is stopped and partial output archived. A job
        that has not started (scheduled, or pending without a worker process) is cancelled
        at once: no worker would ever look at it again to finish a 'Cancelling'."""
        with get_client(sync_client=True) as client:
            run = client.read_flow_run(UUID(self.id))
            state = run.state
            if state is not None and state.is_final():
                return
            if state is None or state.is_scheduled() or (state.is_pending() and not run.infrastructure_pid):
                client.set_flow_run_state(run.id, Cancelled(message="cancelled by user before it started"), force=True)
                job_events.emit_for_run(job_events.CANCELLED, run, outcome="cancelled", reason="cancelled",
                                        message="cancelled by user before it started")
            else:
                client.set_flow_run_state(run.id, Cancelling(message="cancelled by user"), force=True)

    @uses_prefect_api
    def logs(self, after: datetime | None = None) -> list[tuple[datetime, str, str]]:
        """(timestamp, logger name, message) of the run's log lines, oldest first."""
        flt = LogFilter(flow_run_id={"any_": [UUID(self.id)]})
        if after:
            flt.timestamp = LogFilterTimestamp(after_=after)
        entries: list[tuple[datetime, str, str]] = []
        with get_client(sync_client=True) as client:
            while True:
                page = client.read_logs(
                    log_filter=flt, sort=LogSort.TIMESTAMP_ASC, limit=200, offset=len(entries)
                )
                entries.extend((log.timestamp, log.name, log.message) for log in page)
                if len(page) < 200:
                    return entries

    @uses_prefect_api
    def log_batch(self, since: datetime | None = None, limit: int = LOG_BATCH, offset: int = 0) -> list[LogEntry]:
        """One request: up to `limit` log lines at or after `since`, oldest first, with their ids."""
        flt = LogFilter(flow_run_id={"any_": [UUID(self.id)]})
        if since:
            flt.timestamp = LogFilterTimestamp(after_=since)
        with get_client(sync_client=True) as client:
            page = client.read_logs(log_filter=flt, sort=LogSort.TIMESTAMP_ASC, limit=limit, offset=offset)
        return [LogEntry(log.timestamp, log.name, log.message, str(log.id)) for log in page]

    def rerun(self) -> Job:
        """Submit the job again, unchanged, in its project, pool and queue; returns the new job (the server
        host's Python API records no submitter: the API's `POST /jobs/{id}/rerun` records its caller)."""
        run = self.last_read()
        spec = JobSpec(**(run.parameters or {}).get("job", {}))
        return submit(spec, pool=run.work_pool_name, queue=run.work_queue_name, project=self.project)

    def delete(self) -> None:
        """Delete the finished job: its run, its archive and the Secret blocks made for it (`delete_job`)."""
        delete_job(self.id)
        secret_owners.delete_secrets_of(secret_owners.JOB, self.id)


_DEPLOYMENT_IDS: dict[tuple[str, str], UUID] = {}  # (deployment name, Prefect API URL) -> its id, per process


def _deployment_id(name: str, api: str, client: Any | None = None) -> UUID:
    """The id of deployment `name` on `api`, read once per process: through `client` (a sync Prefect client)
    when given, else a new one. (Remembered by name and API only: the client is not part of the key.)"""
    key = (name, api)
    if key not in _DEPLOYMENT_IDS:
        if client is None:
            with get_client(sync_client=True) as own:
                return _deployment_id(name, api, own)
        try:
            _DEPLOYMENT_IDS[key] = client.read_deployment_by_name(name).id
        except ObjectNotFound:
            raise JobNotFound(
                f"deployment {name!r} not found on {api}: start the stack with 'swarmsync up' "
                "(or create the pool with 'swarmsync pool create')"
            ) from None
    return _DEPLOYMENT_IDS[key]


_deployment_id.cache_clear = _DEPLOYMENT_IDS.clear  # type: ignore[attr-defined] # as functools.cache had it


def deployment_for_pool(pool: str | None) -> str:
    """The job deployment of a work pool: the default pool's, or `container-job/<pool>`."""
    settings = get_settings()
    if pool is None or pool == settings.work_pool:
        return settings.deployment
    return f"{JOB_FLOW_NAME}/{pool}"


def build_spec(image: str, command: list[str] | str | None = None, **options: Any) -> JobSpec:
    """A validated JobSpec from keyword options (JobSpecError/ValidationError if invalid)."""
    return JobSpec(image=image, command=command, **options)


def prepare_spec(
    image: str | JobSpec | None, command: list[str] | str | None, secret_env: dict[str, str] | None,
    options: dict[str, Any], template: str | None = None, *, owner: str | None = None, kind: str = "job",
    ref: str | None = None, project: str | None = None,
) -> JobSpec:
    """The JobSpec of a submission: given, built from options, or a saved template (of `project`) with
    overrides; `secret_env` values are stored as Secret blocks, recorded as `owner`'s
    (`kind` job/schedule, `ref` what they belong to: see swarmsync/auth/secret_owners.py)."""
    if template:
        from swarmsync.templates import template_spec

        if image is not None:
            raise JobSpecError("give a template or an image, not both (the template names the image)")
        spec = template_spec(template, command, project=project, **options)
    elif image is None:
        raise JobSpecError("give an image (or a saved template)")
    else:
        spec = image if isinstance(image, JobSpec) else build_spec(image, command, **options)
    if secret_env:
        stored = _store_secrets(secret_env, owner, kind, ref, project)
        spec = spec.model_copy(update={"secrets": {**spec.secrets, **stored}})
    return spec


def _run_request(spec: JobSpec, at: datetime | None, user: str | None = None,
                 project: str | None = None) -> dict[str, Any]:
    """The run to create; `user` (set by the API from its caller) is recorded as the submitter, and
    `project` (default: the default project) as its project. `swarmsync.user:`/`swarmsync.project:`
    tags in the spec itself are dropped: nobody names them but SwarmSync (swarmsync/owners.py)."""
    tags = without_user_tags(spec.tags)
    if tags != spec.tags:
        spec = spec.model_copy(update={"tags": tags})
    return {
        "name": job_run_name(spec),
        "parameters": {"job": spec.model_dump(mode="json", exclude_defaults=True)},
        "tags": [*tags, *owner_tags(user, project)],
        "labels": owner_labels(user, project),
        "state": Scheduled(scheduled_time=at) if at else None,
    }


run_request = _run_request  # public: a pipeline's parent flow makes its steps' runs the same way


@uses_prefect_api
def submit(
    image: str | JobSpec | None = None,
    command: list[str] | str | None = None,
    *,
    template: str | None = None,
    secret_env: dict[str, str] | None = None,
    at: datetime | str | None = None,
    delay: str | float | timedelta | None = None,
    pool: str | None = None,
    queue: str | None = None,
    idempotency_key: str | None = None,
    user: str | None = None,
    project: str | None = None,
    **options: Any,
) -> Job:
    """Submit a container job; returns at once with a `Job` handle.

    `command` is a list (exec form) or a string run by the image's shell. Other options
    are JobSpec fields (env, memory, cpu, timeout, tags, ...). `secret_env` values are
    stored as Prefect Secret blocks, never as run parameters. `pool`/`queue` route the
    job to a work pool (its `container-job/<pool>` deployment) and queue.

    Delayed jobs: `at` (an aware datetime or ISO string; naive = local time) or `delay`
    ('10m', seconds, timedelta) makes a Scheduled run that starts then and can be
    cancelled until it does; a time in the past is refused (TimingError). `template`
    names a saved job template (of `project`); `command` and options override its fields.
    `user` is recorded as the submitter (the API passes its authenticated caller; see
    owners.py); `project` is the project the job belongs to (default: the default project).
    """
    at = start_time(at, delay)
    spec = prepare_spec(image, command, None, options, template, project=project)
    check_queue(queue)
    # always a key: a create that is sent again (Prefect's client retrying a 502/503, a load balancer
    # replaying a request whose API process died before answering) returns the run made the first time
    idempotency_key = idempotency_key or f"swarmsync-submit-{uuid.uuid4()}"
    # one client for the deployment's lookup (the first time) and the creation: each Prefect client made costs
    # CPU (docs/benchmarks.md, one job's timeline)
    with get_client(sync_client=True) as client:
        deployment_id = _deployment_id(deployment_for_pool(pool), api_url(), client)
        stored = _store_secrets(secret_env, user, project=project) if secret_env else {}
        spec = spec.model_copy(update={"secrets": {**spec.secrets, **stored}}) if stored else spec
        flow_run = client.create_flow_run_from_deployment(
            deployment_id, work_queue_name=queue, idempotency_key=idempotency_key,
            **_run_request(spec, at, user, project),
        )
    if stored:
        secret_owners.attach(stored.values(), str(flow_run.id))  # retention deletes them with the job
    job_events.emit_for_run(job_events.SUBMITTED, flow_run)
    return Job(flow_run.id, flow_run)


def check_queue(queue: str | None) -> None:
    """A `host:` queue (jobs requiring host labels, swarmsync.routing) must name valid labels."""
    try:
        labels_of_queue(queue)
    except ValueError as exc:
        raise JobSpecError(f"queue {queue!r}: {exc}") from None


@uses_prefect_api
def submit_many(
    specs: list[JobSpec], *, pool: str | None = None, queue: str | None = None,
    concurrency: int = 4, attempts: int = 12, project: str | None = None,
) -> list[Submission]:
    """Submit many jobs at once; none is lost or duplicated.

    Each spec gets an idempotency key, so a create that is retried after a transient
    server error (timeouts, 429/5xx, refused connections; retried with exponential
    backoff up to 8 s, for about a minute and a half) returns the run created the first
    time instead of a second one. Four creations at a time: more only adds lock
    contention on a Prefect server backed by SQLite. `project`: the jobs' project (default: the
    default project).
    """
    import anyio

    check_queue(queue)
    deployment_id = _deployment_id(deployment_for_pool(pool), api_url())
    results: list[Submission | None] = [None] * len(specs)

    async def create(index: int, spec: JobSpec, client, limiter) -> None:
        key = f"swarmsync-{uuid.uuid4()}"
        async with limiter:
            for attempt in range(attempts):
                try:
                    run = await client.create_flow_run_from_deployment(
                        deployment_id, work_queue_name=queue, idempotency_key=key,
                        **_run_request(spec, None, project=project),
                    )
                    results[index] = Submission(index, Job(run.id, run))
                    job_events.emit_for_run(job_events.SUBMITTED, run)
                    return
                except Exception as exc:  # noqa: BLE001 - classified below
                    if not is_transient(exc) or attempt == attempts - 1:
                        results[index] = Submission(index, None, f"{type(exc).__name__}: {exc}"[:500])
                        return
                    await anyio.sleep(min(0.25 * 2**attempt, 8))

    async def main() -> None:
        limiter = anyio.CapacityLimiter(concurrency)
        async with get_client() as client, anyio.create_task_group() as tg:
            for index, spec in enumerate(specs):
                tg.start_soon(create, index, spec, client, limiter)

    anyio.run(main)
    return [r for r in results if r is not None]


def is_transient(exc: Exception) -> bool:
    import httpx

    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code in (408, 409, 425, 429) or exc.response.status_code >= 500
    return isinstance(exc, (httpx.TransportError, TimeoutError))


def _store_secrets(values: dict[str, str], owner: str | None = None, kind: str = "job",
                   ref: str | None = None, project: str | None = None) -> dict[str, str]:
    """Each value in a new Secret block `swarmsync-secret-<random>`, recorded as `owner`'s in `project`."""
    refs = {}
    for env_name, value in values.items():
        block_name = f"swarmsync-secret-{uuid.uuid4().hex[:16]}"
        Secret(value=value).save(block_name)
        refs[env_name] = block_name
    secret_owners.record(refs.values(), owner, kind, ref, project)
    return refs


store_secrets = _store_secrets  # public: a pipeline stores its steps' secret_env the same way


def get_job(job_id: str | UUID) -> Job:
    """The job with this id (its Prefect flow-run id); JobNotFound if none."""
    return Job.get(job_id)


@uses_prefect_api
def delete_job(job_id: str) -> None:
    """Delete a job's archive (files and index row), then its flow run (and with it, its logs)."""
    archive.delete_job_archive(job_id)
    with get_client(sync_client=True) as client:
        try:
            client.delete_flow_run(UUID(job_id))
        except ObjectNotFound:
            pass


def _without_input_bytes(run: FlowRun) -> FlowRun:
    """The run with its input files' bytes (`inputs[].content_b64`) left out: listings show a file's
    path and SHA-256, never its content (a job's own page reads it with `get_job`)."""
    job = (run.parameters or {}).get("job")
    items = job.get("inputs") if isinstance(job, dict) else None
    if not items or not any(isinstance(i, dict) and "content_b64" in i for i in items):
        return run
    inputs = [{k: v for k, v in item.items() if k != "content_b64"} if isinstance(item, dict) else item
              for item in items]
    return run.model_copy(update={"parameters": {**run.parameters, "job": {**job, "inputs": inputs}}})


@uses_prefect_api
def list_jobs(limit: int = 50, state: str | None = None, user: str | None = None, offset: int = 0,
              projects: list[str] | None = None, after: str | None = None) -> JobPage:
    """Jobs in two parts: those already due, newest first (a job submitted now is first), then those
    not yet due, soonest first, so jobs scheduled years ahead cannot push today's out of view;
    `user`: only those this user submitted through the API; `projects`: only those of these projects
    (None: every job; the API passes the caller's, see swarmsync.auth.projects). Input file bytes are
    left out of the rows.

    Paging: `after`, the `next_cursor` of the previous page (a `JobPage`; keyset paging, as fast deep in
    a long history as on the first page, see swarmsync/job_pages.py), or `offset`, skipping that many of
    the whole list (kept for compatibility; each page costs as much as all before it). CursorError if
    `after` is not a cursor.

    (Prefect sorts runs by due time but not by creation, and its run ids are random UUIDs.) Jobs
    that share a due time (a batch sent with one `at`) are ordered by id, so pages never repeat
    or skip one."""
    cursor = JobCursor.decode(after) if after else None
    conditions: dict[str, Any] = {}
    if state:
        conditions["state"] = {"name": {"any_": [state.capitalize()]}}
    tags: dict[str, Any] = {}
    if user:
        tags["all_"] = [user_tag(user)]
    if projects is not None:
        if not projects:
            return JobPage()
        tags["any_"] = [project_tag(p) for p in projects]
    if tags:
        conditions["tags"] = tags
    now = cursor.now if cursor else datetime.now(UTC)
    flows = FlowFilter(name=FlowFilterName(any_=[JOB_FLOW_NAME]))
    with get_client(sync_client=True) as client:
        if cursor is not None:
            if cursor.section == DUE:  # on from the cursor; past the due ones, the later ones from the walk's start
                due = page_after(client, flows, conditions, DUE, cursor.at, cursor.id, limit)
                start, after_id = now, None
            else:
                due, start, after_id = [], cursor.at, cursor.id
            later = [] if len(due) == limit else page_after(client, flows, conditions, LATER, start, after_id,
                                                            limit - len(due))
        else:
            due = page_at_offset(client, flows, conditions, {"before_": now}, True, offset, limit)
            later = []
            if len(due) < limit:  # the due section ends on this page (or before it): then the later one
                # a page is exact (see page_at_offset), so a short one tells where the due section ends;
                # only a page past its end needs the count
                due_count = offset + len(due) if due or offset == 0 else client.count_flow_runs(
                    flow_filter=flows, flow_run_filter=section_filter(conditions, {"before_": now}))
                later = page_at_offset(client, flows, conditions, {"after_": now + TICK}, False,
                                       max(offset - due_count, 0), limit - len(due))
    runs = due + later
    following = None
    if runs and len(runs) == limit:
        last = runs[-1]
        following = JobCursor(LATER if later else DUE, last.expected_start_time, last.id, now).encode()
    return JobPage([JobRow.from_flow_run(_without_input_bytes(run)) for run in runs], following)


# `submit`'s own keywords besides `user` (the submitter): what LocalJobs.submit passes on beside a built JobSpec
_SUBMIT_OWN = {name for name, p in inspect.signature(submit).parameters.items() if p.kind == p.KEYWORD_ONLY} - {"user"}


class LocalJobs:
    """The `JobBackend` (swarmsync.backend) that asks Prefect directly: the server host's view."""

    def submit(self, image: str | JobSpec | None = None, command: list[str] | str | None = None,
               **options: Any) -> Job:
        """As `Client.submit`: the options are `submit`'s own or JobSpec fields, `user` among them (the
        container's user; `submit(user=)` names the submitter, which only the API records)."""
        if "user" not in options:
            return submit(image, command, **options)
        own = {k: options.pop(k) for k in _SUBMIT_OWN & set(options)}
        spec = prepare_spec(image, command, None, options, own.pop("template", None), project=own.get("project"))
        return submit(spec, **own)

    def submit_many(
        self, specs: list[JobSpec], *, pool: str | None = None, queue: str | None = None,
        project: str | None = None,
    ) -> list[Submission]:
        return submit_many(specs, pool=pool, queue=queue, project=project)

    def job_spec(self, image: str | JobSpec | None, command: list[str] | str | None = None,
                 template: str | None = None, *, project: str | None = None, **options: Any) -> JobSpec:
        return prepare_spec(image, command, None, options, template, project=project)

    def list_jobs(self, limit: int = 50, state: str | None = None, user: str | None = None,
                  offset: int = 0, projects: list[str] | None = None, project: str | None = None,
                  after: str | None = None) -> JobPage:
        """`project`: only that project's (as `Client.list_jobs`); `projects`: only those of these; `after`: the
        `next_cursor` of the previous page."""
        if project is not None:
            projects = [project]
        return list_jobs(limit=limit, state=state, user=user, offset=offset, projects=projects, after=after)

    def get_job(self, job_id: str) -> Job:
        return get_job(job_id)

    def read_archive_file(self, job_id: str, name: str) -> bytes:
        return b"".join(self.iter_archive_file(job_id, name))

    def iter_archive_file(self, job_id: str, name: str) -> Iterator[bytes]:
        """Checked against the manifest as the API checks it (`archive.iter_verified_file`)."""
        return archive.iter_verified_file(job_id, name)[1]

    def list_job_summaries(self, limit: int = 50, state: str | None = None, user: str | None = None,
                           offset: int = 0, project: str | None = None, after: str | None = None) -> JobPage:
        """`list_jobs` (its rows are `JobSummary`s too)."""
        return self.list_jobs(limit=limit, state=state, user=user, offset=offset, project=project, after=after)

    def get_job_summary(self, job_id: str) -> JobRow:
        return JobRow.from_flow_run(get_job(job_id).flow_run())

    def get_job_logs(self, job_id: str, after: datetime | None = None) -> list[tuple[datetime, str, str]]:
        return get_job(job_id).logs(after)

    def get_job_result(self, job_id: str) -> JobResult:
        return get_job(job_id).result()

    def cancel_job(self, job_id: str) -> None:
        get_job(job_id).cancel()

    def delete_job(self, job_id: str) -> None:
        get_job(job_id).delete()
