"""/users: accounts (admin)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from swarmsync.api.deps import address, require
from swarmsync.api.errors import responses
from swarmsync.api.schemas import UserCreate, UserOut, UserUpdate
from swarmsync.auth import users
from swarmsync.auth.roles import Permission, Principal

router = APIRouter(prefix="/users", tags=["users"], responses=responses(401, 403))
admin = require(Permission.USERS_MANAGE)


@router.get("", response_model=list[UserOut])
def list_users(principal: Principal = Depends(admin)) -> list[UserOut]:
    return [UserOut(**vars(u)) for u in users.list_users(principal)]


@router.post("", response_model=UserOut, status_code=201, responses=responses(400))
def add_user(body: UserCreate, request: Request, principal: Principal = Depends(admin)) -> UserOut:
    return UserOut(**vars(users.add_user(principal, body.username, body.password, body.role, address(request))))


@router.patch("/{username}", response_model=UserOut, responses=responses(400, 404))
def update_user(username: str, body: UserUpdate, request: Request, principal: Principal = Depends(admin)) -> UserOut:
    """Change role, disable/enable, or set the password; the last admin cannot be demoted or disabled."""
    info = None
    where = address(request)
    if body.role is not None:
        info = users.set_role(principal, username, body.role, where)
    if body.disabled is not None:
        info = users.set_disabled(principal, username, body.disabled, where)
    if body.password is not None:
        info = users.set_password(principal, username, body.password, address=where)
    if info is None:
        info = users.get_user(principal, username)
    return UserOut(**vars(info))
