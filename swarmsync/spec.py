"""The JobSpec: what to run, with what limits. Invalid specs are refused here, before
anything is submitted or started, with a message that says what is wrong."""

from __future__ import annotations

import base64
import hashlib
import re
import shlex
from collections.abc import Iterable
from pathlib import PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from swarmsync.catalogue import Reach
from swarmsync.errors import InvalidError

# Docker's reference grammar, simplified: [registry[:port]/]path[:tag][@sha256:hex]
_NAME_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9-]+)*(?::[0-9]+)?/)"
_IMAGE_RE = re.compile(
    rf"^(?P<name>{_DOMAIN}?{_NAME_COMPONENT}(?:/{_NAME_COMPONENT})*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?"
    r"(?:@(?P<digest>sha256:[a-f0-9]{64}))?$"
)
_MEMORY_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b?|b)?\s*$", re.IGNORECASE)
MAX_MEMORY_BYTES = 1024**6  # 1 EiB: more than any host; Docker takes an int64
_MEMORY_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"  # an environment variable's name (also the API's `secret_env` keys)
_ENV_NAME_RE = re.compile(ENV_NAME_PATTERN)
_SHA256_RE = re.compile(r"^[a-f0-9]{64}$")
_USER_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,31}$")  # a login or group name (as useradd takes it)
MAX_ID = 2**32 - 2  # the largest uid/gid: 4294967295 is (uid_t)-1, "no id"
MAX_TIMEOUT_SECONDS = 30 * 86400  # 30 days: longer is a mistake (1e308 would overflow Docker's nanoseconds)
MAX_PIDS = 4_194_304  # the kernel's pid_max ceiling
MAX_RETRY_DELAY_SECONDS = 86400

PullPolicy = Literal["always", "if-not-present", "never"]
MAX_SERVICES = 32  # services of one job (each is a container on the worker's host)
DependsCondition = Literal["service_started", "service_healthy", "service_completed_successfully"]
_SERVICE_NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?$")


class JobSpecError(InvalidError):
    """A job spec that cannot run; the message says what to fix."""


def parse_memory(value: str | int | None) -> int | None:
    """'512m', '1g', '1.5GiB', 1048576 -> bytes. Refuses unknown units and negatives."""
    if value is None:
        return None
    if isinstance(value, int):
        if value <= 0:
            raise JobSpecError(f"memory must be positive, got {value}")
        if value > MAX_MEMORY_BYTES:
            raise JobSpecError(f"memory of about 2**{value.bit_length()} bytes is too large: at most 1 EiB")
        return value
    m = _MEMORY_RE.match(str(value))
    if not m:
        raise JobSpecError(
            f"memory {value!r} is not understood: use a number with an optional unit "
            "b, k, m, g or t (e.g. '256m', '2g')"
        )
    number, unit = m.groups()
    unit = (unit or "").lower().rstrip("b").rstrip("i")
    if len(number) > 30:  # far beyond any machine; float() would give inf (a 500), int() a huge number
        raise JobSpecError(f"memory {str(value)[:40]!r}... ({len(number)} digits) is too large: at most 1 EiB")
    size = int(float(number) * _MEMORY_UNITS[unit])
    if size > MAX_MEMORY_BYTES:
        raise JobSpecError(f"memory {value!r} is too large: at most 1 EiB")
    if size < 6 * 1024 * 1024:
        raise JobSpecError(f"memory {value!r} is below Docker's minimum of 6m")
    return size


def parse_image(ref: str) -> tuple[str, str | None, str | None]:
    """Split an image reference into (name, tag, digest); refuse malformed ones."""
    m = _IMAGE_RE.match(ref or "")
    if not m:
        raise JobSpecError(
            f"image {ref!r} is not a valid image reference: expected NAME[:TAG][@sha256:DIGEST] "
            "with a lowercase name, e.g. 'busybox:1.36' or 'ghcr.io/org/app@sha256:<64 hex>'"
        )
    return m.group("name"), m.group("tag"), m.group("digest")


