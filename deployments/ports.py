"""Ports `swarmsync up` needs, checked before anything starts: a port already taken is named
with the setting that moves it, and a Prefect server already on the Prefect port is offered
as a choice (use it, or start SwarmSync's own elsewhere), never met with a traceback."""

from __future__ import annotations

import shutil
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx

from swarmsync.errors import ConflictError


class PortTaken(ConflictError, RuntimeError):
    """A port the stack needs is in use; the message says by what and what to do."""


@dataclass(frozen=True)
class PrefectFound:
    url: str  # its API URL, e.g. http://127.0.0.1:4200/api
    version: str


def swarmsync_command() -> str:
    """How to run this `swarmsync` from the current folder, as a hint to copy: `swarmsync` when that
    is the one on the PATH, else its path (e.g. `.venv/bin/swarmsync` after `make demo`)."""
    here = Path(sys.executable).parent / "swarmsync"
    on_path = shutil.which("swarmsync")
    if on_path and Path(on_path).resolve() == here.resolve():
        return "swarmsync"
    try:
        relative = here.relative_to(Path.cwd())
    except ValueError:
        return str(here)
    return str(relative) if "/" in str(relative) else f"./{relative}"


def port_free(host: str, port: int) -> bool:
    """True when nothing listens on host:port (a bind succeeds)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a TIME_WAIT leftover is not "taken"
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def prefect_server_at(host: str, port: int, timeout: float = 2.0) -> PrefectFound | None:
    """The Prefect server answering on host:port (its /api/health and /api/version), if it is one."""
    connect_host = "127.0.0.1" if host in ("0.0.0.0", "") else ("::1" if host == "::" else host)
    base = f"http://{connect_host}:{port}/api"
    try:
        health = httpx.get(f"{base}/health", timeout=timeout)
        version = httpx.get(f"{base}/version", timeout=timeout)
    except httpx.HTTPError:
        return None
    if health.status_code == 401 or version.status_code == 401:  # a team-mode Prefect (basic auth)
        return PrefectFound(base, "unknown: it asks for credentials")
    if health.status_code != 200 or version.status_code != 200:
        return None
    try:
        found = version.json()
    except ValueError:
        return None
    return PrefectFound(base, found) if isinstance(found, str) else None


def check_ports(ports: list[tuple[str, str, int, str]], prefect_setting: str = "SWARMSYNC_PORT") -> None:
    """Each (setting, host, port, what) must be free; PortTaken otherwise, with what to do."""
    for setting, host, port, what in ports:
        if port_free(host, port):
            continue
        if setting == prefect_setting and (found := prefect_server_at(host, port)):
            raise PortTaken(
                f"A Prefect server (API version {found.version}) already listens on {host}:{port}, the port of "
                f"SwarmSync's own Prefect server ({setting}). Either use that server:\n"
                f"    {swarmsync_command()} up --prefect-url {found.url}\n"
                f"(SwarmSync's work pool and deployment are created on it), or start SwarmSync's own on a free "
                f"port:\n    {setting}={free_port_near(host, port)} {swarmsync_command()} up"
            )
        raise PortTaken(
            f"Port {port} on {host} ({what}) is already in use by another program. Stop that program, or "
            f"move {what} to a free port with the setting {setting}, e.g.:\n"
            f"    {setting}={free_port_near(host, port)} {swarmsync_command()} up"
        )


def free_port_near(host: str, port: int) -> int:
    """The first free port after `port` (a suggestion; someone may take it before `up` does)."""
    for candidate in range(port + 1, min(port + 200, 65535)):
        if port_free(host, candidate):
            return candidate
    return 0
