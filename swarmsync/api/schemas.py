"""Request and response bodies of the SwarmSync API, by resource (bounded text fields everywhere).

Requests are `Strict` (unknown fields refused). Responses that carry open-ended JSON (a job's
spec, an archive manifest, a pool policy) declare the known fields and allow others (`Open`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator, model_validator
from pydantic.fields import FieldInfo

from swarmsync import catalogue
from swarmsync.auth.tokens import TokenInfo
from swarmsync.deployments.schedule_rules import check_rrule, check_timezone
from swarmsync.jobs import JobRow
from swarmsync.pipelines import StepRow
from swarmsync.policy import HostPolicy, parse_size
from swarmsync.spec import ENV_NAME_PATTERN, JobSpec

Name = Annotated[str, Field(min_length=1, max_length=64)]
# an environment variable's name, as JobSpec's env and secrets keys (`secret_env` is a separate dict)
EnvName = Annotated[str, Field(min_length=1, max_length=200, pattern=ENV_NAME_PATTERN)]
ProjectName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$")]
Password = Annotated[str, Field(min_length=1, max_length=1024)]
RoleName = Literal["admin", "operator", "viewer"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Open(BaseModel):
    """A response with known fields and possibly more (kept as they are)."""

    model_config = ConfigDict(extra="allow")


# --- errors and acknowledgements -------------------------------------------------------------
class FieldError(BaseModel):
    loc: list[str | int] = Field(description="Where: e.g. ['body', 'max_memory']")
    msg: str


class ErrorOut(BaseModel):
    """Every refusal: `detail` says why (FastAPI's own 422 lists its errors there instead);
    `errors` names each field that is wrong, where the API knows them."""

    detail: str | list[dict[str, Any]]
    errors: list[FieldError] | None = None


class Status(BaseModel):
    status: str


class Done(BaseModel):
    """The named object and what was done to it."""

    name: str
    done: str


# --- auth, users, tokens ------------------------------------------------------------------


class LoginRequest(Strict):
    username: Name
    password: Password


class LinkRequest(Strict):
    token: str = Field(min_length=1, max_length=200, description="The secret of a one-time login link")


class UserOut(BaseModel):
    id: int
    username: str
    role: str
    disabled: bool
    created_at: datetime


class LoginResponse(BaseModel):
    token: str = Field(description="Session token: send as 'Authorization: Bearer <token>'")
    expires_at: datetime
    user: UserOut


class ChallengeRequest(Strict):
    user: Name


class ChallengeOut(BaseModel):
    nonce: str = Field(description="Sign exactly these bytes (UTF-8): ssh-keygen -Y sign -n NAMESPACE -f KEY")
    expires_at: datetime = Field(description="The nonce is refused after this (and after its first use)")
    namespace: str = Field(description="The SSHSIG namespace the signature must carry")


class VerifyRequest(Strict):
    user: Name
    nonce: Annotated[str, Field(min_length=1, max_length=200)]
    signature: Annotated[str, Field(min_length=1, max_length=16_000, description="The armored SSH signature "
                                    "(-----BEGIN SSH SIGNATURE----- ...) of the nonce")]


class KeyAdd(Strict):
    public_key: Annotated[str, Field(min_length=1, max_length=20_000,
                                     description="One OpenSSH public key line: 'ssh-ed25519 AAAA... comment'")]


class KeyOut(BaseModel):
    fingerprint: str = Field(description="SHA256:..., as ssh-keygen -l prints it")
    key_type: str
    comment: str
    owner: str
    created_at: datetime
    last_used_at: datetime | None
    public_key: str


class Me(BaseModel):
    username: str
    role: str
    via: str = Field(description="session or token")
    permissions: list[str]


class UserCreate(Strict):
    username: Name
    password: Password
    role: RoleName = "viewer"


class UserUpdate(Strict):
    role: RoleName | None = None
    disabled: bool | None = None
    password: Password | None = None


class PasswordChange(Strict):
    current_password: Password
    new_password: Password


class TokenCreate(Strict):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    owner: Name | None = Field(default=None, description="Another user's name (admins only)")
    scopes: list[Annotated[str, Field(max_length=32)]] = Field(default_factory=list, max_length=20)
    expires_in_days: float | None = Field(default=None, gt=0, le=3650)


TokenOut = TokenInfo  # the core's model is the response model


class TokenCreated(TokenInfo):
    token: str = Field(description="The secret, shown only now")


# --- jobs ---------------------------------------------------------------------------------
class JobSubmission(Strict):
    spec: JobSpec
    secret_env: dict[EnvName, Annotated[str, Field(max_length=65536)]] = Field(
        default_factory=dict, max_length=100, description="Values stored as Prefect Secret blocks, never archived"
    )
    project: ProjectName | None = Field(default=None, description="The project the job belongs to (default: "
                                        "the default project)")
    pool: Annotated[str, Field(max_length=200)] | None = None
    queue: Annotated[str, Field(max_length=200)] | None = None
    at: datetime | None = Field(default=None, description="Run at this time (ISO 8601 with zone); default now")
    template: Annotated[str, Field(max_length=100, pattern=r"^[a-z0-9][a-z0-9-]*$")] | None = Field(
        default=None, description="The saved template `spec` was made from: its secrets shown as \"(hidden)\" "
        "are taken from it")

    @field_validator("at")
    @classmethod
    def _sensible_time(cls, v: datetime | None) -> datetime | None:
        if v is None:
            return v
        v = v if v.tzinfo else v.replace(tzinfo=UTC)
        now = datetime.now(UTC)
        if not now - timedelta(days=1) <= v <= now + timedelta(days=3650):
            raise ValueError("'at' must be within a day in the past and ten years ahead")
        return v


JobOut = JobRow  # one row shape for the API, the CLI and the dashboard


class LogLine(BaseModel):
    timestamp: datetime
    name: str
    message: str
    id: str | None = Field(default=None, description="The Prefect log id (in batches, i.e. with `limit`)")


class StateOut(BaseModel):
    timestamp: datetime
    type: str
    name: str
    message: str | None = None


class ArchivedFile(Open):
    sha256: str
    size: int


class JobUsageOut(BaseModel):
    """What a job's containers used, measured while they ran (docs/alerts-and-monitoring.md#usage-and-budgets)."""

    cpu_seconds: float
    memory_peak_bytes: int
    block_read_bytes: int
    block_write_bytes: int
    net_rx_bytes: int
    net_tx_bytes: int
    wall_seconds: float
    source: str = Field(description="cgroup, engine-stats (Docker's stats stream), or none (it never ran)")


class ManifestOut(Open):
    """The archive manifest of a finished job (more fields as the runner records them)."""

    job_id: str
    state: str
    exit_code: int | None = None
    reason: str | None = None
    message: str | None = None
    files: dict[str, ArchivedFile] = Field(default_factory=dict)
    manifest_sha256: str | None = None
    usage: JobUsageOut | None = None


class UsageSumOut(BaseModel):
    """The summed use of one user, project, pool or image (`key`; null: not recorded)."""

    key: str | None
    jobs: int
    cpu_seconds: float
    memory_peak_bytes: int = Field(description="The largest single job's peak")
    block_read_bytes: int
    block_write_bytes: int
    net_rx_bytes: int
    net_tx_bytes: int
    wall_seconds: float


class BudgetSet(Strict):
    cpu_hours: Annotated[float, Field(ge=0, le=1e9)] | None = Field(
        description="CPU-hours a month for the project's jobs; null removes the cap")


class BudgetOut(BaseModel):
    project: str
    cpu_hours: float | None = Field(description="The monthly budget; null: no cap")
    used_cpu_hours: float = Field(description="CPU-hours of the project's jobs finished this month (UTC)")
    resets: datetime = Field(description="When the month's count starts again")


# --- schedules and templates -------------------------------------------------------------------
ScheduleName = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9-]*$")]
SecretEnv = dict[EnvName, Annotated[str, Field(max_length=65536)]]
Text = Annotated[str, Field(max_length=65536)]


