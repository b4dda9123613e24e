"""The archive index (`archive_index` in SwarmSync's database): one row per archived job, naming
the store its files are in (`archive_block`) and the manifest's SHA-256; with it, the job's
`job_usage` row (what its containers used, from the manifest)."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from swarmsync.archive.errors import ArchiveNotFound, ArchiveStoreError
from swarmsync.archive.factory import store_for
from swarmsync.archive.store import Store
from swarmsync.db import ArchiveRecord, JobUsage, session_scope, upsert
from swarmsync.owners import DEFAULT_PROJECT
from swarmsync.usage import Usage


def indexed(job_id: str) -> ArchiveRecord | None:
    """The job's index row (detached), or None."""
    with session_scope() as session:
        row = session.scalar(select(ArchiveRecord).where(ArchiveRecord.job_id == job_id))
        if row is not None:
            session.expunge(row)
        return row


def indexed_project(job_id: str) -> str | None:
    """The project of an indexed job (its row from before projects: the default one); None: no row."""
    row = indexed(job_id)
    if row is None:
        return None
    return row.project or DEFAULT_PROJECT


def indexed_outcome(job_id: str) -> tuple[str, str | None] | None:
    """(final state, message) of a job whose result is already archived and indexed, else None."""
    with session_scope() as session:
        row = session.execute(
            select(ArchiveRecord.state, ArchiveRecord.message).where(ArchiveRecord.job_id == job_id)
        ).first()
    return (row[0], row[1]) if row else None


def missing(job_id: str, name: str, row: ArchiveRecord | None = None) -> str:
    """Why `name` of a job cannot be read: its archive was never stored (and why), or it is not there."""
    row = row or indexed(job_id)
    if row is not None and not row.archive_path:
        return f"job {job_id} ended {row.state} but its archive was not stored: {row.message or ''}".strip()
    return f"no {name} archived for job {job_id}"


def store_for_job(job_id: str) -> Store:
    """Where a job's archive lives: the block its index row names (a pool may have its own
    store), else the installation's store. A job whose files could not be stored (its row has
    no location) is ArchiveNotFound at once, saying so, without asking the store."""
    row = indexed(job_id)
    if row is not None and not row.archive_path:
        raise ArchiveNotFound(missing(job_id, "archive", row))
    block = row.archive_block if row is not None else None
    try:
        return store_for(block)
    except Exception as exc:  # noqa: BLE001 - a deleted block, Prefect down, ...
        raise ArchiveStoreError(f"archive store {block or 'SWARMSYNC_ARCHIVE_BLOCK'} cannot be loaded: "
                                f"{type(exc).__name__}: {str(exc)[:300]}") from None


def index_archive(manifest: dict[str, Any], location: str, block: str | None = None) -> None:
    """Insert (or replace, for a retried run) the job's row in the archive index. `location` ""
    records an outcome whose files could not be stored."""
    files = manifest.get("files", {})
    spec = manifest.get("spec", {})
    command = spec.get("command")
    row = dict(
        job_id=manifest["job_id"],
        image=spec.get("image", ""),
        image_digest=manifest.get("image_digest"),
        command=json.dumps(command) if command is not None else None,
        state=manifest["state"],
        exit_code=manifest.get("exit_code"),
        reason=manifest.get("reason"),
        message=manifest.get("message"),
        worker=manifest.get("worker"),
        archive_path=location,
        archive_block=block,
        manifest_sha256=manifest["manifest_sha256"],
        output_bytes=files.get("output.txt", {}).get("size", 0),
        tags=spec.get("tags", []),
        project=manifest.get("project"),
        owner=manifest.get("owner"),
        started_at=_ts(manifest.get("started_at")),
        finished_at=_ts(manifest.get("finished_at")) or datetime.now(UTC),
        pool=manifest.get("pool"),
        archive_bytes=sum(int(meta.get("size", 0)) for meta in files.values()),
        duration_seconds=_seconds(manifest.get("started_at"), manifest.get("finished_at")),
        queue_wait_seconds=_seconds(manifest.get("due_at"), manifest.get("started_at")),
    )
    usage = usage_row(manifest, row)
    with session_scope() as session:  # one statement per row (not the ORM's read, then write: swarmsync.db.upsert)
        upsert(session, ArchiveRecord, **row)
        if usage is not None:
            upsert(session, JobUsage, **usage)


def usage_row(manifest: dict[str, Any], row: dict[str, Any]) -> dict[str, Any] | None:
    """The job's `job_usage` row (its columns) from its manifest's `usage` (none: its container never ran),
    given its index row's. It outlives the archive (retention removes files, not what a project used)."""
    used = Usage.from_dict(manifest.get("usage"))
    if used is None:
        return None
    return dict(job_id=row["job_id"], owner=row["owner"], project=row["project"] or DEFAULT_PROJECT,
                pool=manifest.get("pool"), image=row["image"], state=row["state"], finished_at=row["finished_at"],
                **asdict(used))


def _ts(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _seconds(earlier: str | None, later: str | None) -> float | None:
    """Seconds from one manifest time to another (never below 0: a container may start a hair before the
    run's due time); None when either is missing (a job refused before its container started)."""
    if not earlier or not later:
        return None
    return max((datetime.fromisoformat(later) - datetime.fromisoformat(earlier)).total_seconds(), 0.0)


def delete_job_archive(job_id: str) -> None:
    """Remove a job's archive from the store its index row names, then the row (none: nothing to do)."""
    try:
        store = store_for_job(job_id)
    except ArchiveNotFound:
        store = None  # indexed without files: only the row
    if store is not None:
        store.delete(job_id)
    with session_scope() as session:
        row = session.get(ArchiveRecord, job_id)
        if row is not None:
            session.delete(row)
