"""`swarmsync worker start`: a SwarmSync worker, as `prefect worker start --type swarmsync`."""

from __future__ import annotations

from typing import Annotated

import anyio
import typer
from prefect.settings import PREFECT_WORKER_QUERY_SECONDS, temporary_settings

from swarmsync.cli.console import console
from swarmsync.connection import prefect_api
from swarmsync.settings import get_settings

app = typer.Typer(no_args_is_help=True, help="Run a SwarmSync worker.")


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
        "jobs that require these labels (`swarmsync submit --require gpu`; see docs/many-hosts.md)")] = None,
    query_seconds: Annotated[float, typer.Option(
        help="Seconds between polls for new runs (a fallback: new runs and free slots wake the worker at once)"
    )] = 2.0,
    with_healthcheck: Annotated[bool, typer.Option(
        help="Serve Prefect's worker health check (GET /health on PREFECT_WORKER_WEBSERVER_HOST:PORT, "
             "default 0.0.0.0:8080), as `prefect worker start --with-healthcheck`"
    )] = False,
) -> None:
    """Start a SwarmSync worker (same as `prefect worker start --type swarmsync`)."""
    from swarmsync.routing import clean_labels, host_queues, parse_labels
    from swarmsync.worker import SwarmSyncWorker

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
            work_queues=queues or None, create_pool_if_not_found=True, labels=labels,
        )
        await worker.start(printer=console.print, with_healthcheck=with_healthcheck)

    with prefect_api(), temporary_settings({PREFECT_WORKER_QUERY_SECONDS: query_seconds}):
        try:
            anyio.run(run)
        except KeyboardInterrupt:
            pass
