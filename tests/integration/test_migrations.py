"""Alembic migrations on an empty PostgreSQL and an empty SQLite database."""

import pytest
from sqlalchemy import create_engine, inspect

from swarmsync.db.session import downgrade, migrate
from tests.conftest import create_pg_database, drop_pg_database


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
    assert {"archive_index", "worker_telemetry"} <= set(inspect(engine).get_table_names())
    migrate(empty_database)  # idempotent
    downgrade(empty_database, "base")
    assert "archive_index" not in inspect(engine).get_table_names()
    engine.dispose()
