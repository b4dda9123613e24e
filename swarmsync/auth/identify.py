"""From a presented secret to a `Principal`: a session (Redis or SQL) or an API token.

Every refusal is the same 401 with a reason; the secret is never logged or audited.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from swarmsync.auth import projects
from swarmsync.auth.roles import Permission, Principal, Role, Unauthenticated
from swarmsync.auth.secrets import API_TOKEN_PREFIX, SESSION_PREFIX
from swarmsync.auth.sessions import session_store
from swarmsync.auth.token_rows import live_token_row
from swarmsync.db import ApiToken, User, session_scope
from swarmsync.timing import db_utc

LAST_USED_RESOLUTION = timedelta(seconds=60)  # last use is written at most once a minute per token


def identify(secret: str | None) -> Principal:
    if not secret:
        raise Unauthenticated("authentication required: send 'Authorization: Bearer <token>'")
    if secret.startswith(SESSION_PREFIX):
        return _from_session(secret)
    if secret.startswith(API_TOKEN_PREFIX):
        return _from_api_token(secret)
    raise Unauthenticated("invalid token")


def _active_user(session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None or user.disabled:
        raise Unauthenticated("the account is disabled or gone")
    return user


def _from_session(secret: str) -> Principal:
    user_id = session_store().user_of(secret)
    if user_id is None:
        raise Unauthenticated("session expired or revoked: log in again")
    with session_scope() as session:
        user = _active_user(session, user_id)
        return Principal(username=user.username, role=Role(user.role), user_id=user.id, via="session",
                         memberships=projects.memberships(session, user))


def _from_api_token(secret: str) -> Principal:
    now = datetime.now(UTC)
    with session_scope() as session:
        row = live_token_row(session, ApiToken, secret, "token", now)
        user = _active_user(session, row.user_id)
        last = db_utc(row.last_used_at)
        if last is None or now - last > LAST_USED_RESOLUTION:
            row.last_used_at = now
        return Principal(
            username=user.username, role=Role(user.role), user_id=user.id, via="token",
            scopes=frozenset(Permission(s) for s in row.scopes or []), token_id=row.id,
            expires_at=db_utc(row.expires_at), memberships=projects.memberships(session, user),
        )