class InputFile(BaseModel):
    """A payload file placed in the container before it starts, verified by SHA-256.

    Give the bytes inline (`content_b64`) or a `source` path readable by the worker.
    """

    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="Absolute path inside the container, e.g. /input/data.csv")
    sha256: str = Field(description="Expected SHA-256 (hex) of the file's bytes")
    content_b64: str | None = Field(default=None, description="The file's bytes, base64")
    source: str | None = Field(default=None, description="Path of the file on the worker host")
    mode: int = Field(default=0o644, description="File mode inside the container")

    @field_validator("path")
    @classmethod
    def _absolute_clean_path(cls, v: str) -> str:
        p = PurePosixPath(v)
        if not p.is_absolute() or ".." in p.parts or str(p) == "/":
            raise JobSpecError(f"input file path {v!r} must be an absolute file path without '..'")
        return str(p)

    @field_validator("sha256")
    @classmethod
    def _hex_digest(cls, v: str) -> str:
        v = v.lower().removeprefix("sha256:")
        if not _SHA256_RE.match(v):
            raise JobSpecError(f"input file sha256 {v!r} is not 64 hex characters")
        return v

    @model_validator(mode="after")
    def _one_source(self) -> InputFile:
        if (self.content_b64 is None) == (self.source is None):
            raise JobSpecError(f"input file {self.path}: give exactly one of content_b64 or source")
        return self

    @classmethod
    def from_bytes(cls, path: str, data: bytes, sha256: str | None = None) -> InputFile:
        """Inline input; the checksum defaults to that of `data`."""
        return cls(
            path=path,
            sha256=sha256 or hashlib.sha256(data).hexdigest(),
            content_b64=base64.b64encode(data).decode(),
        )


def _check_command(v: list[str] | str | None) -> list[str] | str | None:
    if isinstance(v, str) and not v.strip():
        raise JobSpecError("command is an empty string: give a command or leave it out")
    if isinstance(v, list) and (not v or any(not isinstance(a, str) for a in v)):
        raise JobSpecError("command must be a non-empty list of strings")
    return v


def check_env_names(names: Iterable[str]) -> Iterable[str]:
    """`names` unchanged when each is an environment variable name (letters, digits, '_', not starting
    with a digit: no '=', space or empty name); else JobSpecError naming the first bad one."""
    for name in names:
        if not isinstance(name, str) or not _ENV_NAME_RE.fullmatch(name):
            raise JobSpecError(f"environment variable name {name!r} is not valid: use letters, digits and '_', "
                               "not starting with a digit (e.g. HTTP_PROXY)")
    return names


def parse_user(user: str) -> tuple[str | int, str | int | None]:
    """A container user as Docker reads it: NAME or UID, optionally :GROUP or :GID ->
    (uid or name, gid or group name or None). Numbers are ASCII digits (leading zeros allowed:
    '00' is uid 0); spellings Docker would read oddly are refused: signs, empty parts,
    whitespace, more than one ':', ids past 2**32 - 2.

    >>> parse_user("1000:0"), parse_user("app"), parse_user("00")
    ((1000, 0), ('app', None), (0, None))
    """
    parts = user.split(":") if isinstance(user, str) else []
    if not 1 <= len(parts) <= 2:
        raise JobSpecError(f"user {user!r} is not valid: give NAME or UID, optionally :GROUP or :GID")
    parsed: list[str | int] = []
    for part in parts:
        if part.isascii() and part.isdigit():
            if int(part) > MAX_ID:
                raise JobSpecError(f"user {user!r}: id {part} is too large (at most {MAX_ID})")
            parsed.append(int(part))
        elif _USER_NAME_RE.fullmatch(part):
            parsed.append(part)
        else:
            raise JobSpecError(f"user {user!r} is not valid: each part is a name (letters, digits, '_', '.', '-', "
                               "starting with a letter or '_') or a number (digits only: no sign, space or "
                               "empty part), e.g. '1000:1000' or 'app'")
    return parsed[0], (parsed[1] if len(parsed) == 2 else None)


