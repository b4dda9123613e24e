"""A user's principal read from the database, for work done later on their behalf (a pipeline resumed
runs its steps as its submitter, not as whoever resumes it)."""

from __future__ import annotations

from sqlalchemy import select

from swarmsync.auth import projects
from swarmsync.auth.roles import Forbidden, Principal, Role
from swarmsync.db import User, session_scope


def principal_of(username: str, why: str) -> Principal:
    """`username` as a principal with their role and memberships now; Forbidden when they are gone or
    disabled (`why`: what they did, for the message, e.g. "who submitted pipeline X")."""
    with session_scope() as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None or user.disabled:
            raise Forbidden(f"{username}, {why}, is no longer a user (removed or disabled)")
        return Principal(username=user.username, role=Role(user.role), user_id=user.id, via="owner",
                         memberships=projects.memberships(session, user))
