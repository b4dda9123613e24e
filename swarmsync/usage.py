"""What a job's containers used: CPU seconds, peak memory, block I/O, network bytes and wall time.

Docker removes a container's cgroup the moment its last process exits (on cgroup v1 with the cgroupfs
driver, checked on Docker 20.10: `container.stats()` after the exit answers zeros, and the cgroup
folder is gone). So nothing can be read "at the end": a `UsageMeter` follows the container while it
runs and keeps the last reading. Two ways, the better first:

- **cgroup** (the engine is on this host and its processes are visible: the worker is not itself in a
  container): the cgroup files of the container's first process (`/proc/PID/cgroup`), read every
  SWARMSYNC_USAGE_SAMPLE_SECONDS (0.1 s). CPU (cgroup v1 `cpuacct.usage`, v2 `cpu.stat` usage_usec) and block I/O are
  counters; the peak is the kernel's own (v1 `memory.max_usage_in_bytes`, v2 `memory.peak` from
  kernel 5.19, else the largest `memory.current` read); network from `/proc/PID/net/dev` (the
  container's network namespace). What the container does after the last reading is lost: at most
  one interval's CPU per core it uses.
- **engine-stats** (a remote engine, or a worker in a container): Docker's stats stream, about one
  reading a second; the same counters, coarser at the end.

The manifest says which way measured (`usage.source`).
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from swarmsync.settings import get_settings

CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass
class Usage:
    """A job's measured use (a job with services: the sum of its containers; their peaks summed
    are an upper bound of the group's peak, as the containers need not peak at once)."""

    cpu_seconds: float = 0.0
    memory_peak_bytes: int = 0
    block_read_bytes: int = 0
    block_write_bytes: int = 0
    net_rx_bytes: int = 0
    net_tx_bytes: int = 0
    wall_seconds: float = 0.0
    source: str = "none"  # "cgroup", "engine-stats" or "none" (the container was never seen running)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["cpu_seconds"] = round(self.cpu_seconds, 3)
        data["wall_seconds"] = round(self.wall_seconds, 3)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Usage | None:
        if not data:
            return None
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names and v is not None})


def total(parts: list[Usage], wall_seconds: float) -> Usage:
    """The sum of the containers' use of one job, with the job's wall time."""
    sources = sorted({p.source for p in parts if p.source != "none"})
    return Usage(
        cpu_seconds=sum(p.cpu_seconds for p in parts),
        memory_peak_bytes=sum(p.memory_peak_bytes for p in parts),
        block_read_bytes=sum(p.block_read_bytes for p in parts),
        block_write_bytes=sum(p.block_write_bytes for p in parts),
        net_rx_bytes=sum(p.net_rx_bytes for p in parts),
        net_tx_bytes=sum(p.net_tx_bytes for p in parts),
        wall_seconds=max(wall_seconds, 0.0),
        source="+".join(sources) or "none",
    )


# -- reading cgroup files ---------------------------------------------------------------------------

def cgroup_paths(pid: int, container_id: str, root: Path = CGROUP_ROOT) -> dict[str, Path] | None:
    """The cgroup folders of process `pid` by controller ("cpuacct", "memory", "blkio"; cgroup v2:
    "unified" for all), or None when they cannot be read here (another PID namespace, no cgroupfs).
    Each must name the container (`/docker/ID`, `docker-ID.scope`): in a PID namespace of its own, the
    worker's `pid` would be some other process."""
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return None
    paths: dict[str, Path] = {}
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "" and (root / "cgroup.controllers").exists():  # v2, unified hierarchy
            paths["unified"] = root / path.lstrip("/")
        for controller in controllers.split(","):
            if controller in ("cpuacct", "memory", "blkio"):
                paths[controller] = root / controller / path.lstrip("/")
    if "unified" not in paths and not {"cpuacct", "memory"} <= paths.keys():
        return None
    return paths if all(container_id in str(p) and p.is_dir() for p in paths.values()) else None


def _keyed(text: str) -> dict[str, int]:
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            out[parts[0]] = int(parts[1])
    return out


def _io_v2(text: str) -> tuple[int, int]:
    read = write = 0
    for line in text.splitlines():
        for item in line.split()[1:]:
            key, _, value = item.partition("=")
            if key == "rbytes":
                read += int(value)
            elif key == "wbytes":
                write += int(value)
    return read, write


def _io_v1(text: str) -> tuple[int, int]:
    read = write = 0
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] == "Read":
            read += int(parts[2])
        elif len(parts) == 3 and parts[1] == "Write":
            write += int(parts[2])
    return read, write


def net_dev(pid: int) -> tuple[int, int]:
    """Received and sent bytes of every interface but loopback in the network namespace of `pid`."""
    rx = tx = 0
    for line in Path(f"/proc/{pid}/net/dev").read_text().splitlines()[2:]:
        name, _, counters = line.partition(":")
        if name.strip() == "lo":
            continue
        values = counters.split()
        rx, tx = rx + int(values[0]), tx + int(values[8])
    return rx, tx


