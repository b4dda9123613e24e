"""Real archive stores for tests, started by the fixtures in conftest.py on free loopback ports:

- `SftpServer`: Debian's openssh-server (`/usr/sbin/sshd`, installed by `infra/host-setup.sh test`)
  with its own host key, config and a client key made for the test; it logs in as the user
  running the tests (key only, no password) and serves SFTP (`internal-sftp`). Runs as root
  (sshd's privilege separation needs it), as CI does.
- `S3Server`: moto's server mode (`moto[server]`, from PyPI): an S3-compatible HTTP endpoint
  in memory. It speaks the S3 API (buckets, multipart uploads, listing, delete) but checks no
  real IAM policy or signature scope, has no eventual consistency or throttling, and loses
  everything when it stops.
Each can be stopped and started again (`stop()`/`start()`) to test a store that is down.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve(args: list[str], port: int, log: Path, timeout: float = 30) -> subprocess.Popen:
    """Start a server (output appended to `log`) and return once it listens on `port`."""
    proc = subprocess.Popen(args, stdout=open(log, "ab"), stderr=subprocess.STDOUT)  # noqa: SIM115
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server not listening on {port}:\n{log.read_text()}")


class SftpServer:
    def __init__(self, folder: Path):
        self.folder = folder
        self.root = folder / "store"  # what the SFTP user writes into (an absolute path on the server)
        self.root.mkdir(parents=True)
        self.port = free_port()
        self.user = getpass.getuser()
        self.key = folder / "client_key"
        host_key = folder / "host_key"
        for path in (host_key, self.key):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
        (folder / "authorized_keys").write_text((folder / "client_key.pub").read_text())
        self.known_hosts = folder / "known_hosts"  # what a worker host is told to trust
        key_type, key_body = (folder / "host_key.pub").read_text().split()[:2]
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {key_type} {key_body}\n")
        self.config = folder / "sshd_config"
        self.config.write_text("\n".join([
            f"Port {self.port}", "ListenAddress 127.0.0.1", f"HostKey {host_key}",
            f"PidFile {folder / 'sshd.pid'}", f"AuthorizedKeysFile {folder / 'authorized_keys'}",
            "PubkeyAuthentication yes", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password", "UsePAM no", "StrictModes no",
            f"AllowUsers {self.user}", "Subsystem sftp internal-sftp", "LogLevel ERROR", "",
        ]))
        self.proc: subprocess.Popen | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"sftp://{self.user}@127.0.0.1:{self.port}{self.root}"

    def start(self) -> None:
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # sshd's privilege-separation folder
        self.proc = _serve(["/usr/sbin/sshd", "-D", "-e", "-f", str(self.config)], self.port,
                           self.folder / "sshd.log")

    def stop(self) -> None:
        """Stop the server and the sessions it opened (each lives in its own sshd child process)."""
        if self.proc and self.proc.poll() is None:
            sessions = _descendants(self.proc.pid)
            self.proc.terminate()
            self.proc.wait(timeout=10)
            for pid in sessions:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


def _descendants(pid: int) -> list[int]:
    """Process ids under `pid` (children, their children, ...), from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def sshd_available() -> str | None:
    """Why SFTP tests cannot run here, or None."""
    if not Path("/usr/sbin/sshd").exists():
        return "openssh-server is not installed (infra/host-setup.sh test installs it)"
    if os.geteuid() != 0:
        return "sshd needs root for its privilege separation"
    if shutil.which("ssh-keygen") is None:
        return "ssh-keygen is missing"
    return None


class S3Server:
    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = _serve([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)], self.port,
                           self.folder / "moto.log")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)

    def create_bucket(self, name: str) -> None:
        import boto3

        boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1", aws_access_key_id="swarmsync-test",
                     aws_secret_access_key="swarmsync-test-secret").create_bucket(Bucket=name)

    def settings(self) -> dict:
        """s3fs options for a RemoteFileSystem block (moto accepts any key)."""
        return {"key": "swarmsync-test", "secret": "swarmsync-test-secret",
                "client_kwargs": {"endpoint_url": self.endpoint, "region_name": "us-east-1"}}
