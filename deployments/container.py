"""The entrypoint of SwarmSync's container image (`swarmsync-entrypoint COMMAND`): one image, one
command per part of the stack, each with its health check.

    server           Prefect's server in one process (API + background services; migrates at start)
    prefect-migrate  Prefect's database migrations and block types, once (then exits)
    server-api       Prefect's API only (`--no-services`, no migrations): several behind a load balancer
    server-services  Prefect's background services (`prefect server services start`), one per installation
    migrate          SwarmSync's migrations, the first admin, block types, the work pool and its deployment
    api              the SwarmSync API            dashboard   the Streamlit dashboard
    worker           a SwarmSync worker (needs a Docker engine: the socket or DOCKER_HOST)
    pipelines        Core's pipeline worker (Prefect's process worker of the pool swarmsync-pipelines; on the
                     server host, never a worker host: it creates flow runs; docs/pipelines.md)
    healthcheck      the health check of the command this container runs (the image's HEALTHCHECK)
    cli ARGS...      `swarmsync ARGS...`; `swarmsync ARGS...`, `prefect ARGS...` and any other program run as given

Secrets may come from files (compose secrets): for each `NAME_FILE` naming a readable file, the
setting `NAME` is read from it (e.g. SWARMSYNC_PREFECT_AUTH_STRING_FILE=/run/secrets/prefect_auth).
A database or Redis URL naming no password gets POSTGRES_PASSWORD / REDIS_PASSWORD (URL_PASSWORDS).
What is read from files lives only in the environment of the process started here (its
/proc/PID/environ, readable by the container's user and root), never in the container's
configuration (`docker inspect`).
SWARMSYNC_PREFECT_AUTH_STRING becomes Prefect's PREFECT_SERVER_API_AUTH_STRING (server) and
PREFECT_API_AUTH_STRING (clients), as `swarmsync up` does.
"""

from __future__ import annotations

import os
import socket
import ssl
import sys
from pathlib import Path

ROLE_FILE = Path(os.environ.get("SWARMSYNC_ROLE_FILE", "/tmp/swarmsync-role"))
SERVICES = ("server", "prefect-migrate", "server-api", "server-services", "migrate", "api", "dashboard", "worker",
            "pipelines")
SECRET_PREFIXES = ("SWARMSYNC_", "PREFECT_", "POSTGRES_", "REDIS_")


# settings whose own name ends in _FILE: a path SwarmSync reads itself, never a secret to load
SETTINGS_NAMED_FILE = frozenset({"SWARMSYNC_CA_FILE"})


def secrets_from_files(env: dict[str, str]) -> dict[str, str]:
    """`NAME_FILE=/path` -> `NAME=<the file's content, without the final newline>` (a set NAME wins)."""
    out = dict(env)
    for key, path in env.items():
        name = key.removesuffix("_FILE")
        if key in SETTINGS_NAMED_FILE:
            continue
        if key.endswith("_FILE") and name.startswith(SECRET_PREFIXES) and not env.get(name):
            try:
                out[name] = Path(path).read_text().rstrip("\r\n")
            except OSError as exc:
                sys.exit(f"swarmsync-entrypoint: {key}={path}: {exc.strerror}")
    return out


def database_url_from_parts(env: dict[str, str]) -> dict[str, str]:
    """SWARMSYNC_DATABASE_URL unset (or empty) but POSTGRES_PASSWORD set: SwarmSync's database on
    POSTGRES_HOST (default `postgres`), POSTGRES_PORT, database POSTGRES_DB (default `swarmsync`),
    role POSTGRES_USER (default `swarmsync`), the password URL-quoted. (worker.yaml uses this.)"""
    from urllib.parse import quote

    out = dict(env)
    if not env.get("SWARMSYNC_DATABASE_URL") and env.get("POSTGRES_PASSWORD"):
        out["SWARMSYNC_DATABASE_URL"] = (
            f"postgresql+psycopg://{quote(env.get('POSTGRES_USER') or 'swarmsync', safe='')}:"
            f"{quote(env['POSTGRES_PASSWORD'], safe='')}@{env.get('POSTGRES_HOST') or 'postgres'}:"
            f"{env.get('POSTGRES_PORT') or '5432'}/{env.get('POSTGRES_DB') or 'swarmsync'}"
        )
    out.pop("POSTGRES_PASSWORD", None)  # only the URL goes on to SwarmSync
    return out