def read_cgroup(paths: dict[str, Path], pid: int, previous: Usage) -> Usage:
    """One reading of the cgroup (and the network namespace); raises OSError once they are gone."""
    if "unified" in paths:
        folder = paths["unified"]
        cpu = _keyed((folder / "cpu.stat").read_text())["usage_usec"] / 1e6
        peak_file = folder / "memory.peak"
        current = int((folder / ("memory.peak" if peak_file.exists() else "memory.current")).read_text())
        read, write = _io_v2((folder / "io.stat").read_text())
    else:
        cpu = int((paths["cpuacct"] / "cpuacct.usage").read_text()) / 1e9
        current = int((paths["memory"] / "memory.max_usage_in_bytes").read_text())
        blkio = paths.get("blkio")
        read, write = _io_v1((blkio / "blkio.throttle.io_service_bytes").read_text()) if blkio else (0, 0)
    rx, tx = net_dev(pid)
    return Usage(cpu_seconds=cpu, memory_peak_bytes=max(current, previous.memory_peak_bytes),
                 block_read_bytes=read, block_write_bytes=write, net_rx_bytes=rx, net_tx_bytes=tx, source="cgroup")


def from_engine_stats(stats: dict[str, Any], previous: Usage) -> Usage:
    """One reading of Docker's stats API (`GET /containers/{id}/stats`)."""
    cpu = ((stats.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage") or 0
    memory = stats.get("memory_stats") or {}
    peak = max(memory.get("max_usage") or 0, memory.get("usage") or 0, previous.memory_peak_bytes)
    read = write = 0
    for entry in (stats.get("blkio_stats") or {}).get("io_service_bytes_recursive") or []:
        op = str(entry.get("op", "")).lower()
        if op == "read":
            read += entry.get("value") or 0
        elif op == "write":
            write += entry.get("value") or 0
    networks = (stats.get("networks") or {}).values()
    return Usage(cpu_seconds=cpu / 1e9, memory_peak_bytes=peak, block_read_bytes=read, block_write_bytes=write,
                 net_rx_bytes=sum(n.get("rx_bytes") or 0 for n in networks),
                 net_tx_bytes=sum(n.get("tx_bytes") or 0 for n in networks), source="engine-stats")


# -- following a container ------------------------------------------------------------------------

SETTLE_READS = 300  # readings at the full rate: the first 30 s of a container at the default 0.1 s


class UsageMeter:
    """Follows one container from its start (or adoption) to `stop()`, in a thread of its own."""

    def __init__(self, container: Any, every: float | None = None):
        self.container = container
        self.every = every or get_settings().usage_sample_seconds
        self.last = Usage()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._engine = False  # following Docker's stats stream (which answers about once a second)

    def start(self) -> None:
        """Begin following (the container is running: its first process is known)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._follow, name="usage-meter", daemon=True)
            self._thread.start()

    def stop(self) -> Usage:
        """The last reading (the container has exited, or its use no longer counts)."""
        self._done.set()
        if self._thread is not None:
            # The cgroup reader wakes at once. The stats stream is blocked until its next reading (up to
            # ~1 s away): its last one stands rather than delaying the job's end by that much.
            self._thread.join(timeout=0.05 if self._engine else 2 * self.every + 1)
        return self.last

    def _follow(self) -> None:
        try:
            self.container.reload()
            pid = int((self.container.attrs.get("State") or {}).get("Pid") or 0)
        except Exception:  # noqa: BLE001 - removed meanwhile: nothing to measure
            return
        if not pid:  # exited already (an `echo`): Docker's stats of a stopped container are zeros, not worth a request
            return
        paths = cgroup_paths(pid, self.container.id)
        if paths is not None:
            self._follow_cgroup(paths, pid)
        elif not self._done.is_set():
            self._engine = True
            self._follow_engine()

    def _follow_cgroup(self, paths: dict[str, Path], pid: int) -> None:
        """Read every `every` s for the first SETTLE_READS readings, then ten times less often: what the last
        interval before the exit misses stays small against the whole (at most `every` s of CPU per core for
        a short job, 10x that for one that ran longer), and fifty long jobs do not cost the worker 500 reads a
        second."""
        reads = 0
        while True:
            try:
                self.last = read_cgroup(paths, pid, self.last)
            except (OSError, KeyError, ValueError, IndexError):
                return  # the container exited: its cgroup is gone
            reads += 1
            if self._done.wait(self.every if reads < SETTLE_READS else 10 * self.every):
                return

    def _follow_engine(self) -> None:
        try:
            for stats in self.container.stats(stream=True, decode=True):
                if not stats.get("read", "").startswith("0001"):  # a stopped container answers zeros
                    self.last = from_engine_stats(stats, self.last)
                if self._done.is_set():
                    return
        except Exception:  # noqa: BLE001 - the stream ends with the container
            return

