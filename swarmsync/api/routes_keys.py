"""SSH login keys: one's own (/me/keys, `keys:own`) and anyone's (/users/{name}/keys, admins)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from swarmsync.api.deps import address, require
from swarmsync.api.errors import responses
from swarmsync.api.schemas import KeyAdd, KeyOut
from swarmsync.auth import ssh_keys
from swarmsync.auth.roles import Permission, Principal

router = APIRouter(tags=["keys"], responses=responses(401, 403))
own = require(Permission.KEYS_OWN)
admin = require(Permission.USERS_MANAGE)


@router.get("/me/keys", response_model=list[KeyOut])
def my_keys(principal: Principal = Depends(own)) -> list[KeyOut]:
    return [KeyOut(**vars(k)) for k in ssh_keys.list_keys(principal)]


@router.post("/me/keys", response_model=KeyOut, status_code=201, responses=responses(400))
def add_my_key(body: KeyAdd, request: Request, principal: Principal = Depends(own)) -> KeyOut:
    """Register an OpenSSH public key (ssh-ed25519 or sk-ssh-ed25519@openssh.com) to log in with."""
    return KeyOut(**vars(ssh_keys.add_key(principal, body.public_key, address=address(request))))


@router.delete("/me/keys/{fingerprint:path}", response_model=KeyOut, responses=responses(404))
def remove_my_key(fingerprint: str, request: Request, principal: Principal = Depends(own)) -> KeyOut:
    """Remove a key (by its SHA256:... fingerprint): logins with it are refused from now on."""
    return KeyOut(**vars(ssh_keys.remove_key(principal, fingerprint, address=address(request))))


@router.get("/users/{username}/keys", response_model=list[KeyOut], responses=responses(404))
def user_keys(username: str, principal: Principal = Depends(admin)) -> list[KeyOut]:
    return [KeyOut(**vars(k)) for k in ssh_keys.list_keys(principal, username)]


@router.post("/users/{username}/keys", response_model=KeyOut, status_code=201, responses=responses(400, 404))
def add_user_key(username: str, body: KeyAdd, request: Request, principal: Principal = Depends(admin)) -> KeyOut:
    return KeyOut(**vars(ssh_keys.add_key(principal, body.public_key, username, address(request))))


@router.delete("/users/{username}/keys/{fingerprint:path}", response_model=KeyOut, responses=responses(404))
def remove_user_key(username: str, fingerprint: str, request: Request,
                    principal: Principal = Depends(admin)) -> KeyOut:
    """Revoke anyone's key (admins)."""
    return KeyOut(**vars(ssh_keys.remove_key(principal, fingerprint, username, address(request))))
