"""`store_for`: the `Store` of a Prefect filesystem block, chosen by the block's kind (its URL's
protocol), or the local default. Adding a store: one module, and its class in STORES.

A block named by its slug is loaded from Prefect at most once per `LOADED_SECONDS` per Prefect server:
Core's commit of each worker host's upload, and each job's archive on a worker, asked Prefect for the
same block every time (a client and a block-document read: ~10-20 ms of CPU per job between Core and
Prefect, issue 29). A block changed in place is seen at the latest that long after."""

from __future__ import annotations

import threading
import time
from typing import Any

from prefect.blocks.core import Block
from prefect.filesystems import LocalFileSystem, WritableFileSystem

from swarmsync.archive.block_store import BlockStore
from swarmsync.archive.fsspec_store import FsspecStore, block_settings
from swarmsync.archive.local import LocalStore
from swarmsync.archive.sftp import SftpStore
from swarmsync.archive.store import Store
from swarmsync.connection import prefect_api
from swarmsync.settings import get_settings

STORES: tuple[type[FsspecStore], ...] = (SftpStore,)  # fsspec-backed stores by protocol; others: FsspecStore
LOADED_SECONDS = 30.0
_loaded: dict[tuple[str, str], tuple[float, Store]] = {}  # (Prefect API URL, slug) -> (when loaded, its store)
_loaded_lock = threading.Lock()


def store_for(block: str | WritableFileSystem | Store | None = None) -> Store:
    """The store of `block`: a block's slug (a pool's `archive_block`, `remote-file-system/NAME`),
    a loaded filesystem block, or None: SWARMSYNC_ARCHIVE_BLOCK, else the folder
    `$SWARMSYNC_HOME/archive` (made if missing). A Store is returned as it is."""
    if isinstance(block, Store):
        return block
    if block is None or isinstance(block, str):
        settings = get_settings()
        slug = block or settings.archive_block
        if not slug:
            settings.archive_dir.mkdir(parents=True, exist_ok=True)
            return LocalStore(settings.archive_dir)
        with prefect_api() as url:
            key = (url, slug)
            with _loaded_lock:
                hit = _loaded.get(key)
            if hit is not None and time.monotonic() - hit[0] < LOADED_SECONDS:
                return hit[1]
            block = Block.load(slug, _sync=True)  # sync even in a worker thread of an event loop
        if not isinstance(block, WritableFileSystem):
            raise TypeError(f"block {slug!r} is not a writable filesystem block")
        store = from_block(block)
        with _loaded_lock:
            _loaded[key] = (time.monotonic(), store)
        return store
    return from_block(block)


def forget_loaded() -> None:
    """Load every block again at its next use (after changing a block in place, when it must count at once)."""
    with _loaded_lock:
        _loaded.clear()


def from_block(block: Any) -> Store:
    """The store a loaded filesystem block stands for."""
    name = getattr(block, "_block_document_name", None)
    kind = type(block).__name__
    if isinstance(block, LocalFileSystem):
        return LocalStore(block.basepath or ".", name, kind)
    url = str(getattr(block, "basepath", None) or "")
    if url and hasattr(block, "settings"):  # fsspec-backed (RemoteFileSystem and its kind)
        protocol = url.split("://", 1)[0] if "://" in url else "file"
        store = next((cls for cls in STORES if protocol in cls.protocols), FsspecStore)
        return store(url, block_settings(block), name, kind)
    return BlockStore(block, name)
