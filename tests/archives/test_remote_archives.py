"""Archives on remote stores (SFTP via openssh-server, S3 via moto's server): a worker with a
home of its own archives there, and the server host serves the archive through the API, the
CLI and the Python client, checking every SHA-256 against the manifest on the way; tampering
is caught; retention removes remote archives; a store that is down is a clear error and never
loses a job's outcome."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
import uuid
from datetime import UTC, datetime
from pathlib import Path

import anyio
import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

import swarmsync
from swarmsync import archive, retention
from swarmsync.client import ArchiveCorrupt, Client
from swarmsync.db import ArchiveRecord, session_scope
from swarmsync.deployments.pools import create_pool
from tests.archives.conftest import sftp_block
from tests.archives.servers import SftpServer


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def cli(*args: str, env: dict[str, str]):
    from swarmsync.cli.main import app
    from swarmsync.settings import get_settings

    get_settings.cache_clear()
    try:
        return CliRunner().invoke(app, list(args), env=env)
    finally:
        get_settings.cache_clear()


def remote_fs(slug: str):
    """The fsspec filesystem and root folder of a block, on a connection of the test's own."""
    return remote_fs_of_store(archive.get_archive_store(slug))


def archived(tmp_path: Path, block: str, files: dict[str, bytes], finished: str | None = None) -> str:
    """An archive written and indexed as a worker does it (without running a container)."""
    job_id = str(uuid.uuid4())
    spool = tmp_path / job_id
    spool.mkdir()
    for name, body in files.items():
        (spool / name).write_bytes(body)
    manifest = {"spec": {"image": "busybox"}, "state": "COMPLETED", "exit_code": 0,
                "finished_at": finished or datetime.now(UTC).isoformat()}
    location, manifest = anyio.run(archive.write_archive, job_id, spool, manifest, archive.get_archive_store(block))
    archive.index_archive(manifest, location, block)
    return job_id


def test_a_job_from_another_host_is_downloaded_via_api_cli_and_client_with_matching_sha256(
        remote_store, workers, worker_home, remote_user, busybox, tmp_path, no_leftover_containers):
    kind, block = remote_store
    pool = f"t-{uuid.uuid4().hex[:8]}"
    create_pool(pool, archive_block=block)  # probes the store from here
    workers(pool, env={"SWARMSYNC_HOME": str(worker_home)})
    job = swarmsync.submit(busybox, "echo from-another-host; echo oops >&2; mkdir -p /out; echo data > /out/a.txt",
                           pool=pool, output_dir="/out").wait(120)
    assert job.status() == "Completed", job.result().message
    job_id = str(job.id)
    fs, root = remote_fs(block)
    assert fs.exists(f"{root}/{job_id}/{archive.MANIFEST}"), f"nothing in the {kind} store"
    assert not (worker_home / "archive" / job_id).exists() and not (worker_home / "spool" / job_id).exists()

    client = Client(remote_user["SWARMSYNC_URL"], remote_user["SWARMSYNC_TOKEN"])
    manifest = client.get_job(job_id).result().manifest
    expected = {name: meta["sha256"] for name, meta in manifest["files"].items()}
    assert set(expected) == {"output.txt", "stdout.txt", "stderr.txt", "files.tar.gz"}
    for name in expected:  # Python client over HTTP, checked as it streams
        assert sha(client.read_archive_file(job_id, name)) == expected[name], name
    assert client.read_archive_file(job_id, "stdout.txt") == b"from-another-host\n"
    with tarfile.open(fileobj=io.BytesIO(client.read_archive_file(job_id, "files.tar.gz"))) as tar:
        assert tar.extractfile(next(m for m in tar.getmembers() if m.name.endswith("a.txt"))).read() == b"data\n"
    response = httpx.get(f"{remote_user['SWARMSYNC_URL']}/jobs/{job_id}/result.txt",
                         headers={"Authorization": f"Bearer {remote_user['SWARMSYNC_TOKEN']}"})
    assert response.status_code == 200 and response.headers["X-Archive-SHA256"] == expected["output.txt"]
    assert sha(response.content) == expected["output.txt"]

    out = tmp_path / "cli-output.txt"  # the CLI of a user elsewhere, through the API
    ran = cli("result", job_id, "-o", str(out), env=remote_user)
    assert ran.exit_code == 0, ran.output
    assert sha(out.read_bytes()) == expected["output.txt"]
    ran = cli("files", job_id, "-o", str(tmp_path / "files"), env=remote_user)
    assert ran.exit_code == 0, ran.output
    assert [p.read_bytes() for p in (tmp_path / "files").rglob("a.txt")] == [b"data\n"]

    local = swarmsync.jobs.LocalJobs()  # the server host's own Python API reads the store directly
    assert sha(local.read_archive_file(job_id, "stderr.txt")) == expected["stderr.txt"]
    assert archive.verify_archive(job_id) == []

    with fs.open(f"{root}/{job_id}/output.txt", "wb") as handle:  # changed in the store: the CLI refuses it
        handle.write(b"from-another-hosT\noops\n")
    ran = cli("result", job_id, "-o", str(tmp_path / "bad.txt"), env=remote_user)
    assert ran.exit_code != 0 and "does not match" in " ".join(ran.output.split())  # Rich wraps at 80
    assert not (tmp_path / "bad.txt").exists(), "a file that failed its check was left behind"


