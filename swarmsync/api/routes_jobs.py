"""/jobs: submit, list, get, logs, cancel, re-run, delete, result and file downloads.

Each endpoint is a thin wrapper over `swarmsync.jobs` / `swarmsync.archive`: the API
adds who may do it and the audit line, nothing else. A job of a project the caller is not
a member of is a 404 (its existence is not leaked); changing a job (cancel, re-run, delete)
is for its submitter, the project's maintainers and admins (swarmsync.auth.projects).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse

from swarmsync import archive, jobs
from swarmsync.api.deps import address, require
from swarmsync.api.errors import Conflict, FieldErrors, responses
from swarmsync.api.project_access import RunKind, listed_projects
from swarmsync.api.schemas import Done, JobOut, JobSubmission, LogLine, ManifestOut, StateOut
from swarmsync.api.secret_checks import admitted, hidden_rows
from swarmsync.auth import audit, projects
from swarmsync.auth.roles import Permission, Principal, Role
from swarmsync.job_pages import CursorError
from swarmsync.log_follow import LOG_BATCH
from swarmsync.owners import DEFAULT_PROJECT
from swarmsync.spec import JobSpec

router = APIRouter(prefix="/jobs", tags=["jobs"], responses=responses(401, 403))
reader = require(Permission.JOBS_READ)


def job_out(run) -> JobOut:
    return JobOut.from_flow_run(run)


JOBS = RunKind(jobs.Job)
readable_job, changeable_job = JOBS.readable, JOBS.changeable


def archived_job(principal: Principal, job_id: str) -> str:
    """The id of a job whose archive `principal` may read: by its run's project, or (a run deleted since)
    by the project its archive index row records."""
    job_id = archive.check_job_id(job_id)
    try:
        readable_job(principal, job_id)
    except jobs.JobNotFound:
        project = archive.indexed_project(job_id)
        projects.check_read(principal, project, archive.ArchiveNotFound(f"no archive of job {job_id}"))
        if project is None and principal.role != Role.ADMIN:
            raise
    return job_id


@router.get("", response_model=list[JobOut], responses=responses(422))
def list_jobs(
    request: Request,
    response: Response,
    limit: int = Query(50, ge=1, le=200, description="At most 200 (Prefect's page size)"),
    after: str | None = Query(None, max_length=400, description="The next page after a full one: its "
                              "X-Next-Cursor (an opaque cursor; as fast deep in a long history as on the first page)"),
    offset: int = Query(0, ge=0, le=10**9, description="Skip this many (kept for compatibility: each page costs as "
                        "much as all before it; `after` does not; the next page: X-Next-Offset)"),
    state: str | None = Query(None, max_length=32, description="e.g. failed, running"),
    user: str | None = Query(None, max_length=64, description="Only jobs this user submitted"),
    project: str | None = Query(None, max_length=64, description="Only jobs of this project"),
    principal: Principal = Depends(reader),
) -> list[JobOut]:
    """Jobs already due, newest first, then jobs not yet due, soonest first (so jobs scheduled years ahead
    cannot push today's out of view); without input file bytes; other users' Secret block names shown as
    "(hidden)"; only jobs of the caller's projects (admins: all). A full page carries the next one's cursor in
    `X-Next-Cursor` and a `Link: <...?after=...>; rel="next"` header (and, paged by `offset`, `X-Next-Offset`).
    A cursor only says where the next page starts: it is read with the caller's own projects and filters."""
    if after is not None and offset:
        raise FieldErrors({"after": "give a cursor (after) or an offset, not both"})
    scope = listed_projects(principal, project)
    try:
        rows = jobs.list_jobs(limit=limit, state=state, user=user, offset=offset, projects=scope, after=after)
    except CursorError as exc:
        raise FieldErrors({"after": str(exc)}) from None
    if rows.next_cursor is not None:
        response.headers["X-Next-Cursor"] = rows.next_cursor
        if after is None:
            response.headers["X-Next-Offset"] = str(offset + limit)
        following_url = request.url.remove_query_params("offset").include_query_params(after=rows.next_cursor)
        response.headers["Link"] = f'<{following_url.path}?{following_url.query}>; rel="next"'
    return hidden_rows(principal, rows)


@router.post("", response_model=JobOut, status_code=201, responses=responses(400, 404, 422))
def submit(
    body: JobSubmission, request: Request, principal: Principal = Depends(require(Permission.JOBS_SUBMIT)),
) -> JobOut:
    """Submit a container job to `project` (default: the default project); returns at once. Refused (403)
    unless the caller may submit there, use every secret it names and the pool, and the job as it will run
    (with `secret_env`) fits the pool's policy (see swarmsync.admission); files from the worker host
    (`inputs[].source`) are admin-only. The run records the caller as its submitter and the project
    (tags `swarmsync.user:NAME`, `swarmsync.project:NAME`); such tags in the spec are dropped."""
    project = body.project or DEFAULT_PROJECT
    spec = admitted(request, principal, body.spec, project=project, pool=body.pool, template=body.template,
                    secret_env=body.secret_env)
    job = jobs.submit(spec, secret_env=body.secret_env or None, pool=body.pool, queue=body.queue, at=body.at,
                      user=principal.username, project=project)
    audit.record(principal.username, "job.submit", job.id, address=address(request),
                 image=body.spec.image, pool=body.pool, project=project)
    return hidden_rows(principal, [job_out(job.last_read())])[0]  # the run as created: not read back


@router.get("/{job_id}", response_model=JobOut, responses=responses(404))
def get_job(job_id: str, principal: Principal = Depends(reader)) -> JobOut:
    return hidden_rows(principal, [job_out(readable_job(principal, job_id).flow_run())])[0]


@router.get("/{job_id}/logs", response_model=list[LogLine], responses=responses(404))
def logs(
    job_id: str, after: datetime | None = None,
    limit: int | None = Query(None, ge=1, le=LOG_BATCH, description="One batch of at most this many lines "
                              "(for following: one request per poll); without it, the whole log"),
    offset: int = Query(0, ge=0), principal: Principal = Depends(reader),
) -> list[LogLine]:
    """The run log, oldest first; `after` (inclusive) returns only lines at or after that time. Each line
    has its id: a follower asks for lines at or after the newest timestamp it has and drops the ids it
    has (swarmsync/log_follow.py)."""
    job = readable_job(principal, job_id)
    if limit is None:
        return [LogLine(timestamp=ts, name=name, message=msg) for ts, name, msg in job.logs(after)]
    return [LogLine(timestamp=e.timestamp, name=e.name, message=e.message, id=e.id)
            for e in job.log_batch(after, limit, offset)]


@router.get("/{job_id}/states", response_model=list[StateOut], responses=responses(404))
def states(job_id: str, principal: Principal = Depends(reader)) -> list[StateOut]:
    """The job's state history, oldest first."""
    return [StateOut(timestamp=ts, type=kind, name=name, message=msg) for ts, kind, name, msg in
            readable_job(principal, job_id).states()]


@router.post("/{job_id}/cancel", response_model=JobOut, status_code=202, responses=responses(404, 409))
def cancel(
    job_id: str, request: Request, principal: Principal = Depends(require(Permission.JOBS_CANCEL)),
) -> JobOut:
    """Stop the job's container; the partial output is archived. Its submitter, a maintainer of its project
    or an admin may."""
    job = changeable_job(principal, job_id)
    if job.is_finished():
        raise Conflict(f"job {job.id} already ended {job.status()}")
    job.cancel()
    audit.record(principal.username, "job.cancel", job.id, address=address(request))
    return hidden_rows(principal, [job_out(job.flow_run())])[0]


@router.post("/{job_id}/rerun", response_model=JobOut, status_code=201, responses=responses(400, 404, 422))
def rerun(job_id: str, request: Request, principal: Principal = Depends(require(Permission.JOBS_SUBMIT))) -> JobOut:
    """Submit the job again, unchanged, in its project and pool, as the caller: admitted as any submission
    (its secrets must be the caller's to use). Its submitter, a maintainer of its project or an admin may."""
    job = changeable_job(principal, job_id)
    run = job.flow_run()
    spec = JobSpec(**(run.parameters or {}).get("job", {}))
    pool = run.work_pool_name
    spec = admitted(request, principal, spec, project=job.project, pool=pool, action="job.rerun")
    again = jobs.submit(spec, pool=pool, queue=run.work_queue_name, user=principal.username, project=job.project)
    audit.record(principal.username, "job.rerun", again.id, address=address(request), of=job.id)
    return hidden_rows(principal, [job_out(again.last_read())])[0]  # as created


@router.delete("/{job_id}", response_model=Done, responses=responses(404, 409))
def delete(job_id: str, request: Request, principal: Principal = Depends(require(Permission.JOBS_CANCEL))) -> Done:
    """Delete a finished job: its run, its archive and the Secret blocks made for it. Its submitter, a
    maintainer of its project or an admin may (a job still running: cancel it first, 409)."""
    job = changeable_job(principal, job_id)
    if not job.is_finished():
        raise Conflict(f"job {job.id} is {job.status()}: cancel it first")
    job.delete()
    audit.record(principal.username, "job.delete", job.id, address=address(request))
    return Done(name=job.id, done="delete")


@router.get("/{job_id}/result", response_model=ManifestOut, response_model_exclude_unset=True,
            responses=responses(404, 502, 503))
def result(job_id: str, principal: Principal = Depends(reader)) -> ManifestOut:
    """The archive manifest: state, exit code, reason, timings, SHA-256 of every file."""
    return ManifestOut.model_validate(archive.read_manifest(archived_job(principal, job_id)))


@router.get(
    "/{job_id}/result.txt", response_class=Response,
    responses={200: {"content": {"text/plain": {}}}, **responses(404, 502, 503)},
)
def result_txt(
    job_id: str, stream: Literal["output", "stdout", "stderr"] = "output",
    service: str | None = Query(default=None, max_length=63, pattern=r"^[a-z0-9][a-z0-9_-]*$",
                                description="A service of a job with services: its stdout or stderr"),
    principal: Principal = Depends(reader),
) -> Response:
    """The archived output as .txt: both streams interleaved, or stdout/stderr alone (of a
    service, with `service`). Streamed in chunks from the archive store (never read whole into
    memory) and checked against the manifest's SHA-256 on the way (see `download`)."""
    job_id = archived_job(principal, job_id)
    name = f"{stream}.txt"
    if service is not None:
        if stream == "output":
            raise archive.ArchiveNotFound("a service's output is archived as stdout and stderr: ask for one of them")
        name = f"services/{service}/{stream}.txt"
    filename = f"{job_id}-{service + '-' if service else ''}{stream}.txt"
    return download(job_id, name, "text/plain; charset=utf-8", filename)


@router.get(
    "/{job_id}/files", response_class=Response,
    responses={200: {"content": {"application/gzip": {}}}, **responses(404, 502, 503)},
)
def files(job_id: str, principal: Principal = Depends(reader)) -> Response:
    """The job's output folder as files.tar.gz (when the job set `output_dir`), streamed and checked."""
    return download(archived_job(principal, job_id), archive.FILES_ARCHIVE, "application/gzip")


def download(job_id: str, name: str, media_type: str, filename: str | None = None) -> StreamingResponse:
    """One archived file, checked against the manifest (`archive.iter_verified_file`): up to 8 MiB
    before the first byte (a mismatch is a 502), larger files as they stream (the last chunk is held
    back and the connection aborted on a mismatch, so the declared Content-Length is never reached).
    `X-Archive-SHA256` carries the manifest's digest so any client can check too."""
    meta, chunks = archive.iter_verified_file(job_id, name)
    return StreamingResponse(chunks, media_type=media_type, headers={
        "Content-Disposition": f'attachment; filename="{filename or f"{job_id}-{name}"}"',
        "Content-Length": str(meta["size"]), "X-Archive-SHA256": meta["sha256"]})
