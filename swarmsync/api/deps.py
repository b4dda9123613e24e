"""Request dependencies: who is calling (`caller`) and the one permission gate (`require`)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from swarmsync.auth import audit, refusals
from swarmsync.auth.identify import identify
from swarmsync.auth.roles import AuthError, Permission, Principal, authorize

bearer = HTTPBearer(auto_error=False, description="A session token (from /auth/login) or an API token")


def address(request: Request) -> str | None:
    return request.client.host if request.client else None


def bearer_secret(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> str | None:
    return credentials.credentials if credentials else None


def _denied(request: Request, actor: str, exc: AuthError) -> None:
    """A refusal of a known caller (403): one audit row each."""
    audit.record(actor, f"{request.method} {request.url.path}"[:64], None, "denied", address(request),
                 why=str(exc), status=exc.status_code)


def caller(request: Request, secret: str | None = Depends(bearer_secret)) -> Principal:
    """The authenticated principal; 401 when the token is missing, wrong, expired or revoked,
    audited per address and window (`refusals`: anyone can send these, so they are bounded)."""
    try:
        principal = identify(secret)
    except AuthError as exc:
        refusals.record("request", "anonymous", f"{request.method} {request.url.path}"[:64], address(request),
                        why=str(exc), status=exc.status_code)
        raise
    request.state.principal = principal
    return principal


def require(permission: Permission) -> Callable[..., Principal]:
    """A dependency that lets the request through only when `authorize()` says so (403 audited)."""

    def gate(request: Request, principal: Principal = Depends(caller)) -> Principal:
        try:
            return authorize(principal, permission)
        except AuthError as exc:
            _denied(request, principal.username, exc)
            raise

    gate.__name__ = f"require_{permission.name.lower()}"
    return gate


def check(request: Request, principal: Principal, permission: Permission) -> Principal:
    """The same gate inside a handler, for rules that depend on the request body."""
    try:
        return authorize(principal, permission)
    except AuthError as exc:
        _denied(request, principal.username, exc)
        raise
