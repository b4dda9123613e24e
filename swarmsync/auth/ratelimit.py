"""Login rate limiting: too many failures for one user, or from one address, within
SWARMSYNC_LOGIN_WINDOW_SECONDS lock further logins (even with the right password) until
the window has passed. Counters live in Redis when configured, else in the SQL database.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache

from sqlalchemy import delete, func, select

from swarmsync.db import LoginFailure, session_scope
from swarmsync.settings import get_settings


class LockedOut(Exception):
    """Too many failed logins; the message says for whom and how long."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


def _keys(username: str, address: str | None) -> list[tuple[str, int, str]]:
    settings = get_settings()
    keys = [(f"user:{username.lower()[:64]}", settings.login_max_failures, f"user {username[:64]!r}")]
    if address:
        keys.append((f"addr:{address}", settings.login_max_failures_per_address, f"address {address}"))
    return keys


@cache
def _redis(url: str):
    import redis

    return redis.Redis.from_url(url, socket_timeout=5, decode_responses=True)


def check(username: str, address: str | None) -> None:
    """Raise LockedOut when the user or the address has used up its failures."""
    settings = get_settings()
    window = settings.login_window_seconds
    for key, limit, what in _keys(username, address):
        count, ttl = _count(key, window)
        if count >= limit:
            raise LockedOut(
                f"too many failed logins for {what}: locked, try again in {ttl} s", retry_after=ttl
            )


def record_failure(username: str, address: str | None) -> None:
    settings = get_settings()
    window = settings.login_window_seconds
    now = datetime.now(UTC)
    for key, _limit, _what in _keys(username, address):
        if settings.redis_url:
            full = f"{settings.redis_prefix}login-failures:{key}"
            with _redis(settings.redis_url).pipeline() as pipe:
                pipe.incr(full)
                pipe.expire(full, window)
                pipe.execute()
        else:
            with session_scope() as session:
                session.execute(delete(LoginFailure).where(LoginFailure.at < now - timedelta(seconds=window)))
                session.add(LoginFailure(key=key, at=now))


def clear_user(username: str) -> None:
    """A successful login forgets the user's failures (not the address's)."""
    settings = get_settings()
    key = f"user:{username.lower()[:64]}"
    if settings.redis_url:
        _redis(settings.redis_url).delete(f"{settings.redis_prefix}login-failures:{key}")
    else:
        with session_scope() as session:
            session.execute(delete(LoginFailure).where(LoginFailure.key == key))


def _count(key: str, window: int) -> tuple[int, int]:
    """(failures within the window, seconds until the lock lifts)."""
    settings = get_settings()
    if settings.redis_url:
        client = _redis(settings.redis_url)
        full = f"{settings.redis_prefix}login-failures:{key}"
        count = int(client.get(full) or 0)
        return count, max(int(client.ttl(full)), 1)
    since = datetime.now(UTC) - timedelta(seconds=window)
    with session_scope() as session:
        count, last = session.execute(
            select(func.count(), func.max(LoginFailure.at)).where(LoginFailure.key == key, LoginFailure.at >= since)
        ).one()
    if not count:
        return 0, 0
    last = last if last.tzinfo else last.replace(tzinfo=UTC)
    return int(count), max(int((last + timedelta(seconds=window) - datetime.now(UTC)).total_seconds()), 1)
