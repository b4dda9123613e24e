"""One-time dashboard login links (`swarmsync up`, `swarmsync login-link`, POST /auth/link):
work once, expire, are stored as hashes only (Redis, or SQL in single-machine mode), and
the local admin they are for has no password anybody knows."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient

from swarmsync.api import create_app
from swarmsync.auth import login_links
from tests.accounts.conftest import auth, clear_caches


def _redeem(api, secret: str):
    return api.post("/auth/link", json={"token": secret})


def test_a_link_opens_one_session_once_and_is_kept_only_as_a_hash_in_redis(api, make_user, redis_client,
                                                                           accounts):
    operator = make_user("operator")
    secret = login_links.create_link(operator.username)
    assert secret.startswith(login_links.LINK_PREFIX)
    stored = redis_client.keys(f"{accounts['SWARMSYNC_REDIS_PREFIX']}login-link:*")
    assert len(stored) == 1 and secret not in stored[0]
    assert redis_client.ttl(stored[0]) <= 600
    first = _redeem(api, secret)
    assert first.status_code == 200, first.text
    assert api.get("/me", headers=auth(first.json()["token"])).json()["username"] == operator.username
    again = _redeem(api, secret)
    assert again.status_code == 401 and "used or expired" in again.json()["detail"]
    assert _redeem(api, "ssl_made-up").status_code == 401
    assert _redeem(api, first.json()["token"]).status_code == 401  # a session secret is no link


def test_links_in_sql_expire_and_work_once(embedded, make_user, monkeypatch):
    with TestClient(create_app()) as api:
        kim = make_user("viewer")
        secret = login_links.create_link(kim.username)
        assert _redeem(api, secret).status_code == 200
        assert _redeem(api, secret).status_code == 401
        monkeypatch.setenv("SWARMSYNC_LOGIN_LINK_TTL_SECONDS", "10")
        clear_caches()
        short = login_links.create_link(kim.username)
        from datetime import UTC, datetime, timedelta

        from sqlalchemy import update

        from swarmsync.db import SessionRecord, session_scope

        with session_scope() as session:  # as if 10 s had passed
            session.execute(update(SessionRecord).where(SessionRecord.token_hash == login_links._key(short))
                            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
        assert _redeem(api, short).status_code == 401


def test_login_link_command_creates_a_local_admin_without_a_known_password(embedded, tmp_path):
    env = {**os.environ, "SWARMSYNC_DATABASE_URL": embedded, "SWARMSYNC_HOME": str(tmp_path / "home")}
    env.pop("SWARMSYNC_URL", None)
    done = subprocess.run([sys.executable, "-m", "swarmsync.cli.main", "login-link"], capture_output=True,
                          text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    link = done.stdout.strip()
    assert link.startswith("http://127.0.0.1:") and "/?login=ssl_" in link
    from swarmsync.auth import users
    from swarmsync.auth.roles import Principal

    admins = [u for u in users.list_users(Principal.local()) if u.role == "admin"]
    assert [a.username for a in admins] == [login_links.local_admin_name()]
    for guess in ("admin", "password"):  # (a third failure would lock the account out)
        with pytest.raises(Exception, match="wrong username or password"):
            users.login(admins[0].username, guess)
    second = subprocess.run([sys.executable, "-m", "swarmsync.cli.main", "login-link"], capture_output=True,
                            text=True, env=env, timeout=120)
    assert second.returncode == 0 and second.stdout.strip() != link  # a fresh link, the same admin
    assert len([u for u in users.list_users(Principal.local()) if u.role == "admin"]) == 1