def _check_absolute(v: str | None) -> str | None:
    if v is not None and not PurePosixPath(v).is_absolute():
        raise JobSpecError(f"{v!r} must be an absolute path inside the container")
    return v


def exec_form(command: list[str] | str | None) -> list[str] | None:
    """A command in exec form: a shell string becomes ['/bin/sh', '-c', string]."""
    return ["/bin/sh", "-c", command] if isinstance(command, str) else command


class HealthCheck(BaseModel):
    """A service's health check (Docker's HEALTHCHECK): `test` is a shell string, or a list
    starting with CMD or CMD-SHELL as in Compose. Times in seconds."""

    model_config = ConfigDict(extra="forbid")

    test: list[str] | str = Field(description="Shell string, or ['CMD', ...] / ['CMD-SHELL', '...']")
    interval: float = Field(default=1.0, gt=0, le=3600, description="Seconds between checks")
    timeout: float = Field(default=5.0, gt=0, le=3600, description="Seconds one check may take")
    retries: int = Field(default=3, ge=1, le=1000, description="Failures in a row that make it unhealthy")
    start_period: float = Field(default=0.0, ge=0, le=3600, description="Seconds of failures not counted at first")

    @field_validator("test")
    @classmethod
    def _valid_test(cls, v: list[str] | str) -> list[str] | str:
        if isinstance(v, str):
            if not v.strip():
                raise JobSpecError("healthcheck test is empty")
            return v
        if len(v) < 2 or v[0] not in ("CMD", "CMD-SHELL"):
            raise JobSpecError("healthcheck test must be a string or a list starting with CMD or CMD-SHELL "
                               "and a command ('NONE' is not supported: leave the healthcheck out)")
        return v

    def docker(self) -> dict:
        """The `healthcheck` argument of Docker's container create (nanoseconds)."""
        test = ["CMD-SHELL", self.test] if isinstance(self.test, str) else self.test
        ns = 1_000_000_000
        return {"test": test, "interval": int(self.interval * ns), "timeout": int(self.timeout * ns),
                "retries": self.retries, "start_period": int(self.start_period * ns)}


class _ContainerChecks(BaseModel):
    """The checks every container's fields get, in a job's main container and in its services alike."""

    @field_validator("image", check_fields=False)
    @classmethod
    def _valid_image(cls, v: str) -> str:
        parse_image(v.strip())
        return v.strip()

    @field_validator("command", check_fields=False)
    @classmethod
    def _nonempty_command(cls, v: list[str] | str | None) -> list[str] | str | None:
        return _check_command(v)

    @field_validator("memory", check_fields=False)
    @classmethod
    def _valid_memory(cls, v: str | None) -> str | None:
        parse_memory(v)
        return v

    @field_validator("env", "secrets", check_fields=False)
    @classmethod
    def _valid_env_names(cls, v: dict[str, str]) -> dict[str, str]:
        check_env_names(v)
        return v

    @field_validator("user", check_fields=False)
    @classmethod
    def _valid_user(cls, v: str | None) -> str | None:
        if v is not None:
            parse_user(v)
        return v

    @field_validator("working_dir", "output_dir", check_fields=False)
    @classmethod
    def _absolute_dir(cls, v: str | None) -> str | None:
        return _check_absolute(v)

    @property
    def memory_bytes(self) -> int | None:
        return parse_memory(self.memory)  # type: ignore[attr-defined]

    def docker_command(self) -> list[str] | None:
        """The command in exec form: a shell string becomes ['/bin/sh', '-c', string]."""
        return exec_form(self.command)  # type: ignore[attr-defined]


