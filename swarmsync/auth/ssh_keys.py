"""SSH login keys: register, list and remove a user's OpenSSH public keys, and log in with one.

A user adds their own keys (`keys:own`); admins (`users:manage`) add, list and remove
anyone's. Key login is a challenge/response: `challenge()` issues a single-use nonce
(`challenges`), the client signs it with `ssh-keygen -Y sign -n swarmsync-login`, and
`key_login()` checks the SSHSIG (`sshsig`) against the user's registered, non-removed
keys and opens a session as the password login does, rate-limited and audited the same way.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from swarmsync.auth import audit, ratelimit, refusals, sshsig
from swarmsync.auth.challenges import challenge_store
from swarmsync.auth.roles import ROLE_PERMISSIONS, Forbidden, Permission, Principal, Unauthenticated, authorize
from swarmsync.auth.sessions import session_store
from swarmsync.auth.users import AccountError, LoginSession, UserInfo, UserNotFound
from swarmsync.db import SshKey, User, session_scope
from swarmsync.errors import NotFoundError
from swarmsync.settings import get_settings

REFUSED = "key login refused: wrong user, nonce, key or signature (or the account is disabled)"
MAX_NONCE = 200
MAX_SIGNATURE = 16_000


class KeyNotFound(NotFoundError):
    pass


@dataclass(frozen=True)
class KeyInfo:
    fingerprint: str
    key_type: str
    comment: str
    owner: str
    created_at: datetime
    last_used_at: datetime | None
    public_key: str  # the `TYPE BASE64 COMMENT` line


@dataclass(frozen=True)
class Challenge:
    nonce: str
    expires_at: datetime
    namespace: str


def _info(row: SshKey, owner: str) -> KeyInfo:
    line = f"{row.key_type} {row.public_key}" + (f" {row.comment}" if row.comment else "")
    return KeyInfo(row.fingerprint, row.key_type, row.comment, owner, row.created_at, row.last_used_at, line)


def _may_act_for(actor: Principal, owner: str) -> None:
    if actor.username == owner and actor.via != "local":
        authorize(actor, Permission.KEYS_OWN)
    else:
        authorize(actor, Permission.USERS_MANAGE)


def _user(session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise UserNotFound(f"no user named {username!r}")
    return user


def add_key(actor: Principal, public_key: str, owner: str | None = None, address: str | None = None) -> KeyInfo:
    """Register a public key (one `.pub` line) for `owner` (default: the actor).

    A key opens sessions with all of its owner's role and no end but the session's, so an API
    token limited by scopes or an expiry may not add one (403): log in, or use a full token."""
    owner = owner or actor.username
    _may_act_for(actor, owner)
    if actor.via == "token" and (actor.permissions != ROLE_PERMISSIONS[actor.role] or actor.expires_at is not None):
        why = ("a token limited by scopes or an expiry cannot add a login key (a key login opens a session with "
               "the whole role): log in, or use a token without scopes and expiry")
        audit.record(actor.username, "key.add", owner, "denied", address, why=why)
        raise Forbidden(why)
    try:
        key = sshsig.parse_public_key(public_key[:20_000])
    except sshsig.KeyFormatError as exc:
        raise AccountError(str(exc)) from None
    now = datetime.now(UTC)
    encoded = base64.b64encode(key.blob).decode()
    with session_scope() as session:
        user = _user(session, owner)
        row = session.scalar(select(SshKey).where(SshKey.user_id == user.id, SshKey.fingerprint == key.fingerprint))
        if row is not None and row.removed_at is None:
            raise AccountError(f"{owner} already has the key {key.fingerprint}")
        if row is None:
            row = SshKey(user_id=user.id, fingerprint=key.fingerprint)
            session.add(row)
        row.key_type, row.public_key, row.comment = key.key_type, encoded, key.comment
        row.created_at, row.last_used_at, row.removed_at = now, None, None  # a removed key added again: anew
        session.flush()
        info = _info(row, owner)
    audit.record(actor.username, "key.add", owner, address=address, fingerprint=key.fingerprint,
                 key_type=key.key_type, comment=key.comment)
    return info


def list_keys(actor: Principal, owner: str | None = None) -> list[KeyInfo]:
    """A user's keys that are not removed (the actor's own by default; admins: anyone's)."""
    owner = owner or actor.username
    _may_act_for(actor, owner)
    with session_scope() as session:
        user = _user(session, owner)
        rows = session.scalars(select(SshKey).where(SshKey.user_id == user.id, SshKey.removed_at.is_(None))
                               .order_by(SshKey.created_at, SshKey.id))
        return [_info(row, owner) for row in rows]