def _rrule_checked(body: Any) -> Any:
    """An RRule is checked (valid, occurs again, found within a bound) before anything else is done:
    an impossible one is a 422 within a second, never a CPU spent on it."""
    if body.rrule is not None:
        check_rrule(body.rrule, check_timezone(body.timezone))
    return body


class ScheduleCreate(Strict):
    """A named recurring job: the job (a spec or a saved template) and when it runs."""

    name: ScheduleName
    spec: JobSpec | None = Field(default=None, description="The job; or give `template`")
    template: ScheduleName | None = Field(default=None, description="A saved job template instead of `spec`")
    cron: Annotated[str, Field(max_length=200)] | None = None
    every: Annotated[str, Field(max_length=50)] | None = Field(default=None, description="e.g. 15m, 1h, 90s")
    rrule: Annotated[str, Field(max_length=2000)] | None = None
    timezone: Annotated[str, Field(max_length=100)] | None = Field(default=None, description="e.g. Europe/Berlin")
    start: datetime | None = Field(default=None, description="Anchor of an interval")
    overlap: Literal["allow", "skip", "queue"] = "allow"
    pool: Annotated[str, Field(max_length=200)] | None = None
    queue: Annotated[str, Field(max_length=200)] | None = None
    paused: bool = False
    secret_env: SecretEnv = Field(default_factory=dict, max_length=100)
    project: ProjectName | None = Field(default=None, description="Its project (default: the default project); "
                                       "a `template` is that project's")

    _rrule = model_validator(mode="after")(_rrule_checked)


