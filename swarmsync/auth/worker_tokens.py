"""Worker tokens: a worker host's one credential. It serves one pool (one queue, if set) through
Core's gateway (`swarmsync.gateway`) and can do nothing else: no database, no archive store, no
Prefect auth string on the host. Only the SHA-256 of the secret (`ssw_...`) is stored; the secret
is shown once, by `swarmsync worker token create`.

Identification is cached for `CACHE_SECONDS` per secret (a worker makes several calls a second
under load), so a revoked or expired token is refused at the latest that long after: well inside
the 30 s the worker-token issue allows.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, ConfigDict
from sqlalchemy import delete, select, update

from swarmsync.auth import audit
from swarmsync.auth.roles import Unauthenticated
from swarmsync.auth.secrets import digest, new_secret
from swarmsync.auth.token_rows import live_token_row
from swarmsync.db import WorkerClaim, WorkerToken, session_scope, upsert
from swarmsync.errors import ConflictError, InvalidError, NotFoundError
from swarmsync.timing import db_utc

WORKER_TOKEN_PREFIX = "ssw_"
CACHE_SECONDS = 5.0
LAST_SEEN_RESOLUTION = 2.0  # seconds: last seen is written at most this often per token (lost-host detection)
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class WorkerTokenError(InvalidError):
    """A worker token request that cannot be done as asked (400)."""


class WorkerTokenNotFound(NotFoundError):
    pass


class WorkerTokenConflict(ConflictError):
    """A token of that name exists (409)."""


class WorkerTokenInfo(BaseModel):
    """A worker token as admins see it (never its secret); also the API's response model."""

    model_config = ConfigDict(frozen=True)

    name: str
    pool: str
    queue: str | None
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    revoked: bool
    last_seen_at: datetime | None
    last_address: str | None
    last_worker: str | None


@dataclass(frozen=True)
class WorkerPrincipal:
    """Who is calling through the gateway: a worker token, its pool and queue."""

    token_id: int
    name: str
    pool: str
    queue: str | None

    @property
    def actor(self) -> str:
        """How the audit log names it."""
        return f"worker:{self.name}"


@dataclass(frozen=True)
class NewWorkerToken:
    token: str  # the secret: shown once
    info: WorkerTokenInfo


def _info(row: WorkerToken) -> WorkerTokenInfo:
    return WorkerTokenInfo(
        name=row.name, pool=row.pool, queue=row.queue, created_by=row.created_by, created_at=db_utc(row.created_at),
        expires_at=db_utc(row.expires_at), revoked=row.revoked_at is not None, last_seen_at=db_utc(row.last_seen_at),
        last_address=row.last_address, last_worker=row.last_worker)


def create(actor: str, name: str, pool: str, queue: str | None = None, expires_in: timedelta | None = None,
           address: str | None = None) -> NewWorkerToken:
    """A new token for `pool` (and `queue`); the caller has checked that `actor` is an admin and the pool exists."""
    name = name.strip()
    if not NAME.match(name):
        raise WorkerTokenError("a worker token's name is 1-64 letters, digits, '.', '_' or '-' (e.g. the host's name)")
    if expires_in is not None and not timedelta(0) < expires_in <= timedelta(days=3650):
        raise WorkerTokenError("--expires must be between 1 second and 3650 days (e.g. 90d)")
    if queue is not None and not queue.strip():
        queue = None
    secret = new_secret(WORKER_TOKEN_PREFIX)
    now = datetime.now(UTC)
    with session_scope() as session:
        if session.scalar(select(WorkerToken.id).where(WorkerToken.name == name)) is not None:
            raise WorkerTokenConflict(f"a worker token named {name!r} exists: revoke it first, or pick another name")
        row = WorkerToken(name=name, token_hash=digest(secret), pool=pool, queue=queue, created_by=actor,
                          created_at=now, expires_at=now + expires_in if expires_in else None)
        session.add(row)
        session.flush()
        info = _info(row)
    audit.record(actor, "worker-token.create", name, address=address, pool=pool, queue=queue,
                 expires_at=info.expires_at.isoformat() if info.expires_at else None)
    return NewWorkerToken(secret, info)


def list_all() -> list[WorkerTokenInfo]:
    with session_scope() as session:
        return [_info(row) for row in session.scalars(select(WorkerToken).order_by(WorkerToken.name))]


def get(name: str) -> WorkerTokenInfo:
    with session_scope() as session:
        row = session.scalar(select(WorkerToken).where(WorkerToken.name == name))
        if row is None:
            raise WorkerTokenNotFound(f"no worker token named {name!r}")
        return _info(row)


def revoke(actor: str, name: str, address: str | None = None) -> tuple[WorkerTokenInfo, list[str]]:
    """Revoke the token; returns it and the runs it had claimed (the caller hands back those still running)."""
    with session_scope() as session:
        row = session.scalar(select(WorkerToken).where(WorkerToken.name == name))
        if row is None:
            raise WorkerTokenNotFound(f"no worker token named {name!r}")
        if row.revoked_at is None:
            row.revoked_at = datetime.now(UTC)
        claimed = list(session.scalars(select(WorkerClaim.flow_run_id).where(WorkerClaim.token_id == row.id)))
        info = _info(row)
    _cache.clear()
    audit.record(actor, "worker-token.revoke", name, address=address, pool=info.pool)
    return info, claimed