def remove_key(actor: Principal, fingerprint: str, owner: str | None = None, address: str | None = None) -> KeyInfo:
    """Remove (revoke) a key: logins with it are refused from now on; sessions it opened stay
    until they end (disable the user, or change their password, to end those too)."""
    owner = owner or actor.username
    _may_act_for(actor, owner)
    fingerprint = fingerprint.strip()
    if not fingerprint.startswith("SHA256:"):
        fingerprint = f"SHA256:{fingerprint}"
    with session_scope() as session:
        user = _user(session, owner)
        row = session.scalar(select(SshKey).where(SshKey.user_id == user.id, SshKey.fingerprint == fingerprint[:64],
                                                  SshKey.removed_at.is_(None)))
        if row is None:
            raise KeyNotFound(f"{owner} has no key {fingerprint[:64]} ('swarmsync key list' shows the fingerprints)")
        row.removed_at = datetime.now(UTC)
        info = _info(row, owner)
    audit.record(actor.username, "key.remove", owner, address=address, fingerprint=info.fingerprint)
    return info


def challenge(username: str) -> Challenge:
    """A nonce to sign, whether or not the user exists or has keys (the answer is the same)."""
    nonce, expires = challenge_store().issue(username[:64], get_settings().login_challenge_ttl_seconds)
    return Challenge(nonce, expires, sshsig.NAMESPACE)


def _check(username: str, nonce: str, signature: str) -> tuple[UserInfo | None, str | None, dict[str, str]]:
    """(the user, None, detail) when the signature logs them in; else (user or None, why refused, detail)."""
    detail: dict[str, str] = {}
    try:
        sig = sshsig.parse_signature(signature[:MAX_SIGNATURE])
    except sshsig.SignatureError as exc:
        sig, why = None, str(exc)
    else:
        detail = {"fingerprint": sig.public_key.fingerprint, "namespace": sig.namespace[:60]}
        why = None
    taken = challenge_store().take(nonce[:MAX_NONCE])  # taken even when the signature is garbage: single use
    if taken.why:
        return None, taken.why, detail
    if taken.username != username:
        return None, "the nonce was issued for another user", detail
    if sig is None:
        return None, why, detail
    with session_scope() as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None or user.disabled:
            return None, "no such user, or the account is disabled", detail
        rows = session.scalars(select(SshKey).where(SshKey.fingerprint == sig.public_key.fingerprint)).all()
        mine = next((r for r in rows if r.user_id == user.id), None)
        if mine is None:
            others = any(r.removed_at is None for r in rows)
            return None, "the key is another user's, not this user's" if others else "the key is not registered", \
                detail
        if mine.removed_at is not None:
            return None, "the key was removed", detail
        if base64.b64decode(mine.public_key) != sig.public_key.blob:
            return None, "the key does not match the registered key", detail
        try:
            sshsig.verify(sig, nonce.encode())
        except sshsig.SignatureError as exc:
            return None, str(exc), detail
        mine.last_used_at = datetime.now(UTC)
        return UserInfo.of(user), None, detail


def key_login(username: str, nonce: str, signature: str, address: str | None = None) -> LoginSession:
    """Open a session for `username` when `signature` is an SSHSIG of `nonce` (issued for them, unused,
    not expired) in the SwarmSync namespace by one of their keys. Rate-limited and audited like `login`."""
    username = username[:64]
    try:
        with ratelimit.attempt(username, address) as attempt:
            info, why, detail = _check(username, nonce, signature)
            if info is None:
                attempt.failed()
            else:
                attempt.succeeded()
    except ratelimit.LockedOut:
        refusals.record("login", username[:100], "login.key", address, username, why="locked out")
        raise
    if info is None:
        audit.record(username[:100], "login.key", username, "denied", address, why=why, **detail)
        raise Unauthenticated(REFUSED)
    token, expires = session_store().create(info.id, get_settings().session_ttl_seconds)
    audit.record(info.username, "login", info.username, address=address, method="ssh-key", **detail)
    return LoginSession(token, expires, info)
