"""`CoreStore`: a worker host's archive "store" is SwarmSync Core (`/worker/archives`, docs/archives.md).

The writer's calls map onto the upload protocol: `put("<job>/<file>", path, sha256)` sends the file in
checksummed chunks (`X-Chunk-SHA256`), each appended at the size Core holds; `put("<job>/manifest.json")`
(always last) commits: Core checks every file against the manifest, writes them into its own store and
indexes the run. Only when the commit is answered is the archive Core's (the caller keeps its spool until then).

Core unreachable, or answering 5xx: retried 1, 2, 4 ... 30 s apart for `patience` seconds
(SWARMSYNC_CORE_UPLOAD_PATIENCE_SECONDS; any answer starts it anew), resuming at the size Core says it
holds, so nothing Core holds is sent again. A 4xx that refuses the upload (not this token's run, a name
outside the layout, a refused token) is final: `ArchiveStoreError`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import httpx

from swarmsync.archive.errors import ArchiveStoreError
from swarmsync.archive.layout import MANIFEST, check_name
from swarmsync.archive.staging import CHUNK_HEADER, MANIFEST_HEADER, OFFSET_HEADER
from swarmsync.archive.store import CHUNK, Source, Store, StoredJob
from swarmsync.core_link import CoreLink, CoreRefused, Patience
from swarmsync.errors import UnavailableError

log = logging.getLogger("swarmsync.archive")

MIN_CHUNK = 64 * 1024  # a 413 halves the chunk down to this
COMMIT_TIMEOUT = httpx.Timeout(900.0, connect=10.0)  # Core copies a large archive into its store meanwhile
COMMIT_ROUNDS = 3  # a commit answered "incomplete" (409) is followed by this many resumed uploads at most


class _Transient(UnavailableError):
    """Core unreachable or answering 5xx/408/429: tried again."""


class CoreStore(Store):
    """Archives uploaded to SwarmSync Core through the worker host's `CoreLink` (see the module doc).
    `progress(name, offset, size)` is called after each chunk Core took (size: what it holds now)."""

    def __init__(self, link: CoreLink, chunk: int = CHUNK, patience: float | None = None,
                 progress: Callable[[str, int, int], None] | None = None) -> None:
        super().__init__(link.server, "Core", "SwarmSync Core")
        if patience is None:
            from swarmsync.settings import get_settings

            patience = get_settings().core_upload_patience_seconds
        self.link, self.chunk, self.patience, self.progress = link, chunk, patience, progress
        self.sent = 0  # chunk bytes sent to Core (whatever it answered): resumed uploads send each byte once
        self.answers: dict[str, dict[str, Any]] = {}  # job id -> Core's answer to its commit
        self._files: dict[str, dict[str, Path]] = {}  # job id -> files put, for a commit answered 409

    # --- the writer's calls ---------------------------------------------------------------

    def put(self, rel: str, source: Source, sha256: str | None = None) -> None:
        job_id, _, name = rel.partition("/")
        check_name(job_id, name)
        if not isinstance(source, Path):
            raise ArchiveStoreError("Core takes an archive's files from the spool (a file), not a stream")
        if name == MANIFEST:
            self._commit(job_id, source.read_bytes())
            return
        self._files.setdefault(job_id, {})[name] = source
        self._upload(job_id, name, source)

    def location(self, job_id: str) -> str:
        answer = self.answers.get(job_id)
        return answer["location"] if answer else super().location(job_id)

    def report_unstored(self, job_id: str, manifest: dict[str, Any], attempts: int = 3) -> dict[str, Any]:
        """Have Core index the outcome of a job whose archive could not be uploaded (no location)."""
        digest = manifest["manifest_sha256"]
        body = {"manifest": {k: v for k, v in manifest.items() if k != "manifest_sha256"},
                "manifest_sha256": digest}
        for attempt in range(1, attempts + 1):
            try:
                response = self._send("POST", f"/worker/archives/{job_id}/unstored", json=body)
            except _Transient as exc:
                if attempt == attempts:
                    raise ArchiveStoreError(f"Core did not take the outcome of job {job_id}: {exc}") from None
                time.sleep(2 * attempt)
                continue
            self._refused_unless_ok(response, f"the outcome of job {job_id}")
            return response.json()
        raise AssertionError("unreachable")

    # --- the protocol -----------------------------------------------------------------------

    def _path(self, job_id: str, name: str) -> str:
        return f"/worker/archives/{job_id}/files/{name}"

    def _upload(self, job_id: str, name: str, path: Path) -> None:
        size = path.stat().st_size
        if size == 0:
            return  # Core makes an empty file that the manifest lists
        patience = _Patience(self.patience, f"upload of {name} of job {job_id}")
        offset: int | None = 0  # a fresh upload starts at 0; a 409 says where Core is
        with open(path, "rb") as handle:
            while True:
                try:
                    if offset is None:  # after a cut: ask where Core is, send nothing it holds
                        offset = self._held(job_id, name)
                    if offset >= size:
                        return
                    offset = self._send_chunk(job_id, name, handle, offset)
                    patience.reset()
                except _Transient as exc:
                    offset = None
                    patience.wait(exc)

    def _held(self, job_id: str, name: str) -> int:
        response = self._send("GET", self._path(job_id, name))
        self._refused_unless_ok(response, f"{name} of job {job_id}")
        return int(response.json()["size"])

    def _send_chunk(self, job_id: str, name: str, handle: BinaryIO, offset: int) -> int:
        handle.seek(offset)
        data = handle.read(self.chunk)
        response = self._send("PUT", self._path(job_id, name), params={"offset": offset}, content=data,
                              headers={CHUNK_HEADER: hashlib.sha256(data).hexdigest(),
                                       "Content-Type": "application/octet-stream"}, counted=len(data))
        if response.status_code == 409 and OFFSET_HEADER in response.headers:
            return int(response.headers[OFFSET_HEADER])  # Core holds another size: go on from there
        if response.status_code == 413 and self.chunk > MIN_CHUNK:
            self.chunk = max(MIN_CHUNK, self.chunk // 2)
            return offset
        self._refused_unless_ok(response, f"{name} of job {job_id}")
        held = int(response.json()["size"])
        if self.progress is not None:
            self.progress(name, offset, held)
        return held

    def _commit(self, job_id: str, body: bytes) -> None:
        headers = {MANIFEST_HEADER: hashlib.sha256(body).hexdigest(), "Content-Type": "application/json"}
        patience = _Patience(self.patience, f"upload of the commit of job {job_id}")
        rounds = 0
        while True:
            try:
                response = self._send("POST", f"/worker/archives/{job_id}/commit", content=body, headers=headers,
                                      timeout=COMMIT_TIMEOUT)
            except _Transient as exc:
                patience.wait(exc)
                continue
            if response.status_code != 409:
                self._refused_unless_ok(response, f"the commit of job {job_id}")
                self.answers[job_id] = response.json()
                return
            rounds += 1
            if rounds > COMMIT_ROUNDS:
                raise ArchiveStoreError(f"Core did not take the archive of job {job_id}: {_detail(response)}")
            log.warning("archive of job %s: %s; sending what Core misses", job_id, _detail(response))
            for name, path in self._files.get(job_id, {}).items():
                self._upload(job_id, name, path)

    # --- one call, and patience ---------------------------------------------------------------

    def _send(self, method: str, path: str, counted: int = 0, **kwargs: Any) -> httpx.Response:
        """One call; `_Transient` when Core cannot be reached or answers 5xx/408/429."""
        try:
            response = self.link.request(method, path, **kwargs)
        except CoreRefused as exc:
            raise ArchiveStoreError(f"archive upload to Core refused: {exc}") from None
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:  # nothing was sent
            raise _Transient(f"Core cannot be reached ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            self.sent += counted
            raise _Transient(f"the connection to Core broke ({type(exc).__name__})") from None
        self.sent += counted
        if response.status_code >= 500 or response.status_code in (408, 429):
            raise _Transient(f"Core answered {response.status_code}: {_detail(response)}")
        return response

    def _refused_unless_ok(self, response: httpx.Response, what: str) -> None:
        if response.status_code >= 300:
            raise ArchiveStoreError(f"Core refused {what} ({response.status_code}): {_detail(response)}")

    # --- the rest of the Store interface ---------------------------------------------------------

    def probe(self) -> str:
        try:
            self.link.whoami()
        except (CoreRefused, httpx.HTTPError) as exc:
            raise self.error(exc) from None
        return self.describe()

    def open(self, rel: str) -> BinaryIO:
        raise ArchiveStoreError("a worker host reads no archive: Core serves them (GET /jobs/{id}/result)")

    def exists(self, rel: str) -> bool:
        job_id, _, name = rel.partition("/")
        try:
            return self._held(job_id, name) > 0
        except (_Transient, ArchiveStoreError):
            return False

    def remove(self, rel: str) -> bool:
        raise ArchiveStoreError("a worker host removes no archive: Core's retention does")

    def list(self) -> Iterator[StoredJob]:
        return iter(())


class _Patience(Patience):
    """An upload's patience: ArchiveStoreError once Core has failed it for `seconds` in a row."""

    def wait(self, problem: object) -> bool:
        if not super().wait(problem):
            raise ArchiveStoreError(f"{self.what} to Core gave up after {self.seconds:.0f} s: {problem}")
        return True


def _detail(response: httpx.Response | None) -> str:
    if response is None:
        return "no answer"
    try:
        return str(json.loads(response.content).get("detail", ""))[:300]
    except (ValueError, AttributeError):
        return response.text[:300]
