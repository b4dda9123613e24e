"""A worker host with only a worker token returns its archives to Core (`/worker/archives`, issue 24).

Real parts only: Core's API (`create_app()` under uvicorn) in a child process of its own, which the
tests kill and restart; the session stack's Prefect server and PostgreSQL; a real work pool whose base
job template names a LocalFileSystem block (Core's store for that pool); a real flow run of that pool;
real worker tokens, one of which claimed the run (and is revoked at the end of one test). The worker
side is `CoreStore` through a `CoreLink`, driven by the flow's own `_store_archive`. One pool's store is
S3 (moto's server, tests/archives/conftest.py): Core writes wherever the pool says.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import anyio
import httpx
import pytest

from tests.conftest import free_port, stop_process
from tests.waiting import wait_until

CHUNK = 256 * 1024


class CoreApi:
    """Core's API as its own process on a fixed port: `kill()` (SIGKILL, as a crash) and `start()` again."""

    def __init__(self, home: Path) -> None:
        self.home, self.port = home, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log = open(self.home / f"api-{self.starts}.log", "wb")  # noqa: SIM115
        env = {**os.environ, "SWARMSYNC_HOME": str(self.home)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "swarmsync.api.app:create_app", "--factory",
             "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning"],
            env=env, stdout=log, stderr=subprocess.STDOUT)
        wait_until(self._up, f"Core's API answering on {self.url}", timeout=120)

    def _up(self) -> bool:
        assert self.proc is not None and self.proc.poll() is None, (self.home / f"api-{self.starts}.log").read_text()
        try:
            return httpx.get(f"{self.url}/health", timeout=2).status_code < 500
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            stop_process(self.proc)


@dataclass
class Pool:
    name: str
    block: str
    folder: Path  # the block's folder: Core's store for this pool
    deployment_id: str


@pytest.fixture(scope="module")
def core(stack, tmp_path_factory) -> Iterator[CoreApi]:
    api = CoreApi(tmp_path_factory.mktemp("core-home"))
    api.start()
    yield api
    api.stop()


