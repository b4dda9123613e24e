"""`swarmsync token create|list|revoke`: API tokens (one's own; admins: anyone's)."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from swarmsync.auth import tokens
from swarmsync.cli.users import _local
from swarmsync.client import Client, remote_configured

token_app = typer.Typer(no_args_is_help=True, help="Manage API tokens.")
console = Console()
err = Console(stderr=True)


@token_app.command("create")
def create(
    name: str,
    user: str = typer.Option(None, "--user", help="Owner (default: you; on the server host: required)"),
    scope: list[str] = typer.Option([], "--scope", help="Limit to a permission, e.g. jobs:read (repeatable)"),
    expires_in_days: float = typer.Option(None, "--expires-in-days", help="Expiry (default: none)"),
) -> None:
    """Create an API token; prints its secret once (to stdout, nothing else)."""
    if remote_configured():
        body = Client.from_settings().create_token(name, user, list(scope), expires_in_days)
        secret, token_id, owner = body["token"], body["id"], body["owner"]
    else:
        if not user:
            err.print("[red]error:[/red] on the server host, name the owner with --user")
            raise typer.Exit(2)
        new = tokens.create_token(_local(), name, user, list(scope), expires_in_days)
        secret, token_id, owner = new.token, new.info.id, new.info.owner
    err.print(f"token {token_id} {name!r} for {owner}; store it now, it is not shown again:")
    typer.echo(secret)


@token_app.command("list")
def list_tokens(all_users: bool = typer.Option(False, "--all", help="Everyone's tokens (admins)")) -> None:
    """Your tokens (never their secrets)."""
    if remote_configured():
        rows = Client.from_settings().tokens(everyone=all_users)
    else:
        rows = [vars(t) for t in tokens.list_tokens(_local(), everyone=True)]
    table = Table("id", "name", "owner", "scopes", "expires", "last used", "state")
    for row in rows:
        table.add_row(str(row["id"]), row["name"], row["owner"], " ".join(row["scopes"]) or "(role)",
                      str(row["expires_at"] or "never"), str(row["last_used_at"] or "-"),
                      "revoked" if row["revoked"] else "active")
    console.print(table)


@token_app.command("revoke")
def revoke(token_id: int) -> None:
    """Revoke a token: it stops working at once."""
    if remote_configured():
        Client.from_settings().revoke_token(token_id)
    else:
        tokens.revoke_token(_local(), token_id)
    err.print(f"token {token_id} revoked")
