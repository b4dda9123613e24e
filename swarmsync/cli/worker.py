"""`swarmsync worker start`: a SwarmSync worker, as `prefect worker start --type swarmsync`; on a host
with a worker token, `worker start --server https://CORE --token ssw_...` (Core is all it reaches);
`swarmsync worker token create|list|revoke`: those tokens (admins)."""

from __future__ import annotations

from typing import Annotated

import typer

from swarmsync.cli.console import DataTable, console, err, fail

app = typer.Typer(no_args_is_help=True, help="Run a SwarmSync worker; manage worker hosts' tokens.")
token_app = typer.Typer(no_args_is_help=True, help="Worker hosts' tokens (admins): create, list, revoke.")
app.add_typer(token_app, name="token")


@app.command("start")
def start(
    pool: Annotated[str | None, typer.Option("--pool", "-p", help="Work pool (default: SWARMSYNC_WORK_POOL)")] = None,
    name: Annotated[str | None, typer.Option(help="Worker name (default: generated)")] = None,
    limit: Annotated[int, typer.Option(help="Most jobs run at once")] = 50,
    queue: Annotated[
        list[str] | None, typer.Option("--queue", "-q", help="Only these work queues (repeatable)")
    ] = None,
    label: Annotated[list[str] | None, typer.Option(
        "--label", "-l",
        help="Host label (repeatable, e.g. gpu, region=eu; adds to SWARMSYNC_WORKER_LABELS): also run "
        "jobs that require these labels (`swarmsync submit --require gpu`; see docs/deployment.md)")] = None,
    query_seconds: Annotated[float, typer.Option(
        help="Seconds between polls for new runs (a fallback: new runs and free slots wake the worker at once)"
    )] = 2.0,
    with_healthcheck: Annotated[bool, typer.Option(
        help="Serve Prefect's worker health check (GET /health on PREFECT_WORKER_WEBSERVER_HOST:PORT, "
             "default 0.0.0.0:8080), as `prefect worker start --with-healthcheck`"
    )] = False,
    server: Annotated[str | None, typer.Option(
        help="Core's URL (https://CORE:4280): with --token, everything goes through it and this host needs "
             "nothing else of the server's (default: SWARMSYNC_SERVER)")] = None,
    token: Annotated[str | None, typer.Option(
        help="This host's worker token (ssw_..., from `swarmsync worker token create`; default: "
             "SWARMSYNC_WORKER_TOKEN)")] = None,
    ca: Annotated[str | None, typer.Option(
        help="CA certificate that signed Core's (default: SWARMSYNC_CA_FILE, else the system's)")] = None,
    ca_fingerprint: Annotated[str | None, typer.Option(
        help="SHA-256 of Core's CA as `worker token create` printed it: the CA is fetched from Core, "
             "checked against it and kept in SWARMSYNC_HOME/tls/core-ca.pem")] = None,
) -> None:
    """Start a SwarmSync worker (same as `prefect worker start --type swarmsync`)."""
    import anyio
    from prefect.settings import PREFECT_WORKER_QUERY_SECONDS, temporary_settings

    from swarmsync import core_link
    from swarmsync.connection import prefect_api
    from swarmsync.routing import clean_labels, host_queues, parse_labels
    from swarmsync.settings import get_settings
    from swarmsync.worker import SwarmSyncWorker

    if server or token or get_settings().server:
        pool, queue = _join_core(server, token, ca, ca_fingerprint, pool, queue)

    try:
        labels = clean_labels(parse_labels(get_settings().worker_labels) + list(label or []))
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--label / SWARMSYNC_WORKER_LABELS") from exc
    queues = list(queue or [])
    if queues:  # only these queues, and those of jobs requiring this host's labels
        queues += [q for q in host_queues(labels) if q not in queues]

    async def run() -> None:
        worker = SwarmSyncWorker(
            work_pool_name=pool or get_settings().work_pool, name=name, limit=limit,
            work_queues=queues or None, create_pool_if_not_found=core_link.current() is None, labels=labels,
        )
        await worker.start(printer=console.print, with_healthcheck=with_healthcheck)

    with prefect_api(), temporary_settings({PREFECT_WORKER_QUERY_SECONDS: query_seconds}):
        try:
            anyio.run(run)
        except KeyboardInterrupt:
            pass
        except core_link.CoreRefused as exc:
            fail(f"{exc}: this worker stopped its jobs and exits (Core hands them to another host)")


