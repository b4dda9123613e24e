"""Roles, permissions and THE authorization check every way in calls.

The API, the CLI (local and remote) and the Python client all end in `authorize()`;
nothing else decides what a role may do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TypeVar

from swarmsync.errors import RefusedError

E = TypeVar("E", bound=StrEnum)


class Role(StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"
    VIEWER = "viewer"


class Permission(StrEnum):
    JOBS_READ = "jobs:read"  # list, status, logs, result and file downloads
    JOBS_SUBMIT = "jobs:submit"
    JOBS_CANCEL = "jobs:cancel"
    SCHEDULES_READ = "schedules:read"
    SCHEDULES_WRITE = "schedules:write"  # schedules and job templates
    HEALTH_READ = "health:read"  # workers and health checks
    TOKENS_OWN = "tokens:own"  # create, list and revoke one's own API tokens
    TOKENS_MANAGE = "tokens:manage"  # everyone's tokens
    KEYS_OWN = "keys:own"  # add, list and remove one's own SSH login keys (everyone's: users:manage)
    USERS_MANAGE = "users:manage"
    POOLS_MANAGE = "pools:manage"  # pool policy
    AUDIT_READ = "audit:read"
    SETTINGS_MANAGE = "settings:manage"  # the dashboard's options file
    PROJECTS_READ = "projects:read"  # one's projects and their members
    PROJECTS_MANAGE = "projects:manage"  # create and delete projects (members: a project's maintainers too)
    METRICS_READ = "metrics:read"  # GET /metrics (admins; a scraper's token: --scope metrics:read, nothing else)


_VIEWER = {Permission.JOBS_READ, Permission.SCHEDULES_READ, Permission.HEALTH_READ, Permission.TOKENS_OWN,
           Permission.KEYS_OWN, Permission.PROJECTS_READ}
_OPERATOR = _VIEWER | {Permission.JOBS_SUBMIT, Permission.JOBS_CANCEL, Permission.SCHEDULES_WRITE}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: frozenset(_VIEWER),
    Role.OPERATOR: frozenset(_OPERATOR),
    Role.ADMIN: frozenset(Permission),
}


class AuthError(RefusedError):
    """Base of the two ways a request is refused."""

    status_code = 401


class Unauthenticated(AuthError):
    """No valid credentials (missing, wrong, expired, revoked, forged): HTTP 401."""

    status_code = 401


class Forbidden(AuthError):
    """Known caller, but the role (or token scopes) do not allow it: HTTP 403."""

    status_code = 403


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user through a session or an API token, or the server host itself."""

    username: str
    role: Role
    user_id: int | None = None
    via: str = "session"  # session, token, local
    scopes: frozenset[Permission] = field(default_factory=frozenset)  # empty: all of the role's
    token_id: int | None = None
    expires_at: datetime | None = None  # an expiring API token's end (None: sessions, tokens without expiry)
    memberships: tuple[tuple[str, str], ...] = ()  # (project, role there) pairs; admins need none

    @property
    def projects(self) -> dict[str, str]:
        """The projects this principal is a member of, with its role there (see swarmsync.auth.projects)."""
        return dict(self.memberships)

    @classmethod
    def local(cls) -> Principal:
        """The server host's own CLI: whoever can write SwarmSync's database is its administrator."""
        return cls(username="local", role=Role.ADMIN, via="local")

    @property
    def permissions(self) -> frozenset[Permission]:
        allowed = ROLE_PERMISSIONS[self.role]
        return allowed & self.scopes if self.scopes else allowed


def authorize(principal: Principal | None, permission: Permission) -> Principal:
    """Return the principal when it may do `permission`; raise Unauthenticated/Forbidden otherwise."""
    if principal is None:
        raise Unauthenticated("authentication required: log in ('swarmsync login URL') or send a token")
    if permission not in principal.permissions:
        why = "token scopes" if principal.scopes and permission in ROLE_PERMISSIONS[principal.role] else "role"
        raise Forbidden(
            f"{principal.username} ({principal.role.value}) may not {permission.value}: not allowed by {why}"
        )
    return principal


def parse_choice(kind: type[E], value: str, what: str, error: type[Exception] = ValueError) -> E:
    """`value` (any case) as a member of `kind`, else `error` naming the choices."""
    try:
        return kind(value.lower())
    except ValueError:
        *first, last = [member.value for member in kind]
        raise error(f"unknown {what} {value!r}: expected {', '.join(first)} or {last}") from None


def parse_role(value: str) -> Role:
    return parse_choice(Role, value, "role")


def parse_scopes(values: list[str] | None) -> list[str]:
    scopes = []
    for value in values or []:
        try:
            scopes.append(Permission(value).value)
        except ValueError:
            known = ", ".join(p.value for p in Permission)
            raise ValueError(f"unknown scope {value!r}: expected some of {known}") from None
    return sorted(set(scopes))
