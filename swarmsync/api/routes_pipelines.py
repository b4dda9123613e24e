"""/pipelines: submit, list, get (with each step's state), logs, cancel, resume.

Thin wrappers over `swarmsync.pipelines`. A submission is checked whole before anything is created:
the DAG (422 naming each wrong field: a cycle, an unknown step, a bad `inputs_from`), then every
step through `swarmsync.admission.admit` on its resolved spec, under the caller and the project
(403/404, audited). A pipeline of a project the caller is not a member of is a 404; cancelling and
resuming it is for its submitter, the project's maintainers and admins (swarmsync.auth.projects).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request

from swarmsync import pipelines
from swarmsync.api.deps import address, require
from swarmsync.api.errors import Conflict, FieldErrors, responses
from swarmsync.api.project_access import RunKind, listed_projects
from swarmsync.api.schemas import LogLine, PipelineOut, PipelineSubmission
from swarmsync.auth import audit, projects
from swarmsync.auth.roles import Permission, Principal
from swarmsync.jobs import Job
from swarmsync.owners import DEFAULT_PROJECT
from swarmsync.pipeline_spec import PipelineError

router = APIRouter(prefix="/pipelines", tags=["pipelines"], responses=responses(401, 403))
reader = require(Permission.JOBS_READ)


def pipeline_out(pipeline: pipelines.Pipeline, with_steps: bool = False) -> PipelineOut:
    return PipelineOut(**pipeline.describe(with_steps))


PIPELINES = RunKind(pipelines.Pipeline)
readable_pipeline, changeable_pipeline = PIPELINES.readable, PIPELINES.changeable


@router.get("", response_model=list[PipelineOut])
def list_pipelines(
    limit: int = Query(50, ge=1, le=200), project: str | None = Query(None, max_length=64),
    principal: Principal = Depends(reader),
) -> list[PipelineOut]:
    """Pipelines of the caller's projects (admins: all), newest first, without their steps."""
    scope = listed_projects(principal, project)
    return [pipeline_out(p) for p in pipelines.list_pipelines(limit=limit, projects=scope)]


@router.post("", response_model=PipelineOut, status_code=201, responses=responses(400, 404, 422))
def submit(body: PipelineSubmission, request: Request,
           principal: Principal = Depends(require(Permission.JOBS_SUBMIT))) -> PipelineOut:
    """Submit a pipeline to `project`; returns at once. Refused before anything runs: a bad DAG (422), or
    any step the caller may not run as a job there (403/404, see swarmsync.admission)."""
    project = body.project or DEFAULT_PROJECT
    projects.check_submit(principal, project)
    try:
        pipeline = pipelines.submit_pipeline(body.pipeline, user=principal.username, project=project,
                                             principal=principal, at=body.at, address=address(request))
    except PipelineError as exc:
        raise FieldErrors({f"pipeline.{loc}": msg for loc, msg in exc.errors.items()}) from None
    audit.record(principal.username, "pipeline.submit", pipeline.id, address=address(request), project=project)
    return pipeline_out(pipeline, with_steps=True)


@router.get("/{pipeline_id}", response_model=PipelineOut, responses=responses(404))
def get_pipeline(pipeline_id: str, principal: Principal = Depends(reader)) -> PipelineOut:
    """The pipeline with each step's state and newest job."""
    return pipeline_out(readable_pipeline(principal, pipeline_id), with_steps=True)


@router.get("/{pipeline_id}/logs", response_model=list[LogLine], responses=responses(404))
def logs(pipeline_id: str, principal: Principal = Depends(reader)) -> list[LogLine]:
    """Every step job's log, step by step; each line's `name` is `STEP: LOGGER`."""
    pipeline = readable_pipeline(principal, pipeline_id)
    out = []
    for child in pipelines.read_children(pipeline.id):
        step = pipelines.step_of(child) or "?"
        out += [LogLine(timestamp=ts, name=f"{step}: {name}", message=msg)
                for ts, name, msg in Job(child.id, child).logs()]
    return out


@router.post("/{pipeline_id}/cancel", response_model=PipelineOut, status_code=202, responses=responses(404, 409))
def cancel(pipeline_id: str, request: Request,
           principal: Principal = Depends(require(Permission.JOBS_CANCEL))) -> PipelineOut:
    """Cancel the pipeline and its running steps."""
    pipeline = changeable_pipeline(principal, pipeline_id)
    if pipeline.is_finished():
        raise Conflict(f"pipeline {pipeline.id} already ended {pipeline.status()}")
    pipeline.cancel()
    audit.record(principal.username, "pipeline.cancel", pipeline.id, address=address(request))
    return pipeline_out(pipelines.get_pipeline(pipeline.id), with_steps=True)


@router.post("/{pipeline_id}/resume", response_model=PipelineOut, status_code=202,
             responses=responses(404, 409))
def resume(pipeline_id: str, request: Request,
           principal: Principal = Depends(require(Permission.JOBS_SUBMIT))) -> PipelineOut:
    """Run the failed and skipped steps again, reusing the succeeded ones and their outputs (409 unless the
    pipeline ended failed or cancelled). The steps it will run are admitted again under their submitter first
    (403 naming why, nothing started: they lost their role, or the pool its grant)."""
    pipeline = changeable_pipeline(principal, pipeline_id)
    pipeline.resume(address(request))  # PipelineConflict: 409 (api/errors.py)
    audit.record(principal.username, "pipeline.resume", pipeline.id, address=address(request))
    return pipeline_out(pipelines.get_pipeline(pipeline.id), with_steps=True)
