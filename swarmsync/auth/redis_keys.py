"""The Redis where accounts keep what every API process shares (sessions, key-login nonces, login
failures, refusal counters): one client per URL, keys under SWARMSYNC_REDIS_PREFIX."""

from __future__ import annotations

from functools import cache
from typing import Any


@cache
def redis_client(url: str) -> Any:
    """The client for `url` (redis is imported only when Redis is configured)."""
    import redis

    return redis.Redis.from_url(url, socket_timeout=5, decode_responses=True)


class RedisKeyed:
    """A store whose keys live in Redis under `prefix`."""

    def __init__(self, url: str, prefix: str):
        self.redis = redis_client(url)
        self.prefix = prefix