class ServiceSpec(_ContainerChecks):
    """A container that runs beside a job's main container (a database, a web service), on the
    job's private network, reachable by its name. It is stopped and removed with the job."""

    model_config = ConfigDict(extra="forbid")

    image: str = Field(description="Image reference: NAME[:TAG] or NAME@sha256:DIGEST")
    command: list[str] | str | None = Field(default=None, description="Command (list or shell string)")
    entrypoint: list[str] | None = Field(default=None, description="Override the image entrypoint")
    env: dict[str, str] = Field(default_factory=dict, description="Plain environment variables")
    working_dir: str | None = Field(default=None, description="Working directory in the container")
    user: str | None = Field(default=None, description="User to run as: NAME or UID[:GROUP or GID] "
                             "(default: the pool's default_user, else the image's)")
    cpu: float | None = Field(default=None, gt=0, le=512, description="CPU cores, e.g. 0.5")
    memory: str | None = Field(default=None, description="Memory limit, e.g. '256m'")
    pids_limit: int | None = Field(default=None, gt=0, le=MAX_PIDS, description="Max processes in the container")
    privileged: bool = Field(default=False, description="Needs a pool that allows it")
    healthcheck: Annotated[HealthCheck | None, Reach(compose="healthcheck")] = Field(
        default=None, description="Docker health check")
    depends_on: dict[str, DependsCondition] = Field(
        default_factory=dict, description="Services to wait for before this one starts, with the condition")
    allow_exit: Annotated[bool, Reach(compose="x-swarmsync-allow-exit")] = Field(
        default=False, description="May exit on its own while the job runs (else that fails the job)")


