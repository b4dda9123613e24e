"""Core's side of archive uploads from worker hosts (`/worker/archives`, docs/archives.md): each
file of a run's archive arrives in checksummed chunks into `$SWARMSYNC_HOME/uploads/<run id>/`,
is appended only at the size Core holds (so a cut-off upload resumes there), and on commit is
checked against the manifest and written to Core's own store, manifest last, then indexed.

One run's staging folder is locked (`flock` on the folder) while a chunk is appended or the run
is committed, so two requests of one run never interleave, in one API process or several on
one host. Nothing here trusts the worker's words: names come from `layout`, the job id must be
the run's, every chunk and every file is hashed here.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from swarmsync.archive.factory import store_for
from swarmsync.archive.index import index_archive, indexed
from swarmsync.archive.layout import MANIFEST, check_name
from swarmsync.archive.store import job_id_of
from swarmsync.errors import ConflictError, InvalidError
from swarmsync.output import sha256_file
from swarmsync.settings import get_settings

CHUNK_HEADER = "X-Chunk-SHA256"  # a chunk's SHA-256 (hex), on every PUT
MANIFEST_HEADER = "X-Manifest-SHA256"  # the manifest's SHA-256 (hex), on commit
OFFSET_HEADER = "Upload-Offset"  # how many bytes of the file Core holds (GET, PUT, and a 409)
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
STALE_AFTER_SECONDS = 2 * 86400  # staging no chunk reached for this long is an upload given up: swept
SWEEP_EVERY_SECONDS = 3600.0
TEXT_LIMITS = {"state": 32, "reason": 64, "worker": 200, "image_digest": 200}


class ChunkCorrupt(InvalidError):
    """A chunk or manifest whose bytes do not match the SHA-256 sent with it (422): nothing kept."""


class OffsetMismatch(ConflictError):
    """A chunk sent for another offset than the size Core holds (409): the client resumes at `size`."""

    def __init__(self, name: str, offset: int, size: int) -> None:
        super().__init__(f"{name}: chunk sent for offset {offset}, but Core holds {size} bytes: resume at {size}")
        self.size = size


class ManifestInvalid(InvalidError):
    """A manifest Core cannot take (422): not JSON, another job's, a name outside the layout, ..."""


class UploadIncomplete(ConflictError):
    """A commit before every file is staged whole (409): `held` says what Core holds of each."""

    def __init__(self, problems: list[str], held: dict[str, int]) -> None:
        super().__init__("upload incomplete: " + "; ".join(problems))
        self.held = held


@dataclass(frozen=True)
class Committed:
    """Core's answer to a commit: where the archive is, its manifest, and whether it was there already."""

    location: str
    manifest: dict[str, Any]
    manifest_sha256: str
    already: bool


def uploads_dir() -> Path:
    return get_settings().home_dir / "uploads"


def run_dir(run_id: str) -> Path:
    return uploads_dir() / run_id


@contextmanager
def locked(run_id: str, create: bool) -> Iterator[Path | None]:
    """The run's staging folder, locked against the run's other requests; None (unlocked) when it
    does not exist and `create` is false. A folder removed while we waited (a commit) is made anew."""
    folder = run_dir(run_id)
    while True:
        if create:
            folder.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        except FileNotFoundError:
            if create:
                continue
            yield None
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                same = os.stat(folder).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                yield folder
                return
        finally:
            os.close(fd)  # closing releases the lock
        if not create:  # removed by a commit while we waited
            yield None
            return


def held(run_id: str, name: str) -> int:
    """How many bytes of `name` Core holds (0: none): where the client resumes."""
    check_name(run_id, name)
    path = run_dir(run_id) / name
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def append(run_id: str, name: str, offset: int, data: bytes, sha256: str) -> int:
    """Append a chunk at `offset` if its SHA-256 matches and `offset` is the size Core holds; the size after."""
    check_name(run_id, name)
    if hashlib.sha256(data).hexdigest() != sha256.strip().lower():
        raise ChunkCorrupt(f"{name}: the chunk at offset {offset} ({len(data)} bytes) does not match its "
                           f"{CHUNK_HEADER}: nothing of it was kept; send it again")
    with locked(run_id, create=True) as folder:
        assert folder is not None
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab") as handle:
            size = handle.seek(0, os.SEEK_END)
            if offset != size:
                raise OffsetMismatch(name, offset, size)
            handle.write(data)  # no fsync: the commit hashes every file whole before it is stored
            return size + len(data)


