"""Alembic migrations on an empty PostgreSQL and an empty SQLite database."""

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import DBAPIError

from swarmsync.db.session import downgrade, migrate
from tests.conftest import create_pg_database, drop_pg_database

ACCOUNT_TABLES = {"users", "api_tokens", "sessions", "login_failures", "audit_log"}


@pytest.fixture(params=["postgresql", "sqlite"])
def empty_database(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    url = create_pg_database()
    yield url
    drop_pg_database(url)


def test_migrations_apply_and_revert_on_an_empty_database(empty_database):
    migrate(empty_database)
    engine = create_engine(empty_database)
    assert {"archive_index", "worker_telemetry"} | ACCOUNT_TABLES <= set(inspect(engine).get_table_names())
    migrate(empty_database)  # idempotent
    downgrade(empty_database, "base")
    assert "archive_index" not in inspect(engine).get_table_names()
    engine.dispose()


def test_accounts_migration_reverts_to_0002_and_reapplies(empty_database):
    migrate(empty_database)
    downgrade(empty_database, "0002")
    engine = create_engine(empty_database)
    tables = set(inspect(engine).get_table_names())
    assert not ACCOUNT_TABLES & tables
    assert {"archive_index", "worker_telemetry"} <= tables
    migrate(empty_database)
    assert ACCOUNT_TABLES <= set(inspect(engine).get_table_names())
    engine.dispose()


def test_archive_block_column_comes_and_goes_with_0004(empty_database):
    migrate(empty_database)
    engine = create_engine(empty_database)
    assert "archive_block" in {c["name"] for c in inspect(engine).get_columns("archive_index")}
    downgrade(empty_database, "0003")
    assert "archive_block" not in {c["name"] for c in inspect(engine).get_columns("archive_index")}
    migrate(empty_database)
    assert "archive_block" in {c["name"] for c in inspect(engine).get_columns("archive_index")}
    engine.dispose()


def test_the_audit_log_refuses_updates_and_deletes(empty_database):
    migrate(empty_database)
    engine = create_engine(empty_database)
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO audit_log (at, actor, action, outcome, detail) "
            "VALUES (CURRENT_TIMESTAMP, 'alice', 'user.add', 'ok', '{}')"
        ))
    for statement in ("UPDATE audit_log SET actor = 'mallory'", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT actor FROM audit_log")).scalars().all() == ["alice"]
    engine.dispose()
