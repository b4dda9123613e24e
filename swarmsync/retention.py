"""Retention: what of THIS installation is older than a cut-off, and removing it.

- archives and their index rows (by the job's finish time in `archive_index`), with the
  Secret blocks made for the job's `secret_env` (swarmsync/auth/secret_owners.py), plus
  archive folders of a local store that have no index row (by their manifest's finish
  time, else the folder's modification time);
- leftover job containers labelled `io.swarmsync.instance=<this Prefect API URL>`,
  created before the cut-off, that are not running a live job (stopped, or their run is
  finished or gone). Containers of other installations sharing the Docker engine are
  never touched.
The `retention` flow (`flows/retention.py`) runs this and reports it as an artifact.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import docker.errors
from prefect.filesystems import LocalFileSystem
from sqlalchemy import select

from swarmsync import archive
from swarmsync.auth import secret_owners
from swarmsync.connection import api_url, uses_prefect_api
from swarmsync.db import ArchiveRecord, session_scope
from swarmsync.docker_runner import LABEL_FLOW_RUN, LABEL_INSTANCE, LABEL_JOB, docker_client, list_containers


@dataclass
class Removal:
    """One thing retention removed (or would remove, in a dry run)."""

    kind: str  # "archive", "index row", "secret", "container"
    name: str
    at: datetime  # when it finished (archives) or was created (containers)


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def expired_archives(cutoff: datetime, dry_run: bool = False) -> list[Removal]:
    """Remove archives and index rows of jobs that finished before `cutoff`."""
    removed: list[Removal] = []
    store = archive.get_archive_store()
    with session_scope() as session:
        rows = session.scalars(select(ArchiveRecord).where(ArchiveRecord.finished_at < cutoff)).all()
        for row in rows:
            finished = _utc(row.finished_at)
            if not dry_run and archive.delete_archive(row.job_id, store):
                removed.append(Removal("archive", row.job_id, finished))
            elif dry_run:
                removed.append(Removal("archive", row.job_id, finished))
            if not dry_run:
                session.delete(row)
            removed.append(Removal("index row", row.job_id, finished))
            removed += _job_secrets(row.job_id, finished, dry_run)
        indexed = set(session.scalars(select(ArchiveRecord.job_id)).all())
    if isinstance(store, LocalFileSystem):
        removed += _unindexed_local_archives(Path(store.basepath or ".").expanduser(), indexed, cutoff, dry_run)
    return removed


def _job_secrets(job_id: str, finished: datetime, dry_run: bool) -> list[Removal]:
    """The Secret blocks made for this job's `secret_env` (secret_owners: kind job, ref its id)."""
    blocks = secret_owners.blocks_of(secret_owners.JOB, job_id)
    if not dry_run:
        blocks = secret_owners.delete_blocks(blocks)
    return [Removal("secret", block, finished) for block in blocks]


def _unindexed_local_archives(base: Path, indexed: set[str], cutoff: datetime, dry_run: bool) -> list[Removal]:
    removed = []
    for folder in base.iterdir() if base.is_dir() else []:
        try:
            job_id = str(uuid.UUID(folder.name))
        except ValueError:
            continue
        if job_id in indexed or not folder.is_dir():
            continue
        finished = _archive_time(folder)
        if finished < cutoff:
            if not dry_run:
                archive.delete_archive(job_id)
            removed.append(Removal("archive", job_id, finished))
            removed += _job_secrets(job_id, finished, dry_run)
    return removed


def _archive_time(folder: Path) -> datetime:
    try:
        manifest = json.loads((folder / archive.MANIFEST).read_text())
        return _utc(datetime.fromisoformat(manifest["finished_at"]))
    except (OSError, ValueError, KeyError, TypeError):
        return datetime.fromtimestamp(folder.stat().st_mtime, UTC)


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
                    container.remove(force=True)
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
