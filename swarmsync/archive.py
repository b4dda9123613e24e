"""The archive: each job's output as .txt files, its output folder as .tar.gz, and a
manifest.json with SHA-256 and size of every file, kept in a Prefect filesystem block.

Layout in the store: `<job id>/{stdout.txt, stderr.txt, output.txt, files.tar.gz, manifest.json}`;
a job with services adds `services/<name>/{stdout.txt, stderr.txt}` per service (then stdout.txt and
stderr.txt are the main container's, output.txt all containers' lines prefixed with their names).

Remote stores (a `RemoteFileSystem` block: s3:// through s3fs, sftp:// through paramiko, any
fsspec URL) are opened with `fsspec.core.url_to_fs(basepath, **settings)`, so the URL's host,
port and user count and the block's `settings` add credentials; files are streamed both ways in
1 MiB chunks. Downloads are checked against the manifest (`iter_verified_file`), the manifest
against its SHA-256 in the index row. See docs/archives.md.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit, urlunsplit

from prefect.blocks.core import Block
from prefect.filesystems import LocalFileSystem, WritableFileSystem
from sqlalchemy import select

from swarmsync.connection import prefect_api
from swarmsync.db import ArchiveRecord, session_scope
from swarmsync.output import sha256_file
from swarmsync.owners import DEFAULT_PROJECT
from swarmsync.settings import get_settings

TEXT_FILES = ("stdout.txt", "stderr.txt", "output.txt")
FILES_ARCHIVE = "files.tar.gz"
MANIFEST = "manifest.json"
ARCHIVE_FILES = (*TEXT_FILES, FILES_ARCHIVE, MANIFEST)
SERVICE_FILE_RE = re.compile(r"^services/[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?/(?:stdout|stderr)\.txt$")


class ArchiveNotFound(LookupError):
    """No archive for that job (yet): it may still be running, or the id is wrong."""


class ArchiveCorrupt(RuntimeError):
    """An archived file (or the manifest) does not match its SHA-256: never served as if it did."""


class ArchiveStoreError(RuntimeError):
    """The archive store cannot be reached or is misconfigured (the message never holds credentials)."""


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
    base = _public_url(str(getattr(store, "basepath", None) or ""))
    return f"{base.rstrip('/')}/{job_id}" if base else job_id


# --- remote stores (fsspec) ------------------------------------------------------------

def _public_url(url: str) -> str:
    """`url` without a password in its user part (sftp://user:secret@host -> sftp://user@host)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def describe_store(store: WritableFileSystem) -> str:
    """The store as messages name it: its block's name and its URL, never its credentials."""
    name = getattr(store, "_block_document_name", None)
    url = _public_url(str(getattr(store, "basepath", None) or ""))
    return f"{type(store).__name__} {name!r} ({url})" if name else f"{type(store).__name__} ({url})"


def _is_remote(store: WritableFileSystem) -> bool:
    return not isinstance(store, LocalFileSystem) and hasattr(store, "basepath") and hasattr(store, "settings")


def _settings(store: WritableFileSystem) -> dict[str, Any]:
    raw = getattr(store, "settings", None) or {}
    value = raw.get_secret_value() if hasattr(raw, "get_secret_value") else raw
    return {k: (v.get_secret_value() if hasattr(v, "get_secret_value") else v) for k, v in dict(value).items()}


SFTP_SESSIONS = 4  # SFTP sessions per store and process at once (sshd's MaxStartups is 10 by default)
SFTP_WAIT_SECONDS = 300  # how long a use waits for a free session
_FILESYSTEMS: dict[tuple[str, str], tuple[Any, str]] = {}
_IDLE_SESSIONS: dict[tuple[str, str], list[tuple[Any, str]]] = {}
_SESSION_SLOTS: dict[tuple[str, str], threading.BoundedSemaphore] = {}
_POOL_LOCK = threading.Lock()


def _is_sftp(store: WritableFileSystem) -> bool:
    return str(store.basepath).startswith(("sftp://", "ssh://"))


def _filesystem(store: WritableFileSystem, fresh: bool = False) -> tuple[tuple[str, str], Any, str]:
    """(key, fsspec filesystem, root path inside it) of a remote store. Built from the URL and the
    block's settings (`url_to_fs`: sftp://user@host:port/path gives host, port and user).

    Object stores (s3fs) are safe to share between threads: one filesystem per store is kept.
    An SFTP session is not shared (concurrent jobs on one paramiko session hung in an early
    multi-host run, not reproduced since): each use checks out a session of its own, at most
    SFTP_SESSIONS per store and process at once (more wait: sshd refuses a burst of new
    connections beyond its MaxStartups, 10 by default), reusing idle ones, and gives it back after
    (`_give_back`, or `_drop` after an error); `fresh` never reuses a kept one."""
    settings = _settings(store)
    key = (str(store.basepath), json.dumps(settings, sort_keys=True, default=str))
    if _is_sftp(store):
        with _POOL_LOCK:
            slots = _SESSION_SLOTS.setdefault(key, threading.BoundedSemaphore(SFTP_SESSIONS))
        if not slots.acquire(timeout=SFTP_WAIT_SECONDS):
            raise ArchiveStoreError(f"archive store {describe_store(store)}: all {SFTP_SESSIONS} SFTP sessions "
                                    f"of this process stayed busy for {SFTP_WAIT_SECONDS} s")
        with _POOL_LOCK:
            idle = _IDLE_SESSIONS.setdefault(key, [])
            if fresh:
                for old, _ in idle:
                    _close(old)
                idle.clear()
            elif idle:
                return (key, *idle.pop())
        try:
            return (key, *_connect(store, settings))
        except BaseException:
            slots.release()
            raise
    with _POOL_LOCK:
        if fresh:
            kept = _FILESYSTEMS.pop(key, None)
            if kept is not None:
                type(kept[0]).clear_instance_cache()
        if key in _FILESYSTEMS:
            return (key, *_FILESYSTEMS[key])
    fs, root = _connect(store, settings)
    with _POOL_LOCK:
        fs, root = _FILESYSTEMS.setdefault(key, (fs, root))
    return key, fs, root


def _connect(store: WritableFileSystem, settings: dict[str, Any]) -> tuple[Any, str]:
    from fsspec.core import url_to_fs

    try:
        if _is_sftp(store):
            settings = {**_sftp_settings(settings), "skip_instance_cache": True}
        fs, root = url_to_fs(str(store.basepath), **settings)
    except ImportError as exc:
        raise ArchiveStoreError(f"archive store {describe_store(store)}: {exc} (install swarmsync[archives])") \
            from None
    except Exception as exc:  # noqa: BLE001 - e.g. SSH refused, bad settings
        raise _store_error(store, exc) from None
    return fs, root.rstrip("/")


def _give_back(key: tuple[str, str], fs: Any, root: str) -> None:
    """An SFTP session that served one use without error goes back to the idle pool, and its
    slot is free again."""
    with _POOL_LOCK:
        idle = _IDLE_SESSIONS.setdefault(key, [])
        if all(kept is not fs for kept, _ in idle):
            idle.append((fs, root))
    _SESSION_SLOTS[key].release()


def _drop(key: tuple[str, str], fs: Any) -> None:
    """An SFTP session that failed is closed, and its slot is free again."""
    _close(fs)
    _SESSION_SLOTS[key].release()


class _HeldSession:
    """An open remote file that holds its SFTP session until it is closed; closing gives the
    session back to the pool."""

    def __init__(self, handle: Any, release: Any) -> None:
        self._handle, self._release = handle, release

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)

    def __iter__(self) -> Any:
        return iter(self._handle)

    def __enter__(self) -> _HeldSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._release is not None:
            try:
                self._handle.close()
            finally:
                release, self._release = self._release, None
                release()

    def __del__(self) -> None:  # a caller that forgot to close
        self.close()