def _make_pool(folder: Path, block: str | None = None) -> Pool:
    """A pool whose base job template names `block` (default: a LocalFileSystem block on `folder`)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.filesystems import LocalFileSystem

    from swarmsync.connection import prefect_api

    name = f"up-{uuid.uuid4().hex[:8]}"
    with prefect_api(), get_client(sync_client=True) as client:
        if block is None:
            LocalFileSystem(basepath=str(folder)).save(f"{name}-archive", overwrite=True)
            block = f"local-file-system/{name}-archive"
        template = {"job_configuration": {"archive_block": "{{ archive_block }}"},
                    "variables": {"type": "object", "properties": {"archive_block": {
                        "type": "string", "default": block}}}}
        client.create_work_pool(WorkPoolCreate(name=name, type="swarmsync", base_job_template=template))
        flow_id = client.create_flow_from_name("upload-test")
        deployment_id = client.create_deployment(flow_id=flow_id, name=name, work_pool_name=name)
    return Pool(name, block, folder, str(deployment_id))


@pytest.fixture(scope="module")
def pool(stack, tmp_path_factory) -> Pool:
    return _make_pool(tmp_path_factory.mktemp("pool-archive"))


def new_run(pool: Pool) -> str:
    """A flow run of the pool, scheduled for tomorrow (no worker serves the pool: it stays Scheduled)."""
    from prefect.client.orchestration import get_client
    from prefect.states import Scheduled

    from swarmsync.connection import prefect_api

    with prefect_api(), get_client(sync_client=True) as client:
        run = client.create_flow_run_from_deployment(
            pool.deployment_id, state=Scheduled(scheduled_time=datetime.now(UTC) + timedelta(days=1)))
    return str(run.id)


def new_token(pool: str, claim: str | None = None) -> str:
    from swarmsync.auth import worker_tokens

    secret = worker_tokens.create("test-admin", f"host-{uuid.uuid4().hex[:8]}", pool).token
    if claim:
        worker_tokens.record_claim(worker_tokens.identify(secret), claim)
    return secret


def make_spool(folder: Path, files_bytes: int) -> Path:
    folder.mkdir(parents=True)
    (folder / "stdout.txt").write_text("hello from another host\n" * 100)
    (folder / "stderr.txt").write_bytes(b"")
    (folder / "output.txt").write_text("hello from another host\n" * 100)
    (folder / "files.tar.gz").write_bytes(os.urandom(files_bytes))  # NUL bytes and all
    return folder


def base_manifest() -> dict:
    return {"state": "COMPLETED", "exit_code": 0, "spec": {"image": "busybox", "command": ["true"]},
            "worker": "test-host", "project": "default", "owner": None}


def store_archive(link, run_id: str, spool: Path) -> tuple[str, dict]:
    """The flow's own path: `_store_archive` with a CoreLink."""
    from swarmsync.flows.container_job import _store_archive

    return anyio.run(_store_archive, run_id, spool, base_manifest(), None, link)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_multi_chunk_archive_arrives_whole_in_cores_store_indexed_and_a_second_commit_changes_nothing(
        core, pool, tmp_path, monkeypatch):
    from swarmsync import archive
    from swarmsync.archive import core_store
    from swarmsync.core_link import CoreLink

    run_id = new_run(pool)
    link = CoreLink(core.url, new_token(pool.name, claim=run_id))
    spool = make_spool(tmp_path / "spool", 4 * CHUNK + 12345)  # 5 chunks
    chunks: list[tuple[str, int, int]] = []
    from swarmsync.flows import container_job  # its CoreStore, with small chunks and an eye on them
    monkeypatch.setattr(container_job, "CoreStore", partial(core_store.CoreStore, chunk=CHUNK,
                                                            progress=lambda *chunk: chunks.append(chunk)))
    location, manifest = store_archive(link, run_id, spool)

    assert location == str(pool.folder / run_id)
    assert [c for c in chunks if c[0] == "files.tar.gz"] == [
        ("files.tar.gz", i * CHUNK, min((i + 1) * CHUNK, 4 * CHUNK + 12345)) for i in range(5)]
    stored = pool.folder / run_id
    for name in ("stdout.txt", "stderr.txt", "output.txt", "files.tar.gz"):
        assert (stored / name).read_bytes() == (spool / name).read_bytes(), name
        assert manifest["files"][name]["sha256"] == sha256(stored / name), name
    assert (stored / "manifest.json").read_bytes() == (spool / "manifest.json").read_bytes()
    row = archive.index.indexed(run_id)
    assert row is not None and row.archive_path == location and row.archive_block == pool.block
    assert row.manifest_sha256 == manifest["manifest_sha256"] == sha256(spool / "manifest.json")
    assert archive.verify_archive(run_id) == []  # read back through the index, every checksum checked
    assert not (core.home / "uploads" / run_id).exists(), "Core's staging is removed once the archive is stored"

    before = {p.name: p.stat().st_mtime_ns for p in stored.iterdir()}
    again = httpx.post(f"{core.url}/worker/archives/{run_id}/commit",
                       content=(spool / "manifest.json").read_bytes(),
                       headers={"Authorization": f"Bearer {link.token}"})
    assert again.status_code == 200, again.text
    assert again.json()["location"] == location and again.json()["already"] is True
    assert again.json()["manifest_sha256"] == manifest["manifest_sha256"]
    assert {p.name: p.stat().st_mtime_ns for p in stored.iterdir()} == before, "nothing written twice"
    assert link.run_outcome(run_id) == ("COMPLETED", None)  # the flow's "already ran" lookup, through Core


def test_a_chunk_is_refused_unless_its_checksum_and_offset_match(core, pool):
    run_id = new_run(pool)
    headers = {"Authorization": f"Bearer {new_token(pool.name, claim=run_id)}"}
    url = f"{core.url}/worker/archives/{run_id}/files/output.txt"
    chunk = b"\x00abc" * 1000

    bad = httpx.put(url, params={"offset": 0}, content=chunk,
                    headers={**headers, "X-Chunk-SHA256": hashlib.sha256(b"other").hexdigest()})
    assert bad.status_code == 422 and "does not match" in bad.json()["detail"], bad.text
    assert httpx.get(url, headers=headers).json()["size"] == 0, "nothing of a bad chunk is kept"

    good = {**headers, "X-Chunk-SHA256": hashlib.sha256(chunk).hexdigest()}
    assert httpx.put(url, params={"offset": 0}, content=chunk, headers=good).json()["size"] == len(chunk)
    twice = httpx.put(url, params={"offset": 0}, content=chunk, headers=good)
    assert twice.status_code == 409 and twice.headers["Upload-Offset"] == str(len(chunk)), twice.text
    ahead = httpx.put(url, params={"offset": 2 * len(chunk)}, content=chunk, headers=good)
    assert ahead.status_code == 409 and ahead.json()["size"] == len(chunk)
    held = httpx.get(url, headers=headers)
    assert held.json() == {"name": "output.txt", "size": len(chunk)}

    incomplete = {"job_id": run_id, "state": "COMPLETED",
                  "files": {"output.txt": {"size": 2 * len(chunk), "sha256": "0" * 64}}}
    early = httpx.post(f"{core.url}/worker/archives/{run_id}/commit", json=incomplete, headers=headers)
    assert early.status_code == 409 and early.json()["held"] == {"output.txt": len(chunk)}, early.text