# URL settings that get the password of their server from its secret when they name none: compose
# writes the URLs without passwords (postgresql+psycopg://swarmsync@postgres:5432/swarmsync), the
# passwords come from files (POSTGRES_PASSWORD_FILE, REDIS_PASSWORD_FILE), and `docker inspect`
# shows no password. The URLs with passwords exist only in the environment of the process exec'd here.
URL_PASSWORDS = {
    "SWARMSYNC_DATABASE_URL": "POSTGRES_PASSWORD",
    "PREFECT_API_DATABASE_CONNECTION_URL": "POSTGRES_PASSWORD",
    "SWARMSYNC_REDIS_URL": "REDIS_PASSWORD",
    "SWARMSYNC_PREFECT_REDIS_URL": "REDIS_PASSWORD",
}


def passwords_into_urls(env: dict[str, str]) -> dict[str, str]:
    """Each URL of URL_PASSWORDS without a password gets its server's (URL-quoted); POSTGRES_PASSWORD and
    REDIS_PASSWORD themselves do not go on to SwarmSync's processes."""
    from urllib.parse import quote, urlsplit, urlunsplit

    out = dict(env)
    for name, secret in URL_PASSWORDS.items():
        url, password = env.get(name), env.get(secret)
        if not url or not password:
            continue
        parts = urlsplit(url)
        if parts.password is not None or not parts.hostname:
            continue
        user, host = parts.netloc.rpartition("@")[0], parts.netloc.rpartition("@")[2]
        out[name] = urlunsplit(parts._replace(netloc=f"{user}:{quote(password, safe='')}@{host}"))
    out.pop("REDIS_PASSWORD", None)
    return out


HOST_NAME_FILE = Path(os.environ.get("SWARMSYNC_HOST_NAME_FILE", "/run/swarmsync/host-hostname"))


def worker_name(env: dict[str, str]) -> str:
    """SWARMSYNC_WORKER_NAME, else the Docker host's name (its /etc/hostname, mounted by worker.yaml at
    HOST_NAME_FILE), else this container's host name: stable across restarts and re-creations, so a
    worker's history and telemetry stay under one name."""
    if name := (env.get("SWARMSYNC_WORKER_NAME") or "").strip():
        return name
    try:
        if host := HOST_NAME_FILE.read_text().strip():
            return host
    except OSError:
        pass
    return socket.gethostname()


def _exec(args: list[str], env: dict[str, str]) -> None:
    sys.stdout.flush()
    os.execvpe(args[0], args, env)


def _settings():
    from swarmsync.settings import get_settings

    get_settings.cache_clear()
    return get_settings()


