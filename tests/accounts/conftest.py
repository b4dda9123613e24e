"""Fixtures for accounts and the API: SwarmSync's database from the session `stack`
(real PostgreSQL), real Redis with a key prefix of this test session only, users of
each role, and the API in-process (FastAPI TestClient) or the stack's own API process.

SWARMSYNC_TEST_REDIS names the Redis server (default: database 0 of the Redis that
infra/host-setup.sh starts, with its password; see tests/services.py).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from tests.services import redis_url

REDIS_URL = os.environ.get("SWARMSYNC_TEST_REDIS") or redis_url(0)
SESSION_PREFIX = f"swarmsync-test-{uuid.uuid4().hex[:8]}:"
PASSWORD = "correct horse battery staple"




def clear_caches() -> None:
    from swarmsync.auth import redis_keys, sessions
    from swarmsync.settings import get_settings

    get_settings.cache_clear()
    sessions._redis_sessions.cache_clear()
    redis_keys.redis_client.cache_clear()


@pytest.fixture(autouse=True)
def quick_password_hashing(monkeypatch):
    """argon2id with small cost parameters in-process, so hundreds of logins stay quick on a
    loaded 2-core machine. The hashing library is the real one; the API subprocess of the
    stack (CLI tests) and tests/unit/test_passwords.py use the production parameters."""
    from argon2 import PasswordHasher

    from swarmsync.auth import passwords

    monkeypatch.setattr(passwords, "_hasher", lambda: PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture(scope="session")
def redis_client():
    import redis

    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    client.ping()
    yield client
    keys = list(client.scan_iter(f"{SESSION_PREFIX}*"))  # only this session's keys, never FLUSH
    if keys:
        client.delete(*keys)


@pytest.fixture
def accounts(stack, redis_client, monkeypatch) -> Iterator[dict[str, str]]:
    """The stack's PostgreSQL database plus Redis for sessions and login counters."""
    env = {
        "SWARMSYNC_REDIS_URL": REDIS_URL,
        "SWARMSYNC_REDIS_PREFIX": f"{SESSION_PREFIX}{uuid.uuid4().hex[:6]}:",
        "SWARMSYNC_LOGIN_MAX_FAILURES": "3",
        "SWARMSYNC_LOGIN_MAX_FAILURES_PER_ADDRESS": "1000",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    clear_caches()
    yield env
    monkeypatch.undo()
    clear_caches()


@pytest.fixture
def embedded(tmp_path, monkeypatch) -> Iterator[str]:
    """Single-machine mode: SQLite, no Redis (sessions and login counters in SQL)."""
    from swarmsync.db import migrate

    url = f"sqlite:///{tmp_path / 'swarmsync.db'}"
    monkeypatch.setenv("SWARMSYNC_DATABASE_URL", url)
    monkeypatch.delenv("SWARMSYNC_REDIS_URL", raising=False)
    monkeypatch.setenv("SWARMSYNC_LOGIN_MAX_FAILURES", "3")
    clear_caches()
    migrate()
    yield url
    monkeypatch.undo()
    clear_caches()


@dataclass
class Account:
    username: str
    password: str
    role: str

    def login(self, api) -> str:
        response = api.post("/auth/login", json={"username": self.username, "password": self.password})
        assert response.status_code == 200, response.text
        return response.json()["token"]


@pytest.fixture
def make_user():
    from swarmsync.auth import users
    from swarmsync.auth.roles import Principal

    def make(role: str = "viewer", prefix: str | None = None) -> Account:
        name = f"{prefix or role}-{uuid.uuid4().hex[:8]}"
        users.add_user(Principal.local(), name, PASSWORD, role)
        return Account(name, PASSWORD, role)

    return make


@pytest.fixture
def api(accounts):
    from fastapi.testclient import TestClient

    from swarmsync.api import create_app

    with TestClient(create_app(), raise_server_exceptions=False) as client:
        yield client


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def role_tokens(api, make_user) -> dict[str, str]:
    """A session token for one fresh user of each role."""
    return {role: make_user(role).login(api) for role in ("admin", "operator", "viewer")}


def later() -> str:
    """An ISO time a day from now: a job submitted `at` it never starts during a test."""
    return (datetime.now(UTC) + timedelta(days=1)).isoformat()


@pytest.fixture
def operator(api, make_user):
    """An operator account and its auth headers."""
    account = make_user("operator")
    return account, auth(account.login(api))


@pytest.fixture
def admin(api, make_user):
    """An admin account and its auth headers."""
    account = make_user("admin")
    return account, auth(account.login(api))