class ScheduleAdd(Strict):
    """Another schedule for an existing named schedule; `command` and `env` give it a job
    parameter of its own (Prefect's per-schedule parameters)."""

    cron: Annotated[str, Field(max_length=200)] | None = None
    every: Annotated[str, Field(max_length=50)] | None = Field(default=None, description="e.g. 15m, 1h, 90s")
    rrule: Annotated[str, Field(max_length=2000)] | None = None
    timezone: Annotated[str, Field(max_length=100)] | None = None
    start: datetime | None = Field(default=None, description="Anchor of an interval")
    active: bool = True
    command: Text | list[Text] | None = Field(default=None, description="This schedule's own command")
    env: dict[EnvName, Text] = Field(default_factory=dict, max_length=100)

    _rrule = model_validator(mode="after")(_rrule_checked)


class RunAt(Strict):
    at: datetime | None = Field(default=None, description="When to run (default: now)")


class ScheduleEntryOut(BaseModel):
    """One Prefect schedule of a named schedule."""

    id: UUID
    description: str
    active: bool
    job: dict[str, Any] | None = Field(default=None, description="Its own job parameter, if it overrides")
    next_runs: list[datetime] = Field(default_factory=list)


class ScheduleOut(BaseModel):
    """A named schedule: its job, where it runs, overlap policy and next run times."""

    name: str
    project: str = Field(description="The project it belongs to")
    owner: str | None = Field(default=None, description="Who made it through the API (None: the server host)")
    deployment_id: UUID
    deployment: str = Field(description="The Prefect deployment: flow name/schedule name (`<project>--<name>` "
                            "outside the default project)")
    pool: str | None = None
    overlap: str
    paused: bool
    job: dict[str, Any] = Field(description="The job spec (secret values are never included)")
    schedules: list[ScheduleEntryOut]
    next_runs: list[datetime]


class TemplateCreate(Strict):
    name: ScheduleName
    spec: JobSpec
    secret_env: SecretEnv = Field(default_factory=dict, max_length=100)
    project: ProjectName | None = Field(default=None, description="Its project (default: the default project)")


class TemplateOut(Open):
    """A saved job template: JobSpec fields as saved (secrets as their Secret block names), its name in its
    project, its project and owner."""

    image: str
    name: str | None = None
    project: str | None = None
    owner: str | None = None


# --- projects ----------------------------------------------------------------------------------
class ProjectCreate(Strict):
    name: ProjectName
    description: Annotated[str, Field(max_length=500)] = ""


class ProjectOut(BaseModel):
    name: str
    description: str
    created_at: datetime
    role: str | None = Field(default=None, description="The caller's role there: viewer, operator, maintainer "
                             "or admin")
    members: int = 0


class MemberSet(Strict):
    role: Literal["viewer", "operator", "maintainer"]


class MemberOut(BaseModel):
    project: str
    username: str
    role: str


# --- pools, workers, health, audit --------------------------------------------------------------
PolicyText = Annotated[str, Field(max_length=200)]


class PoolSettingsUpdate(Strict):
    """The settings of a pool besides its HostPolicy: how its worker pulls, and the blocks it uses."""

    pull_policy: PolicyText | None = None
    docker_host: PolicyText | None = Field(default=None, description="A Docker Host block name")
    registry_credentials: PolicyText | None = Field(default=None,
                                                   description="A Docker Registry Credentials block name")
    archive_block: PolicyText | None = Field(default=None, description="A filesystem block slug")


class PoolSettingsOut(Open):
    pull_policy: str | None = None
    docker_host: str | None = None
    registry_credentials: str | None = None
    archive_block: str | None = None


def _policy_field(info: FieldInfo, request: bool) -> tuple[Any, Any]:
    """A HostPolicy setting as an optional field of PolicyUpdate (`request`: text bounded, a size also as
    text) or PolicyOut (as stored)."""
    kind = catalogue.kind(info)
    if catalogue.reach(info).size:
        return int | None, Field(default=None, gt=0 if request else None, description=info.description)
    if request and kind == "texts":
        return list[PolicyText] | None, Field(default=None, max_length=1000, description=info.description)
    if request and kind == "text":
        return PolicyText | None, Field(default=None, description=info.description)
    annotation = info.annotation
    return annotation | None, Field(default=None, description=info.description)  # type: ignore[operator]


def _size(cls: type, v: Any) -> Any:
    """Sizes may be given as bytes or with a unit ('500m')."""
    return parse_size(v) if isinstance(v, str) else v