def test_a_tampered_remote_file_is_an_error_never_served(remote_store, remote_user, tmp_path):
    kind, block = remote_store
    big = bytes(range(256)) * (40 * 1024)  # 10 MiB: above the in-memory check, so it is checked as it streams
    job_id = archived(tmp_path, block, {"output.txt": b"the real output\n", "stdout.txt": b"x\n",
                                        "stderr.txt": b"", "files.tar.gz": big})
    fs, root = remote_fs(block)
    with fs.open(f"{root}/{job_id}/output.txt", "wb") as handle:
        handle.write(b"the fake output\n")  # same size, other bytes
    with fs.open(f"{root}/{job_id}/files.tar.gz", "wb") as handle:
        handle.write(big[:-1] + b"\x00")
    client = Client(remote_user["SWARMSYNC_URL"], remote_user["SWARMSYNC_TOKEN"])
    headers = {"Authorization": f"Bearer {remote_user['SWARMSYNC_TOKEN']}"}

    response = httpx.get(f"{remote_user['SWARMSYNC_URL']}/jobs/{job_id}/result.txt", headers=headers)
    assert response.status_code == 502 and "does not match its manifest" in response.json()["detail"]
    with pytest.raises(ArchiveCorrupt, match="does not match"):
        client.read_archive_file(job_id, "output.txt")
    with pytest.raises(ArchiveCorrupt):  # streamed: cut short before its last chunk
        client.read_archive_file(job_id, "files.tar.gz")
    with pytest.raises(httpx.HTTPError):  # any HTTP client sees an incomplete body, never the whole file
        httpx.get(f"{remote_user['SWARMSYNC_URL']}/jobs/{job_id}/files", headers=headers)
    assert set(archive.verify_archive(job_id)) == {"output.txt", "files.tar.gz"}

    # a manifest rewritten to match the fake bytes is caught by the SHA-256 the index row keeps
    manifest = json.loads(fs.cat_file(f"{root}/{job_id}/{archive.MANIFEST}"))
    manifest["files"]["output.txt"]["sha256"] = sha(b"the fake output\n")
    with fs.open(f"{root}/{job_id}/{archive.MANIFEST}", "wb") as handle:
        handle.write(json.dumps(manifest).encode())
    response = httpx.get(f"{remote_user['SWARMSYNC_URL']}/jobs/{job_id}/result.txt", headers=headers)
    assert response.status_code == 502 and "index row" in response.json()["detail"]
    assert httpx.get(f"{remote_user['SWARMSYNC_URL']}/jobs/{job_id}/result", headers=headers).status_code == 502


def test_retention_removes_remote_archives(remote_store, stack, tmp_path):
    _kind, block = remote_store
    files = {"output.txt": b"old\n", "stdout.txt": b"old\n", "stderr.txt": b""}
    old = archived(tmp_path, block, files, "2001-02-03T04:05:06+00:00")
    recent = archived(tmp_path, block, files)
    fs, root = remote_fs(block)
    assert fs.exists(f"{root}/{old}/output.txt")

    removed = retention.expired_archives(datetime(2002, 1, 1, tzinfo=UTC))

    assert {("archive", old), ("index row", old)} <= {(r.kind, r.name) for r in removed}
    fs.invalidate_cache()
    assert not fs.exists(f"{root}/{old}"), "the remote archive stayed"
    with session_scope() as session:
        assert session.scalar(select(ArchiveRecord).where(ArchiveRecord.job_id == old)) is None
    assert fs.exists(f"{root}/{recent}/output.txt") and archive.verify_archive(recent) == []