def parse_manifest(run_id: str, body: bytes) -> dict[str, Any]:
    """The manifest a worker sent, checked: JSON, this run's, known names, well-formed sizes and digests."""
    try:
        manifest = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ManifestInvalid("the manifest is not JSON") from None
    if not isinstance(manifest, dict):
        raise ManifestInvalid("the manifest is not a JSON object")
    if str(manifest.get("job_id")) != run_id:
        raise ManifestInvalid(f"the manifest is of job {manifest.get('job_id')!r}, not of flow run {run_id}")
    if not isinstance(manifest.get("state"), str) or not manifest["state"]:
        raise ManifestInvalid("the manifest names no final state")
    for key, longest in TEXT_LIMITS.items():  # what the index row's columns hold
        value = manifest.get(key)
        if value is not None and (not isinstance(value, str) or len(value) > longest):
            raise ManifestInvalid(f"the manifest's {key!r} must be text of at most {longest} characters")
    spec = manifest.get("spec", {})
    if not isinstance(spec, dict) or not isinstance(spec.get("image", ""), str) or len(spec.get("image", "")) > 512:
        raise ManifestInvalid("the manifest's 'spec' must be an object whose 'image' is text of at most 512 characters")
    if manifest.get("exit_code") is not None and not isinstance(manifest["exit_code"], int):
        raise ManifestInvalid("the manifest's 'exit_code' must be a number")
    for key in ("started_at", "finished_at"):
        try:
            if manifest.get(key):
                datetime.fromisoformat(manifest[key])
        except (TypeError, ValueError):
            raise ManifestInvalid(f"the manifest's {key!r} must be an ISO time") from None
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise ManifestInvalid("the manifest has no 'files' object")
    for name, meta in files.items():
        try:
            check_name(run_id, name)
        except LookupError as exc:
            raise ManifestInvalid(str(exc)) from None
        if name == MANIFEST:
            raise ManifestInvalid("the manifest lists manifest.json as one of its files")
        if not (isinstance(meta, dict) and isinstance(meta.get("size"), int) and meta["size"] >= 0
                and isinstance(meta.get("sha256"), str) and SHA256_RE.match(meta["sha256"])):
            raise ManifestInvalid(f"{name}: the manifest needs its 'size' (bytes) and 'sha256' (64 hex digits)")
    return manifest


def _check_staged(folder: Path | None, files: dict[str, dict[str, Any]]) -> tuple[list[str], dict[str, int]]:
    """What is wrong with the staged files against the manifest's (none sent for an empty file is fine)."""
    problems: list[str] = []
    sizes: dict[str, int] = {}
    for name, meta in files.items():
        path = folder / name if folder is not None else None
        exists = path is not None and path.is_file()
        size = path.stat().st_size if path is not None and exists else 0
        sizes[name] = size
        if size != meta["size"]:
            problems.append(f"{name}: Core holds {size} of {meta['size']} bytes")
        elif size == 0:
            if meta["sha256"] != EMPTY_SHA256:
                problems.append(f"{name}: empty, but the manifest's SHA-256 is not that of no bytes")
        elif path is not None and sha256_file(path)[0] != meta["sha256"]:
            path.unlink()  # whole but wrong: dropped, so a new upload starts from 0
            sizes[name] = 0
            problems.append(f"{name}: its {size} bytes do not match the manifest's SHA-256 (dropped)")
    return problems, sizes


