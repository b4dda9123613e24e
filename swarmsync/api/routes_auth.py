"""/auth: log in (a session token) and out."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from swarmsync.api.deps import address, bearer_secret, caller
from swarmsync.api.errors import responses
from swarmsync.api.schemas import LinkRequest, LoginRequest, LoginResponse, UserOut
from swarmsync.auth import login_links, users
from swarmsync.auth.roles import Principal

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/login", response_model=LoginResponse, responses=responses(401, 429))
def login(body: LoginRequest, request: Request) -> LoginResponse:
    """Open a session; its token expires after SWARMSYNC_SESSION_TTL_SECONDS. Rate-limited per user and address."""
    session = users.login(body.username, body.password, address(request))
    return LoginResponse(token=session.token, expires_at=session.expires_at, user=UserOut(**vars(session.user)))


@router.post("/link", response_model=LoginResponse, responses=responses(401))
def link(body: LinkRequest, request: Request) -> LoginResponse:
    """Exchange a one-time login link (`swarmsync up`, `swarmsync login-link`) for a session; a link works once."""
    session = login_links.redeem(body.token, address(request))
    return LoginResponse(token=session.token, expires_at=session.expires_at, user=UserOut(**vars(session.user)))


@router.post("/logout", status_code=204, responses=responses(401))
def logout(request: Request, principal: Principal = Depends(caller),
           secret: str | None = Depends(bearer_secret)) -> None:
    """End this session at once (API tokens are revoked with DELETE /tokens/{id} instead)."""
    if principal.via == "session" and secret:
        users.logout(principal, secret, address(request))
