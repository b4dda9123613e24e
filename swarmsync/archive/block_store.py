"""Any other Prefect filesystem block (one that is neither a `LocalFileSystem` nor fsspec-backed,
e.g. `SMB` or a collection's bucket block), through its `read_path`/`write_path`: files go whole
through memory, and it cannot delete, list or be probed. Prefer a store of its own kind."""

from __future__ import annotations

import inspect
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from swarmsync.archive.errors import ArchiveStoreError
from swarmsync.archive.store import Source, Store, StoredJob


def _sync(result: Any) -> Any:
    """A block method's result, awaited if the block only has async ones."""
    if inspect.isawaitable(result):
        from prefect.utilities.asyncutils import run_coro_as_sync

        return run_coro_as_sync(result)
    return result


class BlockStore(Store):
    """A writable filesystem block used as it is."""

    def __init__(self, block: Any, name: str | None = None) -> None:
        super().__init__(str(getattr(block, "basepath", None) or ""), name, type(block).__name__)
        self.block = block

    def put(self, rel: str, source: Source, sha256: str | None = None) -> None:
        data = source.read_bytes() if isinstance(source, Path) else source.read()
        _sync(self.block.write_path(rel, data))

    def open(self, rel: str) -> BinaryIO:
        try:
            return io.BytesIO(_sync(self.block.read_path(rel)))
        except (FileNotFoundError, ValueError) as exc:
            raise FileNotFoundError(rel) from exc
        except OSError as exc:
            raise self.error(exc) from None

    def exists(self, rel: str) -> bool:
        try:
            self.open(rel).close()
        except FileNotFoundError:
            return False
        return True

    def remove(self, rel: str) -> bool:
        raise ArchiveStoreError(f"archive store {self.describe()}: cannot delete from a {self.block_type} block")

    def list(self) -> Iterator[StoredJob]:
        return iter(())

    def probe(self) -> str:
        return self.describe()  # trusted as it is: it cannot delete a probe file
