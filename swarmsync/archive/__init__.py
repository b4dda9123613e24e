"""The archive: each job's output as .txt files, its output folder as .tar.gz, and a
manifest.json with SHA-256 and size of every file, kept in a `Store` (README.md in this folder).

    from swarmsync import archive
    store = archive.store_for("remote-file-system/archive")   # or None: the installation's store
    store.probe()
    meta, chunks = archive.iter_verified_file(job_id, "output.txt")

Names kept from the single-module `archive.py` (documented aliases): `get_archive_store` is
`store_for` (it now returns a `Store`, not the Prefect block); `check_store(store)` is
`store_for(store).probe()`, `describe_store(store)` `.describe()`, `archive_location(store, id)`
`.location(id)`, `delete_archive(id, store)` `.delete(id)`. Each also takes a loaded block or a slug.
See docs/archives.md.

The names load on first use (module `__getattr__`, PEP 562): the stores import Prefect and the database, and
a command that only catches an archive error (`swarmsync status` through the API) must start without them
(docs/benchmarks.md, CLI start). `from swarmsync.archive import X` and `archive.X` work as before.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from swarmsync.lazy_names import loader

if TYPE_CHECKING:
    from prefect.filesystems import WritableFileSystem

    from swarmsync.archive.checksums import checked_chunks
    from swarmsync.archive.core_store import CoreStore
    from swarmsync.archive.errors import ArchiveCorrupt, ArchiveNotFound, ArchiveStoreError
    from swarmsync.archive.factory import STORES, from_block, store_for
    from swarmsync.archive.fsspec_store import FsspecStore
    from swarmsync.archive.index import (
        delete_job_archive,
        index_archive,
        indexed_outcome,
        indexed_project,
        store_for_job,
    )
    from swarmsync.archive.layout import (
        ARCHIVE_FILES,
        FILES_ARCHIVE,
        MANIFEST,
        SERVICE_FILE_RE,
        TEXT_FILES,
        check_job_id,
    )
    from swarmsync.archive.local import LocalStore
    from swarmsync.archive.reader import (
        DOWNLOAD_CHUNK,
        VERIFY_IN_MEMORY,
        expected_file,
        iter_archive_file,
        iter_verified_file,
        open_archive_file,
        read_archive_file,
        read_manifest,
        verify_archive,
    )
    from swarmsync.archive.sftp import SftpStore
    from swarmsync.archive.store import Store, StoredJob, public_url
    from swarmsync.archive.writer import spool_manifest, write_archive

    StoreLike = Store | WritableFileSystem | str | None

# public name -> the module of this package that holds it
_PUBLIC = {
    "CoreStore": "core_store",
    "checked_chunks": "checksums",
    **dict.fromkeys(("ArchiveCorrupt", "ArchiveNotFound", "ArchiveStoreError"), "errors"),
    **dict.fromkeys(("STORES", "from_block", "store_for"), "factory"),
    "FsspecStore": "fsspec_store",
    **dict.fromkeys(("delete_job_archive", "index_archive", "indexed_outcome", "indexed_project", "store_for_job"),
                    "index"),
    **dict.fromkeys(("ARCHIVE_FILES", "FILES_ARCHIVE", "MANIFEST", "SERVICE_FILE_RE", "TEXT_FILES", "check_job_id"),
                    "layout"),
    "LocalStore": "local",
    **dict.fromkeys(("DOWNLOAD_CHUNK", "VERIFY_IN_MEMORY", "expected_file", "iter_archive_file",
                     "iter_verified_file", "open_archive_file", "read_archive_file", "read_manifest",
                     "verify_archive"), "reader"),
    "SftpStore": "sftp",
    **dict.fromkeys(("Store", "StoredJob", "public_url"), "store"),
    **dict.fromkeys(("spool_manifest", "write_archive"), "writer"),
}


_load = loader(__name__, {name: f"{__name__}.{module}" for name, module in _PUBLIC.items()}, globals())


def __getattr__(name: str) -> Any:
    """A public name, imported from its module on first use (then kept here); also the package's modules
    (`archive.index`, as when this file imported them all) and two aliases."""
    if name in _PUBLIC:
        return _load(name)
    if name == "get_archive_store":  # alias: the name before `Store` (returned the block; now its Store)
        value = _load("store_for")
    elif name == "StoreLike":
        from prefect.filesystems import WritableFileSystem

        value = _load("Store") | WritableFileSystem | str | None
    else:
        try:
            value = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


def _store(store: StoreLike) -> Store:
    from swarmsync.archive.factory import store_for

    return store_for(store)


def check_store(store: StoreLike) -> str:
    """Alias of `store_for(store).probe()`."""
    return _store(store).probe()


def describe_store(store: StoreLike) -> str:
    """Alias of `store_for(store).describe()`."""
    return _store(store).describe()


def archive_location(store: StoreLike, job_id: str) -> str:
    """Alias of `store_for(store).location(job_id)`."""
    return _store(store).location(job_id)


def delete_archive(job_id: str, store: StoreLike = None) -> bool:
    """Alias of `store_for(store).delete(job_id)`: remove a job's archive folder; False if there was none."""
    return _store(store).delete(job_id)


__all__ = [
    "ARCHIVE_FILES", "DOWNLOAD_CHUNK", "FILES_ARCHIVE", "MANIFEST", "SERVICE_FILE_RE", "STORES", "TEXT_FILES",
    "VERIFY_IN_MEMORY", "ArchiveCorrupt", "ArchiveNotFound", "ArchiveStoreError", "CoreStore", "FsspecStore",
    "LocalStore", "SftpStore", "Store", "StoredJob", "archive_location", "check_job_id", "check_store",
    "checked_chunks", "delete_archive", "delete_job_archive", "describe_store", "expected_file", "from_block",
    "get_archive_store", "index_archive", "indexed_outcome", "indexed_project", "iter_archive_file",
    "iter_verified_file", "open_archive_file", "public_url", "read_archive_file", "read_manifest", "spool_manifest",
    "store_for", "store_for_job", "verify_archive", "write_archive",
]
