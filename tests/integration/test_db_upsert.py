"""`swarmsync.db.upsert` (one INSERT ... ON CONFLICT per row) on a real SQLite and PostgreSQL database, and the
archive index written with it: a retried run's row and usage are replaced, columns not given are kept."""

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from swarmsync.archive.index import index_archive
from swarmsync.db import ArchiveRecord, JobUsage, session_scope, upsert
from swarmsync.db.session import get_engine, migrate
from swarmsync.settings import get_settings
from tests.conftest import create_pg_database, drop_pg_database


@pytest.fixture(params=["postgresql", "sqlite"])
def database(request, tmp_path, monkeypatch):
    """A migrated database that is SwarmSync's database for the test (SWARMSYNC_DATABASE_URL)."""
    url = f"sqlite:///{tmp_path / 'swarmsync.db'}" if request.param == "sqlite" else create_pg_database()
    migrate(url)
    monkeypatch.setenv("SWARMSYNC_DATABASE_URL", url)
    get_settings.cache_clear()
    yield url
    get_engine(url).dispose()
    get_settings.cache_clear()
    if request.param == "postgresql":
        drop_pg_database(url)


def manifest(job_id: str, **changes) -> dict:
    return {
        "job_id": job_id, "state": "Completed", "exit_code": 0, "worker": "w1", "pool": "swarmsync",
        "project": "alpha", "owner": "ada", "manifest_sha256": "a" * 64,
        "spec": {"image": "busybox", "command": ["echo", "hi"], "tags": ["t1"]},
        "files": {"output.txt": {"size": 3}},
        "started_at": "2026-12-07T10:00:00+00:00", "finished_at": "2026-12-07T10:00:02+00:00",
        "usage": {"cpu_seconds": 0.5, "memory_peak_bytes": 1024, "wall_seconds": 2.0, "source": "cgroup"},
        **changes,
    }


def test_a_retried_runs_index_row_and_usage_are_replaced(database):
    index_archive(manifest("job-1"), "/archive/job-1")
    index_archive(manifest("job-2"), "/archive/job-2")
    index_archive(manifest("job-1", state="Failed", exit_code=3, usage={"cpu_seconds": 1.5, "source": "cgroup"},
                           files={"output.txt": {"size": 7}, "files.tar.gz": {"size": 10}}),
                  "/archive/job-1-again", "other-store")
    with session_scope(database) as session:
        rows = {row.job_id: row for row in session.scalars(select(ArchiveRecord))}
        usage = {row.job_id: row for row in session.scalars(select(JobUsage))}
    assert set(rows) == set(usage) == {"job-1", "job-2"}
    first = rows["job-1"]
    assert (first.state, first.exit_code, first.archive_path, first.archive_block) == (
        "Failed", 3, "/archive/job-1-again", "other-store")
    assert (first.output_bytes, first.archive_bytes, first.tags, first.duration_seconds) == (7, 17, ["t1"], 2.0)
    assert (usage["job-1"].cpu_seconds, usage["job-1"].state, usage["job-1"].memory_peak_bytes) == (1.5, "Failed", 0)
    assert (rows["job-2"].state, usage["job-2"].cpu_seconds) == ("Completed", 0.5)


def test_an_outcome_without_usage_writes_no_usage_row(database):
    index_archive(manifest("job-3", usage=None), "")
    with session_scope(database) as session:
        assert session.scalar(select(ArchiveRecord.archive_path).where(ArchiveRecord.job_id == "job-3")) == ""
        assert session.scalar(select(JobUsage).where(JobUsage.job_id == "job-3")) is None


def test_upsert_keeps_the_columns_it_is_not_given(database):
    finished = datetime(2026, 12, 7, 10, tzinfo=UTC)
    row = dict(job_id="job-4", image="busybox", state="Completed", archive_path="/a", manifest_sha256="b" * 64,
               finished_at=finished)
    with session_scope(database) as session:
        upsert(session, ArchiveRecord, **row, exit_code=0, tags=["x"], worker="w1")
    with session_scope(database) as session:
        upsert(session, ArchiveRecord, **{**row, "state": "Failed"}, exit_code=2)
    with session_scope(database) as session:
        stored = session.scalar(select(ArchiveRecord))
        assert (stored.state, stored.exit_code, stored.tags, stored.worker, stored.output_bytes) == (
            "Failed", 2, ["x"], "w1", 0)  # output_bytes: the column's default, from the insert
        assert stored.finished_at.replace(tzinfo=UTC) == finished


def test_upsert_needs_the_primary_key(database):
    with session_scope(database) as session, pytest.raises(ValueError, match=r"primary key \(job_id\)"):
        upsert(session, ArchiveRecord, state="Failed")
