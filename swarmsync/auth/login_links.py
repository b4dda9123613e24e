"""One-time login links for the dashboard: how the owner of an embedded stack gets in
without any default password.

`swarmsync up` / `demo` (embedded mode) create a local admin with a random password nobody
is told (`ensure_local_admin`) and print a link `DASHBOARD/?login=SECRET`. The dashboard
exchanges the secret for a session through the API (`POST /auth/link`) and drops it from
the URL. A link works once, for SWARMSYNC_LOGIN_LINK_TTL_SECONDS (10 minutes by default).

Links are stored like sessions, as the SHA-256 of their secret only: in Redis when
SWARMSYNC_REDIS_URL is set (`PREFIX login-link:<sha256>`, with a TTL, taken with GETDEL so
two uses cannot both succeed), else as a row of the `sessions` table under a hash a session
secret never has (the digest of "login-link:" + secret), deleted by the one redeem that
gets it. Revoking a user's sessions revokes their links too (SQL).
"""

from __future__ import annotations

import getpass
import secrets as pysecrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select

from swarmsync.auth import audit
from swarmsync.auth.roles import Principal, Unauthenticated
from swarmsync.auth.secrets import digest, new_secret
from swarmsync.auth.sessions import session_store
from swarmsync.auth.users import LoginSession, UserInfo, add_user, check_username
from swarmsync.db import SessionRecord, User, session_scope
from swarmsync.settings import get_settings
from swarmsync.timing import db_utc

LINK_PREFIX = "ssl_"  # a one-time login link


def _key(secret: str) -> str:
    return digest("login-link:" + secret)


def create_link(username: str, actor: str = "local") -> str:
    """A new one-time login secret for `username` (an enabled user)."""
    settings = get_settings()
    with session_scope() as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None or user.disabled:
            raise LookupError(f"no enabled user named {username!r}")
        user_id = user.id
    secret = new_secret(LINK_PREFIX)
    ttl = settings.login_link_ttl_seconds
    if settings.redis_url:
        store = session_store()
        store.redis.set(f"{store.prefix}login-link:{_key(secret)}", str(user_id), ex=ttl)
    else:
        now = datetime.now(UTC)
        with session_scope() as session:
            session.execute(delete(SessionRecord).where(SessionRecord.expires_at < now))
            session.add(SessionRecord(token_hash=_key(secret), user_id=user_id, created_at=now,
                                      expires_at=now + timedelta(seconds=ttl)))
    audit.record(actor, "login-link.create", username)
    return secret


def _take(secret: str) -> int | None:
    """The link's user id, removing the link (None: unknown, used or expired)."""
    settings = get_settings()
    if settings.redis_url:
        store = session_store()
        raw = store.redis.getdel(f"{store.prefix}login-link:{_key(secret)}")
        return int(raw) if raw else None
    with session_scope() as session:
        row = session.execute(delete(SessionRecord).where(SessionRecord.token_hash == _key(secret))
                              .returning(SessionRecord.user_id, SessionRecord.expires_at)).first()
    if row is None or db_utc(row.expires_at) <= datetime.now(UTC):
        return None
    return int(row.user_id)


def redeem(secret: str, address: str | None = None) -> LoginSession:
    """Exchange a link for a session (once); Unauthenticated if it is unknown, used or expired."""
    user_id = _take(secret[:200]) if secret.startswith(LINK_PREFIX) else None
    with session_scope() as session:
        user = session.get(User, user_id) if user_id is not None else None
        info = UserInfo.of(user) if user is not None and not user.disabled else None
    if info is None:
        audit.record("-", "login", "login link", "denied", address, why="unknown, used or expired login link")
        raise Unauthenticated("this login link is unknown, used or expired: print a new one with "
                              "'swarmsync login-link' on the machine that runs SwarmSync")
    token, expires = session_store().create(info.id, get_settings().session_ttl_seconds)
    audit.record(info.username, "login", info.username, address=address, via="login link")
    return LoginSession(token, expires, info)


def local_admin_name() -> str:
    """The local admin's name: this machine's user name when it is a valid user name, else 'admin'."""
    try:
        return check_username(getpass.getuser())
    except Exception:  # noqa: BLE001
        return "admin"


def ensure_local_admin() -> str:
    """The user a login link is for: the first enabled admin, or (no user at all yet) a new local
    admin with a random password that nobody is told (never a default password)."""
    with session_scope() as session:
        admin = session.scalar(select(User).where(User.role == "admin", User.disabled.is_(False))
                               .order_by(User.id))
        if admin is not None:
            return admin.username
        if session.scalar(select(func.count()).select_from(User)):
            raise LookupError("no enabled admin: add one with 'swarmsync user add NAME --role admin'")
    return add_user(Principal.local(), local_admin_name(), pysecrets.token_urlsafe(32), "admin").username


def login_link(dashboard_url: str) -> str:
    """A fresh one-time dashboard link for the local admin (created if there is no user yet)."""
    return f"{dashboard_url.rstrip('/')}/?login={create_link(ensure_local_admin())}"


__all__ = ["LINK_PREFIX", "create_link", "ensure_local_admin", "login_link", "redeem"]
