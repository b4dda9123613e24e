"""Retention: what of THIS installation is older than a cut-off, and removing it.

- archives and their index rows (by the job's finish time in `archive_index`), each
  archive from the store its row names (a pool's own `archive_block`, else the
  installation's), the row only once its files are gone; plus archive folders that no
  index row lists in the stores rows name where this installation alone writes (local
  folders: `Store.lists_leftovers`), by their manifest's finish time, else the folder's
  modification time; with each job, the Secret blocks made for its
  `secret_env` (swarmsync/auth/secret_owners.py);
- leftover job containers labelled `io.swarmsync.instance=<this Prefect API URL>`,
  created before the cut-off, that are not running a live job (stopped, or their run is
  finished or gone). Containers of other installations sharing the Docker engine are
  never touched.
The `retention` flow (`flows/retention.py`) runs this and reports it as an artifact.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import docker.errors
from sqlalchemy import delete, select

from swarmsync import archive
from swarmsync.auth import secret_owners
from swarmsync.connection import api_url, uses_prefect_api
from swarmsync.db import ArchiveRecord, session_scope
from swarmsync.docker_runner import LABEL_FLOW_RUN, LABEL_INSTANCE, LABEL_JOB, docker_client, list_containers

logger = logging.getLogger("swarmsync.retention")


@dataclass
class Removal:
    """One thing retention removed (or would remove, in a dry run)."""

    kind: str  # "archive", "index row", "secret", "container"
    name: str
    at: datetime  # when it finished (archives) or was created (containers)


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def expired_archives(cutoff: datetime, dry_run: bool = False) -> list[Removal]:
    """Remove archives and index rows of jobs that finished before `cutoff`.

    Each archive is deleted from the store its index row names (a pool's own `archive_block`,
    else the installation's store), then its row: a row is never left pointing at deleted
    files. A store that cannot be reached keeps both (retried at the next run, and logged)."""
    removed: list[Removal] = []
    stores: dict[str | None, archive.Store | None] = {}
    with session_scope() as session:
        rows = session.scalars(select(ArchiveRecord).where(ArchiveRecord.finished_at < cutoff)).all()
        expired = [(row.job_id, row.archive_block, _utc(row.finished_at)) for row in rows]
        blocks = set(session.scalars(select(ArchiveRecord.archive_block).distinct()).all())
    for job_id, block, finished in expired:
        store = _store(stores, block)
        if store is None:
            continue  # its store is unreachable: keep the row, so the files stay listed
        if dry_run:
            removed += [Removal("archive", job_id, finished), Removal("index row", job_id, finished)]
            removed += _job_secrets(job_id, finished, dry_run)
            continue
        try:
            if store.delete(job_id):
                removed.append(Removal("archive", job_id, finished))
        except Exception:  # noqa: BLE001 - keep the row; the next run tries again
            logger.exception("could not delete the archive of job %s from %s", job_id, block or "the local store")
            continue
        with session_scope() as session:
            session.execute(delete(ArchiveRecord).where(ArchiveRecord.job_id == job_id))
        removed.append(Removal("index row", job_id, finished))
        removed += _job_secrets(job_id, finished, dry_run)
    with session_scope() as session:
        indexed = set(session.scalars(select(ArchiveRecord.job_id)).all())
    for block in blocks | {None}:  # folders nothing lists, in every store an index row has named
        store = _store(stores, block)
        if store is not None and store.lists_leftovers:
            removed += _unindexed_archives(store, indexed, cutoff, dry_run)
    return removed


def _store(stores: dict[str | None, archive.Store | None], block: str | None) -> archive.Store | None:
    """The archive store `block` names (None: the installation's), loaded once; None if it cannot be loaded."""
    if block not in stores:
        try:
            stores[block] = archive.store_for(block)
        except Exception:  # noqa: BLE001 - e.g. a deleted block: its archives stay, and are reported
            logger.exception("archive store %s cannot be loaded; its archives are kept", block)
            stores[block] = None
    return stores[block]


def _job_secrets(job_id: str, finished: datetime, dry_run: bool) -> list[Removal]:
    """The Secret blocks made for this job's `secret_env` (secret_owners: kind job, ref its id)."""
    blocks = secret_owners.blocks_of(secret_owners.JOB, job_id)
    if not dry_run:
        blocks = secret_owners.delete_blocks(blocks)
    return [Removal("secret", block, finished) for block in blocks]


def _unindexed_archives(store: archive.Store, indexed: set[str], cutoff: datetime,
                        dry_run: bool) -> list[Removal]:
    removed = []
    for stored in store.list():
        if stored.job_id in indexed:
            continue
        finished = _archive_time(store, stored)
        if finished is not None and finished < cutoff:
            if not dry_run:
                store.delete(stored.job_id)
            removed.append(Removal("archive", stored.job_id, finished))
            removed += _job_secrets(stored.job_id, finished, dry_run)
    return removed


def _archive_time(store: archive.Store, stored: archive.StoredJob) -> datetime | None:
    """When an unindexed archive finished: its manifest says, else its folder's modification time."""
    try:
        manifest = json.loads(store.read(f"{stored.job_id}/{archive.MANIFEST}"))
        return _utc(datetime.fromisoformat(manifest["finished_at"]))
    except (OSError, archive.ArchiveStoreError, ValueError, KeyError, TypeError):
        return stored.modified


def _created(container) -> datetime:
    raw = container.attrs["Created"].rstrip("Z")
    main, _, frac = raw.partition(".")
    return datetime.fromisoformat(f"{main}.{frac[:6] or '0'}").replace(tzinfo=UTC)


@uses_prefect_api
def leftover_containers(cutoff: datetime, dry_run: bool = False) -> list[Removal]:
    """Remove this installation's job containers created before `cutoff` that no live job uses."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    client = docker_client()
    label = [LABEL_JOB, f"{LABEL_INSTANCE}={api_url()}"]
    removed = []
    with get_client(sync_client=True) as prefect:
        for container in list_containers(client, label):
            created = _created(container)
            if created >= cutoff:
                continue
            if container.status in ("running", "restarting", "paused"):
                run_id = container.labels.get(LABEL_FLOW_RUN, "")
                try:
                    state = prefect.read_flow_run(uuid.UUID(run_id)).state
                    if state is None or not state.is_final():
                        continue  # a live job's container: never removed
                except (ObjectNotFound, ValueError):
                    pass  # its run is gone: a leftover
            if not dry_run:
                try:
                    container.remove(force=True, v=True)
                except docker.errors.NotFound:
                    continue  # removed meanwhile (by its own job)
            removed.append(Removal("container", container.name, created))
    return removed


def report_markdown(cutoff: datetime, removals: list[Removal], dry_run: bool) -> str:
    verb = "would remove" if dry_run else "removed"
    counts = {k: sum(r.kind == k for r in removals) for k in ("archive", "index row", "secret", "container")}
    lines = [
        f"### SwarmSync retention: {verb} what is older than {cutoff.isoformat(timespec='seconds')}",
        "",
        f"{counts['archive']} archive(s), {counts['index row']} index row(s), {counts['secret']} Secret block(s), "
        f"{counts['container']} leftover container(s) (installation `{api_url()}`).",
    ]
    if removals:
        lines += ["", "| kind | name | finished / created |", "|---|---|---|"]
        lines += [f"| {r.kind} | `{r.name}` | {r.at.isoformat(timespec='seconds')} |" for r in removals]
    return "\n".join(lines) + "\n"
