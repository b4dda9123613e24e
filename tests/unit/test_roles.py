"""The one authorization function: roles -> permissions, token scopes, clear refusals."""

import pytest

from swarmsync.auth import ROLE_PERMISSIONS, Forbidden, Permission, Principal, Role, Unauthenticated, authorize
from swarmsync.auth.roles import parse_role, parse_scopes

VIEWER_MAY = {Permission.JOBS_READ, Permission.SCHEDULES_READ, Permission.HEALTH_READ, Permission.TOKENS_OWN,
              Permission.KEYS_OWN, Permission.PROJECTS_READ}
OPERATOR_MAY = VIEWER_MAY | {Permission.JOBS_SUBMIT, Permission.JOBS_CANCEL, Permission.SCHEDULES_WRITE}


@pytest.mark.parametrize("permission", list(Permission))
@pytest.mark.parametrize("role", list(Role))
def test_every_role_gets_exactly_its_permissions(role, permission):
    principal = Principal(username="someone", role=role, user_id=1)
    allowed = {Role.ADMIN: set(Permission), Role.OPERATOR: OPERATOR_MAY, Role.VIEWER: VIEWER_MAY}[role]
    if permission in allowed:
        assert authorize(principal, permission) is principal
    else:
        with pytest.raises(Forbidden, match=f"may not {permission.value}"):
            authorize(principal, permission)


def test_nobody_is_refused_as_unauthenticated():
    with pytest.raises(Unauthenticated, match="authentication required"):
        authorize(None, Permission.JOBS_READ)


def test_token_scopes_narrow_but_never_widen_the_role():
    scoped = Principal("op", Role.OPERATOR, 1, "token", frozenset({Permission.JOBS_READ, Permission.USERS_MANAGE}))
    assert scoped.permissions == {Permission.JOBS_READ}
    with pytest.raises(Forbidden, match="token scopes"):
        authorize(scoped, Permission.JOBS_SUBMIT)
    with pytest.raises(Forbidden, match="role"):
        authorize(scoped, Permission.USERS_MANAGE)


def test_the_server_hosts_own_cli_is_the_administrator():
    assert Principal.local().permissions == ROLE_PERMISSIONS[Role.ADMIN]


def test_unknown_roles_and_scopes_are_refused_with_the_known_ones():
    assert parse_role("Operator") is Role.OPERATOR
    with pytest.raises(ValueError, match="admin, operator or viewer"):
        parse_role("root")
    assert parse_scopes(["jobs:read", "jobs:read"]) == ["jobs:read"]
    with pytest.raises(ValueError, match="jobs:submit"):
        parse_scopes(["jobs:everything"])


def test_a_metrics_scoped_token_may_read_metrics_and_nothing_else():
    scraper = Principal(username="admin", role=Role.ADMIN, user_id=1, via="token",
                        scopes=frozenset({Permission.METRICS_READ}))
    assert authorize(scraper, Permission.METRICS_READ) is scraper
    for permission in set(Permission) - {Permission.METRICS_READ}:
        with pytest.raises(Forbidden, match="token scopes"):
            authorize(scraper, permission)
    for role in (Role.OPERATOR, Role.VIEWER):  # only admins (and their scraper tokens) read metrics
        with pytest.raises(Forbidden, match="not allowed by role"):
            authorize(Principal(username="someone", role=role, user_id=2), Permission.METRICS_READ)
