"""Host policy: what a Docker host (a work pool) allows jobs to ask for, and who may use it.

An admin sets it on the pool; a job that asks for more is refused before anything
runs, with a message naming the limit. The policy is checked on the job as it will run:
`HostPolicy.resolve` fills what the job leaves out from the pool's defaults (or, with no
default, its ceiling), and both the check and container creation use that one result, so
what is checked is what runs.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, Field, field_validator

from swarmsync.auth.roles import Forbidden
from swarmsync.spec import JobSpec, JobSpecError, parse_memory

ADMIN_ROLE = "admin"
ROLES = (ADMIN_ROLE, "operator", "viewer")
BRIDGE = "bridge"  # Docker's default network (also called "default")


class PolicyViolation(Forbidden, JobSpecError):
    """The job (or its caller) is not allowed on this pool: HTTP 403 through the API, a refused
    job (nothing ran) under a worker. The message names the setting."""


class PoolNotFound(LookupError):
    """No work pool with that name."""


def is_root_user(user: str | None) -> bool:
    """`root`, `0`, `0:0`, `root:root`, `0:1000`...: the container would run as uid 0."""
    if user is None:
        return False
    uid = user.strip().split(":", 1)[0].strip()
    if uid.lower() == "root":
        return True
    return uid.isdigit() and int(uid) == 0
GIB = 1 << 30


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


class HostPolicy(BaseModel):
    """Ceilings and defaults applied to every job on a host, and who may use it."""

    allow_privileged: bool = Field(default=False, description="May jobs run privileged?")
    allow_host_network: bool = Field(default=False, description="May jobs use network 'host'?")
    allow_gpu: bool = Field(default=False, description="May jobs request GPUs (Docker device requests)?")
    allow_host_files: bool = Field(
        default=False, description="May jobs read files from the worker host (inputs[].source)?"
    )
    allow_root_user: bool = Field(default=False, description="May jobs ask to run as root (user 'root' or uid 0)?")
    allowed_networks: list[str] = Field(
        default_factory=list,
        description="Docker networks jobs may join besides the default network and 'none' "
        "('host' needs allow_host_network; 'container:...' is never allowed)",
    )
    allowed_roles: list[str] = Field(
        default_factory=list,
        description="Roles that may use this pool (empty with allowed_users empty: every role that may submit; "
        "admins only on a pool allowing privileged, host network, GPUs or host files)",
    )
    allowed_users: list[str] = Field(default_factory=list, description="Users that may use this pool")
    allowed_projects: list[str] = Field(
        default_factory=list, description="Projects whose jobs may run on this pool (empty: every project); "
        "granted as well as, not instead of, allowed_roles/allowed_users")
    max_cpu: float | None = Field(default=None, gt=0, description="Most CPU cores one job may ask for")
    max_memory: str | None = Field(default=None, description="Most memory one job may ask for")
    max_pids: int | None = Field(default=None, gt=0, description="Most processes one job may ask for")
    max_timeout: float | None = Field(default=None, gt=0, description="Longest timeout, seconds")
    max_gpus: int | None = Field(default=None, ge=0, description="Most GPUs one job may ask for ('all' counts as more)")
    default_cpu: float | None = Field(default=None, gt=0, description="CPU cores when a job names none")
    default_memory: str | None = Field(default="1g", description="Memory when a job names none")
    default_pids_limit: int = Field(default=1024, gt=0, description="Process limit when a job names none")
    default_timeout: float | None = Field(
        default=None, gt=0, description="Timeout (s) when a job names none (none: max_timeout, if set)"
    )
    default_network: str | None = Field(default=None, description="Network when a job names none")
    cap_drop: list[str] = Field(
        default_factory=lambda: ["NET_RAW", "MKNOD", "AUDIT_WRITE"],
        description="Linux capabilities dropped from every container",
    )
    # size caps: a job that reaches one is stopped, and fails with the cap as its reason
    max_output_bytes: int = Field(
        default=GIB, gt=0,
        description="Most bytes of stdout and stderr (together) one job may write; the job is stopped at the cap",
    )
    max_files_bytes: int = Field(
        default=GIB, gt=0,
        description="Most bytes of a job's output_dir (as Docker's tar stream, before gzip) that are archived; "
        "past it the folder is not archived and the job fails",
    )

    @field_validator("max_output_bytes", "max_files_bytes", mode="before")
    @classmethod
    def _size(cls, v: object) -> object:
        """Sizes may be given as bytes or with a unit ('10m', '1g')."""
        return parse_size(v) if isinstance(v, str) else v

    @field_validator("max_memory", "default_memory")
    @classmethod
    def _valid_memory(cls, v: str | None) -> str | None:
        parse_memory(v)  # JobSpecError (a ValueError) saying what is wrong
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

        A job with services: each container (main and services) leaves out a limit -> the pool's
        default; with no default, an equal share of what the ceiling leaves after the containers that
        name one (so the sum stays within it). Such a job runs on its private network only."""
        if not spec.services:
            return spec.model_copy(update={
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
                   "pids_limit": c.pids_limit or self.default_pids_limit}
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
        if any(item.source for item in spec.inputs) and not self.allow_host_files:
            raise PolicyViolation("files from the worker host (inputs[].source) are not allowed on this pool "
                                  "(allow_host_files)")
        if is_root_user(spec.user) and not self.allow_root_user:
            raise PolicyViolation(f"user {spec.user!r} runs as root, which this pool does not allow (allow_root_user)")
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
                raise PolicyViolation(f"service {name}: user {service.user!r} runs as root, which this pool "
                                      "does not allow (allow_root_user)")
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

    @property
    def limits_callers(self) -> bool:
        """Whether who submits matters here (a list of roles or users, or a restricted pool)."""
        return bool(self.allowed_roles or self.allowed_users or self.restricted)

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