def prefect_server_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The Prefect environment `swarmsync up` gives its server (auth string, PostgreSQL, Redis), as a
    container: bound to SWARMSYNC_HOST (0.0.0.0 here), its UI told where its API is."""
    from swarmsync.deployments.stack import check_mode, prefect_env, split_server

    settings = _settings()
    check_mode(settings)  # all-interfaces binds need team mode (an auth string)
    split_server(settings)  # refuses Redis messaging without PostgreSQL, several API workers without Redis
    env = prefect_env(settings)
    env.setdefault("PREFECT_UI_API_URL", "/api")
    env.update(extra or {})
    return env


def client_env() -> dict[str, str]:
    """Prefect's client settings for SwarmSync's processes (and the flow runs they start): the server's
    URL and, in team mode, its auth string."""
    from swarmsync.connection import api_url

    env = dict(os.environ)
    env["PREFECT_API_URL"] = api_url()
    auth = _settings().prefect_auth_string
    if auth is not None:
        env["PREFECT_API_AUTH_STRING"] = auth.get_secret_value()
    return env


NO_MIGRATIONS = {"PREFECT_API_DATABASE_MIGRATE_ON_START": "false", "PREFECT_API_BLOCKS_REGISTER_ON_START": "false"}


def run(command: str, args: list[str]) -> None:
    """Start `command` in place of this process (exec), or run a one-shot step and return."""
    settings = _settings()
    python = sys.executable
    swarmsync_cli = str(Path(python).with_name("swarmsync"))  # the console script beside this Python
    if command in SERVICES:
        try:
            ROLE_FILE.write_text(command)
        except OSError:
            pass
    server = [python, "-m", "swarmsync.prefect_server", "server", "start",
              "--host", settings.host, "--port", str(settings.port)]
    if command == "server":
        _exec([*server, *args], prefect_server_env())
    elif command == "server-api":
        _exec([*server, "--no-services", "--workers", str(settings.prefect_api_workers), *args],
              prefect_server_env(NO_MIGRATIONS))
    elif command == "server-services":
        # Prefect's CLI with SwarmSync's server patches (swarmsync/prefect_server.py), as `server` runs it
        _exec([python, "-m", "swarmsync.prefect_server", "server", "services", "start", *args],
              prefect_server_env(NO_MIGRATIONS))
    elif command == "prefect-migrate":
        # in a new process: Prefect read its settings when this one imported it, before the entrypoint
        # put the password (from its file) into the database URL
        _exec([python, "-c", "import anyio; from swarmsync.deployments.stack import prepare_prefect_database; "
               "anyio.run(prepare_prefect_database); "
               "print(\"Prefect's database is migrated and its block types registered\", flush=True)", *args],
              prefect_server_env())
    elif command == "migrate":
        migrate_swarmsync()
    elif command == "api":
        from swarmsync.deployments.stack import check_mode

        check_mode(settings)
        _exec([swarmsync_cli, "api", *args], client_env())
    elif command == "dashboard":
        from swarmsync.deployments.stack import dashboard_command

        # (no Prefect auth string here: the dashboard reaches only the SwarmSync API, which needs a login)
        _exec([*dashboard_command(settings), *args], client_env())
    elif command == "worker":
        from swarmsync import core_link
        from swarmsync.connection import api_healthy
        from swarmsync.deployments.stack import wait_for

        name = worker_name(dict(os.environ))
        # started with the stack, Core (or the Prefect API) may not answer yet: Prefect's worker would exit
        # ("Failed to reach API") and go round its restart policy
        wait = float(os.environ.get("SWARMSYNC_WAIT_SECONDS", "900"))
        if (link := core_link.current()) is not None:
            wait_for(lambda: link.whoami() is not None, f"Core at {link.server}", wait)
        else:
            wait_for(api_healthy, "the Prefect API (SWARMSYNC_API_URL)", wait)
        env = {"PREFECT_WORKER_WEBSERVER_HOST": "127.0.0.1", "PREFECT_WORKER_WEBSERVER_PORT": "8080", **client_env()}
        _exec([swarmsync_cli, "worker", "start", "--name", name, "--with-healthcheck", *args], env)
    elif command == "pipelines":
        import anyio

        from swarmsync.connection import api_healthy, prefect_api
        from swarmsync.deployments.pipeline_deployment import recover_pipelines
        from swarmsync.deployments.stack import wait_for
        from swarmsync.pipelines import PIPELINE_POOL

        wait_for(api_healthy, "the Prefect API (SWARMSYNC_API_URL)",
                 float(os.environ.get("SWARMSYNC_WAIT_SECONDS", "900")))
        with prefect_api():
            anyio.run(recover_pipelines)
        _exec([python, "-m", "prefect", "worker", "start", "--pool", PIPELINE_POOL, "--type", "process",
               "--name", f"pipelines-{socket.gethostname()}", *args], client_env())
    elif command == "cli":
        _exec([swarmsync_cli, *args], client_env())
    else:
        _exec([command, *args], client_env())


def migrate_swarmsync() -> None:
    """SwarmSync's database, the first admin (from the environment), and on the Prefect server the
    block types, the work pool and its job deployment: what `swarmsync up` prepares."""
    import anyio

    from swarmsync.auth.users import ensure_first_admin
    from swarmsync.connection import api_healthy, prefect_api
    from swarmsync.db import migrate
    from swarmsync.deployments.pools import create_pool
    from swarmsync.deployments.stack import pipeline_deployment, register_block_types, wait_for

    migrate()
    if admin := ensure_first_admin():  # only while there is no user at all
        print(f"created the first admin {admin.username!r}", flush=True)
    wait_for(api_healthy, "the Prefect API (SWARMSYNC_API_URL)", float(os.environ.get("SWARMSYNC_WAIT_SECONDS", "900")))
    with prefect_api():
        anyio.run(register_block_types)
    create_pool(_settings().work_pool)
    with prefect_api():
        anyio.run(pipeline_deployment)
    print(f"SwarmSync's database is migrated; pool {_settings().work_pool!r} and its deployment are ready", flush=True)
    if folder := os.environ.get("SWARMSYNC_LOCAL_WORKER_CREDENTIALS"):
        local_worker_credentials(Path(folder))


LOCAL_WORKER_TOKEN = "local"  # the token of the worker beside the stack (worker.yaml on the server host)


def local_worker_credentials(folder: Path) -> None:
    """What the worker of this host needs, and nothing else: a worker token of its own (`token`) and the
    API's CA (`ca.pem`), in a volume only it reads (made once; remove the file to make a new token)."""
    from swarmsync import tls
    from swarmsync.auth import worker_tokens
    from swarmsync.db import WorkerToken, session_scope

    settings = _settings()
    ca = tls.ensure_ca(settings.home_dir / "tls")
    (folder / "ca.pem").write_bytes(Path(ca).read_bytes())
    if (folder / "token").exists():
        return
    try:
        worker_tokens.revoke("migrate", LOCAL_WORKER_TOKEN)  # its file is gone: a new one replaces it
        with session_scope() as session:
            session.query(WorkerToken).filter(WorkerToken.name == LOCAL_WORKER_TOKEN).delete()
    except worker_tokens.WorkerTokenNotFound:
        pass
    new = worker_tokens.create("migrate", LOCAL_WORKER_TOKEN, settings.work_pool)
    token = folder / "token"
    token.write_text(new.token + "\n")
    token.chmod(0o400)
    print(f"made worker token {LOCAL_WORKER_TOKEN!r} (pool {settings.work_pool!r}) for the worker of this host",
          flush=True)


