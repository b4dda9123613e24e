"""Accounts: users and roles, passwords, sessions, API tokens, login rate limits, audit.

`roles.authorize(principal, permission)` is the one check every way in calls.
"""

from swarmsync.auth.roles import (
    ROLE_PERMISSIONS,
    AuthError,
    Forbidden,
    Permission,
    Principal,
    Role,
    Unauthenticated,
    authorize,
)

__all__ = [
    "ROLE_PERMISSIONS", "AuthError", "Forbidden", "Permission", "Principal", "Role", "Unauthenticated",
    "authorize",
]
