"""`swarmsync user add|list|disable|enable|set-role|set-password`.

Through the API when SWARMSYNC_URL is set (or after `swarmsync login`); otherwise
straight into SwarmSync's database on the server host, as the local administrator.
"""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from swarmsync.auth import users
from swarmsync.auth.roles import Principal
from swarmsync.cli.accounts import read_password
from swarmsync.client import Client, remote_configured

user_app = typer.Typer(no_args_is_help=True, help="Manage user accounts (admins).")
console = Console()
err = Console(stderr=True)


def _local() -> Principal:
    from swarmsync.db import migrate

    migrate()
    return Principal.local()


def _show(info) -> None:
    row = info if isinstance(info, dict) else vars(info)
    state = "disabled" if row["disabled"] else "enabled"
    err.print(f"{row['username']}: {row['role']}, {state}")


@user_app.command("add")
def add(
    username: str,
    role: str = typer.Option("viewer", help="admin, operator or viewer"),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from stdin"),
) -> None:
    """Add a user (the first admin: `swarmsync user add NAME --role admin` on the server host)."""
    password = read_password(password_stdin, confirm=True)
    if remote_configured():
        _show(Client.from_settings().add_user(username, password, role))
    else:
        _show(users.add_user(_local(), username, password, role))


@user_app.command("list")
def list_users() -> None:
    """All users with their roles."""
    rows = Client.from_settings().users() if remote_configured() else [vars(u) for u in users.list_users(_local())]
    table = Table("user", "role", "state", "created")
    for row in rows:
        state = "disabled" if row["disabled"] else "enabled"
        table.add_row(row["username"], row["role"], state, str(row["created_at"]))
    console.print(table)


def _set_disabled(username: str, disabled: bool) -> None:
    if remote_configured():
        _show(Client.from_settings().update_user(username, disabled=disabled))
    else:
        _show(users.set_disabled(_local(), username, disabled))


@user_app.command("disable")
def disable(username: str) -> None:
    """Disable a user: their sessions end at once, their tokens stop working."""
    _set_disabled(username, True)


@user_app.command("enable")
def enable(username: str) -> None:
    """Enable a disabled user again."""
    _set_disabled(username, False)


@user_app.command("set-role")
def set_role(username: str, role: str = typer.Argument(..., help="admin, operator or viewer")) -> None:
    """Change a user's role (their sessions end; the last admin keeps theirs)."""
    if remote_configured():
        _show(Client.from_settings().update_user(username, role=role))
    else:
        _show(users.set_role(_local(), username, role))


@user_app.command("set-password")
def set_password(
    username: str,
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from stdin"),
) -> None:
    """Set a user's password (admins); every session of the user ends."""
    password = read_password(password_stdin, confirm=True, prompt="New password")
    if remote_configured():
        _show(Client.from_settings().update_user(username, password=password))
    else:
        _show(users.set_password(_local(), username, password))