_SIZES = [name for name, info in HostPolicy.model_fields.items() if catalogue.reach(info).size]
# Every HostPolicy setting, derived from it (swarmsync/catalogue.py): a new setting is in both at once.
PolicyUpdate = create_model(  # type: ignore[call-overload]
    "PolicyUpdate", __base__=PoolSettingsUpdate, __module__=__name__,
    __validators__={"_size": field_validator(*_SIZES, mode="before")(classmethod(_size))},
    **{name: _policy_field(info, True) for name, info in HostPolicy.model_fields.items()})
PolicyUpdate.__doc__ = """The settings to change (docs: Workers, pools and routing); those left out stay as they are,
    null clears a ceiling or a block. Every HostPolicy setting, and the pool's own (PoolSettingsUpdate)."""
PolicyOut = create_model(  # type: ignore[call-overload]
    "PolicyOut", __base__=PoolSettingsOut, __module__=__name__,
    **{name: _policy_field(info, False) for name, info in HostPolicy.model_fields.items()})
PolicyOut.__doc__ = """A pool's policy: the settings its base job template has (a pool of another type may have
    fewer, or others)."""


class QueueOut(BaseModel):
    name: str
    priority: int
    concurrency_limit: int | None = None
    paused: bool
    waiting: int = Field(0, description="Scheduled runs that are due: waiting for a worker or a free slot")
    scheduled: int = Field(0, description="Scheduled runs whose time has not come")
    running: int = Field(0, description="Pending or Running runs")


class PoolWorkerOut(BaseModel):
    name: str
    status: str | None = None
    last_heartbeat: datetime | None = None


class PoolOut(BaseModel):
    name: str
    type: str
    paused: bool
    concurrency_limit: int | None = None
    policy: PolicyOut
    queues: list[QueueOut]
    workers: list[PoolWorkerOut]


class AuditOut(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    target: str | None
    outcome: str
    address: str | None
    detail: dict[str, Any]


class Check(BaseModel):
    part: str
    ok: bool
    detail: str
    required: bool


# --- pipelines -------------------------------------------------------------------------------
class PipelineSubmission(Strict):
    pipeline: dict[str, Any] = Field(description="The pipeline file in its JSON form: name, max_parallel, pool, "
                                     "steps (step name -> needs, when, matrix, inputs_from, secret_env and the "
                                     "job's fields)")
    project: ProjectName | None = Field(default=None, description="The project it runs in (default: the default "
                                        "project)")
    at: datetime | None = Field(default=None, description="Start at this time (ISO 8601 with zone); default now")

    @field_validator("at")
    @classmethod
    def _sensible_time(cls, v: datetime | None) -> datetime | None:
        return JobSubmission._sensible_time(v)


StepOut = StepRow  # one step shape for the API, the CLI and the dashboard


class PipelineOut(BaseModel):
    id: str
    name: str
    state: str | None
    final: bool = False
    message: str | None = None
    user: str | None = None
    project: str
    created: datetime | None = None
    started: datetime | None = None
    ended: datetime | None = None
    max_parallel: int
    steps: list[StepOut] = Field(default_factory=list, description="Only on GET /pipelines/{id} and changes")


class PipelineScheduleCreate(Strict):
    """A named pipeline schedule: the pipeline (its file's JSON form) and when it runs."""

    name: ScheduleName
    pipeline: dict[str, Any] = Field(description="The pipeline file in its JSON form (as POST /pipelines)")
    cron: Annotated[str, Field(max_length=200)] | None = None
    every: Annotated[str, Field(max_length=50)] | None = Field(default=None, description="e.g. 15m, 1h, 90s")
    timezone: Annotated[str, Field(max_length=100)] | None = Field(default=None, description="e.g. Europe/Berlin")
    paused: bool = False
    project: ProjectName | None = Field(default=None, description="Its project (default: the default project)")


class PipelineScheduleOut(BaseModel):
    """A named pipeline schedule: its pipeline (resolved; Secret block names only), owner and next runs."""

    name: str
    project: str
    owner: str | None = Field(default=None, description="Who made it through the API (None: the server host)")
    deployment_id: UUID
    deployment: str = Field(description="The Prefect deployment: pipeline/<name> (`<project>--<name>` outside the "
                            "default project)")
    paused: bool
    pipeline: dict[str, Any] = Field(description="The resolved pipeline it runs (secret values never included)")
    steps: list[str] = Field(default_factory=list, description="Its steps' names (a matrix expanded)")
    schedules: list[str] = Field(default_factory=list, description="Each Prefect schedule, described")
    next_runs: list[datetime] = Field(default_factory=list)
