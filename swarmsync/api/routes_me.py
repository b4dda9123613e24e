"""/me: who is calling, and changing one's own password."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from swarmsync.api.deps import address, caller
from swarmsync.api.errors import responses
from swarmsync.api.schemas import Me, PasswordChange
from swarmsync.auth import users
from swarmsync.auth.roles import Principal

router = APIRouter(prefix="/me", tags=["auth"], responses=responses(401))


@router.get("", response_model=Me)
def me(principal: Principal = Depends(caller)) -> Me:
    return Me(username=principal.username, role=principal.role.value, via=principal.via,
              permissions=sorted(p.value for p in principal.permissions))


@router.post("/password", status_code=204, responses=responses(400))
def change_password(body: PasswordChange, request: Request, principal: Principal = Depends(caller)) -> None:
    """Change one's own password; every session of the user ends."""
    users.set_password(principal, principal.username, body.new_password, body.current_password, address(request))