def _role() -> str:
    try:
        return ROLE_FILE.read_text().strip()
    except OSError:
        return ""


def api_probe_context(env: dict[str, str]) -> ssl.SSLContext | None:
    """How the health check verifies the API it probes on 127.0.0.1 (None: plain HTTP): the certificate the API
    serves, pinned (the admin's SWARMSYNC_TLS_CERT, any name), else SwarmSync's own CA in $SWARMSYNC_HOME/tls
    (whose certificate names 127.0.0.1); plain HTTP with SWARMSYNC_TLS=off or before any certificate exists."""
    if (env.get("SWARMSYNC_TLS") or "auto").strip().lower() == "off":
        return None
    if cert := env.get("SWARMSYNC_TLS_CERT"):
        context = ssl.create_default_context(cafile=cert)
        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        context.check_hostname = False
        return context
    tls = Path(env.get("SWARMSYNC_HOME") or "/var/lib/swarmsync").expanduser() / "tls"
    if (tls / "server.pem").is_file() and (tls / "ca.pem").is_file():
        return ssl.create_default_context(cafile=str(tls / "ca.pem"))
    return None


def healthy(role: str) -> bool:
    """The part this container runs answers: Prefect's /api/health, the API's /health, Streamlit's
    health probe, Prefect's worker health check (still polling). One-shot commands and the CLI are always healthy.
    Only the standard library for the HTTP checks: a check must stay cheap on a busy host."""
    import urllib.request

    def answers(url: str, context: ssl.SSLContext | None = None) -> bool:
        try:
            with urllib.request.urlopen(url, timeout=5, context=context) as response:  # noqa: S310 - our own URL
                return response.status == 200
        except OSError:
            return False

    env = os.environ.get
    if role in ("server", "server-api"):
        return answers(f"http://127.0.0.1:{env('SWARMSYNC_PORT') or 4200}/api/health")
    if role == "server-services":
        return answers(f"{(env('SWARMSYNC_API_URL') or 'http://prefect:4200/api').rstrip('/')}/health")
    if role == "api":
        context = api_probe_context(dict(os.environ))
        scheme = "https" if context is not None else "http"
        return answers(f"{scheme}://127.0.0.1:{env('SWARMSYNC_API_PORT') or 4280}/health", context)
    if role == "dashboard":
        return answers(f"http://127.0.0.1:{env('SWARMSYNC_DASHBOARD_PORT') or 4290}/_stcore/health")
    if role == "worker":  # Prefect's worker health check: it is still polling for runs
        return answers(f"http://127.0.0.1:{env('PREFECT_WORKER_WEBSERVER_PORT') or 8080}/health")
    return True


def wait_for_worker_token(env: dict[str, str], timeout: float) -> None:
    """On the server host the worker's token is made by `migrate`, which may not have run yet: wait for it."""
    import time

    path = env.get("SWARMSYNC_WORKER_TOKEN_FILE")
    deadline = time.monotonic() + timeout
    while path and not env.get("SWARMSYNC_WORKER_TOKEN") and not Path(path).exists():
        if time.monotonic() > deadline:
            sys.exit(f"swarmsync-entrypoint worker: no worker token in {path} after {timeout:.0f} s "
                     "(on the server host `migrate` makes it; elsewhere: swarmsync worker token create NAME)")
        time.sleep(2)


def main() -> None:
    if sys.argv[1:2] == ["worker"]:
        wait_for_worker_token(dict(os.environ), float(os.environ.get("SWARMSYNC_WAIT_SECONDS", "900")))
    env = database_url_from_parts(passwords_into_urls(secrets_from_files(dict(os.environ))))
    os.environ.clear()
    os.environ.update(env)
    if sys.argv[1:2] == ["healthcheck"]:  # before the heavy imports below
        sys.exit(0 if healthy(sys.argv[2] if len(sys.argv) > 2 else _role()) else 1)
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help", "help"):
        print(__doc__)
        sys.exit(0 if len(sys.argv) >= 2 else 2)
    from swarmsync.deployments.stack import StackError

    try:
        run(sys.argv[1], sys.argv[2:])
    except StackError as exc:
        sys.exit(f"swarmsync-entrypoint {sys.argv[1]}: {exc}")


if __name__ == "__main__":
    main()
