"""Fixtures for the attack-and-fault suite: the session `stack` (real Prefect, PostgreSQL,
worker, Docker), SwarmSync's accounts on real PostgreSQL and Redis, users of each role and
the API, as tests/accounts has them. Each test file here tries one way an operator or a
viewer could reach what is not theirs, and proves it is refused."""

from __future__ import annotations

from tests.accounts import conftest as accounts_fixtures

redis_client = accounts_fixtures.redis_client
accounts = accounts_fixtures.accounts
embedded = accounts_fixtures.embedded
make_user = accounts_fixtures.make_user
api = accounts_fixtures.api
role_tokens = accounts_fixtures.role_tokens
quick_password_hashing = accounts_fixtures.quick_password_hashing  # autouse: cheap argon2 in-process
operator = accounts_fixtures.operator
admin = accounts_fixtures.admin
