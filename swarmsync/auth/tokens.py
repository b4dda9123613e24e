"""API tokens: named, owned by a user, optionally scoped and expiring; only a hash is stored.

The secret (`ssk_...`) is shown once, when the token is created.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select

from swarmsync.auth import audit
from swarmsync.auth.roles import ROLE_PERMISSIONS, Forbidden, Permission, Principal, Role, authorize, parse_scopes
from swarmsync.auth.secrets import API_TOKEN_PREFIX, digest, new_secret
from swarmsync.auth.users import AccountError, UserNotFound
from swarmsync.db import ApiToken, User, session_scope
from swarmsync.errors import NotFoundError


class TokenNotFound(NotFoundError):
    pass


class TokenInfo(BaseModel):
    """A token as its owner and admins see it (never its secret); also the API's response model."""

    model_config = ConfigDict(frozen=True)

    id: int
    name: str
    owner: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked: bool


@dataclass(frozen=True)
class NewToken:
    token: str  # the secret: shown once
    info: TokenInfo


def _info(row: ApiToken, owner: str) -> TokenInfo:
    return TokenInfo(id=row.id, name=row.name, owner=owner, scopes=list(row.scopes or []), created_at=row.created_at,
                     expires_at=row.expires_at, last_used_at=row.last_used_at, revoked=row.revoked_at is not None)


def _may_act_for(actor: Principal, owner: str) -> None:
    if actor.username == owner and actor.via != "local":
        authorize(actor, Permission.TOKENS_OWN)
    else:
        authorize(actor, Permission.TOKENS_MANAGE)


def _no_wider_than(actor: Principal, owner_role: Role, scopes: list[str], expires_at: datetime | None) -> None:
    """A token never creates a token that may do more, or lives longer, than itself (403 naming what is wider).

    The new token may do what its owner's role allows within `scopes` (all of it when none are given);
    an expiring token's new tokens must expire no later than it does."""
    role = ROLE_PERMISSIONS[owner_role]
    granted = role & frozenset(Permission(s) for s in scopes) if scopes else role
    wider = sorted(p.value for p in granted - actor.permissions)
    if wider:
        raise Forbidden(
            f"this token ({', '.join(sorted(p.value for p in actor.permissions))}) cannot create a token with more "
            f"permissions than itself: {', '.join(wider)} (give --scope for each permission the new token needs)"
        )
    if actor.expires_at is not None and (expires_at is None or expires_at > actor.expires_at):
        raise Forbidden(
            f"this token expires at {actor.expires_at.isoformat(timespec='seconds')}: it cannot create a token "
            + ("that never expires" if expires_at is None else
               f"that expires later ({expires_at.isoformat(timespec='seconds')}); give a shorter expires_in_days")
        )


def create_token(
    actor: Principal, name: str, owner: str | None = None, scopes: list[str] | None = None,
    expires_in_days: float | None = None, address: str | None = None,
) -> NewToken:
    owner = owner or actor.username
    _may_act_for(actor, owner)
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise AccountError("token name must be 1-100 characters")
    try:
        scopes = parse_scopes(scopes)
    except ValueError as exc:
        raise AccountError(str(exc)) from None
    if expires_in_days is not None and not 0 < expires_in_days <= 3650:
        raise AccountError("expires_in_days must be between 0 and 3650")
    secret = new_secret(API_TOKEN_PREFIX)
    now = datetime.now(UTC)
    with session_scope() as session:
        user = session.scalar(select(User).where(User.username == owner))
        if user is None:
            raise UserNotFound(f"no user named {owner!r}")
        expires_at = now + timedelta(days=expires_in_days) if expires_in_days else None
        try:
            _no_wider_than(actor, Role(user.role), scopes, expires_at)
        except Forbidden as exc:
            audit.record(actor.username, "token.create", f"{owner}/{name}", "denied", address, why=str(exc))
            raise
        row = ApiToken(
            name=name, user_id=user.id, token_hash=digest(secret), scopes=scopes or [], created_at=now,
            expires_at=expires_at,
        )
        session.add(row)
        session.flush()
        info = _info(row, owner)
    audit.record(actor.username, "token.create", f"{owner}/{name}", address=address, token_id=info.id,
                 scopes=scopes, expires_at=info.expires_at.isoformat() if info.expires_at else None)
    return NewToken(secret, info)


def list_tokens(actor: Principal, owner: str | None = None, everyone: bool = False) -> list[TokenInfo]:
    """The actor's own tokens; admins may ask for one owner's or everyone's."""
    if everyone:
        authorize(actor, Permission.TOKENS_MANAGE)
    else:
        _may_act_for(actor, owner or actor.username)
    query = select(ApiToken, User.username).join(User, ApiToken.user_id == User.id).order_by(ApiToken.id)
    if not everyone:
        query = query.where(User.username == (owner or actor.username))
    with session_scope() as session:
        return [_info(row, username) for row, username in session.execute(query)]


def revoke_token(actor: Principal, token_id: int, address: str | None = None) -> TokenInfo:
    with session_scope() as session:
        found = session.execute(
            select(ApiToken, User.username).join(User, ApiToken.user_id == User.id).where(ApiToken.id == token_id)
        ).first()
        if found is None:
            authorize(actor, Permission.TOKENS_OWN)
            raise TokenNotFound(f"no token with id {token_id}")
        row, owner = found
        try:
            _may_act_for(actor, owner)
        except Forbidden:
            raise TokenNotFound(f"no token with id {token_id}") from None  # others' token ids are not disclosed
        if row.revoked_at is None:
            row.revoked_at = datetime.now(UTC)
        info = _info(row, owner)
    audit.record(actor.username, "token.revoke", f"{owner}/{info.name}", address=address, token_id=token_id)
    return info