class JobSpec(_ContainerChecks):
    """What to run. `command` is a list (exec form) or a string run by the image's shell.

    Each field is declared once, here: the CLI options, the dashboard's form, templates and
    Compose keys are derived from it and its `Reach` (swarmsync/catalogue.py)."""

    model_config = ConfigDict(extra="forbid")

    image: Annotated[str, Reach(argument=True, compose="image")] = Field(
        description="Image reference: NAME[:TAG] or NAME@sha256:DIGEST")
    command: Annotated[list[str] | str | None, Reach(argument=True, compose="command")] = Field(
        default=None, description="Command as a list, or a shell string run with /bin/sh -c"
    )
    entrypoint: Annotated[list[str] | None, Reach(compose="entrypoint")] = Field(
        default=None, description="Override the image entrypoint")
    env: Annotated[dict[str, str], Reach(flags=("--env", "-e"), help="NAME=VALUE (repeatable)",
                                         compose="environment")] = Field(
        default_factory=dict, description="Plain environment variables")
    secrets: dict[str, str] = Field(
        default_factory=dict,
        description="Secret environment variables: NAME -> name of a Prefect Secret block. "
        "Values are resolved at run time, masked in logs and never archived.",
    )
    working_dir: Annotated[str | None, Reach(flags=("--workdir",), label="Working directory",
                                             compose="working_dir")] = Field(
        default=None, description="Working directory in the container")
    user: Annotated[str | None, Reach(label="User (NAME or UID[:GID])", compose="user")] = Field(
        default=None, description="User to run as: NAME or UID[:GROUP or GID] "
        "(default: the pool's default_user, else the image's)")
    cpu: Annotated[float | None, Reach(label="CPU cores", compose="cpus", free=True)] = Field(
        default=None, gt=0, le=512, description="CPU cores, e.g. 0.5")
    memory: Annotated[str | None, Reach(help="Memory limit, e.g. 256m", label="Memory", compose="mem_limit",
                                        free=True)] = Field(
        default=None, description="Memory limit, e.g. '256m', '2g'")
    pids_limit: Annotated[int | None, Reach(help="Process limit", compose="pids_limit",
                                            free=True)] = Field(
        default=None, gt=0, le=MAX_PIDS, description="Max processes in the container")
    timeout: Annotated[float | None, Reach(help="Seconds before the job is stopped", label="Timeout (s)",
                                           free=True)] = Field(
        default=None, gt=0, le=MAX_TIMEOUT_SECONDS, description="Seconds before the job is stopped (at most 30 days)")
    allowed_exit_codes: Annotated[list[int], Reach(flags=("--allow-exit",), label="Exit codes of success",
                                                   free=True)] = Field(
        default_factory=lambda: [0], description="Exit codes that count as success")
    retries: Annotated[int, Reach(help="Retries when the job fails", label="Retries", free=True)] = Field(
        default=0, ge=0, le=100, description="Retries of a failed job")
    retry_delay: Annotated[float, Reach(free=True)] = Field(
        default=10, ge=0, le=MAX_RETRY_DELAY_SECONDS, description="Seconds between retries")
    tags: Annotated[list[str], Reach(flags=("--tag", "-t"), help="Tag (repeatable)", free=True)] = Field(
        default_factory=list, description="Prefect tags put on the job's run")
    output_dir: Annotated[str | None, Reach(help="Folder in the container to archive",
                                            label="Output folder to archive (absolute path in the container)")] = Field(
        default=None, description="Folder in the container whose files are archived as .tar.gz"
    )
    inputs: Annotated[list[InputFile], Reach(flags=("--input",), help="LOCAL:/container/path[:SHA256]")] = Field(
        default_factory=list, description="Files placed in the container before it starts, checked by SHA-256")
    pull_policy: Annotated[PullPolicy | None, Reach(flags=("--pull",), help="Pull policy: always, if-not-present, "
                                                    "never", label="Pull policy", free=True)] = Field(
        default=None, description="When the worker pulls the image: always, if-not-present, never (default: "
        "the worker's)")
    privileged: Annotated[bool, Reach(help="Run privileged (needs a pool that allows it)",
                                       label="Privileged (the pool must allow it)", compose="privileged")] = (
        Field(default=False, description="Needs a pool that allows it"))
    gpus: int | Literal["all"] | None = Field(
        default=None, description="GPUs to pass through (a count or 'all'); needs a pool that allows GPUs"
    )
    network: Annotated[str | None, Reach(label="Docker network")] = Field(
        default=None, description="Docker network (default: bridge)")
    services: dict[str, ServiceSpec] = Field(
        default_factory=dict, max_length=MAX_SERVICES,
        description="Containers run beside this (main) one on a private network, reachable by name "
        "(see docs/compose-jobs.md)")
    main_service: str = Field(default="main", description="The main container's name among the services")
    depends_on: Annotated[dict[str, DependsCondition] | None, Reach(compose="depends_on")] = Field(
        default=None, description="Services the main container waits for, with the condition (default: every "
        "service; healthy when it has a healthcheck, else started)")
    service_start_timeout: Annotated[float, Reach(label="Services start within (s)")] = Field(
        default=120, gt=0, le=86400, description="Seconds the services may take to meet the conditions waited for")

    @model_validator(mode="after")
    def _no_overlap(self) -> JobSpec:
        both = set(self.env) & set(self.secrets)
        if both:
            raise JobSpecError(f"{sorted(both)} given both as plain env and as secret")
        if not self.allowed_exit_codes:
            raise JobSpecError("allowed_exit_codes must list at least one code")
        if self.services or self.depends_on:
            self._check_services()
        return self

    def _check_services(self) -> None:
        names = [*self.services, self.main_service]
        for name in names:
            if not _SERVICE_NAME_RE.match(name):
                raise JobSpecError(f"service name {name!r} is not valid: lowercase letters, digits, '-' and '_', "
                                   "at most 63, starting and ending with a letter or digit")
        if self.main_service in self.services:
            raise JobSpecError(f"service {self.main_service!r} is the main container's name (main_service)")
        if self.network is not None:
            raise JobSpecError(f"network {self.network!r}: a job with services runs on a private network of its own")
        for name, deps in [(self.main_service, self.depends_on or {}),
                           *((n, s.depends_on) for n, s in self.services.items())]:
            for dep, condition in deps.items():
                if dep not in self.services:
                    raise JobSpecError(f"service {name!r} depends on {dep!r}, which is not a service of the job")
                if condition == "service_healthy" and self.services[dep].healthcheck is None:
                    raise JobSpecError(f"service {name!r} waits for {dep!r} to be healthy, but {dep!r} has no "
                                       "healthcheck")
        self.service_order()  # refuses cycles

    def waits_for(self) -> dict[str, str]:
        """What the main container waits for: `depends_on`, else every service (healthy when it has
        a healthcheck, else started)."""
        if self.depends_on is not None:
            return dict(self.depends_on)
        return {name: "service_healthy" if s.healthcheck else "service_started" for name, s in self.services.items()}

    def service_order(self) -> list[str]:
        """The services in an order that starts each after what it depends on; refuses cycles."""
        order: list[str] = []
        state: dict[str, str] = {}

        def visit(name: str, path: list[str]) -> None:
            if state.get(name) == "done":
                return
            if state.get(name) == "visiting":
                raise JobSpecError(f"services depend on each other in a cycle: {' -> '.join([*path, name])}")
            state[name] = "visiting"
            for dep in self.services[name].depends_on:
                visit(dep, [*path, name])
            state[name] = "done"
            order.append(name)

        for name in self.services:
            visit(name, [])
        return order

    def may_exit(self, service: str) -> bool:
        """A service may end on its own: marked `allow_exit`, or waited for until it completed."""
        if self.services[service].allow_exit:
            return True
        waits = [self.waits_for(), *(s.depends_on for s in self.services.values())]
        return any(w.get(service) == "service_completed_successfully" for w in waits)

    @property
    def digest(self) -> str | None:
        return parse_image(self.image)[2]

    def display_command(self) -> str:
        if self.command is None:
            return "(image default)"
        if isinstance(self.command, str):
            return self.command
        return shlex.join(self.command)

    def public_dict(self) -> dict:
        """The spec as stored in manifests: secret names only, inline input bytes dropped."""
        data = self.model_dump(mode="json")
        data["secrets"] = sorted(self.secrets)
        for item in data["inputs"]:
            item.pop("content_b64", None)
        return data


