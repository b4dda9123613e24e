"""`swarmsync api`, `login`, `logout`, `whoami`: the API server and signing in to it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from swarmsync.cli.console import err, fail, read_password
from swarmsync.cli.options import PasswordStdin
from swarmsync.client import APIError, Client, forget_credentials, load_credentials, save_credentials
from swarmsync.sshsign import SigningError

app = typer.Typer()


@app.command()
def api(
    host: Annotated[
        str | None, typer.Option(help="Bind address (default: SWARMSYNC_API_HOST, else SWARMSYNC_HOST)")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: SWARMSYNC_API_PORT)")] = None,
) -> None:
    """Serve the SwarmSync API (accounts, tokens, jobs over HTTP; OpenAPI at /docs)."""
    from swarmsync.api.server import serve
    from swarmsync.tls import TLSError

    try:
        serve(host, port)
    except TLSError as exc:
        fail(f"cannot serve HTTPS: {exc}", 2)


@app.command()
def login(
    url: Annotated[str, typer.Argument(help="The SwarmSync API, e.g. https://server:4280")],
    username: Annotated[str, typer.Option("--username", "-u", prompt=True)],
    password_stdin: PasswordStdin = False,
    key: Annotated[
        Path | None, typer.Option("--key", "-k", help="Log in with this SSH key instead of a password: the private "
                                  "key file (e.g. ~/.ssh/id_ed25519), or its .pub whose private half is in ssh-agent "
                                  "(SSH_AUTH_SOCK). Register it first: 'swarmsync key add KEY.pub'.")
    ] = None,
    ca: Annotated[
        Path | None, typer.Option("--ca", help="Verify the server with this CA certificate (PEM; the server's "
                                  "$SWARMSYNC_HOME/tls/ca.pem): stored with the login, later commands verify with it")
    ] = None,
    fingerprint: Annotated[
        str | None, typer.Option("--fingerprint", "--ca-fingerprint",
                                 help="Fetch the server's CA (GET /tls/ca.pem) and trust it only if its fingerprint "
                                 "is this one (sha256:..., from 'swarmsync tls show' on the server)")
    ] = None,
) -> None:
    """Log in; the session token (and the CA of --ca / --fingerprint) is stored in
    SWARMSYNC_CONFIG_DIR/credentials.json (mode 0600)."""
    pem = _trusted_ca(url, ca, fingerprint)
    try:
        if key is not None:
            client = Client.login_with_key(url, username, key, ca=pem)
        else:
            client = Client.login(url, username, read_password(password_stdin), ca=pem)
    except (APIError, SigningError) as exc:
        fail(f"login failed: {exc}", 1)
    path = save_credentials(url, client.session["token"], username, load_credentials().get("project"), ca=pem)
    err.print(f"logged in to {url} as {username} ({client.session['user']['role']}); "
              f"token in {path}, valid until {client.session['expires_at']}")


def _trusted_ca(url: str, ca: Path | None, fingerprint: str | None) -> bytes | None:
    """The PEM of the CA `login` verifies (and stores): the file of --ca, or the server's checked by --fingerprint."""
    from swarmsync.tls import TLSError, fetch_ca
    from swarmsync.tls import fingerprint as fingerprint_of

    if ca is not None and fingerprint is not None:
        fail("give --ca or --fingerprint, not both", 2)
    try:
        if fingerprint is not None:
            return fetch_ca(url, fingerprint)
        if ca is not None:
            try:
                pem = ca.expanduser().read_bytes()
            except OSError as exc:
                fail(f"--ca {ca}: {exc.strerror}", 2)
            fingerprint_of(pem)  # a certificate, or TLSError
            return pem
    except TLSError as exc:
        fail(f"--ca/--fingerprint: {exc}", 2)
    return None


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
