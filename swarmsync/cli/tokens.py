"""`swarmsync token create|list|revoke`: API tokens (one's own; admins: anyone's)."""

from __future__ import annotations

from typing import Annotated

import typer

from swarmsync.cli.console import DataTable, console, err, fail
from swarmsync.cli.target import local_principal
from swarmsync.client import Client, remote_configured

app = typer.Typer(no_args_is_help=True, help="Manage API tokens.")


@app.command("create")
def create(
    name: str,
    user: Annotated[
        str | None, typer.Option("--user", help="Owner (default: you; on the server host: required)")
    ] = None,
    scope: Annotated[
        list[str] | None, typer.Option("--scope", help="Limit to a permission, e.g. jobs:read (repeatable)")
    ] = None,
    expires_in_days: Annotated[
        float | None, typer.Option("--expires-in-days", help="Expiry (default: none)")
    ] = None,
) -> None:
    """Create an API token; prints its secret once (to stdout, nothing else)."""
    from swarmsync.auth import tokens

    scopes = list(scope or [])
    if remote_configured():
        body = Client.from_settings().create_token(name, user, scopes, expires_in_days)
        secret, token_id, owner = body["token"], body["id"], body["owner"]
    else:
        if not user:
            fail("on the server host, name the owner with --user")
        new = tokens.create_token(local_principal(), name, user, scopes, expires_in_days)
        secret, token_id, owner = new.token, new.info.id, new.info.owner
    err.print(f"token {token_id} {name!r} for {owner}; store it now, it is not shown again:")
    typer.echo(secret)


@app.command("list")
def list_tokens(
    all_users: Annotated[bool, typer.Option("--all", help="Everyone's tokens (admins)")] = False,
) -> None:
    """Your tokens (never their secrets)."""
    from swarmsync.auth import tokens

    if remote_configured():
        rows = Client.from_settings().tokens(everyone=all_users)
    else:
        rows = [t.model_dump() for t in tokens.list_tokens(local_principal(), everyone=True)]
    table = DataTable("id", "name", "owner", "scopes", "expires", "last used", "state")
    for row in rows:
        table.add_row(str(row["id"]), row["name"], row["owner"], " ".join(row["scopes"]) or "(role)",
                      str(row["expires_at"] or "never"), str(row["last_used_at"] or "-"),
                      "revoked" if row["revoked"] else "active")
    console.print(table)


@app.command("revoke")
def revoke(token_id: int) -> None:
    """Revoke a token: it stops working at once."""
    from swarmsync.auth import tokens

    if remote_configured():
        Client.from_settings().revoke_token(token_id)
    else:
        tokens.revoke_token(local_principal(), token_id)
    err.print(f"token {token_id} revoked")
