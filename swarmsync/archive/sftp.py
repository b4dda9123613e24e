"""An SFTP server through a `RemoteFileSystem` block with an `sftp://user@host:port/path` URL
(fsspec's paramiko filesystem), with SwarmSync's `known_hosts` setting and a pool of sessions.

An SFTP session is not shared between threads (concurrent jobs on one paramiko session hung in an
early multi-host run, not reproduced since): each use checks out a session of its own, at most
SFTP_SESSIONS per store and process at once (more wait: sshd refuses a burst of new connections
beyond its MaxStartups, 10 by default), reusing idle ones, and gives it back after; a session that
failed is closed. An open file holds its session until it is closed.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any, BinaryIO, ClassVar

from swarmsync.archive.errors import ArchiveStoreError
from swarmsync.archive.fsspec_store import FsspecStore

SFTP_SESSIONS = 4  # SFTP sessions per store and process at once (sshd's MaxStartups is 10 by default)
SFTP_WAIT_SECONDS = 300  # how long a use waits for a free session
_IDLE: dict[tuple[str, str], list[tuple[Any, str]]] = {}
_SLOTS: dict[tuple[str, str], threading.BoundedSemaphore] = {}
_LOCK = threading.Lock()


class SftpStore(FsspecStore):
    """Archives on an SFTP server, host key checked against `known_hosts`."""

    protocols: ClassVar[tuple[str, ...]] = ("sftp", "ssh")

    def fsspec_options(self) -> dict[str, Any]:
        """`known_hosts: PATH` (SwarmSync's setting, an OpenSSH known_hosts file) becomes a paramiko
        policy that accepts only a host key listed there for that host; without it fsspec accepts
        any key on first sight (logged as a warning, see docs/archives.md). Sessions are never
        fsspec's cached instances: the pool below owns them."""
        options = dict(self.settings)
        known_hosts = options.pop("known_hosts", None)
        if known_hosts:
            options["host_key_policy"] = known_hosts_policy(str(known_hosts))
        elif "host_key_policy" not in options:
            logging.getLogger("swarmsync.archive").warning(
                "sftp archive store without known_hosts: the server's host key is not checked")
        return {**options, "skip_instance_cache": True}

    def _checkout(self, fresh: bool) -> tuple[Any, str]:
        with _LOCK:
            slots = _SLOTS.setdefault(self.key, threading.BoundedSemaphore(SFTP_SESSIONS))
        if not slots.acquire(timeout=SFTP_WAIT_SECONDS):
            raise ArchiveStoreError(f"archive store {self.describe()}: all {SFTP_SESSIONS} SFTP sessions "
                                    f"of this process stayed busy for {SFTP_WAIT_SECONDS} s")
        with _LOCK:
            idle = _IDLE.setdefault(self.key, [])
            if fresh:
                for old, _ in idle:
                    _close(old)
                idle.clear()
            elif idle:
                return idle.pop()
        try:
            return self.connect()
        except BaseException:
            slots.release()
            raise

    def _release(self, fs: Any, root: str, ok: bool) -> None:
        """A session that served a use without error goes back to the idle pool; one that failed
        is closed. Either way its slot is free again."""
        if ok:
            with _LOCK:
                idle = _IDLE.setdefault(self.key, [])
                if all(kept is not fs for kept, _ in idle):
                    idle.append((fs, root))
        else:
            _close(fs)
        _SLOTS[self.key].release()

    def _hold(self, handle: BinaryIO, fs: Any, root: str) -> BinaryIO:
        return _HeldSession(handle, lambda: self._release(fs, root, ok=True))  # type: ignore[return-value]


class _HeldSession:
    """An open remote file that holds its SFTP session until it is closed; closing gives the
    session back to the pool."""

    def __init__(self, handle: Any, release: Any) -> None:
        self._handle, self._release = handle, release

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)

    def __iter__(self) -> Any:
        return iter(self._handle)

    def __enter__(self) -> _HeldSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._release is not None:
            try:
                self._handle.close()
            finally:
                release, self._release = self._release, None
                release()

    def __del__(self) -> None:  # a caller that forgot to close
        self.close()


def _close(fs: Any) -> None:
    client = getattr(fs, "client", None)
    try:
        if client is not None:
            client.close()
    except Exception:  # noqa: BLE001 - closing a dropped connection
        pass


def known_hosts_policy(path: str) -> Any:
    """A paramiko host-key policy accepting only a key the OpenSSH known_hosts file `path` lists
    for that host (and port)."""
    import paramiko

    class KnownHosts(paramiko.MissingHostKeyPolicy):
        def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:
            known = paramiko.HostKeys(os.path.expanduser(path))  # ~ is the home of the host using the store
            port = client.get_transport().getpeername()[1]
            names = [hostname] if port == 22 else [f"[{hostname}]:{port}", hostname]
            for name in names:
                entry = known.lookup(name)
                if entry is not None and key.get_name() in entry and entry[key.get_name()] == key:
                    return
            raise paramiko.SSHException(f"host key of {hostname}:{port} is not the one in {path}")

    return KnownHosts()
