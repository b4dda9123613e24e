"""The archive: each job's output as .txt files, its output folder as .tar.gz, and a
manifest.json with SHA-256 and size of every file, kept in a Prefect filesystem block.

Layout in the store: `<job id>/{stdout.txt, stderr.txt, output.txt, files.tar.gz, manifest.json}`;
a job with services adds `services/<name>/{stdout.txt, stderr.txt}` per service (then stdout.txt and
stderr.txt are the main container's, output.txt all containers' lines prefixed with their names).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from prefect.blocks.core import Block
from prefect.filesystems import LocalFileSystem, WritableFileSystem
from sqlalchemy import select

from swarmsync.connection import prefect_api
from swarmsync.db import ArchiveRecord, session_scope
from swarmsync.output import sha256_file
from swarmsync.settings import get_settings

TEXT_FILES = ("stdout.txt", "stderr.txt", "output.txt")
FILES_ARCHIVE = "files.tar.gz"
MANIFEST = "manifest.json"
ARCHIVE_FILES = (*TEXT_FILES, FILES_ARCHIVE, MANIFEST)
SERVICE_FILE_RE = re.compile(r"^services/[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?/(?:stdout|stderr)\.txt$")


class ArchiveNotFound(LookupError):
    """No archive for that job (yet): it may still be running, or the id is wrong."""


def get_archive_store(block: str | None = None) -> WritableFileSystem:
    """The filesystem block `block` (a pool's `archive_block`), else SWARMSYNC_ARCHIVE_BLOCK,
    else a local folder under SWARMSYNC_HOME."""
    settings = get_settings()
    block = block or settings.archive_block
    if block:
        with prefect_api():
            store = Block.load(block, _sync=True)  # sync even in a worker thread of an event loop
        if not isinstance(store, WritableFileSystem):
            raise TypeError(f"block {block!r} is not a writable filesystem block")
        return store
    settings.archive_dir.mkdir(parents=True, exist_ok=True)
    return LocalFileSystem(basepath=str(settings.archive_dir))


def check_job_id(job_id: str) -> str:
    """Job ids are UUIDs; anything else (e.g. '../etc') is refused before touching storage."""
    try:
        return str(uuid.UUID(str(job_id)))
    except ValueError:
        raise ArchiveNotFound(f"{job_id!r} is not a job id (a UUID)") from None


def archive_location(store: WritableFileSystem, job_id: str) -> str:
    base = getattr(store, "basepath", None) or ""
    return f"{str(base).rstrip('/')}/{job_id}" if base else job_id


async def write_archive(
    job_id: str, spool: Path, manifest: dict[str, Any], store: WritableFileSystem | None = None
) -> tuple[str, dict[str, Any]]:
    """Copy spool files to the store, then write the manifest; returns (location, manifest)."""
    store = store or get_archive_store()
    files: dict[str, dict[str, Any]] = {}
    for name in (*TEXT_FILES, FILES_ARCHIVE):
        path = spool / name
        if not path.exists():
            continue
        digest, size = sha256_file(path)
        await _copy_to_store(store, path, f"{job_id}/{name}")
        files[name] = {"sha256": digest, "size": size}
    if "containers" in manifest:  # a job with services: each service's stdout/stderr
        for path in sorted((spool / "services").glob("*/*.txt")):
            name = path.relative_to(spool).as_posix()
            digest, size = sha256_file(path)
            await _copy_to_store(store, path, f"{job_id}/{name}")
            files[name] = {"sha256": digest, "size": size}
        manifest = {**manifest, "containers": {
            name: {**entry, "files": {f: files[f] for f in entry.get("files", []) if f in files}}
            for name, entry in manifest["containers"].items()}}
    manifest = {**manifest, "job_id": job_id, "files": files}
    body = json.dumps(manifest, indent=2, sort_keys=True, default=str).encode()
    await store.awrite_path(f"{job_id}/{MANIFEST}", body)
    manifest["manifest_sha256"] = hashlib.sha256(body).hexdigest()
    return archive_location(store, job_id), manifest


def _local_path(store: LocalFileSystem, rel: str) -> Path:
    return Path(store.basepath or ".").expanduser() / rel


def _remote_path(store: WritableFileSystem, rel: str) -> str:
    return f"{str(store.basepath).rstrip('/')}/{rel}"


async def _copy_to_store(store: WritableFileSystem, source: Path, rel: str) -> None:
    """Copy a spool file into the store in chunks (a 1 GiB output never sits in memory):
    a local folder, or any fsspec-backed block (RemoteFileSystem: s3://, gcs://, ...); other
    blocks only take whole bytes."""
    import anyio

    if isinstance(store, LocalFileSystem):
        target = _local_path(store, rel)

        def copy() -> None:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)

        await anyio.to_thread.run_sync(copy)
    elif getattr(store, "filesystem", None) is not None:
        def put() -> None:
            with open(source, "rb") as src, store.filesystem.open(_remote_path(store, rel), "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)

        await anyio.to_thread.run_sync(put)
    else:
        await store.awrite_path(rel, source.read_bytes())


def store_for_job(job_id: str) -> WritableFileSystem:
    """Where a job's archive lives: the block its index row names (a pool may have its own
    store), else the installation's store."""
    with session_scope() as session:
        block = session.scalar(select(ArchiveRecord.archive_block).where(ArchiveRecord.job_id == job_id))
    return get_archive_store(block)


def indexed_outcome(job_id: str) -> tuple[str, str | None] | None:
    """(final state, message) of a job whose result is already archived and indexed, else None."""
    with session_scope() as session:
        row = session.execute(
            select(ArchiveRecord.state, ArchiveRecord.message).where(ArchiveRecord.job_id == job_id)
        ).first()
    return (row[0], row[1]) if row else None


def index_archive(manifest: dict[str, Any], location: str, block: str | None = None) -> None:
    """Insert (or replace, for a retried run) the job's row in the archive index."""
    files = manifest.get("files", {})
    spec = manifest.get("spec", {})
    command = spec.get("command")
    row = ArchiveRecord(
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
        started_at=_ts(manifest.get("started_at")),
        finished_at=_ts(manifest.get("finished_at")) or datetime.now(UTC),
    )
    with session_scope() as session:
        session.merge(row)


def _ts(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


DOWNLOAD_CHUNK = 1 << 20


def open_archive_file(job_id: str, name: str, store: WritableFileSystem | None = None) -> BinaryIO:
    """One archived file opened for reading (the caller closes it); `name` must be one of
    ARCHIVE_FILES. Local folders and fsspec-backed blocks are read in place; any other block
    is read whole into memory first."""
    import io

    job_id = check_job_id(job_id)
    if name not in ARCHIVE_FILES and not SERVICE_FILE_RE.match(name):
        raise ArchiveNotFound(f"{name!r} is not an archive file; expected one of {ARCHIVE_FILES} "
                              "or services/NAME/stdout.txt|stderr.txt")
    store = store or store_for_job(job_id)
    rel = f"{job_id}/{name}"
    try:
        if isinstance(store, LocalFileSystem):
            return open(_local_path(store, rel), "rb")  # noqa: SIM115 - the caller closes it
        if getattr(store, "filesystem", None) is not None:
            return store.filesystem.open(_remote_path(store, rel), "rb")
        return io.BytesIO(store.read_path(rel))
    except (FileNotFoundError, ValueError, OSError) as exc:
        raise ArchiveNotFound(f"no {name} archived for job {job_id}") from exc


def iter_archive_file(job_id: str, name: str, store: WritableFileSystem | None = None,
                      chunk_size: int = DOWNLOAD_CHUNK) -> Iterator[bytes]:
    """One archived file in chunks of `chunk_size` bytes, for streaming downloads. Opened at
    once (so a missing file raises ArchiveNotFound here, not in the middle of a response)."""
    handle = open_archive_file(job_id, name, store)

    def chunks() -> Iterator[bytes]:
        with handle:
            while block := handle.read(chunk_size):
                yield block

    return chunks()


def read_archive_file(job_id: str, name: str, store: WritableFileSystem | None = None) -> bytes:
    """Bytes of one archived file, whole in memory (fine for manifests; downloads use
    `iter_archive_file`); `name` must be one of ARCHIVE_FILES."""
    job_id = check_job_id(job_id)
    if name not in ARCHIVE_FILES and not SERVICE_FILE_RE.match(name):
        raise ArchiveNotFound(f"{name!r} is not an archive file; expected one of {ARCHIVE_FILES} "
                              "or services/NAME/stdout.txt|stderr.txt")
    store = store or store_for_job(job_id)
    try:
        return store.read_path(f"{job_id}/{name}")
    except (FileNotFoundError, ValueError, OSError) as exc:
        raise ArchiveNotFound(f"no {name} archived for job {job_id}") from exc


def read_manifest(job_id: str, store: WritableFileSystem | None = None) -> dict[str, Any]:
    body = read_archive_file(job_id, MANIFEST, store)
    manifest = json.loads(body)
    manifest["manifest_sha256"] = hashlib.sha256(body).hexdigest()
    return manifest


def verify_archive(job_id: str, store: WritableFileSystem | None = None) -> list[str]:
    """Re-hash every archived file; returns the names whose bytes no longer match."""
    store = store or store_for_job(check_job_id(job_id))
    manifest = read_manifest(job_id, store)
    bad = []
    for name, meta in manifest.get("files", {}).items():
        digest, size = hashlib.sha256(), 0
        for block in iter_archive_file(job_id, name, store):
            digest.update(block)
            size += len(block)
        if digest.hexdigest() != meta["sha256"] or size != meta["size"]:
            bad.append(name)
    return bad


def delete_archive(job_id: str, store: WritableFileSystem | None = None) -> bool:
    """Remove a job's archive folder from the store; False if there was none."""
    job_id = check_job_id(job_id)
    store = store or get_archive_store()
    if isinstance(store, LocalFileSystem):
        folder = Path(store.basepath or ".").expanduser() / job_id
        if not folder.exists():
            return False
        shutil.rmtree(folder)
        return True
    filesystem = getattr(store, "filesystem", None)  # RemoteFileSystem and other fsspec-backed blocks
    if filesystem is None:
        raise TypeError(f"cannot delete from a {type(store).__name__} archive store")
    path = f"{str(store.basepath).rstrip('/')}/{job_id}"
    if not filesystem.exists(path):
        return False
    filesystem.rm(path, recursive=True)
    return True
