"""How the core's exceptions become HTTP answers, and the API's own refusals.

Endpoints raise the core's exceptions (`JobNotFound`, `AccountError`, `ScheduleError`, ...);
`install()` maps them: not found -> 404, bad input -> 400, `Conflict` -> 409, `FieldErrors`
-> 422 with `errors` naming each field, Prefect or an archive store unreachable -> 503,
an archive that does not match its manifest -> 502. Every body is `ErrorOut`.
"""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from swarmsync import alerts, archive, jobs, pipelines, templates
from swarmsync.api.deps import denied
from swarmsync.api.schemas import ErrorOut
from swarmsync.auth import projects, ratelimit, ssh_keys, tokens, users, worker_tokens
from swarmsync.auth.roles import AuthError
from swarmsync.deployments import pipeline_schedules, pools, schedules
from swarmsync.deployments.schedule_rules import ScheduleError
from swarmsync.spec import JobSpecError
from swarmsync.timing import TimingError

NOT_FOUND = (jobs.JobNotFound, archive.ArchiveNotFound, users.UserNotFound, tokens.TokenNotFound,
             schedules.ScheduleNotFound, templates.TemplateNotFound, pools.PoolNotFound, ssh_keys.KeyNotFound,
             projects.ProjectNotFound, projects.MemberNotFound, pipelines.PipelineNotFound,
             worker_tokens.WorkerTokenNotFound, pipeline_schedules.PipelineScheduleNotFound, alerts.AlertNotFound)
BAD_REQUEST = (users.AccountError, JobSpecError, ValidationError, ScheduleError, TimingError, projects.ProjectError,
               worker_tokens.WorkerTokenError, alerts.AlertError)
CONFLICT = (templates.TemplateConflict, schedules.ScheduleConflict, worker_tokens.WorkerTokenConflict,
            pipelines.PipelineConflict, pipeline_schedules.PipelineScheduleConflict, alerts.AlertExists)

DESCRIPTIONS = {400: "Bad request", 401: "Not authenticated", 403: "Not allowed", 404: "Not found",
                409: "Conflict", 422: "Invalid fields", 429: "Too many attempts",
                502: "Archive does not match its manifest", 503: "Archive store unreachable"}


class Conflict(Exception):
    """The request does not fit the object's state (e.g. cancel of a job that already ended): 409."""


class FieldErrors(ValueError):
    """Invalid fields of a request body, each with what is wrong: 422 naming each one."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{field}: {message}" for field, message in errors.items()))
        self.errors = errors


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` for these refusals, each with the `ErrorOut` body."""
    return {status: {"model": ErrorOut, "description": DESCRIPTIONS.get(status, "Error")} for status in statuses}


def error_response(status: int, detail: str, headers: dict[str, str] | None = None,
                   errors: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"detail": detail}
    if errors is not None:
        body["errors"] = [{"loc": ["body", field], "msg": message} for field, message in errors.items()]
    return JSONResponse(body, status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    """Map the core's exceptions to their HTTP status on `app`."""

    def auth_error(request: Request, exc: AuthError) -> JSONResponse:
        principal = getattr(request.state, "principal", None)
        if exc.status_code == 403 and principal is not None:  # refused by a rule in a handler: audited here
            denied(request, principal.username, exc)
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
        return error_response(exc.status_code, str(exc), headers)

    def locked_out(_request: Request, exc: ratelimit.LockedOut) -> JSONResponse:
        return error_response(429, str(exc), {"Retry-After": str(exc.retry_after)})

    def not_found(_request: Request, exc: LookupError) -> JSONResponse:
        return error_response(404, str(exc))

    def bad_request(_request: Request, exc: ValueError) -> JSONResponse:
        return error_response(400, str(exc)[:2000])

    def invalid_fields(_request: Request, exc: FieldErrors) -> JSONResponse:
        return error_response(422, str(exc), errors=exc.errors)

    def conflict(_request: Request, exc: Exception) -> JSONResponse:
        return error_response(409, str(exc))

    def prefect_down(_request: Request, exc: httpx.TransportError) -> JSONResponse:
        return error_response(503, "the Prefect API does not answer: is the stack up? ('swarmsync up')")

    def prefect_refused(_request: Request, exc: httpx.HTTPStatusError) -> JSONResponse:
        status = exc.response.status_code
        return error_response(400 if status < 500 else 502,
                              f"the Prefect API answered {status}: {exc.response.text[:300]}")

    def archive_corrupt(_request: Request, exc: archive.ArchiveCorrupt) -> JSONResponse:
        return error_response(502, str(exc))

    def store_down(_request: Request, exc: archive.ArchiveStoreError) -> JSONResponse:
        return error_response(503, str(exc))

    app.add_exception_handler(archive.ArchiveCorrupt, archive_corrupt)
    app.add_exception_handler(archive.ArchiveStoreError, store_down)
    app.add_exception_handler(AuthError, auth_error)
    app.add_exception_handler(ratelimit.LockedOut, locked_out)
    for exc_type in NOT_FOUND:
        app.add_exception_handler(exc_type, not_found)
    for exc_type in BAD_REQUEST:
        app.add_exception_handler(exc_type, bad_request)
    app.add_exception_handler(FieldErrors, invalid_fields)
    app.add_exception_handler(Conflict, conflict)
    for exc_type in CONFLICT:
        app.add_exception_handler(exc_type, conflict)
    app.add_exception_handler(httpx.TransportError, prefect_down)
    app.add_exception_handler(httpx.HTTPStatusError, prefect_refused)
