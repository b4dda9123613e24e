"""The archive `Store`: where jobs' archives are kept, as one interface (fsspec's
`AbstractFileSystem` is the model: one interface, one class per backend, chosen by protocol in
`factory.store_for`).

Paths are relative to the store's root: `<job id>/<file>`. A store raises `FileNotFoundError` for
a file that is not there, and `ArchiveStoreError` (naming the store, never its credentials) when it
cannot be used; nothing else. Checking bytes against manifests is not a store's job (`reader.py`).
"""

from __future__ import annotations

import io
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, ClassVar
from urllib.parse import urlsplit, urlunsplit

from swarmsync.archive.errors import ArchiveStoreError
from swarmsync.archive.layout import check_job_id

CHUNK = 1 << 20  # files are copied in 1 MiB chunks both ways: a 1 GiB output never sits in memory
Source = Path | BinaryIO  # what `put` takes: a local file, or a readable binary stream


@dataclass(frozen=True)
class StoredJob:
    """One job's folder in a store, as `Store.list` yields it."""

    job_id: str
    modified: datetime | None  # None: the store cannot tell cheaply (an S3 "folder")


def public_url(url: str) -> str:
    """`url` without a password in its user part (sftp://user:secret@host -> sftp://user@host)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class Store(ABC):
    """Where archives are kept. Subclasses implement the five primitives (`put`, `open`,
    `exists`, `remove`, `list`); `read`, `delete` and `probe` are built on them.

    `url` is the store's root (a folder, `s3://bucket/prefix`, `sftp://user@host/path`), `name`
    the Prefect block it was loaded from (None: the local default), `block_type` that block's class
    name, as messages show it."""

    protocols: ClassVar[tuple[str, ...]] = ()  # URL schemes this class serves (factory.store_for)
    # Retention removes folders no index row lists only where this installation alone writes (a
    # local folder); a shared bucket may hold another installation's archives.
    lists_leftovers: ClassVar[bool] = False

    def __init__(self, url: str, name: str | None = None, block_type: str = "LocalFileSystem") -> None:
        self.url, self.name, self.block_type = url, name, block_type

    # --- the primitives --------------------------------------------------------------------

    @abstractmethod
    def put(self, rel: str, source: Source, sha256: str | None = None) -> None:
        """Store `source` (a local file, or a stream read to its end) as `rel`, making folders as
        needed, in chunks. `sha256` is the expected digest when the caller knows it (the archive
        writer always does): a store that sends files elsewhere may check it or resume by it."""

    @abstractmethod
    def open(self, rel: str) -> BinaryIO:
        """`rel` opened for reading (the caller closes it); FileNotFoundError if it is not there."""

    @abstractmethod
    def exists(self, rel: str) -> bool:
        """Whether `rel` (a file or a folder) is in the store now (no cached answer)."""

    @abstractmethod
    def remove(self, rel: str) -> bool:
        """Remove `rel`, a file or a folder with everything in it; False if it was not there."""

    @abstractmethod
    def list(self) -> Iterator[StoredJob]:
        """The job folders at the store's root (other entries are skipped)."""

    # --- built on them ----------------------------------------------------------------------

    def read(self, rel: str) -> bytes:
        """`rel` whole, in memory (manifests, probes; downloads stream with `open`)."""
        with self.open(rel) as handle:
            try:
                return handle.read()
            except OSError as exc:
                raise self.error(exc) from None

    def delete(self, job_id: str) -> bool:
        """Remove a job's archive folder; False if there was none."""
        return self.remove(check_job_id(job_id))

    def probe(self) -> str:
        """Write, read back and delete a small probe file: that this store works from here (pool
        creation, `swarmsync doctor`). Returns `describe()`; raises ArchiveStoreError."""
        rel = f".swarmsync-probe-{uuid.uuid4().hex}"
        try:
            self.put(rel, io.BytesIO(b"ok"))
            if self.read(rel) != b"ok":
                raise OSError("a probe file read back different bytes")
            self.remove(rel)
        except OSError as exc:
            raise self.error(exc) from None
        return self.describe()

    def describe(self) -> str:
        """The store as messages name it: its block's name and its URL, never its credentials."""
        url = public_url(self.url)
        return f"{self.block_type} {self.name!r} ({url})" if self.name else f"{self.block_type} ({url})"

    def location(self, job_id: str) -> str:
        """Where a job's archive is, as the index row and the run's artifacts record it."""
        base = public_url(self.url)
        return f"{base.rstrip('/')}/{job_id}" if base else job_id

    def error(self, exc: BaseException) -> ArchiveStoreError:
        """`exc` as the one error a store raises when it cannot be used."""
        if isinstance(exc, ArchiveStoreError):
            return exc
        text = str(exc).replace("\n", " ")[:300]
        return ArchiveStoreError(f"archive store {self.describe()} cannot be used: {type(exc).__name__}: {text}")


def job_id_of(name: str) -> str | None:
    """`name` as a job id if it is one (a UUID), else None: what `Store.list` keeps."""
    try:
        return str(uuid.UUID(name))
    except ValueError:
        return None