def _join_core(server: str | None, token: str | None, ca: str | None, fingerprint: str | None,
               pool: str | None, queue: list[str] | None) -> tuple[str, list[str] | None]:
    """Point this process at Core (`core_link.use`); the token's pool and queue."""
    import httpx

    from swarmsync import core_link
    from swarmsync.settings import get_settings

    settings = get_settings()
    server = server or settings.server
    token = token or (settings.worker_token.get_secret_value() if settings.worker_token else None)
    if not server or not token:
        fail("a worker host with a token needs both --server https://CORE and --token ssw_... "
             "(or SWARMSYNC_SERVER and SWARMSYNC_WORKER_TOKEN)")
    if not token.startswith("ssw_"):
        fail("--token takes a worker token (ssw_..., from `swarmsync worker token create`), not a user's token")
    ca = ca or (str(settings.ca_file.expanduser()) if settings.ca_file else None)
    if fingerprint and not ca:
        from swarmsync import tls

        try:
            ca = str(tls.fetch_and_save_ca(server, fingerprint, settings.home_dir / "tls" / "core-ca.pem"))
        except (ValueError, OSError) as exc:
            fail(f"Core's CA could not be fetched and checked: {exc}")
    link = core_link.CoreLink(server.rstrip("/"), token, ca)
    try:
        who = link.whoami()
    except core_link.CoreRefused as exc:
        fail(str(exc))
    except httpx.HTTPError as exc:
        fail(f"Core at {server} does not answer: {exc}")
    if pool and pool != who["pool"]:
        fail(f"worker token {who['name']!r} serves pool {who['pool']!r}, not {pool!r}")
    core_link.use(link)
    console.print(f"worker token {who['name']!r}: pool {who['pool']!r}"
                  + (f", queue {who['queue']!r}" if who.get("queue") else "") + f", through {server}")
    return who["pool"], ([who["queue"]] if who.get("queue") else queue)


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Argument(help="The host's name, e.g. gpu-box-1")],
    pool: Annotated[str | None, typer.Option("--pool", "-p", help="Its work pool (default: SWARMSYNC_WORK_POOL)")]
    = None,
    queue: Annotated[str | None, typer.Option("--queue", "-q", help="Only this queue of the pool")] = None,
    expires: Annotated[str | None, typer.Option(help="Lifetime, e.g. 90d (default: never)")] = None,
    server: Annotated[str | None, typer.Option(
        help="Core's URL as the new host reaches it (default: SWARMSYNC_PUBLIC_URL, else the API's)")] = None,
) -> None:
    """A token for a new worker host. Its last line is the command to run there (shown once)."""
    from swarmsync import worker_hosts
    from swarmsync.client import Client, remote_configured

    if remote_configured():
        body = Client.from_settings().create_worker_token(name, pool, queue, expires)
        command = body["command"] if not server else worker_hosts.join_command(
            server, body["token"], body.get("ca_fingerprint"))
    else:
        from swarmsync.auth import worker_tokens
        from swarmsync.connection import prefect_api
        from swarmsync.settings import get_settings
        from swarmsync.timing import parse_duration

        pool = pool or get_settings().work_pool
        with prefect_api():
            worker_hosts.check_pool(pool)  # PoolNotFound: exit 2 (console.EXIT_CODES)
        new = worker_tokens.create("local:" + _local_user(), name, pool, queue,
                                   parse_duration(expires) if expires else None)
        body = {**new.info.model_dump(mode="json"), "token": new.token}
        command = worker_hosts.join_command(server or worker_hosts.default_server_url(), new.token,
                                            worker_hosts.ca_fingerprint())
    err.print(f"worker token {body['name']!r} for pool {body['pool']!r}"
              + (f", queue {body['queue']!r}" if body.get("queue") else "")
              + (f", expires {body['expires_at']}" if body.get("expires_at") else "")
              + "; it is shown once. On the new host run:")
    typer.echo(command)


@token_app.command("list")
def token_list() -> None:
    """Worker tokens: pool, queue, when and from where last seen, as which worker, active or revoked."""
    from swarmsync.client import Client, remote_configured

    if remote_configured():
        rows = Client.from_settings().worker_tokens()
    else:
        from swarmsync.auth import worker_tokens

        rows = [t.model_dump(mode="json") for t in worker_tokens.list_all()]
    table = DataTable("name", "pool", "queue", "last seen", "host", "worker", "expires", "state")
    for row in rows:
        table.add_row(row["name"], row["pool"], row.get("queue") or "-", str(row.get("last_seen_at") or "never"),
                      row.get("last_address") or "-", row.get("last_worker") or "-",
                      str(row.get("expires_at") or "never"), "revoked" if row["revoked"] else "active")
    console.print(table)


@token_app.command("revoke")
def token_revoke(name: str) -> None:
    """Revoke a worker token: refused within seconds; its host stops its jobs, which Core hands to another host."""
    from swarmsync.client import Client, remote_configured

    if remote_configured():
        body = Client.from_settings().revoke_worker_token(name)
        handed = body.get("handed_back") or []
    else:
        from swarmsync import worker_hosts
        from swarmsync.auth import worker_tokens
        from swarmsync.connection import prefect_api

        info, claimed = worker_tokens.revoke("local:" + _local_user(), name)
        with prefect_api():
            handed = worker_hosts.hand_back(claimed, info.name)
    console.print(f"worker token {name!r} revoked; {len(handed)} running job(s) handed back"
                  + (f": {', '.join(handed)}" if handed else ""))


def _local_user() -> str:
    import getpass

    return getpass.getuser()
