"""Login sessions with expiry and revocation: in Redis when SWARMSYNC_REDIS_URL is set,
else in the SQL database (single-machine mode).

A session is keyed by the SHA-256 of its secret; the secret itself is only ever in the
caller's hands. Revoking a user's sessions (logout everywhere, user disabled, password
or role changed) removes them all at once.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Protocol

from sqlalchemy import delete, select

from swarmsync.auth.redis_keys import RedisKeyed
from swarmsync.auth.secrets import SESSION_PREFIX, digest, new_secret
from swarmsync.db import SessionRecord, session_scope
from swarmsync.settings import get_settings
from swarmsync.timing import db_utc


class SessionStore(Protocol):
    def create(self, user_id: int, ttl: int) -> tuple[str, datetime]: ...
    def user_of(self, secret: str) -> int | None: ...
    def revoke(self, secret: str) -> None: ...
    def revoke_user(self, user_id: int) -> int: ...


class RedisSessions(RedisKeyed):
    """`PREFIX session:<sha256>` -> user id with a TTL; `PREFIX user-sessions:<id>` lists a user's sessions."""

    def _key(self, token_hash: str) -> str:
        return f"{self.prefix}session:{token_hash}"

    def _user_key(self, user_id: int) -> str:
        return f"{self.prefix}user-sessions:{user_id}"

    def create(self, user_id: int, ttl: int) -> tuple[str, datetime]:
        secret = new_secret(SESSION_PREFIX)
        token_hash = digest(secret)
        now = datetime.now(UTC)
        with self.redis.pipeline() as pipe:
            pipe.set(self._key(token_hash), json.dumps({"user_id": user_id, "created": now.isoformat()}), ex=ttl)
            pipe.sadd(self._user_key(user_id), token_hash)
            pipe.expire(self._user_key(user_id), ttl)  # every session has the same TTL: the newest outlives all
            pipe.execute()
        return secret, now + timedelta(seconds=ttl)

    def user_of(self, secret: str) -> int | None:
        raw = self.redis.get(self._key(digest(secret)))
        return int(json.loads(raw)["user_id"]) if raw else None

    def revoke(self, secret: str) -> None:
        token_hash = digest(secret)
        raw = self.redis.get(self._key(token_hash))
        self.redis.delete(self._key(token_hash))
        if raw:
            self.redis.srem(self._user_key(int(json.loads(raw)["user_id"])), token_hash)

    def revoke_user(self, user_id: int) -> int:
        hashes = self.redis.smembers(self._user_key(user_id))
        keys = [self._key(h) for h in hashes]
        removed = self.redis.delete(*keys) if keys else 0
        self.redis.delete(self._user_key(user_id))
        return int(removed)


class SqlSessions:
    """The `sessions` table; expired rows are ignored and pruned as new sessions are made."""

    def create(self, user_id: int, ttl: int) -> tuple[str, datetime]:
        secret = new_secret(SESSION_PREFIX)
        now = datetime.now(UTC)
        expires = now + timedelta(seconds=ttl)
        with session_scope() as session:
            session.execute(delete(SessionRecord).where(SessionRecord.expires_at < now))
            session.add(SessionRecord(token_hash=digest(secret), user_id=user_id, created_at=now, expires_at=expires))
        return secret, expires

    def user_of(self, secret: str) -> int | None:
        with session_scope() as session:
            row = session.scalar(select(SessionRecord).where(SessionRecord.token_hash == digest(secret)))
            if row is None or db_utc(row.expires_at) <= datetime.now(UTC):
                return None
            return row.user_id

    def revoke(self, secret: str) -> None:
        with session_scope() as session:
            session.execute(delete(SessionRecord).where(SessionRecord.token_hash == digest(secret)))

    def revoke_user(self, user_id: int) -> int:
        with session_scope() as session:
            return session.execute(delete(SessionRecord).where(SessionRecord.user_id == user_id)).rowcount or 0


@cache
def _redis_sessions(url: str, prefix: str) -> RedisSessions:
    return RedisSessions(url, prefix)


def session_store() -> SessionStore:
    """Redis when configured, else the SQL database (single-machine mode)."""
    settings = get_settings()
    if settings.redis_url:
        return _redis_sessions(settings.redis_url, settings.redis_prefix)
    return SqlSessions()
