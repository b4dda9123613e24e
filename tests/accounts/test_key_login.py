"""Key-based login through the API (real PostgreSQL and Redis, real `ssh-keygen` keys and
signatures): register keys, challenge and verify, every refusal audited, admins revoking
keys, the SQL store of nonces when no Redis is configured."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from swarmsync.auth import audit
from swarmsync.auth.challenges import challenge_store
from swarmsync.db import LoginChallenge, session_scope
from tests.accounts.conftest import auth, clear_caches
from tests.accounts.sshkeys import fingerprint_of, keygen, public_line, ssh_sign

REFUSED = "key login refused: wrong user, nonce, key or signature (or the account is disabled)"


def _add(api, headers, key: Path):
    return api.post("/me/keys", json={"public_key": public_line(key)}, headers=headers)


def _challenge(api, user: str) -> str:
    response = api.post("/auth/challenge", json={"user": user})
    assert response.status_code == 200, response.text
    return response.json()["nonce"]


def _verify(api, user: str, nonce: str, signature: str):
    return api.post("/auth/verify", json={"user": user, "nonce": nonce, "signature": signature})


def _refused_why(api, user: str, nonce: str, signature: str) -> str:
    """Sends a verification that must be refused; returns the audited reason."""
    response = _verify(api, user, nonce, signature)
    assert response.status_code == 401, response.text
    assert response.json()["detail"] == REFUSED  # one answer for every reason
    event = audit.events(actor=user, action="login.key")[0]
    assert event.outcome == "denied" and "BEGIN SSH SIGNATURE" not in str(event.detail)
    return event.detail["why"]


@pytest.fixture
def keyed(api, make_user, tmp_path):
    """A user with a registered key: (name, private key path, session headers)."""
    account = make_user("operator")
    headers = auth(account.login(api))
    key = keygen(tmp_path, "k1")
    assert _add(api, headers, key).status_code == 201
    return account.username, key, headers


def test_a_registered_key_logs_in_and_the_session_works(api, keyed):
    user, key, headers = keyed
    listed = api.get("/me/keys", headers=headers).json()
    assert [(k["fingerprint"], k["comment"], k["last_used_at"]) for k in listed] == \
        [(fingerprint_of(key), "k1@test", None)]
    issued = api.post("/auth/challenge", json={"user": user}).json()
    assert issued["namespace"] == "swarmsync-login"
    response = _verify(api, user, issued["nonce"], ssh_sign(key, issued["nonce"]))
    assert response.status_code == 200, response.text
    token = response.json()["token"]
    assert token.startswith("sss_") and response.json()["user"]["username"] == user
    assert api.get("/me", headers=auth(token)).json()["username"] == user
    assert api.get("/me/keys", headers=headers).json()[0]["last_used_at"] is not None
    login = audit.events(actor=user, action="login")[0]
    assert login.outcome == "ok" and login.detail["method"] == "ssh-key"
    assert login.detail["fingerprint"] == fingerprint_of(key)


def test_the_challenge_does_not_tell_whether_the_user_exists(api, keyed):
    known = api.post("/auth/challenge", json={"user": keyed[0]})
    unknown = api.post("/auth/challenge", json={"user": "nobody-here"})
    assert known.status_code == unknown.status_code == 200
    assert set(known.json()) == set(unknown.json()) == {"nonce", "expires_at", "namespace"}
    assert len(known.json()["nonce"]) == len(unknown.json()["nonce"])


def test_every_refusal_gets_the_same_answer_and_is_audited_with_its_reason(api, keyed, make_user, tmp_path,
                                                                           monkeypatch):
    monkeypatch.setenv("SWARMSYNC_LOGIN_MAX_FAILURES", "100")
    clear_caches()
    user, key, _headers = keyed
    nonce = _challenge(api, user)
    signature = ssh_sign(key, nonce)
    assert _verify(api, user, nonce, signature).status_code == 200
    assert _refused_why(api, user, nonce, signature) == "nonce already used"  # replayed

    nonce = _challenge(api, user)
    assert _refused_why(api, user, nonce, ssh_sign(key, nonce, namespace="file")) == \
        "signed in namespace 'file', not 'swarmsync-login'"

    other = make_user("viewer")
    other_key = keygen(tmp_path, "other")
    assert _add(api, auth(other.login(api)), other_key).status_code == 201
    nonce = _challenge(api, user)
    assert _refused_why(api, user, nonce, ssh_sign(other_key, nonce)) == "the key is another user's, not this user's"

    nonce = _challenge(api, user)
    assert _refused_why(api, user, nonce, ssh_sign(keygen(tmp_path, "stranger"), nonce)) == \
        "the key is not registered"

    nonce, _expires = challenge_store().issue(user, 0)  # a nonce whose time is up
    assert _refused_why(api, user, nonce, ssh_sign(key, nonce)) == "nonce expired"

    nonce = _challenge(api, user)
    assert _refused_why(api, user, nonce, ssh_sign(key, "another message")) == "the signature does not verify"

    nonce = _challenge(api, user)
    assert _refused_why(api, user, nonce, "-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----") == \
        "the SSH signature is truncated"

    nonce = _challenge(api, other.username)  # a nonce issued for someone else
    assert _refused_why(api, user, nonce, ssh_sign(key, nonce)) == "the nonce was issued for another user"

    assert _refused_why(api, user, "ssn_made-up", ssh_sign(key, "ssn_made-up")) == "unknown nonce"


def test_a_removed_key_is_refused_and_admins_revoke_anyones_keys(api, keyed, admin, operator, tmp_path):
    user, key, headers = keyed
    second = keygen(tmp_path, "k2")
    assert _add(api, headers, second).status_code == 201
    _admin, admin_headers = admin
    _op, op_headers = operator
    assert len(api.get(f"/users/{user}/keys", headers=admin_headers).json()) == 2
    assert api.get(f"/users/{user}/keys", headers=op_headers).status_code == 403  # not an admin
    assert api.delete(f"/users/{user}/keys/{fingerprint_of(key)}", headers=op_headers).status_code == 403
    assert audit.events(actor=_op.username)[0].outcome == "denied"

    revoked = api.delete(f"/users/{user}/keys/{fingerprint_of(key)}", headers=admin_headers)
    assert revoked.status_code == 200 and revoked.json()["fingerprint"] == fingerprint_of(key)
    assert audit.events(actor=_admin.username, action="key.remove")[0].target == user
    nonce = _challenge(api, user)
    assert _refused_why(api, user, nonce, ssh_sign(key, nonce)) == "the key was removed"
    assert [k["fingerprint"] for k in api.get("/me/keys", headers=headers).json()] == [fingerprint_of(second)]

    removed = api.delete(f"/me/keys/{fingerprint_of(second)}", headers=headers)  # one's own
    assert removed.status_code == 200
    assert api.delete(f"/me/keys/{fingerprint_of(second)}", headers=headers).status_code == 404
    assert api.get("/me/keys", headers=headers).json() == []
    assert _add(api, headers, key).status_code == 201  # a removed key may be added again
    nonce = _challenge(api, user)
    assert _verify(api, user, nonce, ssh_sign(key, nonce)).status_code == 200


def test_key_add_refuses_garbage_unsupported_types_duplicates_and_narrow_tokens(api, keyed, tmp_path):
    _user, key, headers = keyed
    garbage = api.post("/me/keys", json={"public_key": "not a key at all"}, headers=headers)
    assert garbage.status_code == 400 and "unsupported key type 'not'" in garbage.json()["detail"]
    ecdsa = _add(api, headers, keygen(tmp_path, "ec", "ecdsa"))
    assert ecdsa.status_code == 400
    assert "unsupported key type 'ecdsa-sha2-nistp256': use ssh-ed25519 or sk-ssh-ed25519" in ecdsa.json()["detail"]
    private = api.post("/me/keys", json={"public_key": key.read_text()}, headers=headers)
    assert private.status_code == 400 and "this is a private key" in private.json()["detail"]
    again = _add(api, headers, key)
    assert again.status_code == 400 and "already has the key" in again.json()["detail"]
    scoped = api.post("/tokens", json={"name": "ro", "scopes": ["jobs:read", "keys:own"]}, headers=headers).json()
    refused = _add(api, auth(scoped["token"]), keygen(tmp_path, "k3"))
    assert refused.status_code == 403 and "cannot add a login key" in refused.json()["detail"]


def test_wrong_signatures_lock_the_user_out_like_wrong_passwords(api, keyed):
    user, key, _headers = keyed  # SWARMSYNC_LOGIN_MAX_FAILURES=3 in the fixture
    for _ in range(3):
        nonce = _challenge(api, user)
        assert _verify(api, user, nonce, ssh_sign(key, "wrong")).status_code == 401
    nonce = _challenge(api, user)
    locked = _verify(api, user, nonce, ssh_sign(key, nonce))
    assert locked.status_code == 429 and "too many failed logins" in locked.json()["detail"]


def test_without_redis_nonces_live_in_sql_and_are_single_use(api, keyed, monkeypatch):
    monkeypatch.delenv("SWARMSYNC_REDIS_URL")
    clear_caches()
    user, key, _headers = keyed
    nonce = _challenge(api, user)
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(LoginChallenge)
                              .where(LoginChallenge.username == user)) == 1
    signature = ssh_sign(key, nonce)
    assert _verify(api, user, nonce, signature).status_code == 200
    assert _refused_why(api, user, nonce, signature) == "nonce already used"
    expired, _at = challenge_store().issue(user, 0)
    assert _refused_why(api, user, expired, ssh_sign(key, expired)) == "nonce expired"
