"""User accounts: add, list, disable, change role or password, log in and out.

Every function takes the acting `Principal` and calls `authorize()` first, so the API,
the CLI and the Python client enforce the same rules. Every change is audited.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select

from swarmsync.auth import audit, projects, ratelimit, refusals
from swarmsync.auth.account_errors import AccountError, UserNotFound
from swarmsync.auth.passwords import dummy_hash, hash_password, verify_password
from swarmsync.auth.roles import Permission, Principal, Role, Unauthenticated, authorize, parse_role
from swarmsync.auth.sessions import session_store
from swarmsync.db import User, session_scope
from swarmsync.settings import get_settings

USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


@dataclass(frozen=True)
class UserInfo:
    id: int
    username: str
    role: str
    disabled: bool
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> UserInfo:
        return cls(user.id, user.username, user.role, user.disabled, user.created_at)


@dataclass(frozen=True)
class LoginSession:
    token: str
    expires_at: datetime
    user: UserInfo


def check_username(username: str) -> str:
    if not USERNAME.match(username):
        raise AccountError(
            "invalid username: 1-64 characters, letters, digits and . _ @ - (starting with a letter or digit)"
        )
    return username


def _role(value: str) -> str:
    try:
        return parse_role(value).value
    except ValueError as exc:
        raise AccountError(str(exc)) from None


def _get(session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise UserNotFound(f"no user named {username!r}")
    return user


def add_user(
    actor: Principal, username: str, password: str, role: str = "viewer", address: str | None = None,
    join_default: bool = True,
) -> UserInfo:
    """Add a user; they join the default project unless `join_default` is False (swarmsync.auth.projects)."""
    authorize(actor, Permission.USERS_MANAGE)
    check_username(username)
    role = _role(role)
    try:
        password_hash = hash_password(password)
    except ValueError as exc:
        raise AccountError(str(exc)) from None
    now = datetime.now(UTC)
    with session_scope() as session:
        if session.scalar(select(User).where(func.lower(User.username) == username.lower())):
            raise AccountError(f"a user named {username!r} already exists")
        user = User(username=username, password_hash=password_hash, role=role, disabled=False,
                    created_at=now, password_changed_at=now)
        session.add(user)
        session.flush()
        if join_default:
            projects.join_default(session, user.id)
        info = UserInfo.of(user)
    audit.record(actor.username, "user.add", username, address=address, role=role)
    return info


def list_users(actor: Principal) -> list[UserInfo]:
    authorize(actor, Permission.USERS_MANAGE)
    with session_scope() as session:
        return [UserInfo.of(u) for u in session.scalars(select(User).order_by(User.username))]


def _other_enabled_admins(session, user: User) -> int:
    return session.scalar(
        select(func.count()).select_from(User).where(
            User.role == Role.ADMIN.value, User.disabled.is_(False), User.id != user.id
        )
    )


def set_role(actor: Principal, username: str, role: str, address: str | None = None) -> UserInfo:
    authorize(actor, Permission.USERS_MANAGE)
    new_role = _role(role)
    with session_scope() as session:
        user = _get(session, username)
        old = user.role
        if old == Role.ADMIN.value and new_role != old and not _other_enabled_admins(session, user):
            raise AccountError(f"{username} is the last admin: make another admin first")
        user.role = new_role
        info = UserInfo.of(user)
    if old != new_role:
        session_store().revoke_user(info.id)
    audit.record(actor.username, "user.set-role", username, address=address, old=old, new=new_role)
    return info


def set_disabled(actor: Principal, username: str, disabled: bool = True, address: str | None = None) -> UserInfo:
    """Disable (or enable again) a user; disabling ends all their sessions at once."""
    authorize(actor, Permission.USERS_MANAGE)
    with session_scope() as session:
        user = _get(session, username)
        if disabled and user.role == Role.ADMIN.value and not _other_enabled_admins(session, user):
            raise AccountError(f"{username} is the last enabled admin: make another admin first")
        user.disabled = disabled
        info = UserInfo.of(user)
    if disabled:
        session_store().revoke_user(info.id)
    audit.record(actor.username, "user.disable" if disabled else "user.enable", username, address=address)
    return info


def set_password(
    actor: Principal, username: str, password: str, current: str | None = None, address: str | None = None,
) -> UserInfo:
    """Admins set anyone's password; a user changes their own with the current one. Ends all sessions."""
    if actor.username != username or actor.via == "local":
        authorize(actor, Permission.USERS_MANAGE)
    try:
        password_hash = hash_password(password)
    except ValueError as exc:
        raise AccountError(str(exc)) from None
    with session_scope() as session:
        user = _get(session, username)
        if actor.username == username and actor.via != "local":
            if current is None or not verify_password(user.password_hash, current):
                audit.record(actor.username, "user.password", username, "denied", address, why="wrong current password")
                raise Unauthenticated("the current password is wrong")
        user.password_hash = password_hash
        user.password_changed_at = datetime.now(UTC)
        info = UserInfo.of(user)
    session_store().revoke_user(info.id)
    audit.record(actor.username, "user.password", username, address=address)
    return info


def login(username: str, password: str, address: str | None = None) -> LoginSession:
    """Check the password (rate-limited per user and per address) and open a session.

    `address` is the caller's (`swarmsync.api.deps.address`: the browser's for dashboard logins
    forwarded by a trusted proxy)."""
    try:
        with ratelimit.attempt(username, address) as attempt:  # counted before the password is checked
            with session_scope() as session:
                user = session.scalar(select(User).where(User.username == username[:64]))
                stored = user.password_hash if user else dummy_hash()
                ok = verify_password(stored, password) and user is not None and not user.disabled
                info = UserInfo.of(user) if user else None
            if ok and info is not None:
                attempt.succeeded()
            else:
                attempt.failed()
    except ratelimit.LockedOut:
        refusals.record("login", username[:100], "login", address, username[:300], why="locked out")
        raise
    if not ok or info is None:
        audit.record(username[:100], "login", username[:300], "denied", address, why="wrong username or password")
        raise Unauthenticated("wrong username or password (or the account is disabled)")
    token, expires = session_store().create(info.id, get_settings().session_ttl_seconds)
    audit.record(info.username, "login", info.username, address=address)
    return LoginSession(token, expires, info)


def logout(actor: Principal, token: str, address: str | None = None) -> None:
    session_store().revoke(token)
    audit.record(actor.username, "logout", actor.username, address=address)


def user_by_id(user_id: int) -> UserInfo | None:
    with session_scope() as session:
        user = session.get(User, user_id)
        return UserInfo.of(user) if user else None


def count_users() -> int:
    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(User))


def ensure_first_admin() -> UserInfo | None:
    """At first start: create SWARMSYNC_ADMIN_USER with SWARMSYNC_ADMIN_PASSWORD when no user exists."""
    settings = get_settings()
    if not (settings.admin_user and settings.admin_password) or count_users():
        return None
    return add_user(Principal.local(), settings.admin_user, settings.admin_password.get_secret_value(), "admin")


def get_user(actor: Principal, username: str) -> UserInfo:
    authorize(actor, Permission.USERS_MANAGE)
    with session_scope() as session:
        return UserInfo.of(_get(session, username))
