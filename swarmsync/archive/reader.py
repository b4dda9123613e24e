"""Reading an archive, checked: the manifest against the SHA-256 its index row recorded, each file
against the manifest (`iter_verified_file`: what downloads use). Only `Store` is used."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any, BinaryIO

from prefect.filesystems import WritableFileSystem

from swarmsync.archive.checksums import checked_chunks
from swarmsync.archive.errors import ArchiveCorrupt, ArchiveNotFound
from swarmsync.archive.factory import store_for
from swarmsync.archive.index import indexed, missing, store_for_job
from swarmsync.archive.layout import MANIFEST, check_job_id, check_name
from swarmsync.archive.store import CHUNK, Store

DOWNLOAD_CHUNK = CHUNK
VERIFY_IN_MEMORY = 8 << 20  # files up to this size are checked before the first byte is served
StoreArg = Store | WritableFileSystem | None  # a Store, a loaded block (as before stores), or None: the job's


def _store(job_id: str, store: StoreArg) -> Store:
    return store_for(store) if store is not None else store_for_job(job_id)


def open_archive_file(job_id: str, name: str, store: StoreArg = None) -> BinaryIO:
    """One archived file opened for reading (the caller closes it); `name` must be one of
    ARCHIVE_FILES or a service's stdout/stderr. Unchecked: downloads use `iter_verified_file`."""
    job_id = check_name(job_id, name)
    try:
        return _store(job_id, store).open(f"{job_id}/{name}")
    except FileNotFoundError as exc:
        raise ArchiveNotFound(missing(job_id, name)) from exc


def iter_archive_file(job_id: str, name: str, store: StoreArg = None,
                      chunk_size: int = DOWNLOAD_CHUNK) -> Iterator[bytes]:
    """One archived file in chunks of `chunk_size` bytes, unchecked (see `iter_verified_file`).
    Opened at once (so a missing file raises ArchiveNotFound here, not in the middle of a response)."""
    handle = open_archive_file(job_id, name, store)

    def chunks() -> Iterator[bytes]:
        with handle:
            while block := handle.read(chunk_size):
                yield block

    return chunks()


def read_archive_file(job_id: str, name: str, store: StoreArg = None) -> bytes:
    """Bytes of one archived file, whole in memory (fine for manifests; downloads use
    `iter_verified_file`)."""
    job_id = check_name(job_id, name)
    store = _store(job_id, store)
    try:
        return store.read(f"{job_id}/{name}")
    except FileNotFoundError as exc:
        raise ArchiveNotFound(missing(job_id, name)) from exc


def read_manifest(job_id: str, store: StoreArg = None) -> dict[str, Any]:
    """The job's manifest; checked against the SHA-256 its index row recorded (when there is one),
    so a manifest rewritten in the store to match tampered files is caught too."""
    job_id = check_job_id(job_id)
    body = read_archive_file(job_id, MANIFEST, store)
    digest = hashlib.sha256(body).hexdigest()
    row = indexed(job_id)
    if row is not None and row.manifest_sha256 and row.manifest_sha256 != digest:
        raise ArchiveCorrupt(f"manifest.json of job {job_id} does not match its index row: sha256 {digest}, "
                             f"expected {row.manifest_sha256}")
    manifest = json.loads(body)
    manifest["manifest_sha256"] = digest
    return manifest


def expected_file(job_id: str, name: str, store: StoreArg = None) -> dict[str, Any]:
    """{"sha256", "size"} of one archived file, from the (checked) manifest."""
    job_id = check_name(job_id, name)
    meta = read_manifest(job_id, _store(job_id, store)).get("files", {}).get(name)
    if meta is None:
        raise ArchiveNotFound(f"no {name} archived for job {job_id}")
    return meta


def iter_verified_file(job_id: str, name: str, store: StoreArg = None, chunk_size: int = DOWNLOAD_CHUNK,
                       in_memory: int = VERIFY_IN_MEMORY) -> tuple[dict[str, Any], Iterator[bytes]]:
    """(expected {"sha256", "size"}, chunks) of one archived file, checked against the manifest.

    A file up to `in_memory` bytes is read and checked before this returns (a mismatch raises
    ArchiveCorrupt before anything is served); a larger one is hashed as it streams and its last
    chunk is held back until the hash matches, so a corrupt file is never delivered whole
    (the stream raises ArchiveCorrupt instead)."""
    job_id = check_name(job_id, name)
    store = _store(job_id, store)
    meta = expected_file(job_id, name, store)
    chunks = checked_chunks(iter_archive_file(job_id, name, store, chunk_size), meta, f"{name} of job {job_id}")
    if meta["size"] <= in_memory:
        return meta, iter(list(chunks))
    return meta, chunks


def verify_archive(job_id: str, store: StoreArg = None) -> list[str]:
    """Re-hash every archived file; returns the names whose bytes no longer match."""
    store = _store(check_job_id(job_id), store)
    bad = []
    for name, meta in read_manifest(job_id, store).get("files", {}).items():
        try:
            for _ in checked_chunks(iter_archive_file(job_id, name, store), meta, name):
                pass
        except ArchiveCorrupt:
            bad.append(name)
    return bad
