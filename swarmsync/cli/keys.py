"""`swarmsync key add|list|remove`: SSH keys to log in with (one's own; admins: anyone's)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from swarmsync.cli.console import DataTable, console, err, fail
from swarmsync.cli.target import local_principal
from swarmsync.client import Client, remote_configured

app = typer.Typer(no_args_is_help=True, help="Manage SSH keys for 'swarmsync login --key'.")

User = Annotated[
    str | None, typer.Option("--user", help="Whose keys (default: yours; admins: anyone's; server host: required)")
]


def _local_user(user: str | None) -> str:
    if not user:
        fail("on the server host, name the user with --user")
    return user


@app.command("add")
def add(
    public_key: Annotated[Path, typer.Argument(help="The public key file, e.g. ~/.ssh/id_ed25519.pub ('-': stdin)")],
    user: User = None,
) -> None:
    """Register a public key (ssh-ed25519 or sk-ssh-ed25519@openssh.com) to log in with."""
    from swarmsync.auth import ssh_keys

    if str(public_key) == "-":
        line = typer.get_text_stream("stdin").read()
    else:
        path = public_key.expanduser()
        if path.suffix != ".pub" and path.with_name(path.name + ".pub").exists():
            path = path.with_name(path.name + ".pub")  # never send a private key: take its .pub
        try:
            line = path.read_text(errors="replace")
        except OSError as exc:
            fail(f"cannot read {path}: {exc.strerror}")
    if "PRIVATE KEY" in line:
        fail(f"{public_key} is a private key: give its public half (the .pub file)")
    if remote_configured():
        row = Client.from_settings().add_key(line.strip(), user)
    else:
        row = vars(ssh_keys.add_key(local_principal(), line.strip(), _local_user(user)))
    err.print(f"added {row['key_type']} key {row['fingerprint']} ({row['comment'] or 'no comment'}) "
              f"for {row['owner']}")


@app.command("list")
def list_keys(user: User = None) -> None:
    """Your SSH login keys (admins: anyone's with --user)."""
    from swarmsync.auth import ssh_keys

    if remote_configured():
        rows = Client.from_settings().keys(user)
    else:
        rows = [vars(k) for k in ssh_keys.list_keys(local_principal(), _local_user(user))]
    table = DataTable("fingerprint", "type", "comment", "owner", "added", "last used")
    for row in rows:
        table.add_row(row["fingerprint"], row["key_type"], row["comment"], row["owner"], str(row["created_at"]),
                      str(row["last_used_at"] or "-"))
    console.print(table)


@app.command("remove")
def remove(
    fingerprint: Annotated[str, typer.Argument(help="SHA256:... as 'swarmsync key list' shows it")],
    user: User = None,
) -> None:
    """Remove (revoke) a key: logins with it are refused from now on."""
    from swarmsync.auth import ssh_keys

    if remote_configured():
        row = Client.from_settings().remove_key(fingerprint, user)
    else:
        row = vars(ssh_keys.remove_key(local_principal(), fingerprint, _local_user(user)))
    err.print(f"removed key {row['fingerprint']} of {row['owner']}")
