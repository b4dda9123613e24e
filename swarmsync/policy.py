"""Host policy: what a Docker host (a work pool) allows jobs to ask for, and who may use it.

An admin sets it on the pool; a job that asks for more is refused before anything
runs, with a message naming the limit. The policy is checked on the job as it will run:
`HostPolicy.resolve` fills what the job leaves out from the pool's defaults (or, with no
default, its ceiling), and both the check and container creation use that one result, so
what is checked is what runs.
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import subprocess
import threading
import time
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath
from typing import Annotated, Any

from pydantic import BaseModel, Field, field_validator

from swarmsync.auth.roles import Forbidden
from swarmsync.catalogue import Reach
from swarmsync.errors import NotFoundError
from swarmsync.spec import (
    MAX_PIDS,
    MAX_TIMEOUT_SECONDS,
    JobSpec,
    JobSpecError,
    parse_image,
    parse_memory,
    parse_user,
)

ADMIN_ROLE = "admin"
ROLES = (ADMIN_ROLE, "operator", "viewer")
BRIDGE = "bridge"  # Docker's default network (also called "default")


class PolicyViolation(Forbidden, JobSpecError):
    """The job (or its caller) is not allowed on this pool: HTTP 403 through the API, a refused
    job (nothing ran) under a worker. The message names the setting."""


class PoolNotFound(NotFoundError):
    """No work pool with that name."""


def is_root_user(user: str | None) -> bool:
    """Whether the container would run as root: uid 0 or gid 0 (the root group), by number
    (`0`, `00`, `1000:0`) or by name (`root`, `app:root`). A spelling `parse_user` refuses
    counts as root (JobSpec refuses it before; here, a spec built without validation).
    None (no user: the image's own) is not root here; see `HostPolicy.check_image_user`."""
    if user is None:
        return False
    try:
        parts = parse_user(user)
    except JobSpecError:
        return True
    return any(part == 0 or (isinstance(part, str) and part.lower() == "root") for part in parts)


GIB = 1 << 30
MIB = 1 << 20
DOCKER_HUB = "docker.io"


_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)


def parse_size(value: str) -> int:
    """'10m', '1g', '512k', '1.5GiB', '2048' -> bytes (powers of 1024, as memory sizes)."""
    m = _SIZE_RE.match(value) if len(value) <= 64 else None
    if not m:
        raise JobSpecError(f"size {value!r} is not understood: use bytes or a unit (e.g. '10m', '1g')")
    number, unit = m.groups()
    return int(float(number) * {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}[unit.lower()])


def human_size(size: int) -> str:
    """1073741824 -> '1 GiB', 10485760 -> '10 MiB', 1000 -> '1000 bytes'."""
    for unit, factor in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= factor:
            value = size / factor
            return f"{value:g} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{size} bytes"


def _shares(given: list, default: Any, ceiling: Any, kind: type) -> list:
    """Per container: its own value, else the default, else an equal share of what the ceiling
    leaves after the given values (None without a ceiling)."""
    if default or not ceiling:
        return [g or default for g in given]
    missing = sum(1 for g in given if not g)
    left = ceiling - sum(g for g in given if g)
    share = kind(left / missing) if missing and left > 0 else None
    return [g or share for g in given]


def canonical_image(ref: str) -> str:
    """An image reference with Docker Hub's implied parts written out, for matching:
    'busybox' -> 'docker.io/library/busybox', 'me/app:1' -> 'docker.io/me/app:1',
    'index.docker.io/library/x' -> 'docker.io/library/x'; other registries unchanged. The
    pattern '*' stays '*' (any image)."""
    if ref == "*":
        return ref
    first, slash, rest = ref.partition("/")
    if not slash or not _is_registry(first):
        return f"{DOCKER_HUB}/{ref}" if slash else f"{DOCKER_HUB}/library/{ref}"
    if first in ("index.docker.io", "registry-1.docker.io", DOCKER_HUB):
        return f"{DOCKER_HUB}/{rest}" if "/" in rest else f"{DOCKER_HUB}/library/{rest}"
    return ref


