"""Audit rows for refused anonymous requests, bounded so that no caller can grow the
audit log without limit.

Refusals of callers who are not authenticated (401: no, wrong, expired or revoked
credentials; 429: logins while locked out) are counted per source address and window of
SWARMSYNC_AUDIT_REFUSAL_WINDOW_SECONDS (60). The first one of an address in a window is
written in full (what, why, from where); the others are only counted, and once the window
has passed one summary row says "N more refused requests from ADDR in the 60 s from T".
Only SWARMSYNC_AUDIT_REFUSAL_MAX_ADDRESSES (100) addresses per window get rows of their
own; refusals from further addresses share the bucket "*". So a window adds at most
2 x (that + 1) rows per kind, whatever arrives. Refusals of authenticated callers (403)
are not counted here: each of them stays one row.

Counters live in Redis when SWARMSYNC_REDIS_URL is set (any API process may write a
summary; GETDEL makes exactly one of them do it), else in this process's memory
(single-machine mode: one API process; a crash loses the counts of the open window, whose
first rows are written already). Summaries are written when the same address is refused
in a later window, when the audit log is read, and every window by the API process; when
an API process without Redis stops, its open windows are summarised too.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import cache
from typing import Protocol

from swarmsync.auth import audit_log
from swarmsync.auth.redis_keys import RedisKeyed
from swarmsync.settings import get_settings

OTHERS = "*"
KINDS = {"request": "refused requests", "login": "logins refused while locked out"}

Key = tuple[str, int, int, str]  # kind, window start (epoch s), window length, bucket (address or "*")


class Store(Protocol):
    def bucket(self, kind: str, start: int, window: int, address: str, cap: int) -> str: ...
    def incr(self, key: Key) -> int: ...
    def take_closed(self, now: float) -> Iterator[tuple[Key, int]]: ...


def record(kind: str, actor: str, action: str, address: str | None, target: str | None = None,
           **detail: object) -> None:
    """One refused anonymous request: written in full if it is its address's first in the
    window, else counted into that window's summary row."""
    settings = get_settings()
    window = max(int(settings.audit_refusal_window_seconds), 1)
    now = time.time()
    start = int(now // window * window)
    store = _store()
    bucket = store.bucket(kind, start, window, address or "unknown", settings.audit_refusal_max_addresses)
    if store.incr((kind, start, window, bucket)) == 1:
        audit_log.record(actor, action, target, "denied", address, **detail,
                     aggregated=f"further {KINDS[kind]} from {bucket} within {window} s are counted in one row")
        flush(now)  # a new window for this address: earlier windows are summarised now


def flush(now: float | None = None) -> int:
    """Write the summary rows of windows that have passed (all windows with `now=inf`); returns how many."""
    written = 0
    for (kind, start, window, bucket), count in _store().take_closed(time.time() if now is None else now):
        more = count - 1  # the first was written in full
        if more <= 0:
            continue
        since = datetime.fromtimestamp(start, UTC).isoformat()
        who = "other addresses" if bucket == OTHERS else bucket
        audit_log.record("anonymous", "refused.summary", bucket, "denied", None if bucket == OTHERS else bucket,
                     kind=kind, count=more, window_start=since, window_seconds=window,
                     message=f"{more} more {KINDS[kind]} from {who} in the {window} s from {since}")
        written += 1
    return written


def flush_at_exit() -> int:
    """The API stops: counts kept in this process are written now, open windows too (Redis keeps its own)."""
    return flush(math.inf if isinstance(_store(), MemoryStore) else None)


class MemoryStore:
    """Counters in this process, per SwarmSync database (single-machine mode)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: dict[Key, int] = {}
        self.addresses: dict[tuple[str, int, int], set[str]] = {}

    def bucket(self, kind: str, start: int, window: int, address: str, cap: int) -> str:
        with self.lock:
            seen = self.addresses.setdefault((kind, start, window), set())
            if address in seen or len(seen) < cap:
                seen.add(address)
                return address
            return OTHERS

    def incr(self, key: Key) -> int:
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + 1
            return self.counts[key]

    def take_closed(self, now: float) -> Iterator[tuple[Key, int]]:
        with self.lock:
            closed = [k for k in self.counts if k[1] + k[2] <= now]
            taken = [(k, self.counts.pop(k)) for k in closed]
            for k in [k for k in self.addresses if k[1] + k[2] <= now]:
                del self.addresses[k]
        yield from taken


class RedisStore(RedisKeyed):
    """Counters in Redis under SWARMSYNC_REDIS_PREFIX, shared by every API process."""

    KEEP_SECONDS = 7 * 24 * 3600  # unflushed counters outlive any plausible outage of the API

    def __init__(self, url: str, prefix: str):
        super().__init__(url, f"{prefix}refusals:")

    def _name(self, key: Key) -> str:
        return self.prefix + ":".join(str(part) for part in key)

    def bucket(self, kind: str, start: int, window: int, address: str, cap: int) -> str:
        seen = f"{self.prefix}addresses:{kind}:{start}:{window}"
        if self.redis.sismember(seen, address):
            return address
        if self.redis.scard(seen) >= cap:  # a race may let a few more in: still bounded
            return OTHERS
        with self.redis.pipeline() as pipe:
            pipe.sadd(seen, address).expire(seen, 2 * window + 60).execute()
        return address

    def incr(self, key: Key) -> int:
        name = self._name(key)
        with self.redis.pipeline() as pipe:
            count, *_ = pipe.incr(name).expire(name, self.KEEP_SECONDS).sadd(
                f"{self.prefix}pending", name.removeprefix(self.prefix)).execute()
        return int(count)

    def take_closed(self, now: float) -> Iterator[tuple[Key, int]]:
        pending = f"{self.prefix}pending"
        for member in self.redis.smembers(pending):
            kind, start, window, bucket = member.split(":", 3)
            if int(start) + int(window) > now:
                continue
            count = self.redis.getdel(self.prefix + member)  # exactly one process gets the count
            self.redis.srem(pending, member)
            if count:
                yield (kind, int(start), int(window), bucket), int(count)


def _store() -> Store:
    settings = get_settings()
    if settings.redis_url:
        return _redis_store(settings.redis_url, settings.redis_prefix)
    return _memory_store(settings.sql_url)


@cache
def _redis_store(url: str, prefix: str) -> RedisStore:
    return RedisStore(url, prefix)


@cache
def _memory_store(sql_url: str) -> MemoryStore:
    return MemoryStore()