RUN_NAME_CHARS = 60  # a flow run's name in the Prefect UI: image and command, trimmed
SCHEDULE_TAG = "swarmsync-schedule"  # the tag of a schedule's deployment, which its runs inherit


def job_run_name(job: JobSpec | dict, schedule: str | None = None) -> str:
    """A job's flow-run name, readable in the Prefect UI: "IMAGE COMMAND" trimmed, or for a
    schedule's runs "SCHEDULE: IMAGE COMMAND" (instead of Prefect's random pair of words)."""
    if isinstance(job, dict):
        image, command = str(job.get("image") or "?"), job.get("command")
        if command is None:
            shown = ""
        elif isinstance(command, str):
            shown = command
        else:
            shown = shlex.join(str(c) for c in command)
    else:
        image, shown = job.image, ("" if job.command is None else job.display_command())
    image = image.removeprefix("docker.io/").removeprefix("library/")
    name = " ".join(" ".join(part for part in (image, shown) if part).split())  # one line
    if schedule:
        name = f"{schedule}: {name}"
    return name if len(name) <= RUN_NAME_CHARS else name[: RUN_NAME_CHARS - 1] + "…"


def run_name_of(parameters: dict[str, Any] | None, tags: list[str] | None) -> str:
    """`job_run_name` of a job flow run, from its parameters and tags (a schedule's deployment
    tags its runs `swarmsync-schedule:NAME`)."""
    prefix = f"{SCHEDULE_TAG}:"
    schedule = next((t.removeprefix(prefix) for t in tags or [] if t.startswith(prefix)), None)
    return job_run_name((parameters or {}).get("job") or {}, schedule)
