"""Engines, sessions and migrations for SwarmSync's database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from swarmsync.settings import get_settings

_MIGRATIONS = Path(__file__).parent / "migrations"


def get_engine(url: str | None = None) -> Engine:
    """The engine of `url` (default: the settings' database, as they are now), one per URL."""
    return _engine(url or get_settings().sql_url)


@lru_cache(maxsize=8)
def _engine(url: str) -> Engine:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", (url or get_settings().sql_url).replace("%", "%%"))
    return cfg


def migrate(url: str | None = None, revision: str = "head") -> None:
    """Bring the database to `revision` (idempotent; safe at every start)."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str | None = None, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """A transaction: committed on success, rolled back on error."""
    with _sessions(get_engine(url))() as session, session.begin():
        yield session


@lru_cache(maxsize=8)
def _sessions(engine: Engine) -> sessionmaker[Session]:
    """One session factory per engine: a new factory per transaction set up SQLAlchemy's event
    dispatch again each time (~1.4% of a worker's CPU per job, docs/benchmarks.md)."""
    return sessionmaker(engine, expire_on_commit=False)