def _close(fs: Any) -> None:
    client = getattr(fs, "client", None)
    try:
        if client is not None:
            client.close()
    except Exception:  # noqa: BLE001 - closing a dropped connection
        pass


def _sftp_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """`known_hosts: PATH` (SwarmSync's setting, an OpenSSH known_hosts file) becomes a paramiko
    policy that accepts only a host key listed there for that host; without it fsspec accepts
    any key on first sight (logged as a warning, see docs/archives.md)."""
    settings = dict(settings)
    known_hosts = settings.pop("known_hosts", None)
    if known_hosts:
        settings["host_key_policy"] = _known_hosts_policy(str(known_hosts))
    elif "host_key_policy" not in settings:
        logging.getLogger("swarmsync.archive").warning(
            "sftp archive store without known_hosts: the server's host key is not checked")
    return settings


def _known_hosts_policy(path: str) -> Any:
    import paramiko

    class KnownHosts(paramiko.MissingHostKeyPolicy):
        """Accept a host key only if the known_hosts file lists it for that host (and port)."""

        def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:
            known = paramiko.HostKeys(os.path.expanduser(path))  # ~ is the home of the host using the store
            port = client.get_transport().getpeername()[1]
            names = [hostname] if port == 22 else [f"[{hostname}]:{port}", hostname]
            for name in names:
                entry = known.lookup(name)
                if entry is not None and key.get_name() in entry and entry[key.get_name()] == key:
                    return
            raise paramiko.SSHException(f"host key of {hostname}:{port} is not the one in {path}")

    return KnownHosts()


