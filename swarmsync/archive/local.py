"""A folder on this host: the default store (`$SWARMSYNC_HOME/archive`), or a `LocalFileSystem` block."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, ClassVar

from swarmsync.archive.store import CHUNK, Source, Store, StoredJob, job_id_of


class LocalStore(Store):
    """Archives in a folder: `<folder>/<job id>/...`."""

    protocols: ClassVar[tuple[str, ...]] = ("file", "local")
    lists_leftovers: ClassVar[bool] = True

    def __init__(self, folder: str | Path, name: str | None = None, block_type: str = "LocalFileSystem") -> None:
        super().__init__(str(folder), name, block_type)
        self.folder = Path(folder).expanduser()

    def put(self, rel: str, source: Source, sha256: str | None = None) -> None:
        target = self.folder / rel
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(source, Path):
                shutil.copyfile(source, target)
            else:
                with open(target, "wb") as dst:
                    shutil.copyfileobj(source, dst, CHUNK)
        except OSError as exc:  # a full disk, a read-only folder: the store cannot be used
            raise self.error(exc) from None

    def open(self, rel: str) -> BinaryIO:
        try:
            return open(self.folder / rel, "rb")  # noqa: SIM115 - the caller closes it
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise self.error(exc) from None

    def exists(self, rel: str) -> bool:
        return (self.folder / rel).exists()

    def remove(self, rel: str) -> bool:
        path = self.folder / rel
        try:
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
            else:
                return False
        except OSError as exc:
            raise self.error(exc) from None
        return True

    def list(self) -> Iterator[StoredJob]:
        if not self.folder.is_dir():
            return
        for entry in self.folder.iterdir():
            job_id = job_id_of(entry.name)
            if job_id is not None and entry.is_dir():
                yield StoredJob(job_id, datetime.fromtimestamp(entry.stat().st_mtime, UTC))
