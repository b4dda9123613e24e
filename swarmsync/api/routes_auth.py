"""/auth/login, /auth/logout, /me, /me/password."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from swarmsync.api.deps import address, bearer_secret, caller
from swarmsync.api.schemas import LoginRequest, LoginResponse, Me, PasswordChange, UserOut
from swarmsync.auth import users
from swarmsync.auth.roles import Principal

router = APIRouter(tags=["auth"])


@router.post("/auth/login", response_model=LoginResponse, responses={401: {}, 429: {}})
def login(body: LoginRequest, request: Request) -> LoginResponse:
    """Open a session; its token expires after SWARMSYNC_SESSION_TTL_SECONDS. Rate-limited per user and address."""
    session = users.login(body.username, body.password, address(request))
    return LoginResponse(token=session.token, expires_at=session.expires_at, user=UserOut(**vars(session.user)))


@router.post("/auth/logout", status_code=204, responses={401: {}})
def logout(request: Request, principal: Principal = Depends(caller), secret: str | None = Depends(bearer_secret)):
    """End this session at once (API tokens are revoked with DELETE /tokens/{id} instead)."""
    if principal.via == "session" and secret:
        users.logout(principal, secret, address(request))


@router.get("/me", response_model=Me, responses={401: {}})
def me(principal: Principal = Depends(caller)) -> Me:
    return Me(username=principal.username, role=principal.role.value, via=principal.via,
              permissions=sorted(p.value for p in principal.permissions))


@router.post("/me/password", status_code=204, responses={400: {}, 401: {}})
def change_password(body: PasswordChange, request: Request, principal: Principal = Depends(caller)):
    """Change one's own password; every session of the user ends."""
    users.set_password(principal, principal.username, body.new_password, body.current_password, address(request))