def _store_error(store: WritableFileSystem, exc: BaseException) -> ArchiveStoreError:
    text = str(exc).replace("\n", " ")[:300]
    return ArchiveStoreError(f"archive store {describe_store(store)} cannot be used: {type(exc).__name__}: {text}")


def _remote(store: WritableFileSystem, action: Any, keep: bool = False) -> Any:
    """`action(fs, root)` on the store's filesystem; a failure other than a missing file is tried
    once more on a new connection (a kept SSH session may have dropped), then is an ArchiveStoreError.
    `keep`: the result goes on using the connection (an open file), so an SFTP session is not given back."""
    for attempt in (1, 2):
        key, fs, root = _filesystem(store, fresh=attempt == 2)
        try:
            result = action(fs, root)
        except (FileNotFoundError, ArchiveNotFound, ArchiveCorrupt):
            if _is_sftp(store):
                _give_back(key, fs, root)
            raise
        except Exception as exc:  # noqa: BLE001 - boto, paramiko, socket errors all mean "cannot use"
            if _is_sftp(store):
                _drop(key, fs)
            if attempt == 2:
                raise _store_error(store, exc) from None
            continue
        except BaseException:  # cancelled or interrupted: never keep a session's slot
            if _is_sftp(store):
                _drop(key, fs)
            raise
        if _is_sftp(store):
            if keep:
                return _HeldSession(result, lambda key=key, fs=fs, root=root: _give_back(key, fs, root))
            _give_back(key, fs, root)
        return result
    raise AssertionError("unreachable")


def _makedirs(fs: Any, path: str) -> None:
    try:
        fs.makedirs(path, exist_ok=True)
    except FileExistsError:
        pass


