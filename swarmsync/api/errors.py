"""How SwarmSync's exceptions become HTTP answers: one table, one handler, and the API's own refusals.

Endpoints raise the core's exceptions (`JobNotFound`, `AccountError`, `ScheduleError`, ...), all
of the `swarmsync.Error` family (`swarmsync/errors.py`); `install()` answers each with the status
`STATUS` gives the first of its classes (most specific first) it names: not found -> 404, refused
-> 403 (not authenticated 401, locked out 429), invalid -> 400 (`FieldErrors` and upload bodies that
do not check out 422, the first with `errors` naming each field), conflict -> 409, a service
unreachable -> 503, an archive that does not match its manifest -> 502. A bare `swarmsync.Error`
(a failure, not a wrong request) is not answered here: 500, logged. Prefect unreachable -> 503.
Every body is `ErrorOut`.
"""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from swarmsync.api.deps import denied
from swarmsync.api.schemas import ErrorOut
from swarmsync.archive import ArchiveCorrupt
from swarmsync.archive.staging import ChunkCorrupt, ManifestInvalid
from swarmsync.auth.ratelimit import LockedOut
from swarmsync.auth.roles import AuthError, Unauthenticated
from swarmsync.errors import ConflictError, Error, InvalidError, NotFoundError, RefusedError, UnavailableError

DESCRIPTIONS = {400: "Bad request", 401: "Not authenticated", 403: "Not allowed", 404: "Not found",
                409: "Conflict", 422: "Invalid fields", 429: "Too many attempts",
                502: "Archive does not match its manifest", 503: "Service unreachable"}


class Conflict(ConflictError):
    """The request does not fit the object's state (e.g. cancel of a job that already ended): 409."""


class FieldErrors(InvalidError):
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


def status_of(exc: BaseException) -> int:
    """The HTTP status `STATUS` gives `exc`: that of the first class of its MRO the table names (else 500)."""
    return next((STATUS[cls] for cls in type(exc).__mro__ if cls in STATUS), 500)


def answer(request: Request, exc: Exception) -> JSONResponse:
    """The one answer to a family error (and pydantic's): its status from `STATUS`, its message as `detail`."""
    status = status_of(exc)
    headers = None
    if status == 401:
        headers = {"WWW-Authenticate": "Bearer"}
    elif status == 429 and isinstance(exc, LockedOut):
        headers = {"Retry-After": str(exc.retry_after)}
    principal = getattr(request.state, "principal", None)
    if status == 403 and isinstance(exc, AuthError) and principal is not None:
        denied(request, principal.username, exc)  # refused by a rule in a handler: audited here
    detail = str(exc)[:2000] if status == 400 else str(exc)
    return error_response(status, detail, headers, errors=exc.errors if isinstance(exc, FieldErrors) else None)


STATUS: dict[type[BaseException], int] = {
    # the family's kinds (swarmsync/errors.py)
    NotFoundError: 404,
    RefusedError: 403,
    InvalidError: 400,
    ConflictError: 409,
    UnavailableError: 503,
    Error: 500,  # a failure, not a wrong request: no handler, Starlette's 500 (and the traceback in the log)
    # members answered otherwise than their kind
    Unauthenticated: 401,
    LockedOut: 429,
    FieldErrors: 422,
    ChunkCorrupt: 422,
    ManifestInvalid: 422,
    ArchiveCorrupt: 502,
    # a request body FastAPI's own validation let through, checked again by a model in the core
    ValidationError: 400,
}
"""Every HTTP status an exception maps to, found by the first class of the exception's MRO named here."""


def install(app: FastAPI) -> None:
    """Answer the family's errors (one handler, `STATUS`) and Prefect's HTTP errors on `app`."""

    def prefect_down(_request: Request, exc: httpx.TransportError) -> JSONResponse:
        return error_response(503, "the Prefect API does not answer: is the stack up? ('swarmsync up')")

    def prefect_refused(_request: Request, exc: httpx.HTTPStatusError) -> JSONResponse:
        status = exc.response.status_code
        return error_response(400 if status < 500 else 502,
                              f"the Prefect API answered {status}: {exc.response.text[:300]}")

    for exc_type, status in STATUS.items():
        if status != 500:
            app.add_exception_handler(exc_type, answer)
    app.add_exception_handler(httpx.TransportError, prefect_down)
    app.add_exception_handler(httpx.HTTPStatusError, prefect_refused)
