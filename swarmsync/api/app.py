"""The SwarmSync API application: routers, limits and error mapping.

Add a router (e.g. schedules, templates) by appending it to ROUTERS; its endpoints
guard themselves with `Depends(require(Permission.X))` from `deps.py`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from swarmsync import __version__, archive, jobs, templates
from swarmsync.api import (
    routes_auth,
    routes_health,
    routes_jobs,
    routes_pools,
    routes_schedules,
    routes_tokens,
    routes_users,
)
from swarmsync.auth import ratelimit, refusals, tokens, users
from swarmsync.auth.roles import AuthError
from swarmsync.deployments import pools, schedules
from swarmsync.deployments.schedule_rules import ScheduleError
from swarmsync.settings import get_settings
from swarmsync.spec import JobSpecError
from swarmsync.timing import TimingError

# The seam: every router of the API. Schedules and templates join here.
ROUTERS = [
    routes_auth.router,
    routes_jobs.router,
    routes_health.router,
    routes_users.router,
    routes_tokens.router,
    routes_schedules.router,
    routes_pools.router,
]

SECRET_QUERY_NAMES = {"token", "access_token", "api_key", "apikey", "password", "auth"}


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    """Every window, summarise the refusal counts of windows that have passed (`refusals`)."""
    async def summarise() -> None:
        while True:
            await anyio.sleep(max(get_settings().audit_refusal_window_seconds, 1))
            try:
                await anyio.to_thread.run_sync(refusals.flush)
            except Exception as exc:  # noqa: BLE001 - a database or Redis hiccup: the next round catches up
                logging.getLogger("swarmsync.api").warning("audit refusal summary failed: %s", exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(summarise)
        try:
            yield
        finally:
            tg.cancel_scope.cancel()
    try:
        await anyio.to_thread.run_sync(refusals.flush_at_exit)
    except Exception as exc:  # noqa: BLE001
        logging.getLogger("swarmsync.api").warning("audit refusal summary at shutdown failed: %s", exc)


def create_app() -> FastAPI:
    app = FastAPI(lifespan=lifespan,
        title="SwarmSync API", version=__version__,
        description="Container jobs on Prefect: submit, follow, fetch results; accounts, tokens and audit. "
        "Authenticate with 'Authorization: Bearer <token>' (a session from /auth/login, or an API token).",
    )
    for router in ROUTERS:
        app.include_router(router)
    _error_handlers(app)
    app.add_middleware(RefuseSecretsInUrls)
    app.add_middleware(RequestLimits, max_bytes=get_settings().max_body_bytes)
    return app


def _json(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def _error_handlers(app: FastAPI) -> None:
    def auth_error(_request: Request, exc: AuthError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
        return _json(exc.status_code, str(exc), headers)

    def locked_out(_request: Request, exc: ratelimit.LockedOut) -> JSONResponse:
        return _json(429, str(exc), {"Retry-After": str(exc.retry_after)})

    def not_found(_request: Request, exc: LookupError) -> JSONResponse:
        return _json(404, str(exc))

    def bad_request(_request: Request, exc: ValueError) -> JSONResponse:
        return _json(400, str(exc)[:2000])

    def conflict(_request: Request, exc: Exception) -> JSONResponse:
        return _json(409, str(exc))

    def prefect_down(_request: Request, exc: httpx.TransportError) -> JSONResponse:
        return _json(503, "the Prefect API does not answer: is the stack up? ('swarmsync up')")

    app.add_exception_handler(AuthError, auth_error)
    app.add_exception_handler(ratelimit.LockedOut, locked_out)
    for exc_type in (jobs.JobNotFound, archive.ArchiveNotFound, users.UserNotFound, tokens.TokenNotFound,
                     schedules.ScheduleNotFound, templates.TemplateNotFound, pools.PoolNotFound):
        app.add_exception_handler(exc_type, not_found)
    for exc_type in (users.AccountError, JobSpecError, ValidationError, ScheduleError, TimingError):
        app.add_exception_handler(exc_type, bad_request)
    app.add_exception_handler(routes_jobs.JobFinished, conflict)
    def prefect_refused(_request: Request, exc: httpx.HTTPStatusError) -> JSONResponse:
        status = exc.response.status_code
        return _json(400 if status < 500 else 502, f"the Prefect API answered {status}: {exc.response.text[:300]}")

    app.add_exception_handler(httpx.TransportError, prefect_down)
    app.add_exception_handler(httpx.HTTPStatusError, prefect_refused)


class RefuseSecretsInUrls:
    """Tokens and passwords belong in headers and bodies, never in URLs (which end up in logs)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("query_string"):
            from urllib.parse import parse_qsl

            names = {k.lower() for k, _ in parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)}
            raw = scope["query_string"].decode("latin-1")
            if names & SECRET_QUERY_NAMES or "ssk_" in raw or "sss_" in raw:
                response = _json(400, "credentials are not accepted in URLs: send 'Authorization: Bearer <token>'")
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class RequestLimits:
    """413 for bodies over SWARMSYNC_MAX_BODY_BYTES (declared or streamed); 400 for NUL
    characters anywhere in the URL or body (PostgreSQL cannot store them in text)."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_big = _json(413, f"request body larger than {self.max_bytes} bytes (SWARMSYNC_MAX_BODY_BYTES)")
        has_nul = _json(400, "NUL characters (\\u0000) are not accepted")
        url = scope.get("raw_path", b"") + b"?" + scope.get("query_string", b"")
        if b"%00" in url or b"\x00" in url or "\x00" in scope.get("path", ""):
            await has_nul(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await too_big(scope, receive, send)
            return
        seen = 0
        tail = b""
        refusal: JSONResponse | None = None

        async def limited() -> Message:
            nonlocal seen, tail, refusal
            message = await receive()
            if message["type"] == "http.request":
                body = message.get("body", b"")
                seen += len(body)
                window = tail + body
                if seen > self.max_bytes:
                    refusal = too_big
                elif b"\\u0000" in window or b"\x00" in window:
                    refusal = has_nul
                if refusal is not None:
                    return {"type": "http.disconnect"}  # the app stops reading; the refusal is sent below
                tail = window[-6:]
            return message

        async def guarded_send(message: Message) -> None:
            if refusal is None:
                await send(message)

        try:
            await self.app(scope, limited, guarded_send)
        except Exception:
            if refusal is None:
                raise
        if refusal is not None:
            await refusal(scope, receive, send)