def _is_registry(component: str) -> bool:
    """Docker's rule: a first path component with a '.' or ':', or 'localhost', names a registry."""
    return "." in component or ":" in component or component == "localhost"


def image_registry_host(ref: str) -> str | None:
    """The host an image reference pulls from (no port); None: Docker Hub."""
    first, slash, _ = ref.partition("/")
    if not slash or not _is_registry(first):
        return None
    return first.rsplit(":", 1)[0] if first.count(":") == 1 else first


OWN_ADDRESSES_TTL = 60.0
_own: tuple[float, frozenset[ipaddress.IPv4Address | ipaddress.IPv6Address]] = (0.0, frozenset())
_own_lock = threading.Lock()


def own_addresses() -> frozenset[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """This host's interface addresses (from `ip -j addr`, else /proc/net) and what its hostname
    resolves to; remembered for a minute (interfaces come and go: Docker adds bridges)."""
    global _own
    with _own_lock:
        if time.monotonic() - _own[0] < OWN_ADDRESSES_TTL:
            return _own[1]
    found: set[str] = set()
    try:
        out = subprocess.run(["ip", "-j", "addr"], capture_output=True, timeout=5, check=True).stdout
        found |= {a["local"] for iface in json.loads(out) for a in iface.get("addr_info", []) if "local" in a}
    except (OSError, subprocess.SubprocessError, ValueError, KeyError, TypeError):
        found |= _proc_addresses()
    try:
        found |= {info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None)}
    except OSError:
        pass
    addresses = set()
    for text in found:
        try:
            addresses.add(ipaddress.ip_address(text.split("%", 1)[0]))
        except ValueError:
            continue
    with _own_lock:
        _own = (time.monotonic(), frozenset(addresses))
    return _own[1]


def _proc_addresses() -> set[str]:
    """Local IPv4 addresses from /proc/net/fib_trie, IPv6 ones from /proc/net/if_inet6."""
    found: set[str] = set()
    try:
        lines = Path("/proc/net/fib_trie").read_text().splitlines()
        found |= {lines[i - 1].split()[-1] for i, line in enumerate(lines) if "/32 host LOCAL" in line}
    except OSError:
        pass
    try:
        for line in Path("/proc/net/if_inet6").read_text().splitlines():
            raw = line.split()[0]
            found.add(":".join(raw[i:i + 4] for i in range(0, 32, 4)))
    except (OSError, IndexError):
        pass
    return found


def _as_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An IP literal, also in the forms the C resolver takes ('127.1', '2130706433', '0x7f.1')."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if re.fullmatch(r"[0-9a-fA-Fx.]+", host):
        try:
            return ipaddress.ip_address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def check_image_source(ref: str) -> None:
    """PolicyViolation when the image would be pulled from this host or a local-only address:
    a registry that is loopback (127.0.0.0/8, ::1, localhost), link-local (169.254/16, fe80::/10),
    unspecified (0.0.0.0, ::) or one of this host's own addresses or names. Names other than
    those are not resolved (their DNS may change between this check and the pull): pin
    registries with the pool's `allowed_images`."""
    host = image_registry_host(ref)
    if host is None:
        return
    name = host.lower().rstrip(".")
    address = _as_address(name)
    why = None
    if name == "localhost" or name.endswith(".localhost"):
        why = "loopback"
    elif name == socket.gethostname().lower():
        why = "this host's own name"
    elif address is not None:
        if address.is_loopback:
            why = "loopback"
        elif address.is_link_local:
            why = "link-local"
        elif address.is_unspecified:
            why = "unspecified"
        elif address in own_addresses():
            why = "one of this host's own addresses"
    if why:
        raise PolicyViolation(f"image {ref!r} is refused: its registry {host} is {why}, and jobs never pull from "
                              "the server itself or a local-only address")


