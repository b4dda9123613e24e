"""A job cannot take the worker, the API or the disk down: its output folder and its
stdout/stderr stop at the pool's size caps (the job fails with the cap as its reason, and
nothing raw is spooled past the cap), downloads stream through the API in bounded memory,
and retention removes archives from the store they were written to."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import anyio
import httpx
import pytest
from sqlalchemy import select

import swarmsync
from swarmsync import archive, retention
from swarmsync.connection import prefect_api
from swarmsync.db import ArchiveRecord, session_scope
from swarmsync.deployments.pools import create_pool
from tests.conftest import free_port
from tests.workers import WorkerProcesses, start_api

MIB = 1 << 20


@pytest.fixture
def workers(stack, tmp_path):
    """`swarmsync worker start` processes of this test; all stopped after it."""
    procs = WorkerProcesses(tmp_path)
    yield procs.start
    procs.stop_all()


def _disk_use(folder: Path) -> int:
    """Bytes the folder's files take on disk (allocated blocks: a sparse file counts as written)."""
    total = 0
    for root, _dirs, names in os.walk(folder):
        for name in names:
            try:
                total += os.stat(os.path.join(root, name)).st_blocks * 512
            except OSError:
                continue
    return total


class PeakDiskUse:
    """Samples a folder's disk use in the background and keeps the largest value seen."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _disk_use(self.folder))
            time.sleep(0.02)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(5)
        return self.peak


def test_a_1_gb_sparse_file_in_output_dir_stops_at_max_files_bytes_and_is_never_spooled_raw(
    stack, workers, busybox, no_leftover_containers,
):
    cap = 8 * MIB
    pool = f"t-{uuid.uuid4().hex[:8]}"
    create_pool(pool, max_files_bytes=cap)
    workers(pool)
    job = swarmsync.submit(busybox, ["sh", "-c", "mkdir -p /out && truncate -s 1G /out/big && echo made"],
                           output_dir="/out", pool=pool, timeout=120)
    spool = Path(stack["SWARMSYNC_HOME"]) / "spool" / str(job.id)
    watcher = PeakDiskUse(spool)
    try:
        job.wait(180)
    finally:
        peak = watcher.stop()
    print(f"peak disk use of the worker's spool for a 1 GiB sparse output_dir: {peak} bytes (cap {cap})")
    result = job.result()
    assert job.status() == "Failed", result.message
    assert result.reason == "files-cap"
    assert "max_files_bytes (8 MiB)" in result.message
    assert "files.tar.gz" not in result.manifest["files"]
    assert "exceeded the pool's max_files_bytes" in result.manifest["output_note"]
    assert result.stdout == "made\n"
    assert peak <= cap, f"the spool held {peak} bytes, more than the {cap}-byte cap"


def test_endless_yes_is_stopped_at_max_output_bytes_while_the_worker_runs_another_job(
    stack, workers, busybox, no_leftover_containers,
):
    cap = MIB  # busybox `yes` writes one 2-byte line per write: Docker's attach stream carries ~1 MB/s of it
    pool = f"t-{uuid.uuid4().hex[:8]}"
    create_pool(pool, max_output_bytes=cap)
    worker = workers(pool)
    endless = swarmsync.submit(busybox, ["yes"], pool=pool, timeout=40)  # the timeout only bounds a failure
    spool = Path(stack["SWARMSYNC_HOME"]) / "spool" / str(endless.id)
    watcher = PeakDiskUse(spool)
    other = swarmsync.submit(busybox, ["sh", "-c", "sleep 1; echo still-serving"], pool=pool)
    try:
        endless.wait(120)
    finally:
        peak = watcher.stop()
    other.wait(120)
    print(f"peak disk use of the spool of an endless `yes`: {peak} bytes (cap {cap} for stdout+stderr)")
    result = endless.result()
    assert endless.status() == "Failed", result.message
    assert result.reason == "output-cap"
    assert result.message.startswith("stopped: output exceeded the pool's max_output_bytes (1 MiB)")
    assert result.manifest["files"]["stdout.txt"]["size"] == cap
    assert peak <= 2 * cap + MIB  # stdout.txt and the interleaved output.txt, each at most the cap
    assert other.status() == "Completed"
    assert other.result().stdout == "still-serving\n"
    assert worker.poll() is None, "the worker must outlive a job that floods its output"


def _vm(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} for {pid}")


def test_a_200_mb_download_through_the_api_streams_in_bounded_memory(stack, accounts, role_tokens, tmp_path):
    """The API process (its own, so its memory is measured alone) serves a ~200 MB archived
    output; its peak resident memory (VmHWM) grows by far less than the file."""
    size = 200 * MIB
    job_id = str(uuid.uuid4())
    spool = tmp_path / "spool"
    spool.mkdir()
    block = os.urandom(MIB)
    with open(spool / "output.txt", "wb") as f:
        for _ in range(size // MIB):
            f.write(block)
    for name in ("stdout.txt", "stderr.txt"):
        (spool / name).write_bytes(b"")
    manifest = {"spec": {"image": "busybox"}, "state": "COMPLETED", "exit_code": 0,
                "finished_at": datetime.now(UTC).isoformat()}
    location, manifest = anyio.run(archive.write_archive, job_id, spool, manifest)
    archive.index_archive(manifest, location)
    port = free_port()
    api_proc = start_api(port, tmp_path / "api.log")
    try:
        url = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {role_tokens['viewer']}"}
        with httpx.Client(base_url=url, headers=headers, timeout=120) as client:
            assert client.get(f"/jobs/{job_id}/result", timeout=60).status_code == 200  # warm up
            before = _vm(api_proc.pid, "VmHWM")
            received = 0
            with client.stream("GET", f"/jobs/{job_id}/result.txt") as response:
                assert response.status_code == 200
                for chunk in response.iter_bytes():
                    received += len(chunk)
            after = _vm(api_proc.pid, "VmHWM")
        growth = after - before
        print(f"API process peak RSS {before / MIB:.0f} MiB -> {after / MIB:.0f} MiB "
              f"(+{growth / MIB:.1f} MiB) while streaming {received / MIB:.0f} MiB")
        assert received == size
        assert growth < 48 * MIB, f"the API's peak memory grew by {growth} bytes for a {size}-byte download"
        # the Python client streams it too
        chunks = swarmsync.Client(url, role_tokens["viewer"]).iter_archive_file(job_id, "output.txt")
        assert sum(len(chunk) for chunk in chunks) == size
    finally:
        api_proc.terminate()
        api_proc.wait(30)
        archive.delete_archive(job_id)
        with session_scope() as session:
            session.query(ArchiveRecord).filter(ArchiveRecord.job_id == job_id).delete()


def _save_local_store(name: str, folder: Path) -> str:
    from prefect.filesystems import LocalFileSystem

    with prefect_api():
        LocalFileSystem(basepath=str(folder)).save(name, overwrite=True)
    return f"local-file-system/{name}"


def _archive_old_job(tmp_path: Path, block: str | None, finished: str) -> str:
    """An archive (and its index row) of a job that finished at `finished`, in `block`'s store."""
    job_id = str(uuid.uuid4())
    spool = tmp_path / job_id
    spool.mkdir()
    for name in archive.TEXT_FILES:
        (spool / name).write_bytes(b"old output\n")
    manifest = {"spec": {"image": "busybox"}, "state": "COMPLETED", "exit_code": 0, "finished_at": finished}
    store = archive.get_archive_store(block)
    location, manifest = anyio.run(archive.write_archive, job_id, spool, manifest, store)
    archive.index_archive(manifest, location, block)
    return job_id