def check_store(store: WritableFileSystem) -> str:
    """Write, read back and delete a small probe file: that this store works from here (pool
    creation, `swarmsync doctor`). Returns the store's description; raises ArchiveStoreError."""
    if isinstance(store, LocalFileSystem):
        base = Path(store.basepath or ".").expanduser()
        try:
            base.mkdir(parents=True, exist_ok=True)
            probe = base / f".swarmsync-probe-{uuid.uuid4().hex}"
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as exc:
            raise _store_error(store, exc) from None
        return describe_store(store)
    if not _is_remote(store):
        return describe_store(store)  # another block kind: trusted as it is

    def probe(fs: Any, root: str) -> None:
        _makedirs(fs, root)
        path = f"{root}/.swarmsync-probe-{uuid.uuid4().hex}"
        with fs.open(path, "wb") as handle:
            handle.write(b"ok")
        with fs.open(path, "rb") as handle:
            if handle.read() != b"ok":
                raise OSError("a probe file read back different bytes")
        fs.rm(path)

    _remote(store, probe)
    return describe_store(store)


async def write_archive(
    job_id: str, spool: Path, manifest: dict[str, Any], store: WritableFileSystem | None = None
) -> tuple[str, dict[str, Any]]:
    """Copy spool files to the store, then write the manifest; returns (location, manifest).
    The manifest is also left in the spool (so a job whose store was down keeps it on its host)."""
    store = store or get_archive_store()
    manifest = spool_manifest(job_id, spool, manifest)
    for name in manifest["files"]:
        await _copy_to_store(store, spool / name, f"{job_id}/{name}")
    await _copy_to_store(store, spool / MANIFEST, f"{job_id}/{MANIFEST}")  # last: its presence means complete
    return archive_location(store, job_id), manifest


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


def _local_path(store: LocalFileSystem, rel: str) -> Path:
    return Path(store.basepath or ".").expanduser() / rel


async def _copy_to_store(store: WritableFileSystem, source: Path, rel: str) -> None:
    """Copy a spool file into the store in chunks (a 1 GiB output never sits in memory):
    a local folder, or any fsspec-backed block (RemoteFileSystem: s3://, sftp://, ...); other
    blocks only take whole bytes."""
    import anyio

    if isinstance(store, LocalFileSystem):
        target = _local_path(store, rel)

        def copy() -> None:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)

        await anyio.to_thread.run_sync(copy)
    elif _is_remote(store):
        def put(fs: Any, root: str) -> None:
            path = f"{root}/{rel}"
            _makedirs(fs, path.rsplit("/", 1)[0])
            with open(source, "rb") as src, fs.open(path, "wb") as dst:
                shutil.copyfileobj(src, dst, DOWNLOAD_CHUNK)

        await anyio.to_thread.run_sync(_remote, store, put)
    else:
        await store.awrite_path(rel, source.read_bytes())


def store_for_job(job_id: str) -> WritableFileSystem:
    """Where a job's archive lives: the block its index row names (a pool may have its own
    store), else the installation's store. A job whose files could not be stored (its row has
    no location) is ArchiveNotFound at once, saying so, without asking the store."""
    row = _indexed(job_id)
    if row is not None and not row.archive_path:
        raise ArchiveNotFound(_missing(job_id, "archive", row))
    block = row.archive_block if row is not None else None
    try:
        return get_archive_store(block)
    except Exception as exc:  # noqa: BLE001 - a deleted block, Prefect down, ...
        raise ArchiveStoreError(f"archive store {block or 'SWARMSYNC_ARCHIVE_BLOCK'} cannot be loaded: "
                                f"{type(exc).__name__}: {str(exc)[:300]}") from None


def _indexed(job_id: str) -> ArchiveRecord | None:
    with session_scope() as session:
        row = session.scalar(select(ArchiveRecord).where(ArchiveRecord.job_id == job_id))
        if row is not None:
            session.expunge(row)
        return row


def indexed_project(job_id: str) -> str | None:
    """The project of an indexed job (its row from before projects: the default one); None: no row."""
    row = _indexed(job_id)
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


def index_archive(manifest: dict[str, Any], location: str, block: str | None = None) -> None:
    """Insert (or replace, for a retried run) the job's row in the archive index. `location` ""
    records an outcome whose files could not be stored (see `NOT_STORED`)."""
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
        project=manifest.get("project"),
        owner=manifest.get("owner"),
        started_at=_ts(manifest.get("started_at")),
        finished_at=_ts(manifest.get("finished_at")) or datetime.now(UTC),
    )
    with session_scope() as session:
        session.merge(row)


