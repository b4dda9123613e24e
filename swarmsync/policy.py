"""Host policy: what a Docker host (a work pool) allows jobs to ask for.

An admin sets it on the pool; a job that asks for more is refused before anything
runs, with a message naming the limit.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, Field, field_validator

from swarmsync.spec import JobSpec, JobSpecError, parse_memory

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


class HostPolicy(BaseModel):
    """Ceilings and defaults applied to every job on a host."""

    allow_privileged: bool = Field(default=False, description="May jobs run privileged?")
    allow_host_network: bool = Field(default=False, description="May jobs use network 'host'?")
    allow_gpu: bool = Field(default=False, description="May jobs request GPUs (Docker device requests)?")
    max_cpu: float | None = Field(default=None, gt=0, description="Most CPU cores one job may ask for")
    max_memory: str | None = Field(default=None, description="Most memory one job may ask for")
    max_pids: int | None = Field(default=None, gt=0, description="Most processes one job may ask for")
    max_timeout: float | None = Field(default=None, gt=0, description="Longest timeout, seconds")
    default_cpu: float | None = Field(default=None, gt=0, description="CPU cores when a job names none")
    default_memory: str | None = Field(default="1g", description="Memory when a job names none")
    default_pids_limit: int = Field(default=1024, gt=0, description="Process limit when a job names none")
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

    @property
    def default_memory_bytes(self) -> int | None:
        return parse_memory(self.default_memory)

    def check(self, spec: JobSpec) -> None:
        """Raise JobSpecError naming the first limit the job exceeds."""
        if spec.privileged and not self.allow_privileged:
            raise JobSpecError("privileged containers are not allowed on this pool (allow_privileged)")
        if spec.network == "host" and not self.allow_host_network:
            raise JobSpecError("host networking is not allowed on this pool (allow_host_network)")
        if spec.gpus and not self.allow_gpu:
            raise JobSpecError("GPU requests are not allowed on this pool (allow_gpu)")
        if self.max_cpu and spec.cpu and spec.cpu > self.max_cpu:
            raise JobSpecError(f"cpu {spec.cpu} exceeds the pool's max_cpu {self.max_cpu}")
        ceiling = parse_memory(self.max_memory)
        if ceiling and spec.memory_bytes and spec.memory_bytes > ceiling:
            raise JobSpecError(f"memory {spec.memory} exceeds the pool's max_memory {self.max_memory}")
        if self.max_pids and spec.pids_limit and spec.pids_limit > self.max_pids:
            raise JobSpecError(f"pids_limit {spec.pids_limit} exceeds the pool's max_pids {self.max_pids}")
        if self.max_timeout and spec.timeout and spec.timeout > self.max_timeout:
            raise JobSpecError(f"timeout {spec.timeout}s exceeds the pool's max_timeout {self.max_timeout}s")