def commit(run_id: str, body: bytes, sha256: str | None, block: str | None,
           facts: dict[str, Any]) -> Committed:
    """Write the staged files and then the manifest (`body`, stored byte for byte) into the store of
    `block` (the pool's; None: the installation's), index the run, remove its staging. `facts` (the
    run's project and owner, as Core reads the flow run) replace what the manifest says of them in the
    index row. Committing the same manifest again answers the same; a run archived already whose new
    files are not all staged answers its existing archive."""
    digest = hashlib.sha256(body).hexdigest()
    if sha256 is not None and sha256.strip().lower() != digest:
        raise ChunkCorrupt(f"the manifest ({len(body)} bytes) does not match its {MANIFEST_HEADER}")
    manifest = parse_manifest(run_id, body)
    files: dict[str, dict[str, Any]] = manifest["files"]
    with locked(run_id, create=False) as folder:
        row = indexed(run_id)
        if row is not None and row.archive_path and row.manifest_sha256 == digest:
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)
            return Committed(row.archive_path, manifest, digest, already=True)
        problems, sizes = _check_staged(folder, files)
        if problems and row is not None and row.archive_path:
            return _existing(row.archive_path, row.archive_block, row.manifest_sha256, run_id)
        if problems:
            raise UploadIncomplete(problems, sizes)
        if folder is None:  # every file is empty: nothing was sent
            folder = run_dir(run_id)
            folder.mkdir(parents=True, exist_ok=True)
        store = store_for(block)
        for name, meta in files.items():
            path = folder / name
            if meta["size"] == 0 and not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch()
            store.put(f"{run_id}/{name}", path, meta["sha256"])
        (folder / MANIFEST).write_bytes(body)
        store.put(f"{run_id}/{MANIFEST}", folder / MANIFEST, digest)  # last: means complete
        location = store.location(run_id)
        index_archive({**manifest, **facts, "manifest_sha256": digest}, location, block)
        shutil.rmtree(folder, ignore_errors=True)
    return Committed(location, manifest, digest, already=False)


def _existing(location: str, block: str | None, digest: str, run_id: str) -> Committed:
    try:
        manifest = json.loads(store_for(block).read(f"{run_id}/{MANIFEST}"))
    except (OSError, ValueError):
        manifest = {"job_id": run_id}
    return Committed(location, manifest, digest, already=True)


def record_unstored(run_id: str, manifest: dict[str, Any], digest: str, block: str | None,
                    facts: dict[str, Any]) -> Committed:
    """Index the outcome of a run whose files could not be archived (no location: downloads say why);
    its staging is removed (the worker host keeps its spool). A run archived already keeps its archive."""
    if not SHA256_RE.match(digest):
        raise ManifestInvalid("manifest_sha256 must be 64 hex digits")
    parse_manifest(run_id, json.dumps(manifest).encode())
    with locked(run_id, create=False) as folder:
        row = indexed(run_id)
        if row is not None and row.archive_path:
            return _existing(row.archive_path, row.archive_block, row.manifest_sha256, run_id)
        index_archive({**manifest, **facts, "manifest_sha256": digest}, "", block)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
    return Committed("", manifest, digest, already=False)


_last_sweep = 0.0


def sweep_stale(force: bool = False) -> list[str]:
    """Remove the staging of uploads no chunk has reached for `STALE_AFTER_SECONDS` (a worker host that
    gave up or is gone; its spool still has the files); at most once per `SWEEP_EVERY_SECONDS` unless
    `force`. Returns the run ids swept."""
    global _last_sweep
    now = time.time()
    if not force and now - _last_sweep < SWEEP_EVERY_SECONDS:
        return []
    _last_sweep = now
    root = uploads_dir()
    if not root.is_dir():
        return []
    swept = []
    for entry in root.iterdir():
        run_id = job_id_of(entry.name)
        if run_id is None or not entry.is_dir():
            continue
        try:
            newest = max([entry.stat().st_mtime, *(p.stat().st_mtime for p in entry.rglob("*"))])
        except FileNotFoundError:
            continue  # committed meanwhile
        if now - newest < STALE_AFTER_SECONDS:
            continue
        with locked(run_id, create=False) as folder:
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)
                swept.append(run_id)
    return swept
