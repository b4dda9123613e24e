"""Request dependencies: who is calling (`caller`) and the one permission gate (`require`)."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from swarmsync.auth import audit, refusals
from swarmsync.auth.identify import identify
from swarmsync.auth.roles import AuthError, Permission, Principal, authorize
from swarmsync.settings import get_settings

bearer = HTTPBearer(auto_error=False, description="A session token (from /auth/login) or an API token")


def _trusted(host: str, networks: str) -> bool:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host in {n.strip() for n in networks.split(",")}  # a name (tests: "testclient")
    for entry in networks.split(","):
        try:
            if entry.strip() and ip in ipaddress.ip_network(entry.strip(), strict=False):
                return True
        except ValueError:
            continue
    return False


def client_address(peer: str | None, forwarded_for: list[str], trusted: str) -> str | None:
    """The caller's address: the direct peer, unless it is a trusted proxy (SWARMSYNC_TRUSTED_PROXIES);
    then the right-most address of X-Forwarded-For that is not a trusted proxy itself (the left-most
    when all are). Only trusted proxies can put an address there, so no caller can pick its own."""
    if peer is None or not _trusted(peer, trusted):
        return peer
    hops = [hop.strip() for header in forwarded_for for hop in header.split(",") if hop.strip()]
    address = peer
    for hop in reversed(hops):
        try:
            hop = str(ipaddress.ip_address(hop.strip("[]")))
        except ValueError:
            break  # not an address: stop at what the trusted chain vouched for
        address = hop
        if not _trusted(hop, trusted):
            break
    return address


def address(request: Request) -> str | None:
    """Where the request comes from, for the per-address login limit and the audit log."""
    peer = request.client.host if request.client else None
    return client_address(peer, request.headers.getlist("x-forwarded-for"), get_settings().trusted_proxies)


def bearer_secret(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> str | None:
    return credentials.credentials if credentials else None


def denied(request: Request, actor: str, exc: AuthError) -> None:
    """A refusal of a known caller (403): one audit row each (`exc.audited` marks it written, so the error
    handler that audits every other 403 does not write a second)."""
    if getattr(exc, "audited", False):
        return
    audit.record(actor, f"{request.method} {request.url.path}"[:64], None, "denied", address(request),
                 why=str(exc), status=exc.status_code)
    exc.audited = True


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
            denied(request, principal.username, exc)
            raise

    gate.__name__ = f"require_{permission.name.lower()}"
    return gate


def check(request: Request, principal: Principal, permission: Permission) -> Principal:
    """The same gate inside a handler, for rules that depend on the request body."""
    try:
        return authorize(principal, permission)
    except AuthError as exc:
        denied(request, principal.username, exc)
        raise
