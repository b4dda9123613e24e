"""Who is calling a worker route: a worker token (`swarmsync.auth.worker_tokens`), never a user.

A worker sends its token as Prefect's auth string (`worker:ssw_...`, HTTP Basic) through the gateway,
or as `Authorization: Bearer ssw_...` to SwarmSync's own worker routes; both are read here.
"""

from __future__ import annotations

import base64
import binascii

import anyio
from fastapi import Request

from swarmsync.api.deps import address
from swarmsync.auth import refusals, worker_tokens
from swarmsync.auth.roles import Unauthenticated
from swarmsync.auth.worker_tokens import WorkerPrincipal

WORKER_NAME_HEADER = "x-swarmsync-worker"


def presented_token(authorization: str | None) -> str | None:
    """The worker token in an Authorization header: `Bearer ssw_...`, or Basic `worker:ssw_...`."""
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip() or None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2] or None
    return None


async def worker_caller(request: Request) -> WorkerPrincipal:
    """The calling worker token; 401 when missing, unknown, revoked or expired (refusals bounded)."""
    secret = presented_token(request.headers.get("authorization"))
    where = address(request)
    try:
        principal = await anyio.to_thread.run_sync(
            worker_tokens.identify, secret, where, request.headers.get(WORKER_NAME_HEADER))
    except Unauthenticated as exc:
        why = str(exc)
        await anyio.to_thread.run_sync(lambda: refusals.record(
            "request", "anonymous", f"{request.method} {request.url.path}"[:64], where, why=why, status=401))
        raise
    request.state.worker = principal
    return principal
