"""/pipelines/schedules: named schedules whose target is a pipeline (the Hibernator for pipelines).

Why a route of its own rather than `POST /schedules` with a `pipeline` body: a pipeline schedule is a
deployment of the `pipeline` flow (`pipeline/NAME`), a job schedule one of the job flow
(`container-job/NAME`); the two may share a name, and they differ in shape (a pipeline of steps, no
single job, pool or overlap policy). Under /pipelines/schedules every name is unambiguous, and
/schedules keeps its shape for its clients. The rules are the job schedules': reading is for the
project's members (others: 404), creating for those who may submit there with every step admitted
under the caller (403/404, audited), pausing, resuming and deleting for its owner, the project's
maintainers and admins. Every run's steps are re-checked by the worker under the schedule's owner.
"""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Depends, Query, Request

from swarmsync.api.deps import address
from swarmsync.api.errors import FieldErrors, responses
from swarmsync.api.project_access import listed_projects
from swarmsync.api.schedule_access import PathName, ProjectQuery, ScheduleKind, reader, writer
from swarmsync.api.schemas import PipelineScheduleCreate, PipelineScheduleOut
from swarmsync.api.secret_checks import hide_jobs
from swarmsync.auth import audit, projects
from swarmsync.auth.roles import Principal
from swarmsync.deployments import pipeline_schedules
from swarmsync.owners import DEFAULT_PROJECT
from swarmsync.pipeline_spec import PipelineError

router = APIRouter(prefix="/pipelines/schedules", tags=["pipelines"], responses=responses(401, 403))
PIPELINE_SCHEDULES = ScheduleKind("pipeline schedule", "pipeline.schedule", pipeline_schedules.get,
                                  pipeline_schedules.PipelineScheduleNotFound)
readable, changeable = PIPELINE_SCHEDULES.readable, PIPELINE_SCHEDULES.changeable


def schedule_out(schedule: pipeline_schedules.PipelineSchedule, principal: Principal) -> PipelineScheduleOut:
    """The schedule as `principal` may see it (other users' Secret block names hidden)."""
    data = {**asdict(schedule), "steps": schedule.steps}
    hide_jobs(principal, [step.get("job") for step in data["pipeline"].get("steps", [])])
    return PipelineScheduleOut.model_validate(data)


@router.get("", response_model=list[PipelineScheduleOut])
def list_schedules(project: str | None = Query(None, max_length=64, description="Only this project's"),
                   principal: Principal = Depends(reader)) -> list[PipelineScheduleOut]:
    """The pipeline schedules of the caller's projects (admins: all), with their steps and next runs."""
    scope = listed_projects(principal, project)
    return [schedule_out(s, principal) for s in pipeline_schedules.list_schedules(scope)]


@router.post("", response_model=PipelineScheduleOut, status_code=201, responses=responses(400, 404, 409, 422))
def create_schedule(body: PipelineScheduleCreate, request: Request,
                    principal: Principal = Depends(writer)) -> PipelineScheduleOut:
    """Run the pipeline on a schedule (`every` or `cron`) in `project`, as the caller: checked whole (422
    naming each field) and every step admitted before anything is made (403/404); name taken: 409."""
    project = body.project or DEFAULT_PROJECT
    projects.check_submit(principal, project)
    try:
        schedule = pipeline_schedules.create(
            body.name, body.pipeline, every=body.every, cron=body.cron, timezone=body.timezone,
            owner=principal.username, project=project, principal=principal, address=address(request),
            paused=body.paused)
    except PipelineError as exc:
        raise FieldErrors({f"pipeline.{loc}": msg for loc, msg in exc.errors.items()}) from None
    audit.record(principal.username, "pipeline.schedule", f"{project}/{body.name}", address=address(request),
                 every=body.every, cron=body.cron)
    return schedule_out(schedule, principal)


@router.get("/{name}", response_model=PipelineScheduleOut, responses=responses(404))
def get_schedule(name: PathName, project: ProjectQuery = DEFAULT_PROJECT,
                 principal: Principal = Depends(reader)) -> PipelineScheduleOut:
    return schedule_out(readable(principal, name, project), principal)


PIPELINE_SCHEDULES.add_change_routes(router, pipeline_schedules.pause, pipeline_schedules.resume,
                                     pipeline_schedules.delete)
