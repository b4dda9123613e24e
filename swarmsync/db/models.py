"""SQLAlchemy models of SwarmSync's tables: archive index, worker telemetry, accounts, projects, audit,
secret owners, worker tokens and their claims."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class ArchiveRecord(Base):
    """One archived job result: where it is, what it was, and its checksums."""

    __tablename__ = "archive_index"

    job_id: Mapped[str] = mapped_column(String(36), primary_key=True)  # the flow-run id
    image: Mapped[str] = mapped_column(String(512))
    image_digest: Mapped[str | None] = mapped_column(String(200))
    command: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(32), index=True)
    exit_code: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(String(64))
    message: Mapped[str | None] = mapped_column(Text)
    worker: Mapped[str | None] = mapped_column(String(200))
    archive_path: Mapped[str] = mapped_column(String(1024))
    archive_block: Mapped[str | None] = mapped_column(String(255))  # the store, when not the default
    manifest_sha256: Mapped[str] = mapped_column(String(64))
    output_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    tags: Mapped[list] = mapped_column(JSON, default=list)
    project: Mapped[str | None] = mapped_column(String(64), index=True)  # None: before projects (the default one)
    owner: Mapped[str | None] = mapped_column(String(64))  # who submitted it through the API
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    # migration 0011_archive_metrics (GET /metrics): the work pool, every archived file's bytes, the
    # container's run time and its wait from the run's due time (expected start) to the container's start
    pool: Mapped[str | None] = mapped_column(String(100))
    archive_bytes: Mapped[int | None] = mapped_column(BigInteger)
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    queue_wait_seconds: Mapped[float | None] = mapped_column(Float)



class JobUsage(Base):
    """What one finished job's containers used (migration 0010_job_usage), written with its index row:
    the rows `GET /usage` sums and project budgets count (swarmsync/usage_report.py)."""

    __tablename__ = "job_usage"

    job_id: Mapped[str] = mapped_column(String(36), primary_key=True)  # the flow-run id
    owner: Mapped[str | None] = mapped_column(String(64), index=True)
    project: Mapped[str] = mapped_column(String(64), index=True)
    pool: Mapped[str | None] = mapped_column(String(200))
    image: Mapped[str] = mapped_column(String(512))
    state: Mapped[str] = mapped_column(String(32))
    cpu_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    memory_peak_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    block_read_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    block_write_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    net_rx_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    net_tx_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    wall_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    source: Mapped[str] = mapped_column(String(32))
    finished_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)

class WorkerTelemetry(Base):
    """The latest heartbeat of a SwarmSync worker and its Docker host."""

    __tablename__ = "worker_telemetry"

    worker_name: Mapped[str] = mapped_column(String(200), primary_key=True)
    pool: Mapped[str] = mapped_column(String(200), index=True)
    hostname: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    docker_version: Mapped[str | None] = mapped_column(String(64))
    cpus: Mapped[int | None] = mapped_column(Integer)
    memory_bytes: Mapped[int | None] = mapped_column(BigInteger)
    running_jobs: Mapped[int] = mapped_column(Integer, default=0)
    containers_running: Mapped[int | None] = mapped_column(Integer)
    docker_error: Mapped[str | None] = mapped_column(String(300))  # the engine did not answer (migration 0008)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class User(Base):
    """A person (or robot) who may use SwarmSync, with one role: admin, operator or viewer."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    password_changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ApiToken(Base):
    """A long-lived API token. Only the SHA-256 of the secret is stored, never the secret."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list] = mapped_column(JSON, default=list)  # permissions; empty = all of the role's
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SessionRecord(Base):
    """A login session in the SQL database (single-machine mode, when no Redis is configured)."""

    __tablename__ = "sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class LoginFailure(Base):
    """One failed login, counted per user and per address (single-machine mode)."""

    __tablename__ = "login_failures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(200), index=True)  # "user:NAME" or "addr:IP"
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class AuditEvent(Base):
    """One line of the audit log: who did what, when, from where, and how it ended.

    Append-only: database triggers refuse UPDATE and DELETE (migration 0003).
    """

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    actor: Mapped[str] = mapped_column(String(100), index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str | None] = mapped_column(String(300))
    outcome: Mapped[str] = mapped_column(String(16))  # ok, denied, failed
    address: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict] = mapped_column(JSON, default=dict)


class SecretOwner(Base):
    """Who owns a Secret block SwarmSync made, and what for (migration 0005_secrets).

    `kind` is job, template or schedule; `ref` the job id, template name or schedule name
    (None until the job exists). `owner` None: made without an API caller (embedded mode).
    """

    __tablename__ = "secret_owners"

    block_name: Mapped[str] = mapped_column(String(255), primary_key=True)
    owner: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    ref: Mapped[str | None] = mapped_column(String(200))
    project: Mapped[str | None] = mapped_column(String(64))  # None: before projects (the default one)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Project(Base):
    """A namespace of jobs, schedules, templates, Secret blocks and archives (migration 0007_projects).

    Users are members with a role there (`ProjectMember`); admins are admins in every project.
    """

    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    cpu_hours_budget: Mapped[float | None] = mapped_column(Float)  # a month's CPU-hours (0010_job_usage); None: no cap


class ProjectMember(Base):
    """A user's role in one project: viewer, operator or maintainer."""

    __tablename__ = "project_members"
    __table_args__ = (UniqueConstraint("project_id", "user_id", name="uq_project_members_project_user"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SshKey(Base):
    """An OpenSSH public key a user logs in with (migration 0006_ssh_keys).

    `public_key` is the key's SSH wire encoding in base64 (the middle of a `.pub` line);
    a removed key keeps its row (`removed_at`) so a later login with it is refused by name.
    """

    __tablename__ = "ssh_keys"
    __table_args__ = (UniqueConstraint("user_id", "fingerprint", name="uq_ssh_keys_user_fingerprint"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    key_type: Mapped[str] = mapped_column(String(64))
    public_key: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(String(64), index=True)
    comment: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    removed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class LoginChallenge(Base):
    """A key-login nonce in the SQL database (single-machine mode, when no Redis is configured).

    Only the nonce's SHA-256 is stored; `used_at` is set by the one verification that takes it.
    """

    __tablename__ = "login_challenges"

    nonce_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WorkerToken(Base):
    """A worker host's credential (migration 0009_worker_tokens): it may serve one pool (one queue, if
    set) through Core's gateway and nothing else. Only the SHA-256 of the secret (`ssw_...`) is stored."""

    __tablename__ = "worker_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    pool: Mapped[str] = mapped_column(String(100))
    queue: Mapped[str | None] = mapped_column(String(100))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_address: Mapped[str | None] = mapped_column(String(64))  # where its last call came from
    last_worker: Mapped[str | None] = mapped_column(String(200))  # the Prefect worker name it last ran as


class WorkerClaim(Base):
    """A flow run a worker token claimed (its Scheduled -> Pending went through the gateway): what the
    token may read the Secret blocks of, upload the archive of, and what is handed back when it is revoked."""

    __tablename__ = "worker_claims"

    flow_run_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    token_id: Mapped[int] = mapped_column(ForeignKey("worker_tokens.id", ondelete="CASCADE"), index=True)
    claimed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
