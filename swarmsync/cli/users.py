"""`swarmsync user add|list|disable|enable|set-role|set-password`.

Through the API when SWARMSYNC_URL is set (or after `swarmsync login`); otherwise
straight into SwarmSync's database on the server host, as the local administrator.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from swarmsync.cli.console import DataTable, console, err, fail, read_password
from swarmsync.cli.options import PasswordStdin
from swarmsync.cli.target import local_principal, project_admin
from swarmsync.client import Client, remote_configured

app = typer.Typer(no_args_is_help=True, help="Manage user accounts (admins).")


def _show(info: Any) -> None:
    row = info if isinstance(info, dict) else vars(info)
    state = "disabled" if row["disabled"] else "enabled"
    err.print(f"{row['username']}: {row['role']}, {state}")


@app.command("add")
def add(
    username: str,
    role: Annotated[str, typer.Option(help="admin, operator or viewer")] = "viewer",
    password_stdin: PasswordStdin = False,
    no_default_project: Annotated[bool, typer.Option(
        "--no-default-project", help="Do not join the default project (every new user does, as an operator)")
    ] = False,
    project: Annotated[str | None, typer.Option(
        "--project", "-P", help="Also add the user to this project (see 'swarmsync project list')")] = None,
    project_role: Annotated[str, typer.Option(
        help="Their role in --project: viewer, operator or maintainer")] = "operator",
) -> None:
    """Add a user (the first admin: `swarmsync user add NAME --role admin` on the server host). They join the
    default project as an operator (capped by their role) unless --no-default-project; --project adds another."""
    from swarmsync.auth import users
    from swarmsync.auth.projects import DEFAULT_PROJECT, ProjectError

    password = read_password(password_stdin, confirm=True)
    if remote_configured():
        _show(Client.from_settings().add_user(username, password, role))
    else:
        _show(users.add_user(local_principal(), username, password, role, join_default=not no_default_project))
    try:
        if no_default_project and remote_configured():  # the API adds every new user to it: take them out
            project_admin().remove_member(DEFAULT_PROJECT, username)
        if project:
            member = project_admin().set_member(project, username, project_role)
            err.print(f"{username} is {member['role']} in project {project}")
    except (ProjectError, LookupError) as exc:
        fail(f"user {username} was added, but its projects were not set: {exc}")


@app.command("list")
def list_users() -> None:
    """All users with their roles."""
    from swarmsync.auth import users

    if remote_configured():
        rows = Client.from_settings().users()
    else:
        rows = [vars(u) for u in users.list_users(local_principal())]
    table = DataTable("user", "role", "state", "created")
    for row in rows:
        state = "disabled" if row["disabled"] else "enabled"
        table.add_row(row["username"], row["role"], state, str(row["created_at"]))
    console.print(table)


def _set_disabled(username: str, disabled: bool) -> None:
    from swarmsync.auth import users

    if remote_configured():
        _show(Client.from_settings().update_user(username, disabled=disabled))
    else:
        _show(users.set_disabled(local_principal(), username, disabled))


@app.command("disable")
def disable(username: str) -> None:
    """Disable a user: their sessions end at once, their tokens stop working."""
    _set_disabled(username, True)


@app.command("enable")
def enable(username: str) -> None:
    """Enable a disabled user again."""
    _set_disabled(username, False)


@app.command("set-role")
def set_role(username: str, role: Annotated[str, typer.Argument(help="admin, operator or viewer")]) -> None:
    """Change a user's role (their sessions end; the last admin keeps theirs)."""
    from swarmsync.auth import users

    if remote_configured():
        _show(Client.from_settings().update_user(username, role=role))
    else:
        _show(users.set_role(local_principal(), username, role))


@app.command("set-password")
def set_password(username: str, password_stdin: PasswordStdin = False) -> None:
    """Set a user's password (admins); every session of the user ends."""
    from swarmsync.auth import users

    password = read_password(password_stdin, confirm=True, prompt="New password")
    if remote_configured():
        _show(Client.from_settings().update_user(username, password=password))
    else:
        _show(users.set_password(local_principal(), username, password))