def test_a_store_that_is_down_is_a_clear_error_and_the_job_outcome_is_kept(
        stack, workers, worker_home, remote_user, busybox, tmp_path_factory, tmp_path, no_leftover_containers):
    server = SftpServer(tmp_path_factory.mktemp("sftp-down"))  # a server of its own, to stop
    try:
        block = sftp_block(server)
        pool = f"t-{uuid.uuid4().hex[:8]}"
        create_pool(pool, archive_block=block)
        before = archived(tmp_path, block, {"output.txt": b"stored before\n"})
        workers(pool, env={"SWARMSYNC_HOME": str(worker_home), "SWARMSYNC_ARCHIVE_WRITE_ATTEMPTS": "2"})
        server.stop()

        with pytest.raises(ValueError, match="cannot be used"):  # a new pool on it is refused, by name
            create_pool(f"t-{uuid.uuid4().hex[:8]}", archive_block=block)
        headers = {"Authorization": f"Bearer {remote_user['SWARMSYNC_TOKEN']}"}
        response = httpx.get(f"{remote_user['SWARMSYNC_URL']}/jobs/{before}/result.txt", headers=headers)
        assert response.status_code == 503 and "cannot be used" in response.json()["detail"]
        assert "127.0.0.1" in response.json()["detail"] and str(server.key) not in response.json()["detail"]

        job = swarmsync.submit(busybox, "echo kept", pool=pool).wait(120)
        assert job.status() == "Completed"  # the outcome is the container's, not the store's
        job_id = str(job.id)
        assert "archive not stored" in job.flow_run().state.message
        with session_scope() as session:
            row = session.scalar(select(ArchiveRecord).where(ArchiveRecord.job_id == job_id))
        assert row is not None and row.state == "COMPLETED" and row.exit_code == 0 and row.archive_path == ""
        spool = worker_home / "spool" / job_id
        assert (spool / "output.txt").read_bytes() == b"kept\n" and (spool / archive.MANIFEST).exists()
        response = httpx.get(f"{remote_user['SWARMSYNC_URL']}/jobs/{job_id}/result.txt", headers=headers)
        assert response.status_code == 404 and "was not stored" in response.json()["detail"]
    finally:
        server.stop()


def test_an_sftp_server_with_another_host_key_is_refused(sftp_server, stack, tmp_path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")], check=True)
    other = tmp_path / "known_hosts"  # the right host name, another key: a server that is not ours
    host = sftp_server.known_hosts.read_text().split()[0]
    other.write_text(f"{host} ssh-ed25519 {(tmp_path / 'k.pub').read_text().split()[1]}\n")
    block = sftp_block(sftp_server, "/refused", known_hosts=other)
    with pytest.raises(ValueError, match="host key"):
        create_pool(f"t-{uuid.uuid4().hex[:8]}", archive_block=block)


def test_jobs_archiving_at_once_to_one_sftp_store_all_finish_with_their_bytes(sftp_server, stack, tmp_path):
    """A worker archives several jobs at once (its threads share the store): each write must
    finish with its own bytes. One paramiko session shared by concurrent writes hung here."""
    import os
    import threading

    store = archive.get_archive_store(sftp_block(sftp_server, f"/{uuid.uuid4().hex[:6]}"))
    payloads = {i: os.urandom((1 << 20) + i) for i in range(12)}  # > 1 MiB: several SFTP requests each
    for i, data in payloads.items():
        (tmp_path / f"p{i}").write_bytes(data)
    errors: list[BaseException] = []

    def write(i: int) -> None:
        try:
            store.put(f"job-{i}/stdout.txt", tmp_path / f"p{i}")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,), daemon=True) for i in payloads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    assert not [t for t in threads if t.is_alive()], "archive writes still hanging after 90 s"
    assert not errors, errors
    fs, root = remote_fs_of_store(store)
    for i, data in payloads.items():
        with fs.open(f"{root}/job-{i}/stdout.txt", "rb") as handle:
            assert hashlib.sha256(handle.read()).hexdigest() == hashlib.sha256(data).hexdigest()


def remote_fs_of_store(store):
    """A fresh fsspec connection to the store, made here (not SwarmSync's pool of SFTP sessions)."""
    from fsspec.core import url_to_fs

    fs, root = url_to_fs(store.url, **{**store.fsspec_options(), "skip_instance_cache": True})
    return fs, root.rstrip("/")


def test_a_block_named_by_its_slug_is_loaded_once_per_interval(stack, tmp_path, monkeypatch):
    """Core's commit of every upload (and every job's archive on a worker) names the pool's block by its
    slug: it is read from Prefect once per LOADED_SECONDS, not once per job (issue 29); a block changed in
    place counts after that interval, or at once after `forget_loaded`."""
    from prefect.filesystems import LocalFileSystem

    from swarmsync.archive import factory
    from swarmsync.connection import prefect_api

    name = f"t-{uuid.uuid4().hex[:8]}"
    with prefect_api():
        LocalFileSystem(basepath=str(tmp_path / "a")).save(name, overwrite=True)
    slug = f"local-file-system/{name}"
    first = archive.store_for(slug)
    with prefect_api():
        LocalFileSystem(basepath=str(tmp_path / "b")).save(name, overwrite=True)  # changed in place
    assert archive.store_for(slug) is first  # remembered: Prefect not asked again
    monkeypatch.setattr(factory, "LOADED_SECONDS", 0.0)  # the interval has passed
    assert archive.store_for(slug).folder == tmp_path / "b"
    monkeypatch.setattr(factory, "LOADED_SECONDS", 3600.0)
    factory.forget_loaded()
    with prefect_api():
        LocalFileSystem(basepath=str(tmp_path / "c")).save(name, overwrite=True)
    assert archive.store_for(slug).folder == tmp_path / "c"