def test_a_file_larger_than_any_job_of_the_pool_may_write_is_refused(core, pool):
    """A token cannot fill Core's staging disk: past the pool's max_output_bytes / max_files_bytes (1 GiB by
    default, plus 1 MiB for SwarmSync's notes), a chunk is refused (413) before it is written."""
    run_id = new_run(pool)
    headers = {"Authorization": f"Bearer {new_token(pool.name, claim=run_id)}"}
    url = f"{core.url}/worker/archives/{run_id}/files/output.txt"
    chunk = b"x" * 1024
    beyond = httpx.put(url, params={"offset": (1 << 30) + (1 << 20)}, content=chunk,
                       headers={**headers, "X-Chunk-SHA256": hashlib.sha256(chunk).hexdigest()})
    assert beyond.status_code == 413, beyond.text
    assert "max_output_bytes" in beyond.json()["detail"]
    assert httpx.get(url, headers=headers).json()["size"] == 0


def test_an_upload_cut_off_by_core_going_down_resumes_at_cores_size(core, pool, tmp_path):
    from swarmsync import archive
    from swarmsync.archive.core_store import CoreStore
    from swarmsync.core_link import CoreLink

    run_id = new_run(pool)
    link = CoreLink(core.url, new_token(pool.name, claim=run_id))
    size = 6 * CHUNK + 999
    spool = make_spool(tmp_path / "spool", size)
    acknowledged: list[tuple[int, int]] = []
    restarted = threading.Event()
    held_at_cut: list[int] = []

    def cut_after_three(name: str, offset: int, held: int) -> None:
        if name != "files.tar.gz":
            return
        acknowledged.append((offset, held))
        if len(acknowledged) == 3:  # Core dies between two chunks; back after a few seconds
            core.kill()
            held_at_cut.append((core.home / "uploads" / run_id / "files.tar.gz").stat().st_size)
            threading.Timer(3.0, lambda: (core.start(), restarted.set())).start()

    store = CoreStore(link, chunk=CHUNK, patience=180, progress=cut_after_three)
    location, manifest = anyio.run(archive.write_archive, run_id, spool, base_manifest(), store)
    assert restarted.is_set()

    assert held_at_cut == [3 * CHUNK]
    offsets = [offset for offset, _ in acknowledged]
    assert offsets == [i * CHUNK for i in range(7)], "resumed at Core's size: no chunk sent twice, none skipped"
    text_bytes = sum((spool / n).stat().st_size for n in ("stdout.txt", "output.txt"))
    # every byte once; at most the chunk in flight when Core died (which Core did not keep) twice
    assert size + text_bytes <= store.sent <= size + text_bytes + CHUNK
    assert (pool.folder / run_id / "files.tar.gz").read_bytes() == (spool / "files.tar.gz").read_bytes()
    assert archive.verify_archive(run_id) == [] and location == str(pool.folder / run_id)
    assert manifest["files"]["files.tar.gz"]["size"] == size


