"""Logins, sessions and their end: wrong passwords, lockout, expiry, revocation, concurrency
(real PostgreSQL and Redis), and the same in single-machine mode (SQLite, no Redis)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from fastapi.testclient import TestClient
from sqlalchemy import select

from swarmsync.api import create_app
from swarmsync.auth import audit, users
from swarmsync.auth.roles import Principal
from swarmsync.db import AuditEvent, SessionRecord, User, session_scope
from tests.accounts.conftest import PASSWORD, auth, clear_caches


def _login(api, username, password=PASSWORD):
    return api.post("/auth/login", json={"username": username, "password": password})


def test_login_opens_a_session_that_identifies_the_user(api, make_user):
    alice = make_user("operator")
    response = _login(api, alice.username)
    assert response.status_code == 200
    body = response.json()
    assert body["token"].startswith("sss_") and body["user"]["role"] == "operator"
    me = api.get("/me", headers=auth(body["token"])).json()
    assert me["username"] == alice.username and me["via"] == "session"
    assert "jobs:submit" in me["permissions"] and "users:manage" not in me["permissions"]


def test_sessions_live_in_redis_under_the_configured_prefix(api, make_user, redis_client, accounts):
    alice = make_user()
    alice.login(api)
    keys = list(redis_client.scan_iter(f"{accounts['SWARMSYNC_REDIS_PREFIX']}session:*"))
    assert len(keys) == 1
    assert 0 < redis_client.ttl(keys[0]) <= 8 * 3600
    with session_scope() as session:  # nothing of hers in SQL when Redis holds the sessions (other tests
        # log in through the stack's own API process, which keeps its sessions in SQL)
        user_id = session.scalars(select(User.id).where(User.username == alice.username)).one()
        assert session.scalars(select(SessionRecord).where(SessionRecord.user_id == user_id)).all() == []


def test_wrong_password_is_refused_and_audited_without_saying_which_part_was_wrong(api, make_user):
    bob = make_user()
    wrong = _login(api, bob.username, "not the password")
    nobody = _login(api, "no-such-user", "whatever123")
    assert wrong.status_code == nobody.status_code == 401
    assert wrong.json()["detail"] == nobody.json()["detail"] == (
        "wrong username or password (or the account is disabled)"
    )
    denied = audit.events(actor=bob.username, action="login")
    assert denied and denied[0].outcome == "denied" and "not the password" not in str(denied[0].detail)


def test_repeated_wrong_passwords_lock_the_user_out_even_with_the_right_one(api, make_user):
    carol, dave = make_user(), make_user()
    for _ in range(3):  # SWARMSYNC_LOGIN_MAX_FAILURES=3 in the fixture
        assert _login(api, carol.username, "wrong-password").status_code == 401
    locked = _login(api, carol.username)
    assert locked.status_code == 429
    assert "too many failed logins" in locked.json()["detail"] and int(locked.headers["Retry-After"]) > 0
    assert _login(api, dave.username).status_code == 200  # others are not locked
    assert audit.events(actor=carol.username, action="login")[0].detail["why"] == "locked out"


def test_one_address_trying_many_names_is_locked_out(api, make_user, monkeypatch):
    monkeypatch.setenv("SWARMSYNC_LOGIN_MAX_FAILURES_PER_ADDRESS", "4")
    clear_caches()
    erin = make_user()
    with TestClient(create_app(), client=("203.0.113.7", 4000)) as attacker, \
            TestClient(create_app(), client=("198.51.100.9", 4000)) as elsewhere:
        for i in range(4):
            assert _login(attacker, f"guess-{i}", "password1").status_code == 401
        assert _login(attacker, erin.username).status_code == 429
        assert _login(elsewhere, erin.username).status_code == 200


def test_logout_revokes_the_session_at_once(api, make_user):
    token = make_user().login(api)
    assert api.post("/auth/logout", headers=auth(token)).status_code == 204
    after = api.get("/me", headers=auth(token))
    assert after.status_code == 401 and "expired or revoked" in after.json()["detail"]
    assert after.headers["WWW-Authenticate"] == "Bearer"


def test_disabling_a_user_ends_their_sessions_and_tokens(api, make_user, role_tokens):
    frank = make_user("operator")
    session = frank.login(api)
    key = api.post("/tokens", json={"name": "ci"}, headers=auth(session)).json()["token"]
    assert api.patch(f"/users/{frank.username}", json={"disabled": True},
                     headers=auth(role_tokens["admin"])).status_code == 200
    assert api.get("/me", headers=auth(session)).status_code == 401
    assert api.get("/me", headers=auth(key)).status_code == 401
    assert _login(api, frank.username).status_code == 401
    api.patch(f"/users/{frank.username}", json={"disabled": False}, headers=auth(role_tokens["admin"]))
    assert _login(api, frank.username).status_code == 200


def test_changing_the_password_ends_every_session(api, make_user):
    grace = make_user()
    first, second = grace.login(api), grace.login(api)
    wrong = api.post("/me/password", json={"current_password": "nope-nope", "new_password": "a new password"},
                     headers=auth(first))
    assert wrong.status_code == 401
    changed = api.post("/me/password", json={"current_password": PASSWORD, "new_password": "a new password"},
                       headers=auth(first))
    assert changed.status_code == 204
    assert api.get("/me", headers=auth(first)).status_code == 401
    assert api.get("/me", headers=auth(second)).status_code == 401
    assert _login(api, grace.username, "a new password").status_code == 200


def test_a_role_change_ends_sessions_so_the_new_role_applies(api, make_user, role_tokens):
    heidi = make_user("operator")
    session = heidi.login(api)
    api.patch(f"/users/{heidi.username}", json={"role": "viewer"}, headers=auth(role_tokens["admin"]))
    assert api.get("/me", headers=auth(session)).status_code == 401
    assert api.get("/me", headers=auth(heidi.login(api))).json()["role"] == "viewer"


def test_sessions_expire(api, make_user, monkeypatch):
    monkeypatch.setenv("SWARMSYNC_SESSION_TTL_SECONDS", "1")
    clear_caches()
    token = make_user().login(api)
    time.sleep(2.2)  # waiting for Redis to expire the key, not timing anything
    response = api.get("/me", headers=auth(token))
    assert response.status_code == 401 and "expired" in response.json()["detail"]


def test_concurrent_logins_each_get_their_own_working_session(api, make_user):
    ivan = make_user()
    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda _: _login(api, ivan.username), range(8)))
    tokens = {r.json()["token"] for r in responses if r.status_code == 200}
    assert len(tokens) == 8
    assert all(api.get("/me", headers=auth(t)).status_code == 200 for t in tokens)


def test_concurrent_wrong_passwords_get_exactly_the_limit_of_401s(api, make_user):
    judy = make_user()  # SWARMSYNC_LOGIN_MAX_FAILURES=3
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda _: _login(api, judy.username, "wrong-password").status_code, range(8)))
    assert sorted(codes) == [401] * 3 + [429] * 5, codes
    assert _login(api, judy.username).status_code == 429


def test_first_admin_comes_from_env_only_when_there_is_no_user(embedded, monkeypatch):
    from swarmsync.api.server import prepare

    monkeypatch.setenv("SWARMSYNC_ADMIN_USER", "root-admin")
    monkeypatch.setenv("SWARMSYNC_ADMIN_PASSWORD", "first admin password")
    clear_caches()
    prepare()
    prepare()  # a second start creates nothing
    listed = users.list_users(Principal.local())
    assert [(u.username, u.role) for u in listed] == [("root-admin", "admin")]


def test_without_admin_env_no_user_is_created(embedded):
    from swarmsync.api.server import prepare

    prepare()
    assert users.count_users() == 0


def test_single_machine_mode_keeps_sessions_and_lockouts_in_sql(embedded, make_user, monkeypatch):
    with TestClient(create_app()) as api:
        kim = make_user()
        token = kim.login(api)
        assert api.get("/me", headers=auth(token)).json()["username"] == kim.username
        with session_scope() as session:
            assert len(session.scalars(select(SessionRecord)).all()) == 1
        assert api.post("/auth/logout", headers=auth(token)).status_code == 204
        assert api.get("/me", headers=auth(token)).status_code == 401
        for _ in range(3):
            assert _login(api, kim.username, "wrong-password").status_code == 401
        assert _login(api, kim.username).status_code == 429
        monkeypatch.setenv("SWARMSYNC_SESSION_TTL_SECONDS", "1")
        clear_caches()
        lee = make_user()
        short = lee.login(api)
        time.sleep(1.5)
        assert api.get("/me", headers=auth(short)).status_code == 401
        with session_scope() as session:
            actions = set(session.scalars(select(AuditEvent.action)))
        assert {"user.add", "login", "logout"} <= actions