def _ts(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


DOWNLOAD_CHUNK = 1 << 20
VERIFY_IN_MEMORY = 8 << 20  # files up to this size are checked before the first byte is served


def _check_name(job_id: str, name: str) -> str:
    job_id = check_job_id(job_id)
    if name not in ARCHIVE_FILES and not SERVICE_FILE_RE.match(name):
        raise ArchiveNotFound(f"{name!r} is not an archive file; expected one of {ARCHIVE_FILES} "
                              "or services/NAME/stdout.txt|stderr.txt")
    return job_id


def open_archive_file(job_id: str, name: str, store: WritableFileSystem | None = None) -> BinaryIO:
    """One archived file opened for reading (the caller closes it); `name` must be one of
    ARCHIVE_FILES. Local folders and fsspec-backed blocks are read in place; any other block
    is read whole into memory first. Unchecked: downloads use `iter_verified_file`."""
    import io

    job_id = _check_name(job_id, name)
    store = store or store_for_job(job_id)
    rel = f"{job_id}/{name}"
    try:
        if isinstance(store, LocalFileSystem):
            return open(_local_path(store, rel), "rb")  # noqa: SIM115 - the caller closes it
        if _is_remote(store):
            return _remote(store, lambda fs, root: fs.open(f"{root}/{rel}", "rb"), keep=True)
        return io.BytesIO(store.read_path(rel))
    except (FileNotFoundError, ValueError) as exc:
        raise ArchiveNotFound(_missing(job_id, name)) from exc
    except OSError as exc:
        raise _store_error(store, exc) from None


def _missing(job_id: str, name: str, row: ArchiveRecord | None = None) -> str:
    row = row or _indexed(job_id)
    if row is not None and not row.archive_path:
        return f"job {job_id} ended {row.state} but its archive was not stored: {row.message or ''}".strip()
    return f"no {name} archived for job {job_id}"


def iter_archive_file(job_id: str, name: str, store: WritableFileSystem | None = None,
                      chunk_size: int = DOWNLOAD_CHUNK) -> Iterator[bytes]:
    """One archived file in chunks of `chunk_size` bytes, unchecked (see `iter_verified_file`).
    Opened at once (so a missing file raises ArchiveNotFound here, not in the middle of a response)."""
    handle = open_archive_file(job_id, name, store)

    def chunks() -> Iterator[bytes]:
        with handle:
            while block := handle.read(chunk_size):
                yield block

    return chunks()


def expected_file(job_id: str, name: str, store: WritableFileSystem | None = None) -> dict[str, Any]:
    """{"sha256", "size"} of one archived file, from the (checked) manifest."""
    job_id = _check_name(job_id, name)
    store = store or store_for_job(job_id)
    meta = read_manifest(job_id, store).get("files", {}).get(name)
    if meta is None:
        raise ArchiveNotFound(f"no {name} archived for job {job_id}")
    return meta


def iter_verified_file(job_id: str, name: str, store: WritableFileSystem | None = None,
                       chunk_size: int = DOWNLOAD_CHUNK,
                       in_memory: int = VERIFY_IN_MEMORY) -> tuple[dict[str, Any], Iterator[bytes]]:
    """(expected {"sha256", "size"}, chunks) of one archived file, checked against the manifest.

    A file up to `in_memory` bytes is read and checked before this returns (a mismatch raises
    ArchiveCorrupt before anything is served); a larger one is hashed as it streams and its last
    chunk is held back until the hash matches, so a corrupt file is never delivered whole
    (the stream raises ArchiveCorrupt instead)."""
    job_id = _check_name(job_id, name)
    store = store or store_for_job(job_id)
    meta = expected_file(job_id, name, store)
    chunks = checked_chunks(iter_archive_file(job_id, name, store, chunk_size), meta, f"{name} of job {job_id}")
    if meta["size"] <= in_memory:
        whole = list(chunks)
        return meta, iter(whole)
    return meta, chunks


def checked_chunks(chunks: Iterator[bytes], meta: dict[str, Any], what: str) -> Iterator[bytes]:
    """`chunks` passed on, hashed; the last one only once size and SHA-256 match `meta`, else ArchiveCorrupt."""
    digest, size, held = hashlib.sha256(), 0, None
    for block in chunks:
        digest.update(block)
        size += len(block)
        if held is not None:
            yield held
        held = block
    if digest.hexdigest() != meta["sha256"] or size != meta["size"]:
        raise ArchiveCorrupt(f"{what} does not match its manifest: sha256 {digest.hexdigest()} "
                             f"({size} bytes), expected {meta['sha256']} ({meta['size']} bytes)")
    if held is not None:
        yield held


def read_archive_file(job_id: str, name: str, store: WritableFileSystem | None = None) -> bytes:
    """Bytes of one archived file, whole in memory (fine for manifests; downloads use
    `iter_verified_file`); `name` must be one of ARCHIVE_FILES."""
    job_id = _check_name(job_id, name)
    store = store or store_for_job(job_id)
    if isinstance(store, LocalFileSystem) or _is_remote(store):
        with open_archive_file(job_id, name, store) as handle:
            try:
                return handle.read()
            except OSError as exc:
                raise _store_error(store, exc) from None
    try:
        return store.read_path(f"{job_id}/{name}")
    except (FileNotFoundError, ValueError, OSError) as exc:
        raise ArchiveNotFound(_missing(job_id, name)) from exc


def read_manifest(job_id: str, store: WritableFileSystem | None = None) -> dict[str, Any]:
    """The job's manifest; checked against the SHA-256 its index row recorded (when there is one),
    so a manifest rewritten in the store to match tampered files is caught too."""
    job_id = check_job_id(job_id)
    body = read_archive_file(job_id, MANIFEST, store)
    digest = hashlib.sha256(body).hexdigest()
    row = _indexed(job_id)
    if row is not None and row.manifest_sha256 and row.manifest_sha256 != digest:
        raise ArchiveCorrupt(f"manifest.json of job {job_id} does not match its index row: sha256 {digest}, "
                             f"expected {row.manifest_sha256}")
    manifest = json.loads(body)
    manifest["manifest_sha256"] = digest
    return manifest


def verify_archive(job_id: str, store: WritableFileSystem | None = None) -> list[str]:
    """Re-hash every archived file; returns the names whose bytes no longer match."""
    store = store or store_for_job(check_job_id(job_id))
    manifest = read_manifest(job_id, store)
    bad = []
    for name, meta in manifest.get("files", {}).items():
        try:
            for _ in checked_chunks(iter_archive_file(job_id, name, store), meta, name):
                pass
        except ArchiveCorrupt:
            bad.append(name)
    return bad


def delete_job_archive(job_id: str) -> None:
    """Remove a job's archive from the store its index row names, then the row (none: nothing to do)."""
    try:
        store = store_for_job(job_id)
    except ArchiveNotFound:
        store = None  # indexed without files: only the row
    if store is not None:
        delete_archive(job_id, store)
    with session_scope() as session:
        row = session.get(ArchiveRecord, job_id)
        if row is not None:
            session.delete(row)


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
    if not _is_remote(store):
        raise TypeError(f"cannot delete from a {type(store).__name__} archive store")

    def remove(fs: Any, root: str) -> bool:
        path = f"{root}/{job_id}"
        fs.invalidate_cache(path)
        if not fs.exists(path):
            return False
        fs.rm(path, recursive=True)
        fs.invalidate_cache(path)
        return True

    return _remote(store, remove)