# --- identification (every gateway call) --------------------------------------------------

_cache: dict[str, tuple[float, WorkerPrincipal]] = {}
_cache_lock = threading.Lock()


def identify(secret: str | None, address: str | None = None, worker: str | None = None) -> WorkerPrincipal:
    """The token's principal; Unauthenticated (401) when it is missing, unknown, revoked or expired."""
    if not secret or not secret.startswith(WORKER_TOKEN_PREFIX):
        raise Unauthenticated("a worker token is required: send 'Authorization: Bearer ssw_...'")
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(secret)
    if hit is not None and now - hit[0] < CACHE_SECONDS:
        principal = hit[1]
        if now - _seen.get(principal.token_id, 0.0) >= LAST_SEEN_RESOLUTION:
            _seen[principal.token_id] = now
            _record_seen(principal.token_id, address, worker)
        return principal
    principal = _identify(secret, address, worker)
    with _cache_lock:
        if len(_cache) > 1000:
            _cache.clear()
        _cache[secret] = (now, principal)
        _seen[principal.token_id] = now
    return principal


_seen: dict[int, float] = {}  # token id -> when its last contact was written (monotonic)


def _record_seen(token_id: int, address: str | None, worker: str | None) -> None:
    values: dict[str, object] = {"last_seen_at": datetime.now(UTC)}
    if address:
        values["last_address"] = address[:64]
    if worker:
        values["last_worker"] = worker[:200]
    with session_scope() as session:
        session.execute(update(WorkerToken).where(WorkerToken.id == token_id).values(**values))


def _identify(secret: str, address: str | None, worker: str | None) -> WorkerPrincipal:
    now = datetime.now(UTC)
    with session_scope() as session:
        row = live_token_row(session, WorkerToken, secret, "worker token", now, named=True)
        row.last_seen_at = now
        row.last_address = (address or "")[:64] or row.last_address
        row.last_worker = (worker or "")[:200] or row.last_worker
        return WorkerPrincipal(token_id=row.id, name=row.name, pool=row.pool, queue=row.queue)


# --- claims ---------------------------------------------------------------------------------

_claims: dict[str, int | None] = {}  # flow run id -> token id holding it (None: none), as this process knows


def record_claim(principal: WorkerPrincipal, flow_run_id: str) -> None:
    """The token claimed this run (its Pending state went through the gateway and was accepted); a claim of
    another token (the run was retried) is replaced."""
    with session_scope() as session:
        upsert(session, WorkerClaim, flow_run_id=flow_run_id, token_id=principal.token_id, claimed_at=datetime.now(UTC))
    _claims[flow_run_id] = principal.token_id


def claimed_by(principal: WorkerPrincipal, flow_run_id: str) -> bool:
    """Whether this token holds the run now (claimed it, and it was not crashed and handed on since)."""
    if flow_run_id not in _claims:
        with session_scope() as session:
            _claims[flow_run_id] = session.scalar(select(WorkerClaim.token_id)
                                                  .where(WorkerClaim.flow_run_id == flow_run_id))
        if len(_claims) > 100_000:
            _claims.clear()
    return _claims.get(flow_run_id) == principal.token_id


def forget_claims(flow_run_ids: list[str], holder: WorkerPrincipal | None = None) -> None:
    """The runs are no token's any more (ended, crashed by Core, handed back); with `holder`, only where that
    token still holds them (another host may have claimed a retry meanwhile)."""
    if not flow_run_ids:
        return
    query = delete(WorkerClaim).where(WorkerClaim.flow_run_id.in_(flow_run_ids))
    if holder is not None:
        query = query.where(WorkerClaim.token_id == holder.token_id)
    with session_scope() as session:
        session.execute(query)
    for run_id in flow_run_ids:
        if holder is None or _claims.get(run_id) == holder.token_id:
            _claims.pop(run_id, None)


def claims_of(principal: WorkerPrincipal, limit: int = 500) -> list[str]:
    """The runs this token claimed, newest first."""
    with session_scope() as session:
        return list(session.scalars(select(WorkerClaim.flow_run_id).where(WorkerClaim.token_id == principal.token_id)
                                    .order_by(WorkerClaim.claimed_at.desc()).limit(limit)))


def silent_hosts(since: datetime) -> tuple[dict[str, list[str]], set[str]]:
    """Tokens (not revoked) last heard of before `since` that hold claims: {token name: claimed run ids};
    and the worker names of every token (their hosts are judged by their token, not Prefect's heartbeat)."""
    with session_scope() as session:
        rows = session.execute(select(WorkerToken.id, WorkerToken.name, WorkerToken.last_seen_at,
                                      WorkerToken.last_worker).where(WorkerToken.revoked_at.is_(None))).all()
        silent = {token_id: name for token_id, name, seen, _ in rows if seen is not None and db_utc(seen) < since}
        claims: dict[str, list[str]] = {}
        if silent:
            for run_id, token_id in session.execute(select(WorkerClaim.flow_run_id, WorkerClaim.token_id)
                                                    .where(WorkerClaim.token_id.in_(list(silent)))):
                claims.setdefault(silent[token_id], []).append(run_id)
    return claims, {w for *_, w in rows if w} | {name for _, name, _, _ in rows}
