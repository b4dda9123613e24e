"""Request and response bodies of the SwarmSync API (bounded text fields everywhere)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from swarmsync.jobs import JobRow
from swarmsync.spec import JobSpec

Name = Annotated[str, Field(min_length=1, max_length=64)]
Password = Annotated[str, Field(min_length=1, max_length=1024)]
RoleName = Literal["admin", "operator", "viewer"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginRequest(Strict):
    username: Name
    password: Password


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


class TokenOut(BaseModel):
    id: int
    name: str
    owner: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked: bool


class TokenCreated(TokenOut):
    token: str = Field(description="The secret, shown only now")


class JobSubmission(Strict):
    spec: JobSpec
    secret_env: dict[Annotated[str, Field(max_length=200)], Annotated[str, Field(max_length=65536)]] = Field(
        default_factory=dict, max_length=100, description="Values stored as Prefect Secret blocks, never archived"
    )
    pool: Annotated[str, Field(max_length=200)] | None = None
    queue: Annotated[str, Field(max_length=200)] | None = None
    at: datetime | None = Field(default=None, description="Run at this time (ISO 8601 with zone); default now")

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


class StateOut(BaseModel):
    timestamp: datetime
    type: str
    name: str
    message: str | None = None


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
    policy: dict[str, Any]
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