class HostPolicy(BaseModel):
    """Ceilings and defaults applied to every job on a host, and who may use it.

    Each setting is declared once, here: `pool create`'s options, the API's PolicyUpdate and
    PolicyOut and the dashboard's pool form are derived from it and its `Reach`
    (swarmsync/catalogue.py)."""

    allow_privileged: Annotated[bool, Reach(help="Allow privileged containers")] = Field(
        default=False, description="May jobs run privileged?")
    allow_host_network: Annotated[bool, Reach(help="Allow network 'host'")] = Field(
        default=False, description="May jobs use network 'host'?")
    allow_gpu: Annotated[bool, Reach(help="Allow GPU requests")] = Field(
        default=False, description="May jobs request GPUs (Docker device requests)?")
    allow_host_files: Annotated[bool, Reach(help="Allow worker-host files (inputs[].source)")] = Field(
        default=False, description="May jobs read files from the worker host (inputs[].source)?")
    allow_root_user: Annotated[bool, Reach(
        help="Allow jobs to run as root (user root / uid 0)", label="Allow jobs to run as root")] = Field(
        default=False, description="May jobs ask to run as root (user 'root', uid 0 or gid 0, in any spelling)?")
    default_user: Annotated[str | None, Reach(
        help="User for jobs that name none, e.g. 65534:65534 (then no job runs as its image's USER)",
        label="Default user (e.g. 65534:65534)")] = Field(
        default=None,
        description="User (NAME or UID[:GID], e.g. '65534:65534') for jobs and services that name "
        "none; with it, no job runs as its image's own USER")
    check_image_user: Annotated[bool, Reach(
        help="Refuse jobs naming no user whose image runs as root (no default_user)",
        label="Refuse images running as root")] = Field(
        default=False,
        description="Without default_user and allow_root_user: refuse a job (or service) that names "
        "no user when its image's own USER is root (empty, root, uid or gid 0); images such as busybox then need "
        "a user")
    shared_network: Annotated[bool, Reach(
        help="Let jobs on the default network reach each other (default: isolated)",
        label="Jobs may reach each other (shared network)")] = Field(
        default=False,
        description="Jobs on Docker's default network may reach each other (else they run on "
        "SwarmSync's network with inter-container traffic off)")
    read_only_rootfs: Annotated[bool, Reach(
        help="Read-only root filesystem; /tmp is a tmpfs of --scratch-size",
        label="Read-only root filesystem")] = Field(
        default=False,
        description="Containers get a read-only root filesystem; /tmp is a tmpfs of scratch_size, "
        "output_dir and the folders of input files are volumes removed with the container")
    scratch_size: Annotated[int, Reach(
        help="Size of /tmp with a read-only root, e.g. 64m", label="/tmp size with a read-only root",
        size=True)] = Field(
        default=64 * MIB, gt=0, description="Size of the /tmp tmpfs with read_only_rootfs (bytes, or e.g. '64m')")
    storage_size: Annotated[int | None, Reach(
        help="Cap of each container's writable layer, e.g. 1g (engines with storage-opt size only: overlay2 on xfs "
        "with pquota)", label="Writable layer cap (storage-opt)", size=True)] = Field(
        default=None, gt=0,
        description="Cap of each container's writable layer (Docker's storage-opt size; only "
        "overlay2 on xfs with pquota, devicemapper, btrfs, zfs: other engines refuse such jobs)")
    allowed_images: Annotated[list[str], Reach(
        flags=("--allowed-image",),
        help="An image pattern jobs may use, e.g. 'docker.io/library/*' (repeat; none: any image)",
        label="Allowed images")] = Field(
        default_factory=list,
        description="Image patterns jobs may use ('busybox', 'docker.io/library/*', "
        "'ghcr.io/myorg/*', 'registry.example:5000/*'); empty: any image")
    require_digest: Annotated[bool, Reach(
        help="Only images pinned by @sha256 digest", label="Only images pinned by digest")] = Field(
        default=False, description="Only images pinned by digest (@sha256:...)")
    allowed_networks: Annotated[list[str], Reach(
        flags=("--allowed-network",), help="A network jobs may join besides the default one (repeat)",
        label="Allowed networks")] = Field(
        default_factory=list,
        description="Docker networks jobs may join besides the default network and 'none' "
        "('host' needs allow_host_network; 'container:...' is never allowed)")
    allowed_roles: Annotated[list[str], Reach(
        flags=("--allowed-role",), help="A role that may use the pool (repeat)",
        label="Allowed roles")] = Field(
        default_factory=list,
        description="Roles that may use this pool (empty with allowed_users empty: every role that may submit; "
        "admins only on a pool allowing privileged, host network, GPUs or host files)")
    allowed_users: Annotated[list[str], Reach(
        flags=("--allowed-user",), help="A user who may use the pool (repeat)",
        label="Allowed users")] = Field(
        default_factory=list, description="Users that may use this pool")
    allowed_projects: Annotated[list[str], Reach(
        flags=("--allowed-project",), help="A project whose jobs may run on the pool (repeat; none: every project)",
        label="Allowed projects")] = Field(
        default_factory=list,
        description="Projects whose jobs may run on this pool (empty: every project); "
        "granted as well as, not instead of, allowed_roles/allowed_users")
    max_cpu: Annotated[float | None, Reach(
        label="Max CPU cores per job")] = Field(
        default=None, gt=0, le=512, description="Most CPU cores one job may ask for")
    max_memory: Annotated[str | None, Reach(
        help="Most memory one job may ask for, e.g. 4g", label="Max memory per job")] = Field(
        default=None, description="Most memory one job may ask for")
    max_pids: Annotated[int | None, Reach(
        label="Max processes per job")] = Field(
        default=None, gt=0, le=MAX_PIDS, description="Most processes one job may ask for")
    max_timeout: Annotated[float | None, Reach(
        help="Longest timeout in seconds", label="Max timeout (s)")] = Field(
        default=None, gt=0, le=MAX_TIMEOUT_SECONDS, description="Longest timeout, seconds")
    max_gpus: Annotated[int | None, Reach(
        help="Most GPUs one job may ask for", label="Max GPUs per job")] = Field(
        default=None, ge=0, le=1024, description="Most GPUs one job may ask for ('all' counts as more)")
    default_cpu: Annotated[float | None, Reach(
        help="CPU cores for jobs that name none", label="Default CPU cores")] = Field(
        default=None, gt=0, le=512, description="CPU cores when a job names none")
    default_memory: Annotated[str | None, Reach(
        help="Memory for jobs that name none", label="Default memory")] = Field(
        default="1g", description="Memory when a job names none")
    default_pids_limit: Annotated[int, Reach(
        help="Process limit for jobs that name none", label="Default process limit")] = Field(
        default=1024, gt=0, le=MAX_PIDS, description="Process limit when a job names none")
    default_timeout: Annotated[float | None, Reach(
        help="Timeout (s) for jobs that name none", label="Default timeout (s)")] = Field(
        default=None, gt=0, le=MAX_TIMEOUT_SECONDS,
        description="Timeout (s) when a job names none (none: max_timeout, if set)")
    default_network: Annotated[str | None, Reach(
        help="Network for jobs that name none", label="Default network")] = Field(
        default=None, description="Network when a job names none")
    cap_drop: Annotated[list[str], Reach(
        flags=("--cap-drop",), help="A Linux capability dropped from every container (repeat)",
        label="Capabilities dropped")] = Field(
        default_factory=lambda: ["NET_RAW", "MKNOD", "AUDIT_WRITE"],
        description="Linux capabilities dropped from every container")
    # size caps: a job that reaches one is stopped, and fails with the cap as its reason
    max_output_bytes: Annotated[int, Reach(
        help="Most stdout+stderr of one job, e.g. 500m (default 1g); the job is stopped",
        label="Max output per job (stdout+stderr)", size=True)] = Field(
        default=GIB, gt=0,
        description="Most bytes of stdout and stderr (together) one job may write; the job is stopped at the cap")
    max_files_bytes: Annotated[int, Reach(
        help="Most output_dir bytes archived per job, e.g. 2g (default 1g)", label="Max archived output_dir per job",
        size=True)] = Field(
        default=GIB, gt=0,
        description="Most bytes of a job's output_dir (as Docker's tar stream, before gzip) that are archived; "
        "past it the folder is not archived and the job fails")

    @field_validator("max_output_bytes", "max_files_bytes", "scratch_size", "storage_size", mode="before")
    @classmethod
    def _size(cls, v: object) -> object:
        """Sizes may be given as bytes or with a unit ('10m', '1g')."""
        return parse_size(v) if isinstance(v, str) else v

    @field_validator("max_memory", "default_memory")
    @classmethod
    def _valid_memory(cls, v: str | None) -> str | None:
        parse_memory(v)  # JobSpecError (a ValueError) saying what is wrong
        return v

    @field_validator("default_user")
    @classmethod
    def _valid_user(cls, v: str | None) -> str | None:
        if v is not None:
            parse_user(v)
        return v

    @field_validator("allowed_images")
    @classmethod
    def _valid_patterns(cls, v: list[str]) -> list[str]:
        for pattern in v:
            if not pattern or len(pattern) > 255 or any(c.isspace() for c in pattern):
                raise ValueError(f"image pattern {pattern!r} is not valid: a name pattern such as 'busybox', "
                                 "'docker.io/library/*' or 'ghcr.io/myorg/*'")
        return v

    @field_validator("allowed_roles")
    @classmethod
    def _known_roles(cls, v: list[str]) -> list[str]:
        unknown = [r for r in v if r not in ROLES]
        if unknown:
            raise ValueError(f"unknown role(s) {', '.join(unknown)}: expected some of {', '.join(ROLES)}")
        return v

    @property
    def default_memory_bytes(self) -> int | None:
        return parse_memory(self.default_memory)

    @property
    def restricted(self) -> bool:
        """A pool that lets jobs reach the host: usable only by those its lists name (admins by default)."""
        return self.allow_privileged or self.allow_host_network or self.allow_gpu or self.allow_host_files

    def inconsistencies(self) -> dict[str, str]:
        """Defaults that exceed their ceiling, and default networks no job may use, by setting."""
        errors: dict[str, str] = {}
        ceiling = parse_memory(self.max_memory)
        default = parse_memory(self.default_memory)
        if ceiling and default and default > ceiling:
            errors["default_memory"] = f"{self.default_memory} exceeds max_memory {self.max_memory}"
        if self.max_cpu and self.default_cpu and self.default_cpu > self.max_cpu:
            errors["default_cpu"] = f"{self.default_cpu} exceeds max_cpu {self.max_cpu}"
        if self.max_pids and self.default_pids_limit > self.max_pids:
            errors["default_pids_limit"] = f"{self.default_pids_limit} exceeds max_pids {self.max_pids}"
        if self.max_timeout and self.default_timeout and self.default_timeout > self.max_timeout:
            errors["default_timeout"] = f"{self.default_timeout} exceeds max_timeout {self.max_timeout}"
        if self.default_user and is_root_user(self.default_user) and not self.allow_root_user:
            errors["default_user"] = f"{self.default_user!r} runs as root, which this pool does not allow " \
                                     "(allow_root_user)"
        if self.default_network:
            try:
                self._check_network(self.default_network, default_ok=False)
            except JobSpecError as exc:
                errors["default_network"] = str(exc)
        for name in self.allowed_networks:
            if name.startswith("container:") or name == "host":
                errors["allowed_networks"] = (
                    f"{name!r} cannot be allowed this way ('host': allow_host_network; 'container:': never)")
        return errors

    def resolve(self, spec: JobSpec) -> JobSpec:
        """The job as it runs on this pool: memory, cpu, pids limit, timeout and network it leaves
        out come from the pool's defaults, else its ceilings (so an omitted limit cannot escape one).

        A job that names no user runs as the pool's `default_user` (when set).
        A job with services: each container (main and services) leaves out a limit -> the pool's
        default; with no default, an equal share of what the ceiling leaves after the containers that
        name one (so the sum stays within it). Such a job runs on its private network only."""
        if not spec.services:
            return spec.model_copy(update={
                "user": spec.user or self.default_user,
                "memory": spec.memory or self.default_memory or self.max_memory,
                "cpu": spec.cpu or self.default_cpu or self.max_cpu,
                "pids_limit": spec.pids_limit or self.default_pids_limit,
                "timeout": spec.timeout or self.default_timeout or self.max_timeout,
                "network": spec.network or self.default_network,
            })
        containers = [spec, *spec.services.values()]
        ceiling = parse_memory(self.max_memory)
        memory = _shares([c.memory_bytes for c in containers], self.default_memory_bytes, ceiling, int)
        cpu = _shares([c.cpu for c in containers], self.default_cpu, self.max_cpu, float)
        filled = [{"memory": str(m) if m and not c.memory else c.memory, "cpu": cp if not c.cpu else c.cpu,
                   "pids_limit": c.pids_limit or self.default_pids_limit, "user": c.user or self.default_user}
                  for c, m, cp in zip(containers, memory, cpu, strict=True)]
        services = {name: s.model_copy(update=f) for (name, s), f in zip(spec.services.items(), filled[1:],
                                                                          strict=True)}
        return spec.model_copy(update={**filled[0], "services": services,
                                       "timeout": spec.timeout or self.default_timeout or self.max_timeout})

    def check(self, spec: JobSpec) -> JobSpec:
        """The resolved job (see `resolve`); PolicyViolation naming the first limit it exceeds.
        A job with services: every container is checked, and the ceilings bound their sum."""
        spec = self.resolve(spec)
        if spec.services:
            self._check_group(spec)
        if spec.privileged and not self.allow_privileged:
            raise PolicyViolation("privileged containers are not allowed on this pool (allow_privileged)")
        if spec.gpus and not self.allow_gpu:
            raise PolicyViolation("GPU requests are not allowed on this pool (allow_gpu)")
        if spec.gpus and self.max_gpus is not None and (spec.gpus == "all" or spec.gpus > self.max_gpus):
            raise PolicyViolation(f"gpus {spec.gpus} exceeds the pool's max_gpus {self.max_gpus}")
        if self.read_only_rootfs and (top := [i.path for i in spec.inputs if PurePosixPath(i.path).parent.name == ""]):
            raise PolicyViolation(f"input file {top[0]}: this pool's containers have a read-only root "
                                  "(read_only_rootfs), so input files go in a folder, e.g. /input/data.csv")
        if any(item.source for item in spec.inputs) and not self.allow_host_files:
            raise PolicyViolation("files from the worker host (inputs[].source) are not allowed on this pool "
                                  "(allow_host_files)")
        if is_root_user(spec.user) and not self.allow_root_user:
            raise PolicyViolation(f"user {spec.user!r} runs as root (uid or gid 0), which this pool does not allow "
                                  "(allow_root_user)")
        self.check_image(spec.image)
        self._check_network(spec.network)
        if self.max_cpu and spec.cpu and spec.cpu > self.max_cpu:
            raise PolicyViolation(f"cpu {spec.cpu} exceeds the pool's max_cpu {self.max_cpu}")
        ceiling = parse_memory(self.max_memory)
        if ceiling and spec.memory_bytes and spec.memory_bytes > ceiling:
            raise PolicyViolation(f"memory {spec.memory} exceeds the pool's max_memory {self.max_memory}")
        if self.max_pids and spec.pids_limit and spec.pids_limit > self.max_pids:
            raise PolicyViolation(f"pids_limit {spec.pids_limit} exceeds the pool's max_pids {self.max_pids}")
        if self.max_timeout and spec.timeout and spec.timeout > self.max_timeout:
            raise PolicyViolation(f"timeout {spec.timeout}s exceeds the pool's max_timeout {self.max_timeout}s")
        return spec

    def _check_group(self, spec: JobSpec) -> None:
        """Each service as a container of its own (privileged, root user), then the job's total:
        summed memory, cpu and pids of all its containers against max_memory, max_cpu, max_pids."""
        for name, service in spec.services.items():
            if service.privileged and not self.allow_privileged:
                raise PolicyViolation(f"service {name}: privileged containers are not allowed on this pool "
                                      "(allow_privileged)")
            if is_root_user(service.user) and not self.allow_root_user:
                raise PolicyViolation(f"service {name}: user {service.user!r} runs as root (uid or gid 0), which "
                                      "this pool does not allow (allow_root_user)")
            try:
                self.check_image(service.image)
            except PolicyViolation as exc:
                raise PolicyViolation(f"service {name}: {exc}") from None
        if self.default_network not in (None, BRIDGE, "default", "none"):
            raise PolicyViolation(f"jobs with services run on a private network of their own, and this pool puts "
                                  f"its jobs on network {self.default_network!r} (default_network)")
        containers = [spec, *spec.services.values()]
        count = len(containers)
        ceiling = parse_memory(self.max_memory)
        unbounded = [n for n, c in zip([spec.main_service, *spec.services], containers, strict=True) if not c.memory]
        if ceiling and unbounded:
            raise PolicyViolation(f"memory: the containers that name none ({', '.join(unbounded)}) have nothing left "
                                  f"of the pool's max_memory {self.max_memory}")
        try:
            total_memory = sum(c.memory_bytes or 0 for c in containers)
        except JobSpecError as exc:  # a share of the ceiling below Docker's minimum
            raise PolicyViolation(f"memory: the pool's max_memory {self.max_memory} shared among the job's {count} "
                                  f"containers is too little ({exc})") from exc
        if ceiling and total_memory > ceiling:
            raise PolicyViolation(f"memory of the job's {count} containers together ({human_size(total_memory)}) "
                                  f"exceeds the pool's max_memory {self.max_memory}")
        total_cpu = sum(c.cpu or 0 for c in containers)
        if self.max_cpu and total_cpu > self.max_cpu:
            raise PolicyViolation(f"cpu of the job's {count} containers together ({total_cpu:g}) exceeds the "
                                  f"pool's max_cpu {self.max_cpu}")
        total_pids = sum(c.pids_limit or 0 for c in containers)
        if self.max_pids and total_pids > self.max_pids:
            raise PolicyViolation(f"pids_limit of the job's {count} containers together ({total_pids}) exceeds "
                                  f"the pool's max_pids {self.max_pids}")

    def check_image(self, ref: str) -> None:
        """PolicyViolation unless the image may run here: never from this host or a local-only
        address (`check_image_source`); with `require_digest`, pinned by digest; with
        `allowed_images`, matching one of its patterns (Docker Hub names written out in full:
        'busybox' is 'docker.io/library/busybox'; a pattern matches the name, or name:tag)."""
        if not self._names_registry_of(ref):  # an admin may name a local registry (a mirror) outright
            check_image_source(ref)
        name, tag, digest = parse_image(ref)
        if self.require_digest and not digest:
            raise PolicyViolation(f"image {ref!r} is not pinned by digest, which this pool requires (require_digest): "
                                  "use NAME@sha256:DIGEST")
        if self.allowed_images:
            candidates = [canonical_image(name)] + ([canonical_image(f"{name}:{tag}")] if tag else [])
            if not any(fnmatchcase(c, canonical_image(p)) for p in self.allowed_images for c in candidates):
                raise PolicyViolation(f"image {ref!r} ({candidates[0]}) is not allowed on this pool (allowed_images: "
                                      f"{', '.join(self.allowed_images)})")

    def _names_registry_of(self, ref: str) -> bool:
        """Whether `allowed_images` names the image's registry literally (`127.0.0.1:5000/*`, no wildcard in the
        registry part): the admin's own choice of a local-only registry, e.g. a mirror on the worker host."""
        host = image_registry_host(ref)
        name = parse_image(ref)[0]
        registry = name.split("/", 1)[0] if host is not None else None
        return registry is not None and any(
            "/" in p and p.split("/", 1)[0] == registry and not any(c in p.split("/", 1)[0] for c in "*?[")
            for p in self.allowed_images)

    def image_user_refusal(self, image: str, image_user: str | None, user: str | None) -> str | None:
        """Why a container may not run as its image's own USER (None: it may): with
        `check_image_user` and without `allow_root_user`, a container that names no user (nor
        the pool a default_user) and whose image runs as root."""
        if not self.check_image_user or self.allow_root_user or user is not None:
            return None
        if image_user and not is_root_user(image_user):
            return None
        return (f"image {image!r} runs as root (its USER is {image_user or 'not set'}) and the job names no user: "
                "give a user, or ask the pool admin for a default_user (check_image_user)")

    def _check_network(self, network: str | None, default_ok: bool = True) -> None:
        """Allowed: the pool's default network (Docker's bridge when none is set), 'none', the
        allowed_networks, 'host' with allow_host_network. Never 'container:...'."""
        if network is None:
            return
        if network.startswith("container:"):
            raise PolicyViolation(f"network {network!r} is refused: a job never joins another container's "
                                  "network namespace")
        if network == "host":
            if not self.allow_host_network:
                raise PolicyViolation("host networking is not allowed on this pool (allow_host_network)")
            return
        allowed = {"none", *self.allowed_networks}
        if default_ok:
            allowed |= {self.default_network} if self.default_network else {BRIDGE, "default"}
        if network not in allowed:
            raise PolicyViolation(
                f"network {network!r} is not allowed on this pool (allowed_networks: "
                f"{', '.join(sorted(self.allowed_networks)) or 'none besides the default network'})")

    def check_caller(self, username: str, role: str | None, project: str | None = None) -> None:
        """PolicyViolation unless `username` (with `role`; None: unknown or disabled) may use this
        pool for a job of `project`. Admins always may. With allowed_projects set, only jobs of those
        projects may run here. With allowed_roles/allowed_users set, only those listed may; with
        neither, everyone may, except on a restricted pool (see `restricted`): admins only."""
        if role == ADMIN_ROLE:
            return
        if self.allowed_projects and (project or "default") not in self.allowed_projects:
            raise PolicyViolation(f"project {project or 'default'} may not use this pool: it is granted to "
                                  f"[{', '.join(self.allowed_projects)}] (allowed_projects)")
        if self.allowed_roles or self.allowed_users:
            if username in self.allowed_users or (role is not None and role in self.allowed_roles):
                return
            raise PolicyViolation(f"{username} may not use this pool: it is for roles "
                                  f"[{', '.join(self.allowed_roles)}] and users [{', '.join(self.allowed_users)}] "
                                  "(allowed_roles, allowed_users)")
        if self.restricted:
            raise PolicyViolation(f"{username} may not use this pool: it allows privileged containers, the host "
                                  "network, GPUs or host files, so only admins and those its allowed_roles or "
                                  "allowed_users name may use it")

    @classmethod
    def from_template(cls, base_job_template: dict[str, Any]) -> HostPolicy:
        """The policy a pool's base job template sets (its variables' defaults) and nothing else."""
        properties = (base_job_template or {}).get("variables", {}).get("properties", {})
        return cls(**{k: properties[k]["default"] for k in cls.model_fields
                      if k in properties and "default" in properties[k]})
