"""The `Store` contract, run against every store that needs no server (a folder, and fsspec's
in-memory filesystem standing in for S3); the SFTP and S3 stores run the same operations
against real servers in tests/archives/. A new store joins by adding itself to `store`."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prefect.filesystems import LocalFileSystem, RemoteFileSystem

from swarmsync import archive
from swarmsync.archive import ArchiveNotFound, ArchiveStoreError, FsspecStore, LocalStore, SftpStore, Store


@pytest.fixture(params=["local", "fsspec"])
def store(request, tmp_path: Path) -> Store:
    if request.param == "local":
        return LocalStore(tmp_path / "archive")
    return FsspecStore(f"memory://swarmsync-test-{uuid.uuid4().hex}/archive")


def test_a_file_put_from_a_path_or_a_stream_reads_back_the_same(store: Store, tmp_path: Path):
    job = str(uuid.uuid4())
    source = tmp_path / "out.txt"
    source.write_bytes(b"x" * (3 << 20) + b"end")  # several chunks
    store.put(f"{job}/output.txt", source)
    store.put(f"{job}/services/web/stdout.txt", io.BytesIO(b"web\n"))
    with store.open(f"{job}/output.txt") as handle:
        assert handle.read() == source.read_bytes()
    assert store.read(f"{job}/services/web/stdout.txt") == b"web\n"
    assert store.exists(f"{job}/output.txt") and store.exists(job)


def test_a_missing_file_is_file_not_found(store: Store):
    with pytest.raises(FileNotFoundError):
        store.open(f"{uuid.uuid4()}/output.txt")
    assert not store.exists(f"{uuid.uuid4()}/output.txt")


def test_delete_removes_a_jobs_folder_and_says_whether_there_was_one(store: Store):
    job = str(uuid.uuid4())
    store.put(f"{job}/stdout.txt", io.BytesIO(b"a"))
    store.put(f"{job}/services/db/stderr.txt", io.BytesIO(b"b"))
    assert store.delete(job) is True
    assert not store.exists(job)
    assert store.delete(job) is False


def test_delete_refuses_what_is_not_a_job_id(store: Store):
    with pytest.raises(ArchiveNotFound):
        store.delete("../etc")


def test_list_yields_job_folders_only(store: Store):
    jobs = {str(uuid.uuid4()) for _ in range(3)}
    for job in jobs:
        store.put(f"{job}/manifest.json", io.BytesIO(b"{}"))
    store.put("not-a-job/x.txt", io.BytesIO(b""))
    store.put(".swarmsync-probe-leftover", io.BytesIO(b""))
    listed = list(store.list())
    assert {entry.job_id for entry in listed} == jobs
    for entry in listed:
        assert entry.modified is None or entry.modified <= datetime.now(UTC)


def test_probe_writes_reads_and_removes_a_probe_file(store: Store):
    assert store.probe() == store.describe()
    assert list(store.list()) == []


def test_a_local_store_that_cannot_write_is_a_store_error_naming_it(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    store = LocalStore(blocker / "archive", name="archive")
    with pytest.raises(ArchiveStoreError, match=r"archive store LocalFileSystem 'archive' \(.*\) cannot be used"):
        store.probe()


def test_a_connection_error_is_retried_once_on_a_new_connection_then_is_a_store_error():
    store = FsspecStore(f"memory://swarmsync-test-{uuid.uuid4().hex}", {}, name="flaky")
    calls = []

    def flaky(fs, root):
        calls.append(fs)
        if len(calls) == 1:
            raise ConnectionResetError("dropped")
        return "ok"

    assert store.run(flaky) == "ok" and len(calls) == 2

    def down(fs, root):
        raise ConnectionRefusedError("refused")

    with pytest.raises(ArchiveStoreError, match="FsspecStore|RemoteFileSystem 'flaky'.*ConnectionRefusedError"):
        store.run(down)


def test_a_stream_that_cannot_be_rewound_is_not_sent_twice():
    store = FsspecStore(f"memory://swarmsync-test-{uuid.uuid4().hex}")

    class OneWay(io.RawIOBase):
        def readable(self):
            return True

        def seekable(self):
            return False

        def readinto(self, buffer):
            raise ConnectionResetError("dropped mid-stream")

    with pytest.raises(ArchiveStoreError):
        store.put("x/y", OneWay())


def test_store_for_chooses_the_store_by_the_blocks_kind(tmp_path: Path):
    local = archive.store_for(LocalFileSystem(basepath=str(tmp_path)))
    assert isinstance(local, LocalStore) and local.lists_leftovers
    sftp = archive.store_for(RemoteFileSystem(basepath="sftp://alice:s3cret@files:2222/srv/a",
                                              settings={"known_hosts": "/k"}))
    assert type(sftp) is SftpStore and not sftp.lists_leftovers
    s3 = archive.store_for(RemoteFileSystem(basepath="s3://bucket/prefix", settings={"key": "K", "secret": "S"}))
    assert type(s3) is FsspecStore and s3.settings == {"key": "K", "secret": "S"}
    assert archive.store_for(s3) is s3


def test_messages_and_locations_never_show_a_password():
    store = archive.store_for(RemoteFileSystem(basepath="sftp://alice:s3cret@files:2222/srv/a", settings={}))
    assert store.location("j") == "sftp://alice@files:2222/srv/a/j"
    assert "s3cret" not in store.describe() and "s3cret" not in str(store.error(OSError("x")))


def test_the_old_names_still_work_as_aliases(tmp_path: Path):
    block = LocalFileSystem(basepath=str(tmp_path))
    assert archive.check_store(block) == archive.describe_store(block) == f"LocalFileSystem ({tmp_path})"
    assert archive.archive_location(block, "j") == f"{tmp_path}/j"
    assert archive.get_archive_store is archive.store_for
    job = str(uuid.uuid4())
    (tmp_path / job).mkdir()
    assert archive.delete_archive(job, block) is True and not (tmp_path / job).exists()
