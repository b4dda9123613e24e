"""/auth: log in (a session token: with a password, or an SSH key by challenge/response) and out."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from swarmsync.api.deps import address, bearer_secret, caller
from swarmsync.api.errors import responses
from swarmsync.api.schemas import (
    ChallengeOut,
    ChallengeRequest,
    LinkRequest,
    LoginRequest,
    LoginResponse,
    UserOut,
    VerifyRequest,
)
from swarmsync.auth import login_links, ssh_keys, users
from swarmsync.auth.roles import Principal

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/login", response_model=LoginResponse, responses=responses(401, 429))
def login(body: LoginRequest, request: Request) -> LoginResponse:
    """Open a session; its token expires after SWARMSYNC_SESSION_TTL_SECONDS. Rate-limited per user and address."""
    session = users.login(body.username, body.password, address(request))
    return LoginResponse(token=session.token, expires_at=session.expires_at, user=UserOut(**vars(session.user)))


@router.post("/challenge", response_model=ChallengeOut)
def challenge(body: ChallengeRequest) -> ChallengeOut:
    """A single-use nonce to sign with an SSH key (expires after SWARMSYNC_LOGIN_CHALLENGE_TTL_SECONDS).
    The same answer whether or not the user exists or has keys."""
    issued = ssh_keys.challenge(body.user)
    return ChallengeOut(nonce=issued.nonce, expires_at=issued.expires_at, namespace=issued.namespace)


@router.post("/verify", response_model=LoginResponse, responses=responses(401, 429))
def verify(body: VerifyRequest, request: Request) -> LoginResponse:
    """Open a session with an SSH signature of the nonce (`ssh-keygen -Y sign -n swarmsync-login`) by one of
    the user's registered keys. Refusals are audited; rate-limited per user and address like /auth/login."""
    session = ssh_keys.key_login(body.user, body.nonce, body.signature, address(request))
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
