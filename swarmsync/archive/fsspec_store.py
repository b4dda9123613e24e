"""Any fsspec URL through a Prefect `RemoteFileSystem` block: S3 (s3fs), GCS, Azure, ...

The block's `basepath` URL and its `settings` are passed to `fsspec.core.url_to_fs`, so the URL's
host, port and user count and the settings add credentials. One filesystem per store and process is
kept and shared between threads (object-store clients are thread-safe); a failure other than a
missing file is tried once more on a new connection, then is an ArchiveStoreError. `sftp.py` keeps
sessions its own way by overriding `_checkout`, `_release` and `_hold`.
"""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, ClassVar, TypeVar

from swarmsync.archive.errors import ArchiveStoreError
from swarmsync.archive.store import CHUNK, Source, Store, StoredJob, job_id_of

T = TypeVar("T")
_SHARED: dict[tuple[str, str], tuple[Any, str]] = {}  # (url, settings) -> (filesystem, root)
_LOCK = threading.Lock()


def block_settings(block: Any) -> dict[str, Any]:
    """A `RemoteFileSystem` block's `settings` as plain values (its secrets revealed: they are
    passed to the filesystem, never shown)."""
    raw = getattr(block, "settings", None) or {}
    value = raw.get_secret_value() if hasattr(raw, "get_secret_value") else raw
    return {k: (v.get_secret_value() if hasattr(v, "get_secret_value") else v) for k, v in dict(value).items()}


class FsspecStore(Store):
    """A store reached through an fsspec filesystem."""

    protocols: ClassVar[tuple[str, ...]] = ("*",)  # any URL no other store claims

    def __init__(self, url: str, settings: dict[str, Any] | None = None, name: str | None = None,
                 block_type: str = "RemoteFileSystem") -> None:
        super().__init__(url, name, block_type)
        self.settings = dict(settings or {})
        self.key = (url, json.dumps(self.settings, sort_keys=True, default=str))

    # --- connections ------------------------------------------------------------------------

    def fsspec_options(self) -> dict[str, Any]:
        """Keyword arguments of `url_to_fs` for this store."""
        return dict(self.settings)

    def connect(self) -> tuple[Any, str]:
        """A new (filesystem, root folder) for this store."""
        from fsspec.core import url_to_fs

        try:
            fs, root = url_to_fs(self.url, **self.fsspec_options())
        except ImportError as exc:
            raise ArchiveStoreError(f"archive store {self.describe()}: {exc} (install swarmsync[archives])") \
                from None
        except Exception as exc:  # noqa: BLE001 - e.g. SSH refused, bad settings
            raise self.error(exc) from None
        return fs, root.rstrip("/")

    def _checkout(self, fresh: bool) -> tuple[Any, str]:
        """The connection to use now: the shared one (`fresh`: a new one, replacing it)."""
        with _LOCK:
            if fresh:
                kept = _SHARED.pop(self.key, None)
                if kept is not None:
                    type(kept[0]).clear_instance_cache()
            if self.key in _SHARED:
                return _SHARED[self.key]
        made = self.connect()
        with _LOCK:
            return _SHARED.setdefault(self.key, made)

    def _release(self, fs: Any, root: str, ok: bool) -> None:
        """A use of a checked-out connection ended (`ok`: without a connection error)."""

    def _hold(self, handle: BinaryIO, fs: Any, root: str) -> BinaryIO:
        """An open file that goes on using its connection after `run` returns."""
        return handle

    def run(self, action: Callable[[Any, str], T], keep: bool = False, retry: bool = True) -> T:
        """`action(fs, root)` on a connection; a failure other than a missing file is tried once more
        on a new connection (`retry`), then is an ArchiveStoreError. `keep`: the result goes on using
        the connection (an open file), which is released when it is closed."""
        attempts = (1, 2) if retry else (2,)
        for attempt in attempts:
            fs, root = self._checkout(fresh=attempt == 2 and retry)
            try:
                result = action(fs, root)
            except FileNotFoundError:
                self._release(fs, root, ok=True)
                raise
            except Exception as exc:  # noqa: BLE001 - boto, paramiko, socket errors all mean "cannot use"
                self._release(fs, root, ok=False)
                if attempt == 2:
                    raise self.error(exc) from None
                continue
            except BaseException:  # cancelled or interrupted: never keep a session's slot
                self._release(fs, root, ok=False)
                raise
            if keep:
                return self._hold(result, fs, root)  # type: ignore[arg-type]
            self._release(fs, root, ok=True)
            return result
        raise AssertionError("unreachable")

    # --- the primitives ---------------------------------------------------------------------

    def put(self, rel: str, source: Source, sha256: str | None = None) -> None:
        start = None if isinstance(source, Path) or not source.seekable() else source.tell()

        def put(fs: Any, root: str) -> None:
            path = f"{root}/{rel}"
            _makedirs(fs, path.rsplit("/", 1)[0])
            if start is not None:
                source.seek(start)  # type: ignore[union-attr]
            reader = open(source, "rb") if isinstance(source, Path) else nullcontext(source)  # noqa: SIM115
            with reader as src, fs.open(path, "wb") as dst:
                shutil.copyfileobj(src, dst, CHUNK)

        self.run(put, retry=isinstance(source, Path) or start is not None)  # a stream read once: no retry

    def open(self, rel: str) -> BinaryIO:
        return self.run(lambda fs, root: fs.open(f"{root}/{rel}", "rb"), keep=True)

    def exists(self, rel: str) -> bool:
        def exists(fs: Any, root: str) -> bool:
            fs.invalidate_cache(f"{root}/{rel}")
            return fs.exists(f"{root}/{rel}")

        return self.run(exists)

    def remove(self, rel: str) -> bool:
        def remove(fs: Any, root: str) -> bool:
            path = f"{root}/{rel}"
            fs.invalidate_cache(path)
            if not fs.exists(path):
                return False
            fs.rm(path, recursive=True)
            fs.invalidate_cache(path)
            return True

        return self.run(remove)

    def list(self) -> Iterator[StoredJob]:
        def ls(fs: Any, root: str) -> list[dict[str, Any]]:
            fs.invalidate_cache(root)
            try:
                return fs.ls(root, detail=True)
            except FileNotFoundError:
                return []

        for entry in self.run(ls):
            job_id = job_id_of(str(entry["name"]).rstrip("/").rsplit("/", 1)[-1])
            if job_id is not None and entry.get("type") == "directory":
                yield StoredJob(job_id, _modified(entry))


def _makedirs(fs: Any, path: str) -> None:
    try:
        fs.makedirs(path, exist_ok=True)
    except FileExistsError:
        pass


def _modified(entry: dict[str, Any]) -> datetime | None:
    value = entry.get("mtime") or entry.get("LastModified")
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    return None
