"""SwarmSync's own database: the archive index (and later users, tokens, audit).

SQLAlchemy 2 models in `models.py`, Alembic migrations in `migrations/`, engine and
sessions in `session.py`. SQLite under SWARMSYNC_HOME by default; PostgreSQL via
SWARMSYNC_DATABASE_URL (postgresql+psycopg://...).
"""

from swarmsync.db.models import ArchiveRecord, Base, WorkerTelemetry
from swarmsync.db.session import get_engine, migrate, session_scope

__all__ = ["ArchiveRecord", "Base", "WorkerTelemetry", "get_engine", "migrate", "session_scope"]
