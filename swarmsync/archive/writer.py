"""Writing an archive (the worker, at the end of each job): hash the spool's files into
manifest.json, then put each file into the store and the manifest last (a manifest in the store
means its files are complete)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import anyio
from prefect.filesystems import WritableFileSystem

from swarmsync.archive.factory import store_for
from swarmsync.archive.layout import FILES_ARCHIVE, MANIFEST, TEXT_FILES
from swarmsync.archive.store import Store
from swarmsync.output import sha256_file


async def write_archive(job_id: str, spool: Path, manifest: dict[str, Any],
                        store: Store | WritableFileSystem | None = None) -> tuple[str, dict[str, Any]]:
    """Copy spool files to the store, then write the manifest; returns (location, manifest).
    The manifest is also left in the spool (so a job whose store was down keeps it on its host)."""
    store = store_for(store)
    manifest = spool_manifest(job_id, spool, manifest)
    for name, meta in manifest["files"].items():
        await anyio.to_thread.run_sync(store.put, f"{job_id}/{name}", spool / name, meta["sha256"])
    await anyio.to_thread.run_sync(store.put, f"{job_id}/{MANIFEST}", spool / MANIFEST,  # last: means complete
                                   manifest["manifest_sha256"])
    return store.location(job_id), manifest


def spool_manifest(job_id: str, spool: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Hash the spool's files and write its manifest.json; returns the manifest with `manifest_sha256`."""
    files: dict[str, dict[str, Any]] = {}
    for name in (*TEXT_FILES, FILES_ARCHIVE):
        path = spool / name
        if path.exists():
            digest, size = sha256_file(path)
            files[name] = {"sha256": digest, "size": size}
    if "containers" in manifest:  # a job with services: each service's stdout/stderr
        for path in sorted((spool / "services").glob("*/*.txt")):
            name = path.relative_to(spool).as_posix()
            digest, size = sha256_file(path)
            files[name] = {"sha256": digest, "size": size}
        manifest = {**manifest, "containers": {
            name: {**entry, "files": {f: files[f] for f in entry.get("files", []) if f in files}}
            for name, entry in manifest["containers"].items()}}
    manifest = {**manifest, "job_id": job_id, "files": files}
    body = json.dumps(manifest, indent=2, sort_keys=True, default=str).encode()
    (spool / MANIFEST).write_bytes(body)
    return {**manifest, "manifest_sha256": hashlib.sha256(body).hexdigest()}
