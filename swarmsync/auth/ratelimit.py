"""Login rate limiting: too many failures for one user, or from one address, within
SWARMSYNC_LOGIN_WINDOW_SECONDS lock further logins (even with the right password) until
the window has passed. Counters live in Redis when configured, else in the SQL database.

Exact under concurrency: a login's password is checked only inside `attempt()`, which
counts the attempt as *in flight* for the user and the address first, atomically with the
check of the limits (one Lua script in Redis). A new attempt is refused (LockedOut) when
the failures alone reach a limit, and waits while failures plus attempts in flight do; so
N parallel wrong passwords against a limit of L get exactly L password checks (401) and the
rest 429, while parallel right passwords all get in. An attempt in flight is a member of a
sorted set scored by its deadline, so one of a crashed process lapses by itself. Without
Redis (single-machine mode: one API process) one lock makes check, password and count a
single step.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select

from swarmsync.auth.redis_keys import redis_client
from swarmsync.db import LoginFailure, session_scope
from swarmsync.errors import RefusedError
from swarmsync.settings import get_settings

IN_FLIGHT_SECONDS = 30  # an attempt in flight lapses after this (a crashed API process)
WAIT_SECONDS = 20  # how long a new attempt waits for the attempts in flight before it is refused


class LockedOut(RefusedError):
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


def _full(key: str) -> str:
    return f"{get_settings().redis_prefix}login-failures:{key}"


def _flight(key: str) -> str:
    return f"{get_settings().redis_prefix}login-in-flight:{key}"


# KEYS: failure counter and in-flight set of each limit, in pairs. ARGV: now, deadline of this
# attempt, its id, then each limit. Returns {0} taken, {1, index, ttl} locked out, {2} wait.
_TAKE = """
local now = tonumber(ARGV[1])
local n = #KEYS / 2
for i = 1, n do
  local failures = tonumber(redis.call('GET', KEYS[2 * i - 1]) or '0')
  if failures >= tonumber(ARGV[3 + i]) then
    return {1, i, redis.call('TTL', KEYS[2 * i - 1])}
  end
end
for i = 1, n do
  redis.call('ZREMRANGEBYSCORE', KEYS[2 * i], '-inf', now)
  local failures = tonumber(redis.call('GET', KEYS[2 * i - 1]) or '0')
  if failures + redis.call('ZCARD', KEYS[2 * i]) >= tonumber(ARGV[3 + i]) then
    return {2}
  end
end
for i = 1, n do
  redis.call('ZADD', KEYS[2 * i], ARGV[2], ARGV[3])
  redis.call('EXPIRE', KEYS[2 * i], math.ceil(tonumber(ARGV[2]) - now) + 1)
end
return {0}
"""
# KEYS: failure counters then in-flight sets; ARGV: window, id, 1 when failed.
_DONE = """
local n = #KEYS / 2
for i = 1, n do
  if ARGV[3] == '1' then
    redis.call('INCR', KEYS[i])
    redis.call('EXPIRE', KEYS[i], ARGV[1])
  end
  redis.call('ZREM', KEYS[n + i], ARGV[2])
end
return 0
"""
_sql_lock = threading.Lock()


class Attempt:
    """One login attempt in flight: say `failed()` or `succeeded()` once the password is checked."""

    def __init__(self, username: str, address: str | None):
        self.username = username
        self.address = address
        self.id = uuid.uuid4().hex
        self.outcome: str | None = None

    def failed(self) -> None:
        self.outcome = "failed"

    def succeeded(self) -> None:
        self.outcome = "succeeded"


def _locked(what: str, ttl: int) -> LockedOut:
    ttl = max(int(ttl), 1)
    return LockedOut(f"too many failed logins for {what}: locked, try again in {ttl} s", retry_after=ttl)


@contextmanager
def attempt(username: str, address: str | None) -> Iterator[Attempt]:
    """Take one login attempt for the user and the address (LockedOut when either has used up
    its failures), then count it as the caller says: a failure, or a success (which forgets the
    user's failures). An attempt left unresolved (an exception) counts as nothing."""
    settings = get_settings()
    keys = _keys(username, address)
    current = Attempt(username, address)
    if not settings.redis_url:
        with _sql_lock:
            for key, limit, what in keys:
                count, ttl = _count(key, settings.login_window_seconds)
                if count >= limit:
                    raise _locked(what, ttl)
            yield current
            _sql_done(current, keys)
        return
    client = redis_client(settings.redis_url)
    counters = [_full(k) for k, _l, _w in keys]
    flights = [_flight(k) for k, _l, _w in keys]
    paired = [name for pair in zip(counters, flights, strict=True) for name in pair]
    give_up = time.monotonic() + WAIT_SECONDS
    while True:
        now = time.time()
        found = client.eval(_TAKE, len(paired), *paired, now, now + IN_FLIGHT_SECONDS, current.id,
                            *[limit for _k, limit, _w in keys])
        if found[0] == 0:
            break
        if found[0] == 1:
            raise _locked(keys[found[1] - 1][2], found[2])
        if time.monotonic() > give_up:
            raise _locked(keys[0][2], 1)
        time.sleep(0.02)  # others' attempts are in flight: their outcome decides ours
    try:
        yield current
    finally:
        client.eval(_DONE, len(counters) * 2, *counters, *flights, settings.login_window_seconds, current.id,
                    "1" if current.outcome == "failed" else "0")
        if current.outcome == "succeeded":
            client.delete(counters[0])  # the user's failures, not the address's


def _sql_done(current: Attempt, keys: list[tuple[str, int, str]]) -> None:
    if current.outcome is None:
        return
    now = datetime.now(UTC)
    with session_scope() as session:
        if current.outcome == "failed":
            session.execute(delete(LoginFailure).where(
                LoginFailure.at < now - timedelta(seconds=get_settings().login_window_seconds)))
            session.add_all([LoginFailure(key=key, at=now) for key, _limit, _what in keys])
        else:
            session.execute(delete(LoginFailure).where(LoginFailure.key == keys[0][0]))


def check(username: str, address: str | None) -> None:
    """Raise LockedOut when the user or the address has used up its failures (counts nothing)."""
    window = get_settings().login_window_seconds
    for key, limit, what in _keys(username, address):
        count, ttl = _count(key, window)
        if count >= limit:
            raise _locked(what, ttl)


def _count(key: str, window: int) -> tuple[int, int]:
    """(failures within the window, seconds until the lock lifts)."""
    settings = get_settings()
    if settings.redis_url:
        client = redis_client(settings.redis_url)
        count = int(client.get(_full(key)) or 0)
        return count, max(int(client.ttl(_full(key))), 1)
    since = datetime.now(UTC) - timedelta(seconds=window)
    with session_scope() as session:
        count, last = session.execute(
            select(func.count(), func.max(LoginFailure.at)).where(LoginFailure.key == key, LoginFailure.at >= since)
        ).one()
    if not count:
        return 0, 0
    last = last if last.tzinfo else last.replace(tzinfo=UTC)
    return int(count), max(int((last + timedelta(seconds=window) - datetime.now(UTC)).total_seconds()), 1)
