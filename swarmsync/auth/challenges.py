"""Key-login challenges: single-use nonces with a short expiry (SWARMSYNC_LOGIN_CHALLENGE_TTL_SECONDS),
in Redis when SWARMSYNC_REDIS_URL is set, else in the SQL table `login_challenges`.

Only the nonce's SHA-256 is stored, with the user name it was issued for and its expiry.
`take()` hands a nonce out exactly once (Redis GETDEL; an SQL UPDATE of the one unused row),
and says why it cannot: unknown, already used, or expired. A used or expired nonce is
remembered for a while (GRACE_SECONDS) so that its refusal says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Protocol

from sqlalchemy import delete, select, update

from swarmsync.auth.redis_keys import RedisKeyed
from swarmsync.auth.secrets import digest, new_secret
from swarmsync.db import LoginChallenge, session_scope
from swarmsync.settings import get_settings

NONCE_PREFIX = "ssn_"
GRACE_SECONDS = 300  # a nonce is remembered this long after its expiry, to name the refusal


@dataclass(frozen=True)
class Taken:
    """The outcome of taking a nonce: `username` it was issued for when `why` is None."""

    username: str | None
    why: str | None  # None: taken now; else "unknown nonce", "nonce already used", "nonce expired"


class ChallengeStore(Protocol):
    def issue(self, username: str, ttl: int) -> tuple[str, datetime]: ...
    def take(self, nonce: str) -> Taken: ...


class RedisChallenges(RedisKeyed):
    """`PREFIX login-challenge:<sha256>` -> {"user", "expires"} (or {"used"} once taken)."""

    def _key(self, nonce: str) -> str:
        return f"{self.prefix}login-challenge:{digest(nonce)}"

    def issue(self, username: str, ttl: int) -> tuple[str, datetime]:
        nonce = new_secret(NONCE_PREFIX)
        expires = datetime.now(UTC) + timedelta(seconds=ttl)
        self.redis.set(self._key(nonce), json.dumps({"user": username, "expires": expires.timestamp()}),
                       ex=ttl + GRACE_SECONDS)
        return nonce, expires

    def take(self, nonce: str) -> Taken:
        key = self._key(nonce)
        raw = self.redis.getdel(key)  # exactly one caller gets it
        if raw is None:
            return Taken(None, "unknown nonce")
        found = json.loads(raw)
        if found.get("used"):
            self.redis.set(key, raw, ex=GRACE_SECONDS, nx=True)
            return Taken(found.get("user"), "nonce already used")
        self.redis.set(key, json.dumps({"user": found["user"], "used": True}), ex=GRACE_SECONDS, nx=True)
        if found["expires"] <= datetime.now(UTC).timestamp():
            return Taken(found["user"], "nonce expired")
        return Taken(found["user"], None)


class SqlChallenges:
    """The `login_challenges` table; rows long past their expiry are pruned as new ones are issued."""

    def issue(self, username: str, ttl: int) -> tuple[str, datetime]:
        nonce = new_secret(NONCE_PREFIX)
        now = datetime.now(UTC)
        expires = now + timedelta(seconds=ttl)
        with session_scope() as session:
            session.execute(delete(LoginChallenge).where(
                LoginChallenge.expires_at < now - timedelta(seconds=GRACE_SECONDS)))
            session.add(LoginChallenge(nonce_hash=digest(nonce), username=username, created_at=now,
                                       expires_at=expires))
        return nonce, expires

    def take(self, nonce: str) -> Taken:
        nonce_hash = digest(nonce)
        now = datetime.now(UTC)
        with session_scope() as session:
            taken = session.execute(
                update(LoginChallenge).where(LoginChallenge.nonce_hash == nonce_hash, LoginChallenge.used_at.is_(None))
                .values(used_at=now)
            ).rowcount
            row = session.scalar(select(LoginChallenge).where(LoginChallenge.nonce_hash == nonce_hash))
            if row is None:
                return Taken(None, "unknown nonce")
            if not taken:
                return Taken(row.username, "nonce already used")
            expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=UTC)
            if expires <= now:
                return Taken(row.username, "nonce expired")
            return Taken(row.username, None)


@cache
def _redis_challenges(url: str, prefix: str) -> RedisChallenges:
    return RedisChallenges(url, prefix)


def challenge_store() -> ChallengeStore:
    """Redis when configured, else the SQL database (single-machine mode), as for sessions."""
    settings = get_settings()
    if settings.redis_url:
        return _redis_challenges(settings.redis_url, settings.redis_prefix)
    return SqlChallenges()
