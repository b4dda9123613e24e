"""Fixtures for archives on remote stores: a real SFTP server (openssh-server) and a real
S3-compatible server (moto's server mode), each started once per session on a free loopback
port (tests/archives/servers.py); Prefect `RemoteFileSystem` blocks pointing at them; worker
processes with a SWARMSYNC_HOME of their own (a "worker host" that shares no folder with the
API); a user with an API token for downloads through the stack's own API process."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.archives.servers import S3Server, SftpServer, sshd_available
from tests.workers import WorkerProcesses

BUCKET = "swarmsync-archives"


@pytest.fixture(scope="session")
def sftp_server(tmp_path_factory) -> Iterator[SftpServer]:
    if why := sshd_available():
        pytest.skip(why)
    server = SftpServer(tmp_path_factory.mktemp("sftp"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory) -> Iterator[S3Server]:
    pytest.importorskip("moto.server", reason="moto[server] is installed with swarmsync[dev]")
    server = S3Server(tmp_path_factory.mktemp("s3"))
    server.create_bucket(BUCKET)
    yield server
    server.stop()


def save_remote_block(basepath: str, settings: dict, name: str | None = None) -> str:
    """A RemoteFileSystem block (as an admin would make it); returns its slug."""
    from prefect.filesystems import RemoteFileSystem

    from swarmsync.connection import prefect_api

    name = name or f"t-archive-{uuid.uuid4().hex[:8]}"
    with prefect_api():
        RemoteFileSystem(basepath=basepath, settings=settings).save(name, overwrite=True)
    return f"remote-file-system/{name}"


def sftp_block(server: SftpServer, prefix: str = "", known_hosts: Path | None = None) -> str:
    return save_remote_block(server.url + prefix, {
        "key_filename": str(server.key), "known_hosts": str(known_hosts or server.known_hosts),
        "look_for_keys": False, "allow_agent": False, "timeout": 5})


def s3_block(server: S3Server) -> str:
    return save_remote_block(f"s3://{BUCKET}/archive-{uuid.uuid4().hex[:6]}", server.settings())


@pytest.fixture(params=["sftp", "s3"])
def remote_store(request, stack) -> tuple[str, str]:
    """(kind, block slug) of a fresh store: a folder on the SFTP server, or a prefix in the S3 bucket."""
    if request.param == "sftp":
        server = request.getfixturevalue("sftp_server")
        return "sftp", sftp_block(server, f"/{uuid.uuid4().hex[:6]}")
    return "s3", s3_block(request.getfixturevalue("s3_server"))


@pytest.fixture
def workers(stack, tmp_path):
    """`swarmsync worker start` processes; all are stopped after the test."""
    procs = WorkerProcesses(tmp_path)
    yield procs.start
    procs.stop_all()


@pytest.fixture
def worker_home(tmp_path) -> Path:
    """SWARMSYNC_HOME of a worker on "another host": the API never reads this folder."""
    home = tmp_path / "worker-host"
    home.mkdir()
    return home


@pytest.fixture
def remote_user(stack) -> dict[str, str]:
    """An operator with an API token, and the stack's API URL (downloads go through the API process)."""
    from swarmsync.auth import tokens, users
    from swarmsync.auth.roles import Principal

    name = f"arch-{uuid.uuid4().hex[:6]}"
    users.add_user(Principal.local(), name, "correct horse battery staple", "operator")
    token = tokens.create_token(Principal.local(), "archives", name).token
    return {"SWARMSYNC_URL": f"http://127.0.0.1:{stack['SWARMSYNC_API_PORT']}", "SWARMSYNC_TOKEN": token}
