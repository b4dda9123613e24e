"""`swarmsync api`, `login`, `logout`, `whoami`: the API server and signing in to it."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from swarmsync.client import APIError, Client, forget_credentials, load_credentials, save_credentials

err = Console(stderr=True)


def read_password(from_stdin: bool, confirm: bool = False, prompt: str = "Password") -> str:
    """From stdin (one line, for scripts) or a hidden prompt; never from the command line."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm)


def register(app: typer.Typer) -> None:
    @app.command()
    def api(
        host: str = typer.Option(None, help="Bind address (default: SWARMSYNC_API_HOST, else SWARMSYNC_HOST)"),
        port: int = typer.Option(None, help="Port (default: SWARMSYNC_API_PORT)"),
    ) -> None:
        """Serve the SwarmSync API (accounts, tokens, jobs over HTTP; OpenAPI at /docs)."""
        from swarmsync.api.server import serve

        serve(host, port)

    @app.command()
    def login(
        url: str = typer.Argument(..., help="The SwarmSync API, e.g. http://server:4280"),
        username: str = typer.Option(..., "--username", "-u", prompt=True),
        password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from stdin"),
    ) -> None:
        """Log in; the session token is stored in SWARMSYNC_CONFIG_DIR/credentials.json (mode 0600)."""
        password = read_password(password_stdin)
        try:
            client = Client.login(url, username, password)
        except APIError as exc:
            err.print(f"[red]login failed:[/red] {exc}")
            raise typer.Exit(1) from None
        path = save_credentials(url, client.session["token"], username)
        err.print(f"logged in to {url} as {username} ({client.session['user']['role']}); "
                  f"token in {path}, valid until {client.session['expires_at']}")

    @app.command()
    def logout() -> None:
        """End the stored session on the server and forget it here."""
        if load_credentials().get("token"):
            try:
                Client.from_settings().logout()
            except (APIError, OSError) as exc:
                err.print(f"server logout failed ({exc}); forgetting the token here anyway")
        err.print("logged out" if forget_credentials() else "not logged in")

    @app.command()
    def whoami() -> None:
        """Who the API knows you as, with your role and permissions."""
        me = Client.from_settings().me()
        typer.echo(f"{me['username']} ({me['role']}, via {me['via']}): {' '.join(me['permissions'])}")
