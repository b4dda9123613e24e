"""SwarmSync's own database: archive index, worker telemetry, users, tokens, sessions, audit,
SSH login keys and their challenges, projects and their members, worker tokens and their claims, jobs' measured usage.

SQLAlchemy models in `models.py`, Alembic migrations in `migrations/`, engine and
sessions in `session.py`. SQLite under SWARMSYNC_HOME by default; PostgreSQL via
SWARMSYNC_DATABASE_URL (postgresql+psycopg://...).
"""

from swarmsync.db.models import (
    ApiToken,
    ArchiveRecord,
    AuditEvent,
    Base,
    JobUsage,
    LoginChallenge,
    LoginFailure,
    Project,
    ProjectMember,
    SecretOwner,
    SessionRecord,
    SshKey,
    User,
    WorkerClaim,
    WorkerTelemetry,
    WorkerToken,
)
from swarmsync.db.session import get_engine, migrate, session_scope
from swarmsync.db.upsert import upsert

__all__ = [
    "ApiToken", "ArchiveRecord", "AuditEvent", "Base", "JobUsage", "LoginChallenge", "LoginFailure", "Project",
    "ProjectMember",
    "SecretOwner", "SessionRecord",
    "SshKey", "User",
    "WorkerClaim", "WorkerTelemetry", "WorkerToken", "get_engine", "migrate", "session_scope", "upsert",
]