def _row(job_id: str) -> ArchiveRecord | None:
    with session_scope() as session:
        return session.scalar(select(ArchiveRecord).where(ArchiveRecord.job_id == job_id))


def test_retention_removes_archives_from_a_pools_own_store_and_leaves_no_dangling_rows(stack, tmp_path):
    name = f"t-{uuid.uuid4().hex[:8]}"
    store_dir = tmp_path / "pool-store"
    block = _save_local_store(f"{name}-archive", store_dir)
    old = "2001-02-03T04:05:06+00:00"
    in_pool_store = _archive_old_job(tmp_path, block, old)
    in_default_store = _archive_old_job(tmp_path, None, old)
    recent = _archive_old_job(tmp_path, block, datetime.now(UTC).isoformat())
    unlisted = store_dir / str(uuid.uuid4())  # an old archive folder nothing lists, in the pool's store
    unlisted.mkdir(parents=True)
    (unlisted / archive.MANIFEST).write_text(json.dumps({"finished_at": old}))
    assert (store_dir / in_pool_store / "output.txt").exists()

    removed = retention.expired_archives(datetime(2002, 1, 1, tzinfo=UTC))

    names = {(r.kind, r.name) for r in removed}
    assert ("archive", in_pool_store) in names and ("index row", in_pool_store) in names
    assert not (store_dir / in_pool_store).exists(), "the archive stayed in the pool's store"
    assert _row(in_pool_store) is None
    assert not (Path(stack["SWARMSYNC_HOME"]) / "archive" / in_default_store).exists()
    assert _row(in_default_store) is None
    assert not unlisted.exists(), "an archive folder that nothing lists was left in the pool's store"
    assert _row(recent) is not None and (store_dir / recent / "output.txt").exists()
    # every row left points at an archive that is there
    assert archive.read_manifest(recent)["job_id"] == recent
