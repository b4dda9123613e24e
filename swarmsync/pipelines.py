"""Pipelines: container jobs that depend on each other, as one Prefect flow run.

A pipeline is one run of the `pipeline/default` deployment (the parent), on Core's own work pool
(`PIPELINE_POOL`, served by the process worker `swarmsync up` starts: never on a worker host of a job
pool). Each step is a child run of the job deployment (`container-job/...`), linked to the parent's
task run for that step (`parent_task_run_id`), so the Prefect UI shows the tree; the step runs as
any job does (admission, the pool's policy, the archive).

    p = submit_pipeline(yaml_text)           # checked, every step admitted, then one parent run
    p.wait(300).status()                     # 'Completed' / 'Failed'
    p.steps()                                # [StepRow(name, state, job_id, ...)]
    p.resume()                               # re-run failed and skipped steps, reuse the others

A step's runs carry the tags `swarmsync.pipeline:<id>` and `swarmsync.step:<name>` (reserved: dropped
from specs like the owner tags), by which the parent finds its own steps' runs, and only those.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter
from prefect.client.schemas.objects import FlowRun
from prefect.client.schemas.sorting import FlowRunSort
from prefect.exceptions import ObjectNotFound
from prefect.states import AwaitingRetry, Cancelled, Cancelling

from swarmsync import admission
from swarmsync.auth import secret_owners
from swarmsync.auth.principals import principal_of
from swarmsync.auth.roles import AuthError, Forbidden, Principal
from swarmsync.connection import uses_prefect_api
from swarmsync.errors import ConflictError, NotFoundError
from swarmsync.jobs import Job, JobNotFound, prepare_spec
from swarmsync.owners import (
    DEFAULT_PROJECT,
    owner_labels,
    owner_tags,
    project_of,
    project_tag,
    stored_name,
    submitted_by,
)
from swarmsync.pipeline_secrets import secret_values, store_step_secrets, take_secret_env
from swarmsync.pipeline_spec import PipelineSpec, ResolvedPipeline, ResolvedStep, load_pipeline
from swarmsync.run_handle import RunHandle
from swarmsync.spec import JobSpec
from swarmsync.timing import start_time

PIPELINE_FLOW_NAME = "pipeline"
PIPELINE_DEPLOYMENT = "pipeline/default"
PIPELINE_POOL = "swarmsync-pipelines"  # Core's own pool (type process): runs the parent flows, never a job
PIPELINE_TAG = "swarmsync-pipeline"
PIPELINE_TAG_PREFIX = "swarmsync.pipeline:"
STEP_TAG_PREFIX = "swarmsync.step:"
PIPELINE_LABEL = "swarmsync.pipeline"


class PipelineNotFound(NotFoundError):
    """No pipeline with that id (or none the caller may read)."""


class ResumeRefused(Forbidden):
    """The submitter may no longer run a step that resume would run again (403): nothing starts."""


class PipelineConflict(ConflictError, RuntimeError):
    """The pipeline is not in a state that allows this (resume a running one, cancel an ended one)."""


def pipeline_tag(pipeline_id: str) -> str:
    return f"{PIPELINE_TAG_PREFIX}{pipeline_id}"


def step_tag(step: str) -> str:
    return f"{STEP_TAG_PREFIX}{step}"


def step_of(run: FlowRun) -> str | None:
    return next((t.removeprefix(STEP_TAG_PREFIX) for t in run.tags or [] if t.startswith(STEP_TAG_PREFIX)), None)


@dataclass
class StepRow:
    """One step of a pipeline as status, the API and the dashboard show it."""

    # also the API's model (schemas.StepOut): a field's `metadata` description is its text in the API docs
    name: str
    group: str = field(metadata={"description": "Its name in the file (a matrix step's instances share it)"})
    needs: list[str]
    when: str
    state: str = field(default="Waiting", metadata={
        "description": "Waiting, Skipped, or its job's state (Running, Completed, Failed, ...)"})
    job_id: str | None = field(default=None, metadata={
        "description": "Its newest job (GET /jobs/{id} for output and files)"})
    attempts: int = 0
    started: datetime | None = None
    ended: datetime | None = None
    message: str | None = None
    image: str = ""
    inputs_from: dict[str, str] = field(default_factory=dict)

    @property
    def final(self) -> bool:
        return self.state in ("Completed", "Failed", "Crashed", "Cancelled", "Skipped", "TimedOut")


def resolve(data: str | bytes | dict[str, Any] | PipelineSpec, project: str | None = None) -> ResolvedPipeline:
    """The pipeline checked (DAG, `inputs_from`, matrix) and each step's JobSpec made (templates of
    `project` applied); PipelineError / JobSpecError when it cannot run. A step's `secret_env` values are
    left out: its `secrets` name the placeholder NEW_SECRET until `store_step_secrets` saves them."""
    def job_spec(fields: dict[str, Any], template: str | None) -> JobSpec:
        fields, secret_env = take_secret_env(fields, "step")
        image, command = fields.pop("image", None), fields.pop("command", None)
        spec = prepare_spec(image, command, None, fields, template, project=project)
        return admission.with_new_secrets(spec, secret_env)

    spec = load_pipeline(data)
    secret_values(spec)  # refuses a bad `secret_env`, naming its step
    return spec.resolve(job_spec)


def admit_steps(principal: Principal | None, resolved: ResolvedPipeline, project: str, address: str | None = None,
                *, only: set[str] | None = None, action: str = "pipeline.submit") -> None:
    """Every step (of `only`, when given) through `admission.admit` on its resolved spec, under `principal`
    and `project`, before anything is created (raises on the first refusal; the refusal is audited there)."""
    for step in resolved.steps:
        if only is not None and step.name not in only:
            continue
        context = (secret_owners.TEMPLATE, stored_name(project, step.template)) if step.template else None
        admission.admit(principal, step.job, step.pool, project=project, context=context, action=action,
                        address=address)


def resolve_and_admit(data: str | bytes | dict[str, Any] | PipelineSpec, principal: Principal | None,
                      project: str, address: str | None = None, action: str = "pipeline.submit",
                      ) -> tuple[ResolvedPipeline, dict[str, dict[str, str]]]:
    """The pipeline resolved and every step admitted; with each step group's `secret_env` values, to store
    (`store_step_secrets`) once nothing can refuse it any more."""
    spec = load_pipeline(data)
    resolved = resolve(spec, project)
    admit_steps(principal, resolved, project, address, action=action)
    return resolved, secret_values(spec)


@uses_prefect_api
def submit_pipeline(
    data: str | bytes | dict[str, Any] | PipelineSpec, *, user: str | None = None, project: str | None = None,
    principal: Principal | None = None, at: datetime | str | None = None, address: str | None = None,
) -> Pipeline:
    """Check the pipeline, admit every step (as `principal`; None: the server host, only the pools'
    policies), then create its parent run; returns at once. `user` is recorded as the submitter."""
    project = project or DEFAULT_PROJECT
    resolved, values = resolve_and_admit(data, principal, project, address)
    resolved, blocks = store_step_secrets(resolved, values, owner=user, kind=secret_owners.JOB, ref=None,
                                          project=project)
    made = create_run(resolved, user=user, project=project, at=start_time(at, None))
    secret_owners.attach(blocks, made.id)
    return made


def create_run(resolved: ResolvedPipeline, *, user: str | None, project: str,
               at: datetime | None = None) -> Pipeline:
    from prefect.states import Scheduled

    with get_client(sync_client=True) as client:
        try:
            deployment = client.read_deployment_by_name(PIPELINE_DEPLOYMENT)
        except ObjectNotFound:
            raise JobNotFound(f"deployment {PIPELINE_DEPLOYMENT!r} not found: start the stack with 'swarmsync up' "
                              "(it creates the pipeline deployment and runs its worker)") from None
        run = client.create_flow_run_from_deployment(
            deployment.id, parameters={"pipeline": resolved.model_dump(mode="json", exclude_defaults=True)},
            name=resolved.name, tags=[PIPELINE_TAG, *owner_tags(user, project)], labels=owner_labels(user, project),
            idempotency_key=f"swarmsync-pipeline-{uuid.uuid4()}",
            state=Scheduled(scheduled_time=at) if at else None,
        )
    return Pipeline(str(run.id), run)


@uses_prefect_api
def read_children(pipeline_id: str) -> list[FlowRun]:
    """Every step run of the pipeline (all attempts), oldest first."""
    flt = FlowRunFilter(tags={"all_": [pipeline_tag(pipeline_id)]})
    runs: list[FlowRun] = []
    with get_client(sync_client=True) as client:
        while True:
            page = client.read_flow_runs(flow_run_filter=flt, sort=FlowRunSort.START_TIME_ASC, limit=200,
                                         offset=len(runs))
            runs += page
            if len(page) < 200:
                break
    return sorted(runs, key=lambda r: r.created or datetime.min)


def latest_by_step(children: list[FlowRun]) -> dict[str, tuple[FlowRun, int]]:
    """step -> (its newest run, how many runs it had)."""
    out: dict[str, tuple[FlowRun, int]] = {}
    for run in children:  # oldest first
        if (name := step_of(run)) is not None and run.parent_task_run_id is not None:
            out[name] = (run, out.get(name, (run, 0))[1] + 1)
    return out


class Pipeline(RunHandle):
    """A handle on one pipeline (its parent flow run's id)."""

    noun = "pipeline"
    not_found = PipelineNotFound

    @uses_prefect_api
    def flow_run(self) -> FlowRun:
        run = self._read_flow_run()
        if PIPELINE_TAG not in (run.tags or []):
            raise PipelineNotFound(f"no pipeline with id {self.id}")
        self._flow_run = run
        return run

    def definition(self) -> ResolvedPipeline:
        return ResolvedPipeline(**self.last_read().parameters["pipeline"])

    def steps(self) -> list[StepRow]:
        """Each step with the state of its newest run: Waiting (not started yet), a job state, or
        Skipped (the pipeline ended without running it: its `when` did not hold)."""
        run = self.flow_run()
        definition = ResolvedPipeline(**run.parameters["pipeline"])
        latest = latest_by_step(read_children(self.id))
        ended = bool(run.state and run.state.is_final())
        rows = []
        for step in definition.steps:
            row = StepRow(name=step.name, group=step.group, needs=list(step.needs), when=step.when,
                          image=step.job.image, inputs_from=dict(step.inputs_from))
            if step.name in latest:
                child, count = latest[step.name]
                row.state = child.state.name if child.state else "Unknown"
                row.job_id, row.attempts = str(child.id), count
                row.started, row.ended = child.start_time, child.end_time
                row.message = child.state.message if child.state else None
                if ended and child.state and not child.state.is_final() and run.state.is_cancelled():
                    row.state = "Cancelling"
            elif ended:
                row.state = "Cancelled" if run.state.is_cancelled() else "Skipped"
            rows.append(row)
        return rows

    def describe(self, with_steps: bool = True) -> dict[str, Any]:
        """The pipeline as `GET /pipelines/{id}` gives it (the CLI and the dashboard read the same shape)."""
        run = self.flow_run()
        definition = ResolvedPipeline(**run.parameters["pipeline"])
        return {"id": self.id, "name": definition.name, "state": run.state.name if run.state else None,
                "final": bool(run.state and run.state.is_final()),
                "message": run.state.message if run.state else None, "user": submitted_by(run),
                "project": project_of(run), "created": run.created, "started": run.start_time,
                "ended": run.end_time, "max_parallel": definition.max_parallel,
                "steps": [vars(row) for row in self.steps()] if with_steps else []}

    def jobs(self) -> dict[str, Job]:
        return {row.name: Job(row.job_id) for row in self.steps() if row.job_id}

    @uses_prefect_api
    def cancel(self) -> None:
        """Cancel the pipeline: its parent run (the process worker stops it) and every running step."""
        run = self.flow_run()
        with get_client(sync_client=True) as client:
            if run.state is not None and not run.state.is_final():
                if run.state.is_scheduled() or (run.state.is_pending() and not run.infrastructure_pid):
                    client.set_flow_run_state(run.id, Cancelled(message="cancelled by user before it started"),
                                              force=True)
                else:
                    client.set_flow_run_state(run.id, Cancelling(message="cancelled by user"), force=True)
        for child in read_children(self.id):
            if child.state is not None and not child.state.is_final():
                Job(child.id, child).cancel()

    def readmit(self, steps: set[str], address: str | None = None) -> None:
        """Admit again, under the submitter (their role and memberships now) and the pipeline's project, the
        steps about to run again; ResumeRefused (403) naming why when one may not run any more."""
        submitter, project = self.submitter, self.project
        try:
            principal = principal_of(submitter, f"who submitted pipeline {self.id}") if submitter else None
            admit_steps(principal, self.definition(), project, address, only=steps, action="pipeline.resume")
        except (AuthError, LookupError) as exc:
            raise ResumeRefused(
                f"pipeline {self.id} not resumed: its steps run as {submitter or 'the server host'}, who may not run "
                f"them any more ({exc}); nothing was started") from None

    @uses_prefect_api
    def resume(self, address: str | None = None) -> Pipeline:
        """Run the ended pipeline again as the same run: steps whose newest run completed are reused
        (their archived outputs too: no container starts for them); failed, cancelled and skipped
        steps run again, once admitted again under the submitter (`readmit`)."""
        run = self.flow_run()
        if not (run.state and run.state.is_final()):
            raise PipelineConflict(f"pipeline {self.id} is {run.state.name if run.state else 'unknown'}: "
                                   "resume one that ended")
        if run.state.is_completed():
            raise PipelineConflict(f"pipeline {self.id} completed: nothing to resume")
        self.readmit({row.name for row in self.steps() if row.state != "Completed"}, address)
        with get_client(sync_client=True) as client:
            client.set_flow_run_state(run.id, AwaitingRetry(message="resumed: failed and skipped steps run again"),
                                      force=True)
        return self

    def follow_lines(self, poll: float = 1.0) -> Iterator[tuple[str, str, str]]:
        """(step, logger name, message) of every step's log lines as they arrive, until the pipeline ends
        and the last lines of each step are read."""
        since: dict[str, datetime | None] = {}
        seen: set[str] = set()
        while True:
            finished = self.is_finished()
            for child in read_children(self.id):
                name = step_of(child) or "?"
                for entry in Job(child.id, child).log_batch(since.get(str(child.id))):
                    if entry.id not in seen:
                        seen.add(entry.id)
                        since[str(child.id)] = entry.timestamp
                        yield name, entry.name, entry.message
            if finished:
                return
            time.sleep(poll)

    def logs(self) -> list[tuple[str, str, str]]:
        """(step, logger name, message) of every step run's log, step by step in run order."""
        out = []
        for child in read_children(self.id):
            name = step_of(child) or "?"
            out += [(name, logger, message) for _ts, logger, message in Job(child.id, child).logs()]
        return out


def get_pipeline(pipeline_id: str | UUID) -> Pipeline:
    """The pipeline with this id (its parent flow run's id); PipelineNotFound if none."""
    return Pipeline.get(pipeline_id)


@uses_prefect_api
def list_pipelines(limit: int = 50, projects: list[str] | None = None) -> list[Pipeline]:
    """Pipelines already due, newest first, then those not due yet, soonest first (as `list_jobs`: one
    due tomorrow does not push today's out of view); `projects`: only those of these projects (None: all)."""
    if projects is not None and not projects:
        return []
    tags: dict[str, Any] = {"all_": [PIPELINE_TAG]}
    if projects is not None:
        tags["any_"] = [project_tag(p) for p in projects]
    now = datetime.now(UTC)
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(tags=tags, expected_start_time={"before_": now}),
            sort=FlowRunSort.EXPECTED_START_TIME_DESC, limit=limit)
        if len(runs) < limit:
            runs += client.read_flow_runs(
                flow_run_filter=FlowRunFilter(tags=tags,
                                              expected_start_time={"after_": now + timedelta(microseconds=1)}),
                sort=FlowRunSort.EXPECTED_START_TIME_ASC, limit=limit - len(runs))
    return [Pipeline(str(r.id), r) for r in runs]


def pipeline(data: str | bytes | dict[str, Any] | PipelineSpec, *, wait: float | None = None,
             project: str | None = None, on_line: Callable[[str, str, str], None] | None = None) -> Pipeline:
    """`swarmsync.pipeline(...)`: submit a pipeline (a file's text, a dict, or a PipelineSpec); with `wait`,
    block until it ends (at most that many seconds), passing each step's lines to `on_line`."""
    handle = submit_pipeline(data, project=project)
    if wait is not None:
        if on_line is not None:
            for step, logger, message in handle.follow_lines():
                on_line(step, logger, message)
        handle.wait(wait)
    return handle


__all__ = ["PIPELINE_DEPLOYMENT", "PIPELINE_POOL", "Pipeline", "PipelineConflict", "PipelineNotFound",
           "ResolvedStep", "ResumeRefused", "StepRow", "get_pipeline", "list_pipelines", "pipeline", "submit_pipeline"]