def test_other_tokens_and_names_outside_the_layout_are_refused(core, pool, tmp_path):
    from swarmsync.archive.core_store import CoreStore
    from swarmsync.archive.errors import ArchiveStoreError
    from swarmsync.core_link import CoreLink

    run_id = new_run(pool)
    claimer = new_token(pool.name, claim=run_id)
    same_pool = new_token(pool.name)
    other_pool = _make_pool(tmp_path / "other-archive").name
    stranger = new_token(other_pool)
    chunk = b"x" * 100
    sums = {"X-Chunk-SHA256": hashlib.sha256(chunk).hexdigest()}
    base = f"{core.url}/worker/archives/{run_id}"
    for token in (same_pool, stranger):
        headers = {"Authorization": f"Bearer {token}"}
        put = httpx.put(f"{base}/files/output.txt", params={"offset": 0}, content=chunk, headers={**headers, **sums})
        assert put.status_code == 404, put.text
        assert httpx.get(f"{base}/files/output.txt", headers=headers).status_code == 404
        assert httpx.post(f"{base}/commit", json={}, headers=headers).status_code == 404
        assert httpx.post(f"{base}/unstored", json={"manifest": {}, "manifest_sha256": "0" * 64},
                          headers=headers).status_code == 404
    assert not (core.home / "uploads" / run_id).exists(), "nothing staged for a refused token"

    headers = {"Authorization": f"Bearer {claimer}", **sums}
    for name in ("evil.sh", "services/x/../../manifest.json", "manifest.json/x", "services/db/env.txt"):
        refused = httpx.put(f"{base}/files/{name}", params={"offset": 0}, content=chunk, headers=headers)
        assert refused.status_code in (400, 404), (name, refused.text)
    assert httpx.put(f"{core.url}/worker/archives/not-a-run/files/output.txt", params={"offset": 0},
                     content=chunk, headers=headers).status_code == 404
    not_this_run = {**base_manifest(), "job_id": str(uuid.uuid4()), "files": {}}
    wrong = httpx.post(f"{base}/commit", content=json.dumps(not_this_run), headers=headers)
    assert wrong.status_code == 422 and "not of flow run" in wrong.json()["detail"], wrong.text
    users = httpx.get(f"{base}/files/output.txt", headers={"Authorization": "Bearer sss_not-a-worker"})
    assert users.status_code == 401

    spool = make_spool(tmp_path / "spool", 1000)
    with pytest.raises(ArchiveStoreError, match="404"):  # a refusal is final: no retrying for minutes
        CoreStore(CoreLink(core.url, same_pool), patience=600).put(f"{run_id}/output.txt", spool / "output.txt")

    from swarmsync.auth import worker_tokens

    worker_tokens.revoke("test-admin", worker_tokens.identify(claimer).name)
    wait_until(lambda: httpx.get(f"{base}/files/output.txt", headers=headers).status_code == 401,
               "Core refuses the revoked token", timeout=30)  # Core's identification cache: 5 s
    with pytest.raises(ArchiveStoreError, match="refused"):  # the token that claimed the run, revoked
        CoreStore(CoreLink(core.url, claimer), patience=600).put(f"{run_id}/output.txt", spool / "output.txt")


def test_an_unstored_outcome_is_indexed_through_core(core, pool, tmp_path):
    from swarmsync import archive
    from swarmsync.archive.core_store import CoreStore
    from swarmsync.core_link import CoreLink

    run_id = new_run(pool)
    link = CoreLink(core.url, new_token(pool.name, claim=run_id))
    spool = make_spool(tmp_path / "spool", 1000)
    manifest = archive.spool_manifest(run_id, spool, {**base_manifest(), "state": "FAILED",
                                                      "message": "exit 1; archive not stored (test)"})
    answer = CoreStore(link).report_unstored(run_id, manifest)
    assert answer["location"] == ""
    row = archive.index.indexed(run_id)
    assert row is not None and row.archive_path == "" and row.state == "FAILED"
    assert link.run_outcome(run_id) == ("FAILED", "exit 1; archive not stored (test)")
    with pytest.raises(archive.ArchiveNotFound, match="not stored"):
        archive.store_for_job(run_id)


def test_core_writes_into_the_pools_s3_store(core, s3_server, tmp_path):
    """Core's store is whatever the pool names: here an S3 bucket (moto's server), read back checked."""
    from swarmsync import archive
    from swarmsync.core_link import CoreLink
    from tests.archives.conftest import s3_block

    s3_pool = _make_pool(tmp_path / "unused", s3_block(s3_server))
    run_id = new_run(s3_pool)
    link = CoreLink(core.url, new_token(s3_pool.name, claim=run_id))
    spool = make_spool(tmp_path / "spool", 2 * 2**20 + 5)  # 3 chunks of the default 1 MiB
    location, manifest = store_archive(link, run_id, spool)
    assert location.startswith("s3://") and location.endswith(run_id)
    row = archive.index.indexed(run_id)
    assert row is not None and row.archive_block == s3_pool.block and row.archive_path == location
    assert archive.verify_archive(run_id) == []
    assert archive.read_archive_file(run_id, "files.tar.gz") == (spool / "files.tar.gz").read_bytes()
